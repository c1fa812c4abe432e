/* cli_kv.c — `electd kv get|put|del|ls`: the replicated KV store through /v1/kv, values from
 * the command line or stdin, fencing tokens and compare-and-set revisions as headers, and
 * listings paged through and printed one key a line. */
#include <stdlib.h>
#include <string.h>

#include "cli_int.h"
#include "vec.h"

#define LIST_MAX_PAGES     10000 /* `kv ls`: at most this many pages (of 1000 keys, 1 MiB) */
#define LS_VALUE_MAX_SHOWN 60    /* `kv ls`: bytes of each value shown before "..." */
#define CLI_KEY_MAX_BYTES  512   /* the server's longest key (STORE_KEY_MAX) */
#define BASE64_ALPHABET    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

/* /v1/kv/KEY[query] into out; reports an empty or too long key. */
static bool kv_target(const cli_ctx_t *c, const char *key, const char *query, char *out, size_t cap)
{
    size_t off = 0;
    out[0] = '\0';
    if (*key == '\0' || !cli_target_append(out, cap, &off, "/v1/kv/") ||
        !cli_target_encode(out, cap, &off, key, true) ||
        (query != NULL && !cli_target_append(out, cap, &off, query))) {
        cli_fail(c, *key == '\0' ? "the key is empty" : "the key is too long");
        return false;
    }
    return true;
}

/* Reads all of stdin, at most CLI_STDIN_MAX_BYTES. */
static char *read_stdin(const cli_ctx_t *c, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n == cap) {
            if (cap > CLI_STDIN_MAX_BYTES) {
                cli_fail(c, "the value on stdin exceeds %u bytes", CLI_STDIN_MAX_BYTES);
                free(buf);
                return NULL;
            }
            if (BASE_VEC_RESERVE(buf, cap, cap + 1, 4096) != 0)
                break;
        }
        size_t r = fread(buf + n, 1, cap - n, stdin);
        n += r;
        if (r == 0) {
            if (ferror(stdin)) {
                cli_fail(c, "cannot read stdin");
                free(buf);
                return NULL;
            }
            *len = n;
            return buf;
        }
    }
    free(buf);
    cli_fail(c, "out of memory");
    return NULL;
}

