/* transport_notice.c — the released-lease notice (docs/guarantees.md, "Released lease on
 * process death"), both halves:
 *
 *  - in electd: the notice kit, a file of mode 0600 in the data directory (node.h,
 *    SIDECAR_NOTICE_KIT) holding what the shim needs to speak as this member: its id, the
 *    cluster id, the instance id, the cluster token, the HELLO's text, the peer TLS files and
 *    the members' addresses. The transport rewrites it (write, then rename) whenever a member
 *    is set or removed, so that it always names the membership in force;
 *  - in the shim, once electd has died and the workload's process group is gone: one blocking
 *    connection per member, each in its own forked process so that a dead or frozen member
 *    delays nobody, running the member's own handshake (transport_hello_build), over TLS when
 *    peer TLS is configured, then one RAFT_MSG_RELEASED frame, then a clean close.
 *
 * Kit format, one setting per line, "KEY VALUE" (the token in hex: it may hold any byte):
 *   electd-notice-kit 1 | from ID | cluster ID | instance HEX32 | token HEX | hello TEXT |
 *   cert PATH | key PATH | ca PATH | check-name 0|1 | peer ID PORT HOST NAME
 * Nothing of it ever reaches argv or an environment. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bytes.h"
#include "transport_int.h"

#define KIT_MAX_BYTES  (64u << 10)
#define KIT_VERSION    "electd-notice-kit 1"
#define NOTICE_CONN_MS 100 /* connecting to one address of a member */
#define PATH_MAX_BYTES 4096

/* ---- electd: writing the kit -------------------------------------------------------------- */

static void hex_put(FILE *f, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%02x", b[i]);
}

/* A path fits on one line of the kit. */
static bool path_ok(const char *p)
{
    return p == NULL || (strchr(p, '\n') == NULL && strlen(p) < PATH_MAX_BYTES);
}

int transport_notice_open(struct sidecar_transport *t, const sidecar_transport_config_t *cfg)
{
    const char *files[3] = {cfg->tls_cert_file, cfg->tls_key_file, cfg->tls_ca_file};
    if (cfg->notice_kit_path == NULL)
        return 0;
    for (size_t i = 0; i < 3; i++)
        if (!path_ok(files[i]))
            return SIDECAR_TRANSPORT_EINVAL;
    size_t len = strlen(cfg->notice_kit_path);
    char *path = malloc(len + 1), *tls = NULL;
    size_t tls_len = 0;
    FILE *f = open_memstream(&tls, &tls_len);
    if (path == NULL || f == NULL) {
        free(path);
        if (f != NULL)
            fclose(f);
        free(tls);
        return SIDECAR_TRANSPORT_ENOMEM;
    }
    memcpy(path, cfg->notice_kit_path, len + 1);
    static const char *const keys[3] = {"cert", "key", "ca"};
    for (size_t i = 0; i < 3; i++)
        if (files[i] != NULL)
            fprintf(f, "%s %s\n", keys[i], files[i]);
    fprintf(f, "check-name %d\n", cfg->tls_check_name ? 1 : 0);
    fclose(f);
    t->kit_path = path;
    t->kit_tls = tls;
    return 0;
}

void transport_notice_close(struct sidecar_transport *t)
{
    free(t->kit_path);
    free(t->kit_tls);
    t->kit_path = t->kit_tls = NULL;
}

static void kit_print(const struct sidecar_transport *t, FILE *f)
{
    fprintf(f, "%s\nfrom %" PRIu64 "\ncluster %" PRIu64 "\ninstance ", KIT_VERSION, t->cfg.self_id,
            t->cfg.cluster_id);
    hex_put(f, t->instance, INSTANCE_LEN);
    fprintf(f, "\ntoken ");
    hex_put(f, (const uint8_t *)t->token, t->token_len);
    fprintf(f, "\nhello %.*s\n%s", (int)t->http_len, t->http, t->kit_tls);
    for (size_t i = 0; i < t->n_peers; i++) {
        const struct peer *p = t->peers[i];
        if (p->member && !p->removed)
            fprintf(f, "peer %" PRIu64 " %u %s %s\n", p->id, (unsigned)p->port, p->host,
                    p->name[0] ? p->name : "-");
    }
}

