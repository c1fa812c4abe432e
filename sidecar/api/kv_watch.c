/* kv_watch.c — following KV changes: GET /v1/kv/{key} and GET /v1/kv?prefix= with ?watch=true
 * (a server-sent event per change, id = its revision, resumed with Last-Event-ID) or ?wait= (a
 * long poll answered with the changes after ?from=). A watch serves this member's own state: a
 * follower's as far as it has applied. Changes come from the store's history (store.h): a
 * watcher first catches up from it, paced by its connection's write queue, then hears each
 * applied change from watch.c's observer as it happens. What a stream is sent is gathered and
 * written once per turn of the loop (an idle handle), so that a batch of changes costs one
 * write per stream, not one per change: with a thousand streams, the writes are what limits
 * the changes a second a member can follow. A stream whose client does not read fast enough
 * is cut off with a last event naming the revision it reached. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_int.h"

#define WATCH_PAGE         16   /* changes read from the history per round of a catch-up */
#define WATCH_ROUNDS       64   /* rounds of a catch-up per call; the timer continues it */
#define WATCH_POLL_LIMIT   1000 /* changes one long-poll answer carries at most */
#define WATCH_FINAL_BYTES  512  /* write-queue room kept for the last event of a stream */
#define WATCH_KEEPALIVE_MS 15000
#define WATCH_PEND_KEEP    16384 /* a stream's flush buffer larger than this is freed once used */
#define WATCH_POLL_MAX_MS  (5 * 60 * 1000) /* ?wait= is capped here */
#define WATCH_DEFAULT_MAX  1024            /* --max-watchers when there is no configuration */

struct kv_watcher {
    struct kv_watcher *next, *prev;
    sidecar_api_t *api;
    http_req_t *req;
    bool stream; /* server-sent events; else a long poll */
    bool prefix; /* key is a prefix */
    bool dead;   /* the connection is closing: its cancel callback follows */
    char *key;   /* key_len bytes, NUL-terminated */
    size_t key_len;
    uint64_t pos; /* every change up to this revision that matches has been sent (or queued) */
    char *pend;   /* events queued for the next flush (bounded by the stream's room) */
    size_t pend_len, pend_cap;
    uint64_t deadline_ms;
    uint64_t last_sent_ms;
};

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static store_t *store_of(const sidecar_api_t *api)
{
    return sidecar_node_store(api->node);
}

static void unlink_watcher(struct kv_watcher *w)
{
    struct api_kv_watch *kw = &w->api->kv_watch;
    if (w->prev)
        w->prev->next = w->next;
    else
        kw->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    kw->n--;
    free(w->pend);
    free(w->key);
    free(w);
}

/* Writes what w has queued, in one write. */
static void flush_one(struct kv_watcher *w)
{
    if (w->pend_len == 0)
        return;
    if (!w->dead && http_req_stream_write(w->req, w->pend, w->pend_len) != 0)
        w->dead = true; /* closing: the cancel callback follows */
    w->pend_len = 0;
    if (w->pend_cap > WATCH_PEND_KEEP) { /* a burst's: not kept for the stream's life */
        free(w->pend);
        w->pend = NULL;
        w->pend_cap = 0;
    }
}

static void flush_cb(uv_idle_t *h)
{
    sidecar_api_t *api = h->data;
    uv_idle_stop(h);
    for (struct kv_watcher *w = api->kv_watch.list; w != NULL; w = w->next)
        flush_one(w);
}

void api_kv_watch_open(sidecar_api_t *api, uv_loop_t *loop)
{
    uv_idle_init(loop, &api->kv_watch.flush);
    api->kv_watch.flush.data = api;
}

static void cancel_cb(http_req_t *req, void *data)
{
    (void)req;
    unlink_watcher(data);
}

static bool matches(const struct kv_watcher *w, const char *key, size_t len)
{
    if (w->prefix)
        return len >= w->key_len && memcmp(key, w->key, w->key_len) == 0;
    return len == w->key_len && memcmp(key, w->key, len) == 0;
}