int cli_kv_get(cli_ctx_t *c)
{
    char target[CLI_TARGET_MAX_BYTES];
    /* Humans get the bytes as stored (?raw); --json the server's object. */
    const char *q = c->json ? (c->stale ? "?stale" : NULL) : (c->stale ? "?raw&stale" : "?raw");
    if (!kv_target(c, c->pos[0], q, target, sizeof(target)))
        return SIDECAR_CLIENT_ERROR;
    cli_request_t rq = {.method = "GET", .target = target};
    cli_response_t rs;
    if (cli_call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    int code = SIDECAR_CLIENT_OK;
    if (rs.status != 200)
        code = cli_report_error(c, &rs);
    else if (c->json)
        cli_print_json_body(&rs);
    else {
        fwrite(rs.body, 1, rs.body_len, stdout);
        if (!c->raw)
            fputc('\n', stdout);
    }
    cli_response_clear(&rs);
    return code;
}

/* PUT's body: the value argument, or stdin for "-" (*owned then holds it). */
static bool put_body(const cli_ctx_t *c, cli_request_t *rq, char **owned)
{
    *owned = NULL;
    rq->content_type = "application/octet-stream";
    if (strcmp(c->pos[1], "-") != 0) {
        rq->body = c->pos[1];
        rq->body_len = strlen(c->pos[1]);
        return true;
    }
    *owned = read_stdin(c, &rq->body_len);
    rq->body = *owned;
    return *owned != NULL;
}

int cli_kv_write(cli_ctx_t *c)
{
    bool put = c->cmd == CLI_CMD_KV_PUT;
    char target[CLI_TARGET_MAX_BYTES], headers[256] = "", *stdin_value = NULL;
    if (!kv_target(c, c->pos[0], put && c->ephemeral ? "?ephemeral=true" : NULL, target,
                   sizeof(target)))
        return SIDECAR_CLIENT_ERROR;
    size_t off = 0;
    if (c->fence != NULL)
        off += (size_t)snprintf(headers, sizeof(headers), "X-Electd-Fence: %s\r\n", c->fence);
    if (c->election != NULL)
        off += (size_t)snprintf(headers + off, sizeof(headers) - off, "X-Electd-Election: %s\r\n",
                                c->election);
    if (c->if_match != NULL)
        snprintf(headers + off, sizeof(headers) - off, "If-Match: %s\r\n", c->if_match);
    cli_request_t rq = {.method = put ? "PUT" : "DELETE", .target = target, .headers = headers};
    if (put && !put_body(c, &rq, &stdin_value))
        return SIDECAR_CLIENT_ERROR;
    cli_response_t rs;
    int code = SIDECAR_CLIENT_ERROR;
    if (cli_call(c, &rq, &rs) == 0) {
        cJSON *o = cli_reply_object(c, &rs, 200, &code);
        char n[32];
        if (o != NULL)
            printf(put ? "OK revision %s\n" : "deleted, revision %s\n",
                   cli_jnum(o, "revision", n, sizeof(n)));
        cJSON_Delete(o);
        cli_response_clear(&rs);
    }
    free(stdin_value);
    return code;
}

/* The '=' that pad base64 text of length n (0, 1 or 2). */
static size_t base64_pad(const char *s, size_t n)
{
    return n >= 1 && s[n - 1] == '=' ? n >= 2 && s[n - 2] == '=' ? 2 : 1 : 0;
}

/* Bytes that base64 text stands for: not its length, and its padding taken off. */
static size_t base64_decoded_len(const char *s)
{
    size_t n = strlen(s);
    return n / 4 * 3 - base64_pad(s, n);
}

/* Decodes padded base64 (RFC 4648) into out[0..cap); returns the length, or SIZE_MAX when s
 * is not base64 or does not fit. */
static size_t base64_decode(const char *s, uint8_t *out, size_t cap)
{
    size_t n = strlen(s), pad = base64_pad(s, n), o = 0;
    if (n % 4 != 0 || base64_decoded_len(s) > cap)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t v = 0;
        for (size_t k = 0; k < 4; k++) {
            const char *p = s[i + k] == '=' ? NULL : strchr(BASE64_ALPHABET, s[i + k]);
            if (p == NULL && i + k < n - pad)
                return SIZE_MAX;
            v = v << 6 | (uint32_t)(p != NULL ? p - BASE64_ALPHABET : 0);
        }
        for (size_t k = 0; k < (i + 4 == n ? 3 - pad : 3); k++)
            out[o++] = (uint8_t)(v >> (16 - 8 * k));
    }
    return o;
}

/* An item's key: "key" as it is, or "key_base64" (a key that is not UTF-8, stored before
 * such keys were refused) decoded into buf; NULL when it has neither. */
static const char *item_key(const cJSON *item, char *buf, size_t cap)
{
    const char *key = cli_jstr(item, "key"), *b64 = cli_jstr(item, "key_base64");
    if (key != NULL || b64 == NULL)
        return key;
    size_t n = base64_decode(b64, (uint8_t *)buf, cap - 1);
    if (n == SIZE_MAX || n == 0 || memchr(buf, '\0', n) != NULL)
        return NULL;
    buf[n] = '\0';
    return buf;
}

/* One line of `kv ls` and `kv watch`: the key, a tab, the value cut short; both escaped, so
 * that one key is always one line (and bytes of a key that is not UTF-8 as \xNN). */
void cli_kv_print_line(const cJSON *item, size_t max_shown)
{
    char kbuf[CLI_KEY_MAX_BYTES + 1];
    const char *key = item_key(item, kbuf, sizeof(kbuf)), *value = cli_jstr(item, "value");
    if (key == NULL)
        fputc('?', stdout);
    for (const char *k = key; k != NULL && *k != '\0'; k++) {
        char one[2] = {*k, '\0'};
        if ((unsigned char)*k >= 0x80 && key == kbuf)
            printf("\\x%02x", (unsigned char)*k);
        else
            cli_print_escaped(one, SIZE_MAX);
    }
    if (max_shown == 0) {
        fputc('\n', stdout);
        return;
    }
    fputc('\t', stdout);
    if (value != NULL) {
        cli_print_escaped(value, max_shown);
    } else {
        const char *b64 = cli_jstr(item, "value_base64");
        size_t n = b64 ? base64_decoded_len(b64) : 0;
        printf("(binary, %zu byte%s)", n, n == 1 ? "" : "s");
    }
    fputc('\n', stdout);
}

