/* http_int.h — private layout shared by the http/ sources: server, connection, request
 * and route structures. Nothing outside http/ includes this. */
#ifndef ELECTD_HTTP_INT_H
#define ELECTD_HTTP_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "http.h"
#include "tls.h" /* types and limits only: calls into tls/ are all in https.c */
#include "vec.h"

/* Fixed bounds that are not settings. */
#define HTTP_MAX_PARAMS        8     /* parameters per route pattern */
#define HTTP_MAX_SEGMENTS      16    /* segments per route pattern */
#define HTTP_MAX_EXTRA_HEADERS 4096  /* bytes of handler-added response headers */
#define HTTP_READ_BUF_BYTES    65536 /* one socket read */
/* Unparsed bytes while paused: what one read delivers after the pause point (with TLS, the
 * plaintext of one read plus the rest of a record begun in the previous one). */
#define HTTP_PENDING_MAX    (HTTP_READ_BUF_BYTES + TLS_RECORD_MAX + 4096)
#define HTTP_LINGER_MS      2000        /* discard input after the last response, then close */
#define HTTP_MEM_OUTPUT_MAX (16u << 20) /* in-memory connection output cap */
/* A probe reserve connection must send its request line and headers within this (or the
 * header timeout, if shorter): probes send at once, and a reserve slot must not be held. */
#define HTTP_PROBE_HEADER_TIMEOUT_MS 1000

/* Per-(route, status) counter. */
struct status_count {
    int status;
    uint64_t count;
};

struct route_stats {
    struct status_count *rows;
    size_t n, cap;
};

struct route {
    http_method_t method;
    unsigned flags;
    http_handler_cb handler;
    void *data;
    char *pattern; /* as registered */
    /* Parsed pattern: segment i is a literal (is_param 0) or a parameter name. */
    size_t nseg;
    struct {
        char *text;
        bool is_param;
    } seg[HTTP_MAX_SEGMENTS];
    bool greedy_last; /* last segment is "{name...}" */
    struct route_stats stats;
};

enum req_state {
    REQ_PARSING,   /* bytes still arriving */
    REQ_QUEUED,    /* complete, waiting for its turn */
    REQ_ACTIVE,    /* handed to the handler, unanswered */
    REQ_STREAMING, /* stream started */
    REQ_DEAD,      /* cancelled; waits for the connection to be freed */
};

struct hdr {
    uint32_t name_off, name_len, value_off, value_len;
};

struct kv {
    const char *name, *value;
};

/* An arena chunk for decoded strings. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

struct http_conn;

struct http_req {
    struct http_conn *conn;
    struct http_req *next; /* connection queue */
    enum req_state state;

    /* Parsed request. `text` holds the target and headers; offsets because it grows. */
    http_method_t method;
    uint8_t method_raw; /* llhttp_method_t */
    uint8_t http_major, http_minor;
    bool keep_alive;
    bool head_only; /* HEAD: omit the body */
    char *text;
    size_t text_len, text_cap;
    size_t url_len;
    size_t header_bytes;
    struct hdr *hdrs;
    size_t nhdr, hdr_cap;
    bool in_value; /* header parse state: value seen for the current header */
    bool headers_done;
    bool expect_continue, continue_sent; /* "Expect: 100-continue" */
    char *body;
    size_t body_len, body_cap;

    /* Derived at end of headers. */
    const char *target, *path;
    struct kv *query;
    size_t nquery;
    const struct route *route;
    struct kv params[HTTP_MAX_PARAMS];
    size_t nparams;
    struct chunk *arena;

    /* Set when the server itself answers (error, 404, 405, 401...). */
    int pre_status;
    const char *pre_code, *pre_message;
    char allow[64];
    bool close_after; /* close the connection after this response */
    bool scoped;      /* authorized by the scoped credential */

    /* Response. */
    char *extra;
    size_t extra_len;
    http_cancel_cb cancel_cb;
    void *cancel_data;
};

struct http_conn {
    struct http_server *srv;
    struct http_conn *prev, *next; /* server's list */
    bool is_mem;
    uv_tcp_t tcp;
    uv_timer_t timer; /* header / idle / linger deadlines */
    uv_timer_t kick;  /* deferred work: dispatch next request, deferred abort */
    uv_shutdown_t shutdown_req;
    int handles_open;
    struct sockaddr_storage peer;
    tls_session_t *tls; /* HTTPS socket connections only */
    char *peer_cn;      /* HTTPS: the verified client certificate's CN, or NULL */
    bool tls_ready;     /* HTTPS: handshake completed (peer_cn taken) */

    llhttp_t parser;
    struct http_req *cur;         /* being parsed */
    struct http_req *head, *tail; /* complete requests, in order */
    size_t nqueued;
    bool paused;   /* parser paused: too many queued */
    char *pending; /* unparsed bytes while paused */
    size_t pending_len;
    bool read_done;     /* no more requests will be parsed */
    bool reading;       /* uv_read_start active */
    int error_status;   /* limit hit inside a parser callback */
    bool processing;    /* conn_process on the stack */
    bool abort_pending; /* abort requested from an API call; done by `kick` */
    bool closing;       /* abortive close in progress or done */
    bool finishing;     /* last response queued: shutdown, linger, close */
    bool lingering;
    bool read_eof;         /* client sent FIN while our last response drains */
    bool mem_released;     /* in-memory: owner called http_memconn_close() */
    bool probe_only;       /* accepted from the probe reserve: one probe request, then close */
    uint64_t served;       /* requests answered */
    uint64_t hdr_start_ms; /* when the current request's first byte (or accept) happened */
    uint64_t last_io_ms;