/* The revision this member reflects, on every answer. */
static void add_revision_header(sidecar_api_t *api, http_req_t *req)
{
    char rev[24];
    snprintf(rev, sizeof(rev), "%" PRIu64, store_applied_index(store_of(api)));
    http_req_header_add(req, "X-Electd-Revision", rev);
}

/* {"key", "value" (puts), "mod_revision"}: one change as a watch shows it. */
static cJSON *change_json(const char *key, size_t key_len, const uint8_t *value, size_t value_len,
                          bool deleted, uint64_t revision)
{
    cJSON *o = cJSON_CreateObject();
    api_json_bytes(o, "key", (const uint8_t *)key, key_len);
    if (!deleted)
        api_json_bytes(o, "value", value, value_len);
    api_json_u64(o, "mod_revision", revision);
    return o;
}

/* The server-sent event of one change, malloc'd; NULL when out of memory. */
static char *sse_event(const cJSON *change, bool deleted, uint64_t revision, size_t *len)
{
    char *json = cJSON_PrintUnformatted(change);
    if (json == NULL)
        return NULL;
    size_t cap = strlen(json) + 64;
    char *buf = malloc(cap);
    if (buf != NULL)
        *len = (size_t)snprintf(buf, cap, "event: %s\nid: %" PRIu64 "\ndata: %s\n\n",
                                deleted ? "delete" : "put", revision, json);
    free(json);
    return buf;
}

/* Ends a stream with a last event (kind, the revision reached, why) that the room kept for it
 * holds. */
static void end_stream(struct kv_watcher *w, const char *event, const char *reason)
{
    char buf[WATCH_FINAL_BYTES];
    uint64_t oldest = store_history_from(store_of(w->api));
    int n =
        snprintf(buf, sizeof(buf),
                 "event: %s\nid: %" PRIu64 "\ndata: {\"reason\":\"%s\",\"last_revision\":%" PRIu64
                 ",\"oldest_revision\":%" PRIu64 "}\n\n",
                 event, w->pos, reason, w->pos, oldest);
    flush_one(w);
    if (w->dead) {
        http_req_on_cancel(w->req, NULL, NULL); /* the connection is closing by itself */
    } else {
        http_req_stream_write(w->req, buf, (size_t)n);
        http_req_stream_end(w->req);
    }
    unlink_watcher(w); /* ended: no cancel callback follows */
}

/* Queues one event on a stream (written at the loop's next turn) unless that would leave less
 * room than the last event needs. Returns false when it did not fit (nothing queued). */
static bool try_send(struct kv_watcher *w, const char *buf, size_t len)
{
    if (w->dead || http_req_stream_room(w->req) < w->pend_len + len + WATCH_FINAL_BYTES)
        return false;
    if (w->pend_len + len > w->pend_cap) {
        size_t cap = 2 * w->pend_cap > w->pend_len + len ? 2 * w->pend_cap : w->pend_len + len;
        char *p = realloc(w->pend, cap);
        if (p == NULL) { /* out of memory: what is queued, then this, unbatched */
            flush_one(w);
            if (!w->dead && http_req_stream_write(w->req, buf, len) != 0)
                w->dead = true;
            w->last_sent_ms = now_ms();
            return true;
        }
        w->pend = p;
        w->pend_cap = cap;
    }
    memcpy(w->pend + w->pend_len, buf, len);
    w->pend_len += len;
    w->last_sent_ms = now_ms();
    uv_idle_start(&w->api->kv_watch.flush, flush_cb);
    return true;
}

/* Catches a stream up from the history, as far as its write queue allows: the rest on the
 * timer's next turn. Ends it when the history no longer reaches back to it. Returns false when
 * w has been ended (and freed). */