void transport_notice_save(struct sidecar_transport *t)
{
    if (t->kit_path == NULL || t->closing)
        return;
    char tmp[PATH_MAX_BYTES + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp", t->kit_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FILE *f = fd >= 0 && fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
    bool ok = f != NULL;
    if (ok) {
        kit_print(t, f);
        ok = !ferror(f);
        ok = fclose(f) == 0 && ok;
    } else if (fd >= 0) {
        close(fd);
    }
    if (ok && rename(tmp, t->kit_path) == 0)
        return;
    SIDECAR_LOG(SIDECAR_LOG_WARN,
                "cannot write the notice kit: a released lease will not be announced if this "
                "process dies",
                SIDECAR_LOG_STR("path", t->kit_path), SIDECAR_LOG_STR("error", strerror(errno)));
    unlink(tmp);
}

/* ---- the shim: reading the kit ------------------------------------------------------------ */

typedef struct kit_peer {
    uint64_t id;
    char port[8];
    char host[SIDECAR_TRANSPORT_HOST_MAX];
    char name[SIDECAR_TRANSPORT_NAME_MAX];
} kit_peer_t;

typedef struct kit {
    uint64_t from, cluster_id;
    uint8_t instance[INSTANCE_LEN];
    char token[TOKEN_MAX];
    size_t token_len;
    char text[HTTP_ADDR_MAX + 1];
    char cert[PATH_MAX_BYTES], key[PATH_MAX_BYTES], ca[PATH_MAX_BYTES];
    bool check_name;
    kit_peer_t peers[MAX_PEERS];
    size_t n_peers;
} kit_t;

static bool hex_get(const char *s, uint8_t *out, size_t cap, size_t *n)
{
    size_t len = strlen(s);
    if (len % 2 != 0 || len / 2 > cap)
        return false;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return false;
        out[i] = (uint8_t)v;
    }
    *n = len / 2;
    return true;
}

static bool copy_to(char *dst, size_t cap, const char *v)
{
    return snprintf(dst, cap, "%s", v) < (int)cap;
}

static bool kit_peer_parse(kit_t *k, const char *v)
{
    if (k->n_peers == MAX_PEERS)
        return false;
    kit_peer_t *p = &k->peers[k->n_peers];
    unsigned port;
    char host[SIDECAR_TRANSPORT_HOST_MAX], name[SIDECAR_TRANSPORT_NAME_MAX];
    if (sscanf(v, "%" SCNu64 " %u %255s %63s", &p->id, &port, host, name) != 4 || port == 0 ||
        port > 65535 || !copy_to(p->host, sizeof(p->host), host))
        return false;
    snprintf(p->port, sizeof(p->port), "%u", port);
    snprintf(p->name, sizeof(p->name), "%s", strcmp(name, "-") == 0 ? "" : name);
    k->n_peers++;
    return true;
}

static bool kit_line(kit_t *k, const char *key, const char *v)
{
    size_t n = 0;
    if (strcmp(key, "from") == 0)
        return sscanf(v, "%" SCNu64, &k->from) == 1;
    if (strcmp(key, "cluster") == 0)
        return sscanf(v, "%" SCNu64, &k->cluster_id) == 1;
    if (strcmp(key, "instance") == 0)
        return hex_get(v, k->instance, INSTANCE_LEN, &n) && n == INSTANCE_LEN;
    if (strcmp(key, "token") == 0)
        return hex_get(v, (uint8_t *)k->token, TOKEN_MAX - 1, &k->token_len);
    if (strcmp(key, "hello") == 0)
        return copy_to(k->text, sizeof(k->text), v);
    if (strcmp(key, "cert") == 0)
        return copy_to(k->cert, sizeof(k->cert), v);
    if (strcmp(key, "key") == 0)
        return copy_to(k->key, sizeof(k->key), v);
    if (strcmp(key, "ca") == 0)
        return copy_to(k->ca, sizeof(k->ca), v);
    if (strcmp(key, "check-name") == 0)
        return (k->check_name = strcmp(v, "1") == 0) || strcmp(v, "0") == 0;
    if (strcmp(key, "peer") == 0)
        return kit_peer_parse(k, v);
    return true; /* a later electd's setting: not ours to use */
}

