/* tls_test_util.c — the throwaway PKI, contexts, the in-memory pump and the blocking client
 * shared by the TLS tests (see tls_test_util.h). */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <criterion/criterion.h>

#include "tls_test_util.h"

/* not ELECTD_*: electd inherits it and refuses ELECTD_* variables it does not know */
#define CERTS_ENV "TLS_TEST_CERTS_DIR"

static char made_dir[PATH_MAX]; /* set when this process made the directory */

const char *certs_dir(void)
{
    const char *d = getenv(CERTS_ENV);
    if (d && *d)
        return d;
    snprintf(made_dir, sizeof(made_dir), "/tmp/electd-tls-test-XXXXXX");
    cr_assert_not_null(mkdtemp(made_dir), "mkdtemp: %s", strerror(errno));
    char cmd[PATH_MAX + 256];
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s'", TLS_MAKE_CERTS_SH, made_dir);
    cr_assert_eq(system(cmd), 0, "make_certs.sh failed (is the openssl CLI installed?)");
    setenv(CERTS_ENV, made_dir, 1);
    return made_dir;
}

void certs_remove(void)
{
    if (!made_dir[0])
        return;
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", made_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", made_dir);
    made_dir[0] = '\0';
    unsetenv(CERTS_ENV);
}

const char *cert_path(const char *name)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, PATH_MAX, "%s/%s", certs_dir(), name);
    return b;
}

tls_ctx_t *ctx_new(tls_role_t role, const char *leaf, const char *ca)
{
    char crt[PATH_MAX], key[PATH_MAX], cafile[PATH_MAX], err[TLS_ERROR_TEXT_MAX];
    tls_config_t cfg = {.role = role};
    if (leaf) {
        snprintf(crt, sizeof(crt), "%s/%s.crt", certs_dir(), leaf);
        snprintf(key, sizeof(key), "%s/%s.key", certs_dir(), leaf);
        cfg.cert_file = crt;
        cfg.key_file = key;
    }
    if (ca) {
        snprintf(cafile, sizeof(cafile), "%s/%s.crt", certs_dir(), ca);
        cfg.ca_file = cafile;
    }
    tls_ctx_t *ctx = NULL;
    int rc = tls_ctx_open(&cfg, &ctx, err, sizeof(err));
    cr_assert_eq(rc, 0, "tls_ctx_open(%s, %s): %s: %s", leaf ? leaf : "-", ca ? ca : "-",
                 tls_strerror(rc), err);
    return ctx;
}

size_t move_out(tls_session_t *a, tls_session_t *b)
{
    char buf[4096];
    size_t n, used, total = 0;
    while ((n = tls_session_out_read(a, buf, sizeof(buf))) > 0) {
        int rc = tls_session_feed(b, buf, n, &used);
        if (rc != 0)
            break; /* b failed already: the bytes are dropped, as a closing socket would */
        cr_assert_eq(used, n);
        total += n;
    }
    return total;
}

size_t pump(tls_session_t *a, tls_session_t *b)
{
    size_t total = 0;
    for (int round = 0; round < 32; round++) {
        (void)tls_session_handshake(a);
        (void)tls_session_handshake(b);
        size_t moved = move_out(a, b) + move_out(b, a);
        if (moved == 0)
            break;
        total += moved;
    }
    return total;
}

/* ---- blocking client ---- */

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1000;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

static int flush(struct tls_client *c)
{
    char buf[16384];
    size_t n;
    while ((n = tls_session_out_read(c->s, buf, sizeof(buf))) > 0)
        if (send_all(c->fd, buf, n) != 0)
            return -1000;
    return 0;
}

/* One socket read into the session: 0, or -1000 on EOF, error or timeout. */
static int fill(struct tls_client *c)
{
    char buf[16384];
    ssize_t r = recv(c->fd, buf, sizeof(buf), 0);
    if (r <= 0)
        return -1000;
    size_t off = 0, used;
    while (off < (size_t)r) {
        int rc = tls_session_feed(c->s, buf + off, (size_t)r - off, &used);
        if (rc != 0)
            return rc;
        off += used;
    }
    return 0;
}

static int client_fail(struct tls_client *c, int rc)
{
    snprintf(c->err, sizeof(c->err), "%s",
             rc == -1000 ? "socket closed, failed or timed out" : tls_session_error(c->s));
    return rc;
}

int tls_client_open(struct tls_client *c, int port, tls_ctx_t *ctx, const char *server_name)
{
    memset(c, 0, sizeof(*c));
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(c->fd, 0);
    struct timeval tv = {.tv_sec = 5};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect: %s",
                 strerror(errno));
    cr_assert_eq(tls_session_open(ctx, server_name, &c->s), 0);
    for (int i = 0; i < 64; i++) {
        int rc = flush(c);
        if (rc == 0)
            rc = tls_session_handshake(c->s);
        if (rc == 1)
            return flush(c) == 0 ? 0 : client_fail(c, -1000);
        if (rc == 0)
            rc = fill(c);
        if (rc < 0) {
            (void)flush(c); /* our alert, if any */
            return client_fail(c, rc);
        }
    }
    return client_fail(c, -1000);
}

void tls_client_close(struct tls_client *c)
{
    tls_session_close(c->s);
    c->s = NULL;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

int tls_client_send(struct tls_client *c, const void *data, size_t len)
{
    int rc = tls_session_write(c->s, data, len);
    if (rc == 0)
        rc = flush(c);
    return rc < 0 ? client_fail(c, rc) : 0;
}

int tls_client_recv(struct tls_client *c, void *buf, size_t cap, size_t *n)
{
    for (int i = 0; i < 1024; i++) {
        int rc = tls_session_read(c->s, buf, cap, n);
        (void)flush(c);
        if (rc < 0)
            return client_fail(c, rc);
        if (*n > 0)
            return 0;
        if ((rc = fill(c)) != 0)
            return client_fail(c, rc);
    }
    return client_fail(c, -1000);
}