static bool pump(struct kv_watcher *w)
{
    store_t *st = store_of(w->api);
    for (int round = 0; round < WATCH_ROUNDS && !w->dead; round++) {
        uint64_t applied = store_applied_index(st);
        if (w->pos >= applied)
            return true;
        if (w->pos < store_history_from(st)) {
            end_stream(w, "compacted", "compacted");
            return false;
        }
        store_change_t *c = NULL;
        size_t n = 0, i = 0;
        bool more = false;
        if (store_history_read(st, w->pos, w->key, w->key_len, w->prefix, WATCH_PAGE, &c, &n,
                               &more) != 0) {
            end_stream(w, "error", "store_error");
            return false;
        }
        for (; i < n; i++) {
            cJSON *o = change_json(c[i].key, c[i].key_len, c[i].value, c[i].value_len, c[i].deleted,
                                   c[i].revision);
            size_t len = 0;
            char *ev = sse_event(o, c[i].deleted, c[i].revision, &len);
            cJSON_Delete(o);
            bool sent = ev != NULL && try_send(w, ev, len);
            free(ev);
            if (!sent)
                break;
            w->pos = c[i].revision;
        }
        store_history_free(c, n);
        if (i < n)
            return true; /* no room: the timer resumes it */
        if (!more)
            w->pos = applied;
    }
    return true;
}