/* Reads and checks the kit; false with why set. */
static bool kit_load(const char *path, kit_t *k, char *why, size_t why_len)
{
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
        return false;
    }
    char *line = NULL;
    size_t cap = 0, total = 0, lineno = 0;
    ssize_t len;
    bool ok = true;
    memset(k, 0, sizeof(*k));
    while (ok && (len = getline(&line, &cap, f)) > 0 && (total += (size_t)len) <= KIT_MAX_BYTES) {
        line[strcspn(line, "\n")] = '\0';
        char *sp = strchr(line, ' ');
        if (lineno++ == 0) {
            ok = strcmp(line, KIT_VERSION) == 0;
        } else if (sp != NULL) {
            *sp = '\0';
            ok = kit_line(k, line, sp + 1);
        }
    }
    free(line);
    fclose(f);
    ok = ok && total <= KIT_MAX_BYTES && k->from != 0 && k->text[0] != '\0';
    if (!ok)
        snprintf(why, why_len, "%s is not a notice kit of this electd (line %zu)", path, lineno);
    return ok;
}

/* ---- the shim: one member ----------------------------------------------------------------- */

/* A blocking-style connection on a non-blocking socket, every wait bounded by deadline_ms. */
typedef struct nconn {
    int fd;
    tls_session_t *tls; /* NULL on plain TCP */
    uint64_t deadline_ms;
    char why[TLS_ERROR_TEXT_MAX + 64];
} nconn_t;

static uint64_t mono_ms(void)
{
    return sidecar_clock_boot_ns() / 1000000u;
}

/* Waits until fd has events or the deadline passes: true when ready. */
static bool fd_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline_ms)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, (int)(deadline_ms - now));
        if (n > 0)
            return true;
        if (n < 0 && errno != EINTR)
            return false;
    }
}

/* Connects to one address within its share of the time; the socket or -1. */
static int connect_addr(const struct addrinfo *ai, uint64_t until_ms)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    int err = 0;
    socklen_t len = sizeof(err);
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno == EINPROGRESS && fd_wait(fd, POLLOUT, until_ms) &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0)
        return fd;
    close(fd);
    return -1;
}

/* Every address the member's host resolves to, each for at most NOTICE_CONN_MS. */
static bool member_connect(nconn_t *c, const kit_peer_t *p)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    int rv = getaddrinfo(p->host, p->port, &hints, &res);
    if (rv != 0) {
        snprintf(c->why, sizeof(c->why), "cannot resolve %s: %s", p->host, gai_strerror(rv));
        return false;
    }
    c->fd = -1;
    for (struct addrinfo *ai = res; ai != NULL && c->fd < 0; ai = ai->ai_next) {
        uint64_t until = mono_ms() + NOTICE_CONN_MS;
        c->fd = connect_addr(ai, until < c->deadline_ms ? until : c->deadline_ms);
    }
    freeaddrinfo(res);
    if (c->fd < 0)
        snprintf(c->why, sizeof(c->why), "cannot connect to %s:%s", p->host, p->port);
    return c->fd >= 0;
}

static bool fail(nconn_t *c, const char *why)
{
    snprintf(c->why, sizeof(c->why), "%s", why);
    return false;
}

static bool raw_send(nconn_t *c, const uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, b, n, MSG_NOSIGNAL);
        if (w > 0) {
            b += w;
            n -= (size_t)w;
        } else if (w < 0 && errno != EINTR &&
                   (errno != EAGAIN || !fd_wait(c->fd, POLLOUT, c->deadline_ms))) {
            return fail(c, errno == EAGAIN ? "timed out sending" : strerror(errno));
        }
    }
    return true;
}

/* One read from the socket; *n 0 at EOF. */
static bool raw_recv(nconn_t *c, uint8_t *b, size_t cap, size_t *n)
{
    for (;;) {
        ssize_t r = recv(c->fd, b, cap, 0);
        if (r >= 0) {
            *n = (size_t)r;
            return true;
        }
        if (errno != EINTR && (errno != EAGAIN || !fd_wait(c->fd, POLLIN, c->deadline_ms)))
            return fail(c, errno == EAGAIN ? "timed out waiting for the member" : strerror(errno));
    }
}

