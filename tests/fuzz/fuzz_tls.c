/* fuzz_tls.c — arbitrary bytes as the other end of a member's peer connection under peer TLS,
 * through the engine's memory-BIO session (tls.h) driven as sidecar/node/transport_tls.c
 * drives it: ciphertext fed in pieces (what does not fit waits for the next turn), plaintext
 * read (which advances the handshake), ciphertext output taken after every call.
 *
 * Input: byte 0 picks the side — even: this member's peer listener (TLS server, client
 * certificate required); odd: this member dialling (TLS client, its ClientHello already sent,
 * the input is the "server's" answer). Byte 1 is the size of the pieces the rest arrives in
 * (0: all at once; n: n bytes per read, as a socket may deliver them). The rest is the stream.
 *
 * Properties checked (abort() when broken):
 *   - nobody gets in without the keys: a session fed these bytes never becomes established
 *     (mutual TLS 1.3: a handshake needs a certificate from the CA and the signature of its
 *     key over this session's fresh transcript, which no recorded or invented input has);
 *   - a failure is clean: a TLS_E* code, a non-empty reason, sticky (the next call returns the
 *     same code), and no plaintext was ever delivered;
 *   - a stream that starts with an ASCII capital (HTTP, or a plain-TCP electd's CHALLENGE
 *     "ELCH") is refused as TLS_EPLAINTEXT;
 *   - no crash, no out-of-bounds access, no leak (the sanitizers and LeakSanitizer check
 *     these in `make fuzz` and `make test-sanitize`; every session is closed here).
 *
 * Certificates: a throwaway CA and member certificates made at the first input by
 * tests/tls/make_certs.sh (the openssl CLI) in a temporary directory, removed once loaded; nothing
 * secret is committed. fuzz_seed() hands out real protocol bytes made with them: a member's
 * ClientHello (whole, cut short, in 1-byte pieces), a TLS 1.2-only ClientHello, a server's
 * first flight, a plain-TCP electd CHALLENGE and HELLO, an HTTP request, an alert, a record
 * header announcing too much. tests/fuzz/corpus/fuzz_tls/ holds the ones that do not depend on
 * the certificates (written by `fuzz_tls_replay --write-seeds`). */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "fuzz.h"
#include "tls.h"

#define FEED_TURNS_MAX 4096 /* bounds the loop: every turn consumes input or ends it */

static char certs[64];
static tls_ctx_t *server_ctx, *client_ctx;

static void contexts_close(void)
{
    tls_ctx_close(server_ctx);
    tls_ctx_close(client_ctx);
}

static const char *path(const char *name)
{
    static char buf[4][128];
    static unsigned next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/%s", certs, name);
    return p;
}

static tls_ctx_t *ctx_open(tls_role_t role)
{
    tls_config_t cfg = {.role = role,
                        .cert_file = path("member-b.crt"),
                        .key_file = path("member-b.key"),
                        .ca_file = path("ca.crt")};
    tls_ctx_t *ctx = NULL;
    char err[TLS_ERROR_TEXT_MAX];
    if (tls_ctx_open(&cfg, &ctx, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_tls: %s\n", err);
        abort();
    }
    return ctx;
}

/* The member's two contexts, as transport_tls_open() makes them, on first use. */
static void setup(void)
{
    if (server_ctx)
        return;
    snprintf(certs, sizeof(certs), "/tmp/electd-fuzz-tls-XXXXXX");
    char cmd[256];
    if (!mkdtemp(certs)) {
        perror("fuzz_tls: mkdtemp");
        abort();
    }
    snprintf(cmd, sizeof(cmd), "sh '%s' '%s' >/dev/null 2>&1", TLS_MAKE_CERTS_SH, certs);
    if (system(cmd) != 0) {
        fprintf(stderr, "fuzz_tls: cannot make certificates (openssl CLI?) with %s\n", cmd);
        abort();
    }
    server_ctx = ctx_open(TLS_ROLE_SERVER);
    client_ctx = ctx_open(TLS_ROLE_CLIENT);
    atexit(contexts_close);
    /* The contexts hold what they loaded: the files go at once (libFuzzer may end the
     * process without running atexit handlers). */
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", certs);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_tls: could not remove %s\n", certs);
}

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_tls: property broken: %s\n", what);
        abort();
    }
}