/* Answers a long poll with the changes after its position (none when it waited in vain). */
static void reply_poll(struct kv_watcher *w)
{
    sidecar_api_t *api = w->api;
    store_t *st = store_of(api);
    uint64_t applied = store_applied_index(st);
    store_change_t *c = NULL;
    size_t n = 0;
    bool more = false;
    int rv = store_history_read(st, w->pos, w->key, w->key_len, w->prefix, WATCH_POLL_LIMIT, &c, &n,
                                &more);
    if (rv != 0) {
        if (rv == STORE_ECHECKSUM)
            api_reply_corrupt(api, w->req);
        else
            http_req_reply_error(w->req, 500, "store_error", store_strerror(rv));
        unlink_watcher(w);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    api_json_u64(o, "revision", applied);
    cJSON *arr = cJSON_AddArrayToObject(o, "events");
    for (size_t i = 0; i < n; i++) {
        cJSON *e = change_json(c[i].key, c[i].key_len, c[i].value, c[i].value_len, c[i].deleted,
                               c[i].revision);
        cJSON_AddStringToObject(e, "type", c[i].deleted ? "delete" : "put");
        cJSON_AddItemToArray(arr, e);
    }
    uint64_t last = more ? c[n - 1].revision : (w->pos > applied ? w->pos : applied);
    api_json_u64(o, "last_revision", last);
    cJSON_AddBoolToObject(o, "more", more);
    store_history_free(c, n);
    add_revision_header(api, w->req);
    http_req_reply_json(w->req, 200, o);
    cJSON_Delete(o);
    unlink_watcher(w); /* answered: no cancel callback follows */
}

static void reply_compacted(sidecar_api_t *api, http_req_t *req, uint64_t from)
{
    store_t *st = store_of(api);
    char msg[200];
    snprintf(msg, sizeof(msg),
             "the changes after revision %" PRIu64 " are no longer all kept here (only those "
             "after %" PRIu64 "): read the current value and watch from its revision",
             from, store_history_from(st));
    cJSON *o = cJSON_CreateObject();
    cJSON *err = cJSON_AddObjectToObject(o, "error");
    cJSON_AddStringToObject(err, "code", "compacted");
    cJSON_AddStringToObject(err, "message", msg);
    api_json_u64(err, "oldest_revision", store_history_from(st));
    api_json_u64(err, "revision", store_applied_index(st));
    add_revision_header(api, req);
    http_req_reply_json(req, 410, o);
    cJSON_Delete(o);
}

/* The revision to follow from: Last-Event-ID (a stream's reconnect), else ?from=, else the
 * applied index. False when req has been answered (malformed). */
static bool start_revision(sidecar_api_t *api, http_req_t *req, bool stream, uint64_t *from)
{
    const char *s = stream ? http_req_header(req, "Last-Event-ID") : NULL;
    if (s == NULL)
        s = http_req_query(req, "from");
    if (s == NULL) {
        *from = store_applied_index(store_of(api));
        return true;
    }
    if (sidecar_parse_count(s, from) == 0)
        return true;
    http_req_reply_error(req, 400, "bad_request",
                         "from (and Last-Event-ID) must be a revision: a whole number");
    return false;
}

static struct kv_watcher *add_watcher(sidecar_api_t *api, http_req_t *req, const char *key,
                                      bool prefix, bool stream, uint64_t from)
{
    struct kv_watcher *w = calloc(1, sizeof(*w));
    size_t len = strlen(key);
    if (w == NULL || (w->key = malloc(len + 1)) == NULL) {
        free(w);
        return NULL;
    }
    memcpy(w->key, key, len + 1);
    w->key_len = len;
    w->api = api;
    w->req = req;
    w->prefix = prefix;
    w->stream = stream;
    w->pos = from;
    w->last_sent_ms = now_ms();
    api_watch_tick_start(api);
    struct api_kv_watch *kw = &api->kv_watch;
    w->next = kw->list;
    if (kw->list)
        kw->list->prev = w;
    kw->list = w;
    kw->n++;
    http_req_on_cancel(req, cancel_cb, w);
    return w;
}

/* Checks the request; false when it has been answered. */
static bool watch_args(http_req_t *req, bool prefix, const char **key, bool *stream, int64_t *ms)
{
    const char *watch = http_req_query(req, "watch");
    const char *wait = http_req_query(req, "wait");
    *key = prefix ? http_req_query(req, "prefix") : http_req_param(req, "key");
    if (*key == NULL)
        *key = "";
    *stream = watch != NULL && strcmp(watch, "false") != 0;
    *ms = wait != NULL ? api_parse_wait(wait) : 0;
    if (watch != NULL && strcmp(watch, "true") != 0 && strcmp(watch, "") != 0) {
        http_req_reply_error(req, 400, "bad_request", "watch must be true");
        return false;
    }
    if (*stream && wait != NULL) {
        http_req_reply_error(req, 400, "bad_request",
                             "watch=true streams; wait= is a long poll: give one of them");
        return false;
    }
    if (*ms < 0) {
        http_req_reply_error(req, 400, "bad_request", "wait must be a duration (500ms, 30s)");
        return false;
    }
    if (strlen(*key) > STORE_KEY_MAX) {
        http_req_reply_error(req, 400, "invalid_key", "keys are at most 512 bytes");
        return false;
    }
    if (*ms > WATCH_POLL_MAX_MS)
        *ms = WATCH_POLL_MAX_MS;
    return true;
}

void api_kv_watch(sidecar_api_t *api, http_req_t *req, bool prefix)
{
    const char *key;
    bool stream;
    int64_t ms;
    uint64_t from;
    if (!watch_args(req, prefix, &key, &stream, &ms) || !start_revision(api, req, stream, &from))
        return;
    store_t *st = store_of(api);
    if (from < store_history_from(st)) {
        reply_compacted(api, req, from);
        return;
    }
    uint32_t max = api->cfg ? api->cfg->max_watchers : WATCH_DEFAULT_MAX;
    if (api->kv_watch.n >= max) {
        http_req_header_add(req, "Retry-After", "1");
        http_req_reply_error(req, 503, "too_many_watchers",
                             "this member serves --max-watchers watches already; retry, or "
                             "watch on another member");
        return;
    }
    if (stream) {
        add_revision_header(api, req);
        http_req_header_add(req, "Cache-Control", "no-cache");
        if (http_req_stream_start(req, 200, "text/event-stream") != 0)
            return;
    }
    struct kv_watcher *w = add_watcher(api, req, key, prefix, stream, from);
    if (w == NULL) {
        if (stream)
            http_req_stream_end(req);
        else
            http_req_reply_error(req, 503, "busy", "out of memory");
        return;
    }
    if (stream) {
        pump(w);
        return;
    }
    w->deadline_ms = now_ms() + (uint64_t)ms;
    /* Answered at once when a change is there already (or no wait was asked for). */
    store_change_t *c = NULL;
    size_t n = 0;
    bool more = false;
    int rv = store_history_read(st, from, key, strlen(key), prefix, 1, &c, &n, &more);
    store_history_free(c, n);
    if (rv != 0 || n > 0 || ms == 0)
        reply_poll(w);
    else
        w->pos = from > store_applied_index(st) ? from : store_applied_index(st);
}

/* One applied entry: every watcher that had seen everything before it hears of it (a change
 * that matches) or moves past it. The others catch up from the history on the timer. */
void api_kv_watch_applied(sidecar_api_t *api, const raft_entry_t *e, const store_result_t *res)
{
    struct api_kv_watch *kw = &api->kv_watch;
    if (kw->list == NULL)
        return;
    store_cmd_t cmd;
    bool change = e->type == RAFT_ENTRY_NORMAL && res->status == STORE_APPLIED_OK &&
                  (res->op == STORE_CMD_PUT || res->op == STORE_CMD_DEL) &&
                  store_cmd_decode(e->data, e->len, &cmd) == 0;
    char *ev = NULL; /* the event, made for the first stream that wants it */
    size_t len = 0;
    bool deleted = change && cmd.op == STORE_CMD_DEL;
    for (struct kv_watcher *w = kw->list, *next; w != NULL; w = next) {
        next = w->next;
        if (w->dead || w->pos + 1 != e->index)
            continue; /* ahead of it, or behind: the catch-up covers it */
        if (!change || !matches(w, cmd.key, cmd.key_len)) {
            w->pos = e->index;
            continue;
        }
        if (!w->stream) {
            reply_poll(w);
            continue;
        }
        if (ev == NULL) {
            /* The command's key and value are not NUL-terminated: copies for the JSON. */
            char *key = strndup(cmd.key, cmd.key_len);
            uint8_t *value = malloc(cmd.value_len + 1);
            if (key != NULL && value != NULL) {
                if (cmd.value_len)
                    memcpy(value, cmd.value, cmd.value_len);
                value[cmd.value_len] = 0;
                cJSON *o = change_json(key, cmd.key_len, value, cmd.value_len, deleted, e->index);
                ev = sse_event(o, deleted, e->index, &len);
                cJSON_Delete(o);
            }
            free(key);
            free(value);
            if (ev == NULL)
                continue; /* out of memory: it catches up from the history later */
        }
        if (try_send(w, ev, len)) {
            w->pos = e->index;
        } else {
            kw->cutoffs++;
            end_stream(w, "cutoff", "slow_reader");
        }
    }
    free(ev);
}

void api_kv_watch_tick(sidecar_api_t *api)
{
    uint64_t now = now_ms();
    store_t *st = store_of(api);
    for (struct kv_watcher *w = api->kv_watch.list, *next; w != NULL; w = next) {
        next = w->next;
        if (w->dead)
            continue;
        if (!w->stream) {
            if (w->pos < store_history_from(st)) {
                /* A snapshot installed replaced the state: the changes are not known here. */
                reply_compacted(api, w->req, w->pos);
                unlink_watcher(w);
            } else if (now >= w->deadline_ms) {
                reply_poll(w);
            }
            continue;
        }
        if (!pump(w) || w->pos < store_applied_index(st) ||
            now - w->last_sent_ms < WATCH_KEEPALIVE_MS)
            continue;
        /* A comment keeps proxies from closing an idle stream; the id moves the client's
         * Last-Event-ID past changes it did not want, so that a reconnect resumes from here. */
        char buf[64];
        int n = snprintf(buf, sizeof(buf), ": keepalive\nid: %" PRIu64 "\n\n", w->pos);
        try_send(w, buf, (size_t)n);
    }
}

void api_kv_watch_close(sidecar_api_t *api)
{
    while (api->kv_watch.list != NULL) {
        struct kv_watcher *w = api->kv_watch.list;
        if (w->stream)
            end_stream(w, "closed", "shutting_down");
        else
            reply_poll(w);
    }
}