/* Sends what the TLS session has waiting. */
static bool tls_out(nconn_t *c)
{
    uint8_t b[4096];
    size_t n;
    while ((n = tls_session_out_read(c->tls, b, sizeof(b))) > 0)
        if (!raw_send(c, b, n))
            return false;
    return true;
}

/* Ciphertext from the socket into the session; false at EOF or on failure. */
static bool tls_in(nconn_t *c)
{
    uint8_t b[4096];
    size_t n = 0, used = 0;
    if (!raw_recv(c, b, sizeof(b), &n))
        return false;
    if (n == 0)
        return fail(c, "closed by the member");
    for (size_t off = 0; off < n; off += used)
        if (tls_session_feed(c->tls, b + off, n - off, &used) != 0)
            return fail(c, tls_session_error(c->tls));
    return true;
}

static bool tls_start(nconn_t *c, tls_ctx_t *ctx, const kit_t *k, const kit_peer_t *p)
{
    if (tls_session_open(ctx, NULL, &c->tls) != 0)
        return fail(c, "out of memory");
    for (;;) {
        if (!tls_out(c))
            return false;
        int hs = tls_session_handshake(c->tls);
        if (hs < 0) {
            (void)tls_out(c); /* our alert */
            return fail(c, tls_session_error(c->tls));
        }
        if (hs == 1)
            break;
        if (!tls_in(c))
            return false;
    }
    if (k->check_name && !tls_session_peer_matches(c->tls, p->name))
        return fail(c, "its TLS certificate does not name the member");
    return tls_out(c);
}

static bool conn_write(nconn_t *c, const uint8_t *b, size_t n)
{
    if (c->tls == NULL)
        return raw_send(c, b, n);
    if (tls_session_write(c->tls, b, n) != 0)
        return fail(c, tls_session_error(c->tls));
    return tls_out(c);
}

/* Exactly n bytes of plaintext. */
static bool conn_read(nconn_t *c, uint8_t *b, size_t n)
{
    size_t got = 0, k = 0;
    while (got < n) {
        if (c->tls == NULL) {
            if (!raw_recv(c, b + got, n - got, &k))
                return false;
            if (k == 0)
                return fail(c, "closed by the member");
        } else {
            int rc = tls_session_read(c->tls, b + got, n - got, &k);
            if (rc < 0 || !tls_out(c))
                return fail(c, rc < 0 ? tls_session_error(c->tls) : c->why);
            if (k == 0 && !tls_in(c))
                return false;
        }
        got += k;
    }
    return true;
}

/* The end: our side closed (close_notify under TLS), then the member's EOF, which comes once
 * it has read everything we sent. */
static bool conn_finish(nconn_t *c)
{
    if (c->tls != NULL) {
        tls_session_shutdown(c->tls);
        if (!tls_out(c))
            return false;
    }
    shutdown(c->fd, SHUT_WR);
    uint8_t sink[256];
    for (size_t n = 1; n > 0;)
        if (!raw_recv(c, sink, sizeof(sink), &n))
            return false;
    return true;
}

/* CHALLENGE, HELLO, VERDICT, the frame, the close: true when the member took it. */
static bool notice_one(nconn_t *c, const kit_t *k, const kit_peer_t *p, tls_ctx_t *ctx,
                       uint64_t term)
{
    uint8_t ch[CHALLENGE_LEN], v[VERDICT_LEN], hello[HELLO_MAX];
    if (!member_connect(c, p) || (ctx != NULL && !tls_start(c, ctx, k, p)) ||
        !conn_read(c, ch, sizeof(ch)))
        return false;
    if (memcmp(ch, "ELCH", 4) != 0 || base_le_load16(ch + 4) != SIDECAR_TRANSPORT_VERSION)
        return fail(c, "bad challenge (not an electd peer port, or another version)");
    transport_hello_t h = {.cluster_id = k->cluster_id,
                           .from = k->from,
                           .instance = k->instance,
                           .token = k->token,
                           .token_len = k->token_len,
                           .text = k->text,
                           .text_len = strlen(k->text)};
    size_t len = transport_hello_build(hello, &h, ch + 6, p->id);
    if (!conn_write(c, hello, len) || !conn_read(c, v, sizeof(v)))
        return false;
    if (memcmp(v, "ELOK", 4) != 0)
        return fail(c, memcmp(v, "ELNO", 4) == 0 ? transport_refuse_text(v[4]) : "garbage");
    raft_msg_t m = {.type = RAFT_MSG_RELEASED, .from = k->from, .to = p->id, .term = term};
    uint8_t frame[256];
    size_t flen = 0;
    if (raft_msg_encode(&m, frame, sizeof(frame), &flen) != 0)
        return fail(c, "the notice does not encode");
    return conn_write(c, frame, flen) && conn_finish(c);
}

