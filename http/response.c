/* response.c — the one HTTP/1.1 response parser of the project: llhttp in response mode,
 * fed bytes as they arrive, collecting the status, headers and body within fixed bounds.
 * Used by the CLI, by --forward and by the tests' clients (see http.h, "Responses"). */
#include "http.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "vec.h"

static http_response_t *presp(llhttp_t *p)
{
    return p->data;
}

static int fail(http_response_t *r, int err)
{
    r->err = err;
    return -1;
}

/* Appends to the header store "name\0value\0..." within max_head_bytes. */
static int head_append(http_response_t *r, const char *at, size_t len)
{
    if (len > r->max_head_bytes - r->head_len || r->head_len + len + 1 > r->max_head_bytes)
        return fail(r, HTTP_ETOOBIG);
    if (BASE_VEC_RESERVE(r->head, r->head_cap, r->head_len + len + 1, 256) != 0)
        return fail(r, HTTP_ENOMEM);
    memcpy(r->head + r->head_len, at, len);
    r->head_len += len;
    r->head[r->head_len] = '\0';
    return 0;
}

static int head_terminate(http_response_t *r)
{
    if (head_append(r, "", 0) != 0)
        return -1;
    r->head_len++; /* keep the NUL that ends a name or a value */
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    http_response_t *r = presp(p);
    /* A second response on the same connection is not ours to read. */
    return r->done ? fail(r, HTTP_EINVAL) : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len)
{
    http_response_t *r = presp(p);
    if (r->headers_done)
        return 0; /* trailers are not kept */
    if (!r->in_name && r->n_headers >= HTTP_RESPONSE_MAX_HEADERS)
        return fail(r, HTTP_ETOOBIG);
    r->in_name = true;
    return head_append(r, at, len);
}

static int on_header_field_complete(llhttp_t *p)
{
    http_response_t *r = presp(p);
    if (r->headers_done)
        return 0;
    r->in_name = false;
    return head_terminate(r);
}

static int on_header_value(llhttp_t *p, const char *at, size_t len)
{
    http_response_t *r = presp(p);
    return r->headers_done ? 0 : head_append(r, at, len);
}

static int on_header_value_complete(llhttp_t *p)
{
    http_response_t *r = presp(p);
    if (r->headers_done)
        return 0;
    r->n_headers++;
    return head_terminate(r);
}

static int on_headers_complete(llhttp_t *p)
{
    http_response_t *r = presp(p);
    r->status = llhttp_get_status_code(p);
    r->headers_done = true;
    if (p->content_length != 0 && p->content_length != UINT64_MAX &&
        p->content_length > r->max_body_bytes)
        return fail(r, HTTP_ETOOBIG);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len)
{
    http_response_t *r = presp(p);
    if (len > r->max_body_bytes - r->body_len)
        return fail(r, HTTP_ETOOBIG);
    if (BASE_VEC_RESERVE(r->body, r->body_cap, r->body_len + len + 1, 1024) != 0)
        return fail(r, HTTP_ENOMEM);
    memcpy(r->body + r->body_len, at, len);
    r->body_len += len;
    r->body[r->body_len] = '\0';
    r->body_total += len;
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    http_response_t *r = presp(p);
    r->done = true;
    return HPE_PAUSED; /* stop here: nothing after this response is read */
}

static const llhttp_settings_t response_settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_header_field_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void http_response_open(http_response_t *r, size_t max_head_bytes, size_t max_body_bytes)
{
    memset(r, 0, sizeof(*r));
    r->max_head_bytes = max_head_bytes ? max_head_bytes : HTTP_RESPONSE_HEAD_MAX;
    r->max_body_bytes = max_body_bytes ? max_body_bytes : HTTP_RESPONSE_BODY_MAX;
    llhttp_init(&r->parser, HTTP_RESPONSE, &response_settings);
    r->parser.data = r;
}

void http_response_close(http_response_t *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
    r->head_len = r->head_cap = r->body_len = r->body_cap = 0;
}

static int result(http_response_t *r, llhttp_errno_t e)
{
    if (r->done)
        return 1;
    if (e == HPE_OK)
        return 0;
    if (r->err == 0)
        r->err = HTTP_EPROTO;
    return r->err;
}

int http_response_feed(http_response_t *r, const void *data, size_t len)
{
    if (r->done)
        return 1;
    if (r->err)
        return r->err;
    int rc = result(r, llhttp_execute(&r->parser, data, len));
    if (rc == 1) {
        const char *stop = llhttp_get_error_pos(&r->parser); /* where it paused */
        r->used = r->fed + (stop ? (uint64_t)(stop - (const char *)data) : len);
    }
    r->fed += len;
    return rc;
}

int http_response_finish(http_response_t *r)
{
    if (r->done)
        return 0;
    if (r->err)
        return r->err;
    /* Complete only when the body was delimited by the end of the stream. */
    int rc = result(r, llhttp_finish(&r->parser));
    if (rc == 1) {
        r->used = r->fed;
        return 0;
    }
    r->err = rc < 0 ? rc : HTTP_EPROTO;
    return r->err;
}

const char *http_response_header(const http_response_t *r, const char *name)
{
    const char *p = r->head;
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *value = p + strlen(p) + 1;
        if (strcasecmp(p, name) == 0)
            return value;
        p = value + strlen(value) + 1;
    }
    return NULL;
}

const char *http_response_body(const http_response_t *r, size_t *len)
{
    if (len != NULL)
        *len = r->body_len;
    return r->body != NULL ? r->body : "";
}

void http_response_body_consume(http_response_t *r, size_t n)
{
    assert(n <= r->body_len);
    memmove(r->body, r->body + n, r->body_len - n);
    r->body_len -= n;
    if (r->body != NULL)
        r->body[r->body_len] = '\0';
}
