/* router.c — route registration and matching (literal and {param} segments, a greedy
 * last {param...}), request-target splitting, percent-decoding of path parameters and
 * query strings, and the per-route status counters. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

static const char *method_names[] = {"GET",    "HEAD",  "POST",    "PUT",
                                     "DELETE", "PATCH", "OPTIONS", "OTHER"};

const char *http_router_method_name(http_method_t m)
{
    return (unsigned)m <= HTTP_METHOD_OTHER ? method_names[m] : "OTHER";
}

char *http_arena_alloc(struct http_req *req, size_t n)
{
    struct chunk *ch = req->arena;
    if (!ch || ch->cap - ch->used < n) {
        size_t cap = n > 1024 ? n : 1024;
        ch = malloc(sizeof(*ch) + cap);
        if (!ch)
            return NULL;
        ch->cap = cap;
        ch->used = 0;
        ch->next = req->arena;
        req->arena = ch;
    }
    char *p = ch->data + ch->used;
    ch->used += n;
    return p;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decode s[0..n) into the arena. A bad escape or a decoded NUL (handlers use C
 * strings) is refused: *out stays NULL and 400 is returned; ENOMEM gives 500. */
static int decode(struct http_req *req, const char *s, size_t n, bool plus_space, const char **out)
{
    *out = NULL;
    char *d = http_arena_alloc(req, n + 1);
    if (!d)
        return 500;
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return 400;
            int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return 400;
            c = (char)(hi * 16 + lo);
            if (c == '\0')
                return 400;
            i += 2;
        } else if (c == '+' && plus_space) {
            c = ' ';
        }
        d[j++] = c;
    }
    d[j] = '\0';
    *out = d;
    return 0;
}

int http_router_parse_target(struct http_req *req)
{
    const char *t = req->text; /* target is first in text, NUL-terminated */
    size_t n = req->url_len;
    req->target = t;
    /* absolute-form ("http://host/path") is allowed by RFC 9112 for servers. */
    size_t start = 0;
    if (n >= 7 && (strncmp(t, "http://", 7) == 0 || (n >= 8 && strncmp(t, "https://", 8) == 0))) {
        const char *p = strchr(t + (t[4] == 's' ? 8 : 7), '/');
        start = p ? (size_t)(p - t) : n;
    }
    if (start >= n || t[start] != '/')
        return 400;
    size_t end = start;
    while (end < n && t[end] != '?' && t[end] != '#')
        end++;
    char *path = http_arena_alloc(req, end - start + 1);
    if (!path)
        return 500;
    memcpy(path, t + start, end - start);
    path[end - start] = '\0';
    req->path = path;
    if (end >= n || t[end] != '?')
        return 0;

    /* Query: count pairs first so one array holds them. */
    const char *q = t + end + 1;
    size_t qn = n - end - 1;
    const char *hash = memchr(q, '#', qn);
    if (hash)
        qn = (size_t)(hash - q);
    size_t pairs = 1;
    for (size_t i = 0; i < qn; i++)
        pairs += q[i] == '&';
    struct kv *kv = (struct kv *)http_arena_alloc(req, pairs * sizeof(*kv) + _Alignof(struct kv));
    if (!kv)
        return 500;
    kv = (struct kv *)(((uintptr_t)kv + _Alignof(struct kv) - 1) &
                       ~(uintptr_t)(_Alignof(struct kv) - 1));
    size_t k = 0;
    size_t i = 0;
    while (i <= qn) {
        size_t j = i;
        while (j < qn && q[j] != '&')
            j++;
        if (j > i) {
            const char *eq = memchr(q + i, '=', j - i);
            size_t nl = eq ? (size_t)(eq - (q + i)) : j - i;
            int rc = decode(req, q + i, nl, true, &kv[k].name);
            if (rc)
                return rc;
            if (eq)
                rc = decode(req, eq + 1, (size_t)(q + j - eq - 1), true, &kv[k].value);
            else
                kv[k].value = "";
            if (rc)
                return rc;
            k++;
        }
        i = j + 1;
    }
    req->query = kv;
    req->nquery = k;
    return 0;
}

/* Does `path` match route `r`? Fills req->params on success (decoded). Returns 1 on a
 * match, 0 on no match, or an HTTP status on a decoding error. */
static int match(const struct route *r, struct http_req *req, const char *path)
{
    const char *p = path;
    size_t np = 0;
    assert(*p == '/');
    for (size_t i = 0; i < r->nseg; i++) {
        if (*p != '/')
            return 0;
        p++;
        bool last = i + 1 == r->nseg;
        size_t len;
        if (last && r->greedy_last)
            len = strlen(p);
        else
            len = strcspn(p, "/");
        if (r->seg[i].is_param) {
            if (len == 0)
                return 0;
            const char *v;
            int rc = decode(req, p, len, false, &v);
            if (rc)
                return rc;
            req->params[np].name = r->seg[i].text;
            req->params[np].value = v;
            np++;
        } else if (strlen(r->seg[i].text) != len || memcmp(r->seg[i].text, p, len) != 0) {
            return 0;
        }
        p += len;
    }
    if (*p != '\0')
        return 0;
    req->nparams = np;
    return 1;
}

