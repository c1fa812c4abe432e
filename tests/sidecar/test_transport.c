/* test_transport.c — the peer transport on real loopback sockets: delivery, the cluster
 * handshake (token, cluster id), refusal of garbage and oversized frames, clean shutdown;
 * and the SHA-256 / HMAC known answers the handshake relies on. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "hmac.h"
#include "log.h"
#include "transport.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

Test(hmac, sha256_and_hmac_known_answers)
{
    uint8_t d[32];
    char h[65];
    sidecar_sha256_t s;
    sidecar_sha256_init(&s);
    sidecar_sha256_update(&s, "abc", 3);
    sidecar_sha256_final(&s, d);
    hex(d, 32, h);
    cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    /* RFC 4231 test case 2. */
    sidecar_hmac_sha256("Jefe", 4, "what do ya want for nothing?", 28, d);
    hex(d, 32, h);
    cr_assert_str_eq(h, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* RFC 4231 test case 6: a key longer than the block size. */
    uint8_t key[131];
    memset(key, 0xaa, sizeof(key));
    const char *msg = "Test Using Larger Than Block-Size Key - Hash Key First";
    sidecar_hmac_sha256(key, sizeof(key), msg, strlen(msg), d);
    hex(d, 32, h);
    cr_assert_str_eq(h, "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
    cr_assert(sidecar_mem_equal("abc", "abc", 3));
    cr_assert(!sidecar_mem_equal("abc", "abd", 3));
}

/* ---- two transports on one loop ------------------------------------------------------- */

typedef struct {
    raft_msg_t got[8];
    uint8_t data[8][64];
    int n;
} inbox_t;

static void recv_cb(void *ud, const raft_msg_t *m)
{
    inbox_t *in = ud;
    if (in->n < 8) {
        in->got[in->n] = *m;
        in->got[in->n].entries = NULL;
        if (m->n_entries > 0 && m->entries[0].len <= 64)
            memcpy(in->data[in->n], m->entries[0].data, m->entries[0].len);
        in->n++;
    }
}

static uv_loop_t loop;
static int closed;

static void closed_cb(void *ud)
{
    (void)ud;
    closed++;
}

static sidecar_transport_t *start(uint64_t id, uint64_t cluster, const char *token, inbox_t *in)
{
    char http[32];
    snprintf(http, sizeof(http), "127.0.0.1:%d", (int)(7000 + id));
    sidecar_transport_config_t cfg = {.loop = &loop,
                                      .advertise_http = http,
                                      .self_id = id,
                                      .cluster_id = cluster,
                                      .token = token,
                                      .listen_host = "127.0.0.1",
                                      .listen_port = 0,
                                      .handshake_ms = 300,
                                      .recv_cb = recv_cb,
                                      .ud = in};
    sidecar_transport_t *t = NULL;
    char err[256];
    cr_assert_eq(sidecar_transport_start(&t, &cfg, err, sizeof(err)), 0, "%s", err);
    return t;
}

/* Runs the loop until cond holds or three seconds pass (bounded). */
#define RUN_UNTIL(cond)                                                                            \
    do {                                                                                           \
        uint64_t deadline_ = uv_hrtime() + 3000000000ull;                                          \
        while (!(cond) && uv_hrtime() < deadline_) {                                               \
            uv_run(&loop, UV_RUN_NOWAIT);                                                          \
            usleep(500);                                                                           \
        }                                                                                          \
    } while (0)

static bool connected(sidecar_transport_t *t)
{
    sidecar_transport_peer_stats_t st[4];
    size_t n = sidecar_transport_stats(t, st, 4);
    return n == 1 && st[0].connected;
}

static void init(void)
{
    cr_assert_eq(uv_loop_init(&loop), 0);
    closed = 0;
    sidecar_log_init(SIDECAR_LOG_ERROR, SIDECAR_LOG_TEXT, 2, "test");
}

static void finish(sidecar_transport_t *a, sidecar_transport_t *b)
{
    sidecar_transport_close(a, closed_cb, NULL);
    sidecar_transport_close(b, closed_cb, NULL);
    RUN_UNTIL(closed == 2);
    cr_assert_eq(closed, 2);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(uv_loop_close(&loop), 0, "handles leaked");
}

Test(transport, delivers_messages_between_members_with_the_same_token, .init = init)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, "s3cret", &ia);
    sidecar_transport_t *b = start(2, 77, "s3cret", &ib);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, "127.0.0.1", sidecar_transport_port(b)), 0);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a), "no connection");
    uint8_t payload[] = "hello";
    raft_entry_t e = {.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL, .len = 5, .data = payload};
    raft_msg_t m = {.type = RAFT_MSG_APPEND,
                    .from = 1,
                    .to = 2,
                    .term = 3,
                    .index = 10,
                    .log_term = 3,
                    .commit = 9,
                    .ctx = 4,
                    .n_entries = 1,
                    .entries = &e};
    cr_assert_eq(sidecar_transport_send(a, &m), 0);
    RUN_UNTIL(ib.n == 1);
    cr_assert_eq(ib.n, 1);
    cr_assert_eq(ib.got[0].type, RAFT_MSG_APPEND);
    cr_assert_eq(ib.got[0].from, 1);
    cr_assert_eq(ib.got[0].commit, 9);
    const char *http = sidecar_transport_peer_http(b, 1);
    cr_assert(http != NULL && strcmp(http, "127.0.0.1:7001") == 0,
              "advertised address not learned");
    cr_assert_eq(memcmp(ib.data[0], "hello", 5), 0);
    /* Unknown peer and not-yet-connected peer: dropped with a code, not queued forever. */
    raft_msg_t m2 = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 9, .term = 3};
    cr_assert_eq(sidecar_transport_send(a, &m2), SIDECAR_TRANSPORT_ENOPEER);
    finish(a, b);
}