static bool is_tls_error(int rc)
{
    return rc == TLS_EHANDSHAKE || rc == TLS_EPROTO || rc == TLS_EPLAINTEXT || rc == TLS_ECLOSED ||
           rc == TLS_ENOMEM;
}

/* Takes the session's output, as the transport sends it; bounded by what is pending. */
static void drain(tls_session_t *s)
{
    uint8_t out[4096];
    while (tls_session_out_read(s, out, sizeof(out)) > 0)
        ;
    check(tls_session_out_pending(s) == 0, "output drained");
}

/* One turn of transport_tls_{in,out}_read(): feed what fits, then read until nothing comes.
 * Returns 0, or the session's error (checked to be clean). */
static int turn(tls_session_t *s, const uint8_t **data, size_t *len)
{
    size_t used = 0;
    int rc = tls_session_feed(s, *data, *len, &used);
    check(used <= *len, "feed takes at most what it is given");
    *data += used;
    *len -= used;
    if (rc == 0 || rc == TLS_EFULL) {
        uint8_t plain[TLS_RECORD_MAX];
        size_t n = 0;
        rc = tls_session_read(s, plain, sizeof(plain), &n);
        check(n == 0, "no plaintext without a handshake");
        if (rc == 0 && used == 0 && *len > 0)
            rc = TLS_EFULL; /* stuck: the transport drops such a connection */
    }
    drain(s);
    check(!tls_session_established(s), "a handshake completed without the keys");
    if (rc == 0 || rc == TLS_EFULL)
        return rc;
    check(is_tls_error(rc), "a failure is a TLS_E* code");
    check(tls_session_error(s)[0] != '\0' || rc == TLS_ECLOSED, "a failure says why");
    if (rc == TLS_ENOMEM)
        return rc; /* the input buffer could not grow: not the session's error */
    size_t n = 0;
    uint8_t b[16];
    check(tls_session_read(s, b, sizeof(b), &n) == rc && n == 0, "errors stick");
    check(tls_session_write(s, "x", 1) == rc, "a failed session writes nothing");
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    setup();
    bool client = data[0] & 1;
    size_t piece = data[1];
    data += 2;
    size -= 2;
    tls_session_t *s = NULL;
    check(tls_session_open(client ? client_ctx : server_ctx, NULL, &s) == 0, "session opens");
    drain(s); /* a client's ClientHello */
    bool plaintext = size > 0 && data[0] >= 'A' && data[0] <= 'Z';
    int rc = 0;
    for (size_t t = 0; t < FEED_TURNS_MAX && size > 0 && rc == 0; t++) {
        size_t n = piece == 0 || piece > size ? size : piece;
        const uint8_t *p = data;
        size_t left = n;
        rc = turn(s, &p, &left);
        data += n - left;
        size -= n - left;
    }
    if (plaintext)
        check(rc == TLS_EPLAINTEXT, "plaintext is refused as such");
    tls_session_close(s);
    return 0;
}

/* ---- Seeds ------------------------------------------------------------------------------- */

/* Copies `side`, `piece` and the bytes into buf; returns the length (0 if it does not fit). */
static size_t seed(uint8_t *buf, size_t cap, int side, int piece, const void *bytes, size_t len)
{
    if (len + 2 > cap)
        return 0;
    buf[0] = (uint8_t)side;
    buf[1] = (uint8_t)piece;
    memcpy(buf + 2, bytes, len);
    return len + 2;
}

/* A member's ClientHello (from the real client context), or with max_tls12, one from an
 * OpenSSL client that offers TLS 1.2 at most (an old or misconfigured peer). */