int http_router_match(struct http_server *srv, struct http_req *req)
{
    const struct route *get_route = NULL;
    unsigned allow = 0;
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = srv->routes[i];
        bool want = r->method == req->method ||
                    (req->method == HTTP_METHOD_HEAD && r->method == HTTP_METHOD_GET);
        if (!want && (allow & (1u << r->method)))
            continue; /* only needed for Allow, and already known */
        int m = match(r, req, req->path);
        if (m > 1)
            return m;
        if (m == 0)
            continue;
        if (r->method == req->method) {
            req->route = r;
            return 0;
        }
        if (want && !get_route)
            get_route = r;
        allow |= 1u << r->method;
    }
    if (get_route) {
        /* HEAD served by GET; params must be those of the GET route. */
        int m = match(get_route, req, req->path);
        assert(m == 1);
        (void)m;
        req->route = get_route;
        req->head_only = true;
        return 0;
    }
    if (!allow)
        return 404;
    if (allow & (1u << HTTP_METHOD_GET))
        allow |= 1u << HTTP_METHOD_HEAD;
    size_t off = 0;
    for (unsigned m = 0; m < HTTP_METHOD_OTHER; m++) {
        if (!(allow & (1u << m)))
            continue;
        const char *name = method_names[m];
        size_t l = strlen(name);
        if (off + l + 3 > sizeof(req->allow))
            break;
        if (off) {
            memcpy(req->allow + off, ", ", 2);
            off += 2;
        }
        memcpy(req->allow + off, name, l);
        off += l;
    }
    req->allow[off] = '\0';
    return 405;
}

static void route_free(struct route *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->nseg; i++)
        free(r->seg[i].text);
    free(r->pattern);
    http_stats_free(&r->stats);
    free(r);
}

int http_server_route(http_server_t *srv, http_method_t method, const char *pattern, unsigned flags,
                      http_handler_cb handler, void *data)
{
    int rc = HTTP_EPATTERN;
    struct route *r = NULL;
    if (!srv || !pattern || !handler || (unsigned)method >= HTTP_METHOD_OTHER || pattern[0] != '/')
        return HTTP_EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return HTTP_ENOMEM;
    r->method = method;
    r->flags = flags;
    r->handler = handler;
    r->data = data;
    r->pattern = strdup(pattern);
    if (!r->pattern) {
        rc = HTTP_ENOMEM;
        goto fail;
    }
    size_t nparams = 0;
    const char *p = pattern;
    if (strcmp(p, "/") != 0) {
        while (*p == '/') {
            p++;
            size_t len = strcspn(p, "/");
            if (len == 0 || r->nseg == HTTP_MAX_SEGMENTS || r->greedy_last)
                goto fail;
            bool is_param = p[0] == '{';
            const char *name = p;
            size_t nlen = len;
            if (is_param) {
                if (p[len - 1] != '}' || len < 3)
                    goto fail;
                name = p + 1;
                nlen = len - 2;
                if (nlen >= 3 && memcmp(name + nlen - 3, "...", 3) == 0) {
                    r->greedy_last = true; /* must be the last: checked by the loop */
                    nlen -= 3;
                }
                if (nlen == 0 || memchr(name, '{', nlen) || memchr(name, '}', nlen) ||
                    ++nparams > HTTP_MAX_PARAMS)
                    goto fail;
            } else if (memchr(p, '{', len) || memchr(p, '}', len)) {
                goto fail;
            }
            r->seg[r->nseg].text = strndup(name, nlen);
            if (!r->seg[r->nseg].text) {
                rc = HTTP_ENOMEM;
                goto fail;
            }
            r->seg[r->nseg].is_param = is_param;
            r->nseg++;
            p += len;
        }
        if (*p != '\0')
            goto fail;
    }
    if (BASE_VEC_RESERVE(srv->routes, srv->routes_cap, srv->nroutes + 1, 16) != 0) {
        rc = HTTP_ENOMEM;
        goto fail;
    }
    srv->routes[srv->nroutes++] = r;
    return 0;
fail:
    route_free(r);
    return rc;
}

void http_router_free(struct http_server *srv)
{
    for (size_t i = 0; i < srv->nroutes; i++)
        route_free(srv->routes[i]);
    free(srv->routes);
    srv->routes = NULL;
    srv->nroutes = srv->routes_cap = 0;
}

void http_stats_count(struct route_stats *st, int status)
{
    for (size_t i = 0; i < st->n; i++) {
        if (st->rows[i].status == status) {
            st->rows[i].count++;
            return;
        }
    }
    if (BASE_VEC_RESERVE(st->rows, st->cap, st->n + 1, 4) != 0)
        return; /* a lost metric beats a failed request */
    st->rows[st->n].status = status;
    st->rows[st->n].count = 1;
    st->n++;
}

void http_stats_free(struct route_stats *st)
{
    free(st->rows);
    st->rows = NULL;
    st->n = st->cap = 0;
}

void http_server_stats_foreach(const http_server_t *srv, http_stats_cb cb, void *data)
{
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *r = srv->routes[i];
        for (size_t j = 0; j < r->stats.n; j++)
            cb(method_names[r->method], r->pattern, r->stats.rows[j].status, r->stats.rows[j].count,
               data);
    }
    for (size_t j = 0; j < srv->unmatched.n; j++)
        cb("", "", srv->unmatched.rows[j].status, srv->unmatched.rows[j].count, data);
}