    /* In-memory output. */
    char *out;
    size_t out_len, out_cap;
};

struct http_server {
    uv_loop_t *loop;
    http_limits_t lim;
    char *token;
    size_t token_len;
    http_scoped_token_cb scoped_cb;
    void *scoped_data;
    tls_ctx_t *tls; /* borrowed; NULL for plain HTTP */
    const struct http_tls_ops *tls_ops;
    http_tls_error_cb tls_error_cb;
    void *tls_error_data;
    uv_tcp_t listener;
    bool listening;
    bool listener_used;
    bool closing;
    int pending_handles; /* open conns + rejected sockets + listener */
    uint32_t probe_open; /* connections open from the probe reserve (also in connections_open) */
    http_server_close_cb close_cb;
    void *close_data;

    struct route **routes;
    size_t nroutes, routes_cap;
    struct route_stats unmatched;

    struct http_conn *conns;        /* every live connection (TCP and memory) */
    uv_timer_t close_timer;         /* makes the close callback always asynchronous */
    char rbuf[HTTP_READ_BUF_BYTES]; /* one read at a time: the loop is single-threaded */
    char *tls_plain;                /* TLS_RECORD_MAX bytes of decrypted input (HTTPS only) */
    http_counters_t counters;
};

/* router.c */
void http_router_free(struct http_server *srv);
/* Resolve the route for `req` (method, path, query set). Returns 0 and sets req->route
 * and params, or an HTTP status (400, 404, 405 with req->allow filled). */
int http_router_match(struct http_server *srv, struct http_req *req);
/* Split target into path and query; 0 or 400. */
int http_router_parse_target(struct http_req *req);
void http_stats_count(struct route_stats *st, int status);
void http_stats_free(struct route_stats *st);
char *http_arena_alloc(struct http_req *req, size_t n);

/* parser.c */
extern const llhttp_settings_t http_parser_settings; /* builds c->cur from the bytes fed */
struct http_req *http_req_new(struct http_conn *c);
/* Appends n bytes (plus a NUL kept past *len) to a growable buffer; 0 or -1 (no memory). */
int http_grow_append(char **buf, size_t *len, size_t *cap, const char *at, size_t n);
void http_req_enqueue(struct http_conn *c, struct http_req *r); /* parsed: await dispatch */
void http_req_set_pre(struct http_req *r, int status); /* answer status without a handler */

/* conn.c */
static inline uint64_t http_conn_now_ms(const struct http_conn *c)
{
    return uv_now(c->srv->loop);
}
void http_conn_abort(struct http_conn *c);
void http_conn_free(struct http_conn *c); /* free a connection whose handles are closed */
void http_conn_request_done(struct http_conn *c, struct http_req *req, bool close_after);
int http_conn_write(struct http_conn *c, char *buf, size_t len);     /* takes ownership of buf */
int http_conn_write_raw(struct http_conn *c, char *buf, size_t len); /* to the socket as is */
/* Bytes that arrived (plaintext, after TLS): parse them and process what they complete. */
void http_conn_feed(struct http_conn *c, const char *data, size_t len);
/* The client's stream ended (eof) or broke: finish draining or abort. */
void http_conn_read_end(struct http_conn *c, bool eof);
size_t http_conn_write_queue(const struct http_conn *c);
void http_conn_defer_abort(struct http_conn *c);
/* probe_only: accepted from the probe reserve (loopback peers only, else refused). */
int http_conn_accept(struct http_server *srv, bool probe_only);
void http_req_free(struct http_req *req);

/* request.c */
void http_conn_peer(const struct http_conn *c, char *buf, size_t len); /* "ip:port" */
int http_req_reply_raw(struct http_req *req, int status, const char *content_type, const void *body,
                       size_t len);
const char *http_status_text(int status);

/* server.c */
void http_server_handle_closed(struct http_server *srv);
/* One non-blocking write of the "503 too_many_connections" answer (best effort; nothing on
 * an HTTPS server, where a plaintext answer would only read as a broken handshake). */
void http_server_reject_write(const struct http_server *srv, uv_stream_t *s);

/* https.c: the TLS layer of socket connections on an HTTPS server, reached through the
 * server's tls_ops (set by http_server_tls()), so that a program without HTTPS links none of
 * it. */
struct http_tls_ops {
    int (*accept)(struct http_conn *c);                              /* 0 or HTTP_ENOMEM */
    void (*read)(struct http_conn *c, const char *data, size_t len); /* ciphertext read */
    int (*write)(struct http_conn *c, char *buf, size_t len);        /* takes ownership */
    void (*close_notify)(struct http_conn *c); /* before the shutdown of the last answer */
    void (*release)(struct http_conn *c);      /* frees the session and the peer's name */
};

#endif