/* In a forked process: one member, one line, exit 0 when it took the notice. */
static void notice_child(const kit_t *k, const kit_peer_t *p, tls_ctx_t *ctx, uint64_t term,
                         uint64_t deadline_ms, sidecar_notice_say_fn say)
{
    nconn_t c = {.fd = -1, .deadline_ms = deadline_ms};
    bool ok = notice_one(&c, k, p, ctx, term);
    char line[1024]; /* names, host and reason: up to 809 bytes */
    if (ok)
        snprintf(line, sizeof(line),
                 "released-lease notice sent: member %s (id %016" PRIx64 ") at %s:%s, term %" PRIu64
                 "%s",
                 p->name, p->id, p->host, p->port, term, ctx != NULL ? ", over TLS" : "");
    else
        snprintf(line, sizeof(line),
                 "released-lease notice not delivered: member %s (id %016" PRIx64
                 ") at %s:%s, term %" PRIu64 ": %s",
                 p->name, p->id, p->host, p->port, term, c.why);
    say(line);
    _exit(ok ? 0 : 1);
}

static tls_ctx_t *tls_client(const kit_t *k, sidecar_notice_say_fn say)
{
    tls_config_t tc = {
        .role = TLS_ROLE_CLIENT, .cert_file = k->cert, .key_file = k->key, .ca_file = k->ca};
    tls_ctx_t *ctx = NULL;
    char err[TLS_ERROR_TEXT_MAX] = "", line[TLS_ERROR_TEXT_MAX + 80];
    int rc = tls_ctx_open(&tc, &ctx, err, sizeof(err));
    if (rc == 0)
        return ctx;
    snprintf(line, sizeof(line), "released-lease notice not sent: peer TLS: %s",
             err[0] ? err : tls_strerror(rc));
    say(line);
    return NULL;
}

/* Waits for the children until the deadline, then kills those left; counts the members that
 * took the notice. */
static int children_reap(pid_t *pids, size_t n, uint64_t deadline_ms)
{
    int sent = 0;
    size_t left = n;
    while (left > 0) {
        for (size_t i = 0; i < n; i++) {
            int st;
            if (pids[i] > 0 && waitpid(pids[i], &st, WNOHANG) == pids[i]) {
                sent += WIFEXITED(st) && WEXITSTATUS(st) == 0;
                pids[i] = 0;
                left--;
            }
        }
        if (left == 0 || mono_ms() >= deadline_ms)
            break;
        poll(NULL, 0, 2);
    }
    for (size_t i = 0; i < n; i++)
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    return sent;
}

int sidecar_notice_send(const char *kit_path, uint64_t term, uint32_t budget_ms,
                        sidecar_notice_say_fn say)
{
    static kit_t k; /* large: not on the shim's stack */
    char why[PATH_MAX_BYTES + 80], line[sizeof(why) + 64];
    if (!kit_load(kit_path, &k, why, sizeof(why))) {
        snprintf(line, sizeof(line), "released-lease notice not sent: %s", why);
        say(line);
        return -1;
    }
    uint64_t deadline_ms = mono_ms() + budget_ms;
    tls_ctx_t *ctx = NULL;
    if (k.cert[0] != '\0' && (ctx = tls_client(&k, say)) == NULL)
        return -1;
    pid_t pids[MAX_PEERS] = {0};
    for (size_t i = 0; i < k.n_peers; i++) {
        pids[i] = fork();
        if (pids[i] == 0)
            notice_child(&k, &k.peers[i], ctx, term, deadline_ms, say);
    }
    int sent = children_reap(pids, k.n_peers, deadline_ms + NOTICE_CONN_MS);
    tls_ctx_close(ctx);
    return sent;
}
