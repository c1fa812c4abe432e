/* test_http_response.c — the client-side response parser (http/response.c): every framing
 * a server may use, fed whole and one byte at a time, and every way a response can be bad. */
#include <string.h>

#include <criterion/criterion.h>

#include "http.h"

/* Feeds text in pieces of `step` bytes (0 = all at once), then the end of the stream when
 * `eof`. Returns what the last call returned. */
static int parse(http_response_t *r, const char *text, size_t step, bool eof)
{
    size_t len = strlen(text), off = 0;
    int rc = 0;
    while (off < len && rc == 0) {
        size_t n = step == 0 || step > len - off ? len - off : step;
        rc = http_response_feed(r, text + off, n);
        off += n;
    }
    if (eof && rc == 0)
        rc = http_response_finish(r) == 0 ? 1 : http_response_finish(r);
    return rc;
}

struct good {
    const char *name, *text;
    bool eof;
    int status;
    const char *body, *location;
};

static const struct good goods[] = {
    {"content-length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, "hello",
     NULL},
    {"chunked",
     "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
     false, 201, "abcde", NULL},
    {"close-delimited", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end", true, 200,
     "until the end", NULL},
    {"redirect",
     "HTTP/1.1 307 Temporary Redirect\r\nlocation: http://127.0.0.1:1/x\r\n"
     "Content-Length: 0\r\n\r\n",
     false, 307, "", "http://127.0.0.1:1/x"},
    {"http/1.0", "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 2\r\n\r\n{}", false, 503,
     "{}", NULL},
    {"no content", "HTTP/1.1 204 No Content\r\n\r\n", false, 204, "", NULL},
};

static void check_good(const struct good *g, size_t step)
{
    http_response_t r;
    http_response_open(&r, 0, 0);
    cr_assert_eq(parse(&r, g->text, step, g->eof), 1, "%s (step %zu)", g->name, step);
    cr_assert_eq(r.status, g->status, "%s", g->name);
    size_t len;
    cr_assert_str_eq(http_response_body(&r, &len), g->body, "%s", g->name);
    cr_assert_eq(len, strlen(g->body));
    if (g->location)
        cr_assert_str_eq(http_response_header(&r, "Location"), g->location, "%s", g->name);
    else
        cr_assert_null(http_response_header(&r, "Location"), "%s", g->name);
    http_response_close(&r);
}

Test(response, framings_whole_and_byte_at_a_time)
{
    for (size_t i = 0; i < sizeof(goods) / sizeof(goods[0]); i++) {
        check_good(&goods[i], 0);
        check_good(&goods[i], 1);
        check_good(&goods[i], 7);
    }
}

struct bad {
    const char *name, *text;
    bool eof;
    size_t max_head, max_body;
    int err;
};

static const struct bad bads[] = {
    {"not http", "SSH-2.0-OpenSSH\r\n\r\n", false, 0, 0, HTTP_EPROTO},
    {"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, 0, 0, HTTP_EPROTO},
    {"cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", true, 0, 0, HTTP_EPROTO},
    {"no head end", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n", true, 0, 0, HTTP_EPROTO},
    {"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 0, 0,
     HTTP_EPROTO},
    {"head too big", "HTTP/1.1 200 OK\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
     false, 32, 0, HTTP_ETOOBIG},
    {"declared body too big", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", false, 0, 10,
     HTTP_ETOOBIG},
    {"streamed body too big", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789abc", false, 0,
     10, HTTP_ETOOBIG},
};

Test(response, bad_responses_are_refused_with_the_right_error)
{
    for (size_t i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
        for (size_t step = 0; step <= 1; step++) {
            const struct bad *b = &bads[i];
            http_response_t r;
            http_response_open(&r, b->max_head, b->max_body);
            int rc = parse(&r, b->text, step, b->eof);
            cr_assert_eq(rc, b->err, "%s (step %zu): %d", b->name, step, rc);
            /* Errors stick: more bytes do not revive the parser. */
            cr_assert_eq(http_response_feed(&r, "x", 1), b->err, "%s", b->name);
            http_response_close(&r);
        }
    }
}

Test(response, too_many_headers)
{
    http_response_t r;
    http_response_open(&r, 1 << 20, 0);
    int rc = http_response_feed(&r, "HTTP/1.1 200 OK\r\n", 17);
    for (int i = 0; i <= HTTP_RESPONSE_MAX_HEADERS && rc == 0; i++)
        rc = http_response_feed(&r, "A: b\r\n", 6);
    cr_assert_eq(rc, HTTP_ETOOBIG);
    http_response_close(&r);
}

Test(response, a_stream_is_consumed_piece_by_piece)
{
    http_response_t r;
    http_response_open(&r, 0, 16);
    const char *head = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n";
    cr_assert_eq(http_response_feed(&r, head, strlen(head)), 0);
    cr_assert(r.headers_done);
    cr_assert_str_eq(http_response_header(&r, "content-type"), "text/event-stream");
    /* More than max_body in total, never more than max_body held. */
    for (int i = 0; i < 10; i++) {
        cr_assert_eq(http_response_feed(&r, "data: x\n\n", 9), 0);
        size_t len;
        cr_assert_str_eq(http_response_body(&r, &len), "data: x\n\n");
        http_response_body_consume(&r, len);
    }
    cr_assert_eq(r.body_total, 90);
    http_response_close(&r);
}

Test(response, bytes_after_the_response_are_ignored)
{
    http_response_t r;
    http_response_open(&r, 0, 0);
    const char *two = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\naHTTP/1.1 500 No\r\n\r\n";
    cr_assert_eq(http_response_feed(&r, two, strlen(two)), 1);
    cr_assert_eq(r.status, 200);
    cr_assert_eq(r.used, strlen("HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na"));
    cr_assert_str_eq(http_response_body(&r, NULL), "a");
    cr_assert_eq(http_response_finish(&r), 0);
    http_response_close(&r);
}