/* A listing in progress: where the next page starts, and the items gathered for --json. */
typedef struct listing {
    const char *prefix;
    char *after; /* the last key seen, or NULL */
    bool more;
    cJSON *merged, *all; /* {"items": all} */
} listing_t;

static bool page_target(const cli_ctx_t *c, const listing_t *ls, char *target, size_t cap)
{
    size_t off = 0;
    target[0] = '\0';
    if (cli_target_append(target, cap, &off, "/v1/kv?prefix=") &&
        cli_target_encode(target, cap, &off, ls->prefix, false) &&
        (ls->after == NULL || (cli_target_append(target, cap, &off, "&after=") &&
                               cli_target_encode(target, cap, &off, ls->after, false))) &&
        (!c->stale || cli_target_append(target, cap, &off, "&stale")))
        return true;
    cli_fail(c, "the prefix is too long");
    return false;
}

/* Takes in one page's reply: prints its items (or keeps them for --json) and notes where the
 * next page starts. Returns false (reported) for a reply that does not make sense. */
static bool page_take(const cli_ctx_t *c, listing_t *ls, const cli_response_t *rs, cJSON *o)
{
    cJSON *items = cJSON_GetObjectItemCaseSensitive(o, "items");
    if (!cJSON_IsArray(items)) {
        cli_fail(c, "the reply has no items: %.200s", rs->body);
        return false;
    }
    ls->more = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "more"));
    const cJSON *item = NULL;
    const char *last = NULL;
    char kbuf[CLI_KEY_MAX_BYTES + 1];
    cJSON_ArrayForEach(item, items)
    {
        if (!c->json)
            cli_kv_print_line(item, LS_VALUE_MAX_SHOWN);
        last = item_key(item, kbuf, sizeof(kbuf));
    }
    if (ls->more && last == NULL) {
        cli_fail(c, "the reply says more keys follow but names none");
        return false;
    }
    free(ls->after);
    ls->after = last ? strdup(last) : NULL;
    if (c->json)
        while (cJSON_GetArraySize(items) > 0)
            cJSON_AddItemToArray(ls->all, cJSON_DetachItemFromArray(items, 0));
    return true;
}

/* Fetches and takes in the next page. Returns an exit code. */
static int list_page(cli_ctx_t *c, listing_t *ls)
{
    char target[CLI_TARGET_MAX_BYTES];
    cli_response_t rs;
    cJSON *o = NULL;
    if (!page_target(c, ls, target, sizeof(target)))
        return SIDECAR_CLIENT_ERROR;
    int code = cli_get_json(c, &c->addr, target, c->deadline_ms, &rs, &o);
    if (code != SIDECAR_CLIENT_OK)
        return code;
    if (!page_take(c, ls, &rs, o))
        code = SIDECAR_CLIENT_ERROR;
    cJSON_Delete(o);
    cli_response_clear(&rs);
    return code;
}

/* Pages through GET /v1/kv?prefix= (after= the last key) up to LIST_MAX_PAGES; --json gets
 * one object {"items": [...], "more": bool} with the pages merged. */
int cli_kv_ls(cli_ctx_t *c)
{
    listing_t ls = {.prefix = c->npos > 0 ? c->pos[0] : "", .more = true};
    int code = SIDECAR_CLIENT_ERROR;
    ls.merged = cJSON_CreateObject();
    ls.all = cJSON_AddArrayToObject(ls.merged, "items");
    if (ls.merged == NULL || ls.all == NULL)
        goto done;
    for (int pages = 0; ls.more && pages < LIST_MAX_PAGES; pages++)
        if ((code = list_page(c, &ls)) != SIDECAR_CLIENT_OK)
            goto done;
    code = SIDECAR_CLIENT_ERROR;
    if (ls.more)
        cli_fail(c, "listing stopped after %d pages; more keys follow", LIST_MAX_PAGES);
    if (c->json) {
        cJSON_AddBoolToObject(ls.merged, "more", ls.more);
        char *s = cJSON_PrintUnformatted(ls.merged);
        if (s == NULL)
            goto done;
        printf("%s\n", s);
        free(s);
    }
    code = SIDECAR_CLIENT_OK;
done:
    free(ls.after);
    cJSON_Delete(ls.merged);
    return code;
}