static void refused_case(uint64_t cluster_b, const char *token_a, const char *token_b)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, token_a, &ia);
    sidecar_transport_t *b = start(2, cluster_b, token_b, &ib);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, "127.0.0.1", sidecar_transport_port(b)), 0);
    RUN_UNTIL(sidecar_transport_rejected(b) >= 2);
    cr_assert_geq(sidecar_transport_rejected(b), 2, "intruder was not refused");
    cr_assert(!connected(a), "intruder admitted");
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3};
    cr_assert_eq(sidecar_transport_send(a, &m), SIDECAR_TRANSPORT_ENOTCONN);
    cr_assert_eq(ib.n, 0);
    finish(a, b);
}

Test(transport, wrong_token_is_refused, .init = init)
{
    refused_case(77, "s3cret", "other");
}

Test(transport, missing_token_is_refused, .init = init)
{
    refused_case(77, NULL, "s3cret");
}

Test(transport, another_cluster_is_refused, .init = init)
{
    refused_case(78, NULL, NULL);
}

/* A raw client socket to b's peer port. */
static int raw_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Completes a valid handshake by hand (no token), then returns the socket. */
static int raw_handshake(uint16_t port, uint64_t cluster, uint64_t from, uint64_t to)
{
    int fd = raw_connect(port);
    uint8_t ch[22];
    size_t got = 0;
    for (int i = 0; i < 3000 && got < sizeof(ch); i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        ssize_t n = recv(fd, ch + got, sizeof(ch) - got, MSG_DONTWAIT);
        if (n > 0)
            got += (size_t)n;
        else
            usleep(500);
    }
    cr_assert_eq(got, sizeof(ch));
    uint8_t hello[63];
    memcpy(hello, "ELHI", 4);
    hello[4] = 1, hello[5] = 0;
    put64(hello + 6, cluster);
    put64(hello + 14, from);
    put64(hello + 22, to);
    uint8_t msg[41];
    memcpy(msg, ch + 6, 16);
    put64(msg + 16, cluster);
    put64(msg + 24, from);
    put64(msg + 32, to);
    msg[40] = 0; /* no advertised HTTP address */
    sidecar_hmac_sha256("", 0, msg, sizeof(msg), hello + 30);
    hello[62] = 0;
    cr_assert_eq(send(fd, hello, sizeof(hello), 0), (ssize_t)sizeof(hello));
    return fd;
}

Test(transport, garbage_and_oversized_frames_drop_the_connection_only, .init = init)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib);
    uint16_t port = sidecar_transport_port(b);

    /* Random bytes instead of a handshake. */
    int fd = raw_connect(port);
    uint8_t junk[200];
    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    send(fd, junk, sizeof(junk), 0);
    RUN_UNTIL(sidecar_transport_rejected(b) >= 1);
    cr_assert_eq(sidecar_transport_rejected(b), 1);
    close(fd);

    /* A valid handshake, then a frame claiming to be 1 GiB. */
    fd = raw_handshake(port, 77, 5, 2);
    uint8_t big[8] = {0x00, 0x00, 0x00, 0x40, 1, 1, 0, 0};
    send(fd, big, sizeof(big), 0);
    RUN_UNTIL(sidecar_transport_rejected(b) >= 2);
    cr_assert_eq(sidecar_transport_rejected(b), 2);
    close(fd);

    /* A valid handshake, then a frame with a bad checksum. */
    fd = raw_handshake(port, 77, 5, 2);
    raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT, .from = 5, .to = 2, .term = 1};
    uint8_t frame[256];
    size_t len = 0;
    cr_assert_eq(raft_msg_encode(&hb, frame, sizeof(frame), &len), 0);
    frame[len - 1] ^= 0xff;
    send(fd, frame, len, 0);
    RUN_UNTIL(sidecar_transport_rejected(b) >= 3);
    cr_assert_eq(sidecar_transport_rejected(b), 3);
    close(fd);

    /* A handshake that never completes is timed out. */
    fd = raw_connect(port);
    RUN_UNTIL(sidecar_transport_rejected(b) >= 4);
    cr_assert_eq(sidecar_transport_rejected(b), 4);
    close(fd);

    cr_assert_eq(ib.n, 0, "garbage was delivered");
    /* The node is unaffected: a real peer still gets through. */
    cr_assert_eq(sidecar_transport_peer_set(a, 2, "127.0.0.1", port), 0);
    RUN_UNTIL(connected(a));
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3, .commit = 1};
    cr_assert_eq(sidecar_transport_send(a, &m), 0);
    RUN_UNTIL(ib.n == 1);
    cr_assert_eq(ib.n, 1);
    finish(a, b);
}

Test(transport, reconnects_after_the_peer_restarts, .init = init)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib);
    uint16_t port = sidecar_transport_port(b);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, "localhost", port), 0);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a));
    sidecar_transport_close(b, closed_cb, NULL);
    RUN_UNTIL(!connected(a) && closed == 1);
    cr_assert(!connected(a));
    /* Same port again: the redial with backoff finds it. */
    sidecar_transport_config_t cfg = {.loop = &loop,
                                      .self_id = 2,
                                      .cluster_id = 77,
                                      .listen_host = "127.0.0.1",
                                      .listen_port = port,
                                      .recv_cb = recv_cb,
                                      .ud = &ib};
    char err[256];
    cr_assert_eq(sidecar_transport_start(&b, &cfg, err, sizeof(err)), 0, "%s", err);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a), "did not reconnect");
    closed = 0;
    finish(a, b);
}