static size_t client_hello(uint8_t *out, size_t cap, bool max_tls12)
{
    if (!max_tls12) {
        tls_session_t *c = NULL;
        check(tls_session_open(client_ctx, NULL, &c) == 0, "client session opens");
        size_t n = tls_session_out_read(c, out, cap);
        tls_session_close(c);
        return n;
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx ? SSL_new(ctx) : NULL;
    BIO *in = BIO_new(BIO_s_mem()), *o = BIO_new(BIO_s_mem());
    check(ssl && in && o, "OpenSSL objects");
    SSL_set_max_proto_version(ssl, TLS1_2_VERSION);
    SSL_set_bio(ssl, in, o);
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);
    int n = BIO_read(o, out, (int)cap);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return n > 0 ? (size_t)n : 0;
}

/* A server's first flight (ServerHello, then encrypted extensions, certificate request,
 * certificate, verify, finished) in answer to a fresh ClientHello: for the client side it
 * answers another hello, so it fails at the first encrypted record, after ServerHello parsed. */
static size_t server_flight(uint8_t *out, size_t cap)
{
    uint8_t hello[4096];
    size_t n = client_hello(hello, sizeof(hello), false), used = 0;
    tls_session_t *s = NULL;
    check(tls_session_open(server_ctx, NULL, &s) == 0, "server session opens");
    check(tls_session_feed(s, hello, n, &used) == 0 && used == n, "hello fed");
    (void)tls_session_handshake(s);
    size_t got = tls_session_out_read(s, out, cap);
    tls_session_close(s);
    return got;
}

size_t fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    setup();
    uint8_t b[8192];
    size_t n;
    static const uint8_t challenge[22] = {'E', 'L', 'C', 'H', 2,  0,  1,  2,  3,  4,  5,
                                          6,   7,   8,   9,   10, 11, 12, 13, 14, 15, 16};
    static const uint8_t hello[79 + 5] = {
        'E', 'L', 'H', 'I', 2, 0, [78] = 5, 'b', ' ', 'x', ' ', 'y'};
    static const char http[] = "GET /v1/status HTTP/1.1\r\nHost: b\r\n\r\n";
    static const uint8_t alert[] = {21, 3, 3, 0, 2, 2, 40}; /* fatal handshake_failure */
    static const uint8_t huge[] = {22, 3, 1, 0xff, 0xff, 1, 0, 0xff, 0xfb};
    switch (i) {
    case 0: /* server side: a member dialling us */
        n = client_hello(b, sizeof(b), false);
        return seed(buf, cap, 0, 0, b, n);
    case 1: /* the same, one byte per read */
        n = client_hello(b, sizeof(b), false);
        return seed(buf, cap, 0, 1, b, n);
    case 2: /* the same, cut short */
        n = client_hello(b, sizeof(b), false);
        return seed(buf, cap, 0, 0, b, n / 2);
    case 3: /* a peer that offers TLS 1.2 at most */
        n = client_hello(b, sizeof(b), true);
        return seed(buf, cap, 0, 0, b, n);
    case 4: /* client side: a server's flight */
        n = server_flight(b, sizeof(b));
        return seed(buf, cap, 1, 0, b, n);
    case 5: /* the same in 7-byte reads */
        n = server_flight(b, sizeof(b));
        return seed(buf, cap, 1, 7, b, n);
    case 6: /* client side: a plain-TCP electd's CHALLENGE */
        return seed(buf, cap, 1, 0, challenge, sizeof(challenge));
    case 7: /* server side: a plain-TCP electd's HELLO */
        return seed(buf, cap, 0, 0, hello, sizeof(hello));
    case 8: /* server side: an HTTP client on the peer port */
        return seed(buf, cap, 0, 0, http, sizeof(http) - 1);
    case 9: /* client side: an alert instead of a ServerHello */
        return seed(buf, cap, 1, 0, alert, sizeof(alert));
    case 10: /* server side: a record announcing 64 KiB */
        return seed(buf, cap, 0, 0, huge, sizeof(huge));
    default:
        return 0;
    }
}
