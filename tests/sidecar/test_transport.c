/* test_transport.c — the peer transport on real loopback sockets: delivery, the cluster
 * handshake (token, cluster id), refusal of garbage and oversized frames, clean shutdown;
 * and the SHA-256 / HMAC known answers the handshake relies on. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "loop_poll.h"
#include "common.h"
#include "private_hosts.h"
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

static sidecar_transport_t *start_as(uint64_t id, uint64_t cluster, const char *token, inbox_t *in,
                                     uint8_t instance_byte)
{
    uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN];
    memset(instance, instance_byte, sizeof(instance));
    char http[32];
    snprintf(http, sizeof(http), "127.0.0.1:%d", (int)(7000 + id));
    sidecar_transport_config_t cfg = {.loop = &loop,
                                      .advertise_http = http,
                                      .self_id = id,
                                      .name = id == 1 ? "a" : "b",
                                      .instance = instance,
                                      .cluster_id = cluster,
                                      .token = token,
                                      .listen_host = "127.0.0.1",
                                      .listen_port = 0,
                                      .handshake_ms = 300,
                                      .recv_cb = recv_cb,
                                      .ud = in};
    sidecar_transport_t *t = NULL;
    char err[256];
    cr_assert_eq(sidecar_transport_open(&t, &cfg, err, sizeof(err)), 0, "%s", err);
    return t;
}

static sidecar_transport_t *start(uint64_t id, uint64_t cluster, const char *token, inbox_t *in)
{
    return start_as(id, cluster, token, in, (uint8_t)id);
}

#define RUN_UNTIL(cond) LOOP_RUN_UNTIL(&loop, cond, 3)

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
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", sidecar_transport_port(b)), 0);
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);
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
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", sidecar_transport_port(b)), 0);
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

/* Completes a valid handshake by hand (no token) advertising `adv` ("<name> <http> <peer>"),
 * with instance id 55..55; then
 * returns the socket. */
static int raw_handshake_adv(uint16_t port, uint64_t cluster, uint64_t from, uint64_t to,
                             const char *adv)
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
    size_t n = strlen(adv);
    uint8_t hello[79 + 255];
    memcpy(hello, "ELHI", 4);
    hello[4] = 2, hello[5] = 0;
    put64(hello + 6, cluster);
    put64(hello + 14, from);
    put64(hello + 22, to);
    memset(hello + 30, 0x55, 16); /* instance id */
    uint8_t msg[57 + 255];
    memcpy(msg, ch + 6, 16);
    put64(msg + 16, cluster);
    put64(msg + 24, from);
    put64(msg + 32, to);
    memset(msg + 40, 0x55, 16);
    msg[56] = (uint8_t)n;
    memcpy(msg + 57, adv, n);
    sidecar_hmac_sha256("", 0, msg, 57 + n, hello + 46);
    hello[78] = (uint8_t)n;
    memcpy(hello + 79, adv, n);
    cr_assert_eq(send(fd, hello, 79 + n, 0), (ssize_t)(79 + n));
    return fd;
}

static int raw_handshake(uint16_t port, uint64_t cluster, uint64_t from, uint64_t to)
{
    return raw_handshake_adv(port, cluster, from, to, "");
}

Test(transport, garbage_and_oversized_frames_drop_the_connection_only, .init = init)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib);
    uint16_t port = sidecar_transport_port(b);
    /* 5 is a member (it speaks through raw sockets; b's dials to port 9 just fail). */
    cr_assert_eq(sidecar_transport_peer_set(b, 5, NULL, "127.0.0.1", 9), 0);
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);

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
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", port), 0);
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
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", port), 0);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a));
    sidecar_transport_close(b, closed_cb, NULL);
    RUN_UNTIL(!connected(a) && closed == 1);
    cr_assert(!connected(a));
    /* Same port again: the redial with backoff finds it. */
    uint8_t instance[SIDECAR_TRANSPORT_INSTANCE_LEN];
    memset(instance, 2, sizeof(instance)); /* the same data directory as before */
    sidecar_transport_config_t cfg = {.loop = &loop,
                                      .self_id = 2,
                                      .instance = instance,
                                      .cluster_id = 77,
                                      .listen_host = "127.0.0.1",
                                      .listen_port = port,
                                      .recv_cb = recv_cb,
                                      .ud = &ib};
    char err[256];
    cr_assert_eq(sidecar_transport_open(&b, &cfg, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a), "did not reconnect");
    closed = 0;
    finish(a, b);
}

/* ---- strangers (ids outside the configuration) ------------------------------------------ */

static bool has_peer_http(sidecar_transport_t *t, uint64_t id, const char *want)
{
    const char *h = sidecar_transport_peer_http(t, id);
    return h != NULL && strcmp(h, want) == 0;
}

Test(transport, a_stranger_cannot_reach_the_core_nor_fill_the_peer_tables, .init = init)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib);
    uint16_t port = sidecar_transport_port(b);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", port), 0);
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);
    RUN_UNTIL(connected(a) && has_peer_http(b, 1, "127.0.0.1:7001"));
    cr_assert(has_peer_http(b, 1, "127.0.0.1:7001"));

    /* Id 5 is in nobody's configuration; without a token anyone can complete the handshake.
     * Its HEARTBEAT with a higher term must not reach the core. */
    int fd = raw_handshake(port, 77, 5, 2);
    raft_msg_t hb = {.type = RAFT_MSG_HEARTBEAT, .from = 5, .to = 2, .term = 9};
    uint8_t frame[256];
    size_t len = 0;
    cr_assert_eq(raft_msg_encode(&hb, frame, sizeof(frame), &len), 0);
    send(fd, frame, len, 0);
    RUN_UNTIL(ib.n > 0 || sidecar_transport_rejected(b) >= 1);
    for (int i = 0; i < 50; i++) /* a bounded extra moment for a late delivery */
        uv_run(&loop, UV_RUN_NOWAIT), usleep(500);
    cr_assert_eq(ib.n, 0, "a frame from a stranger reached the core");
    close(fd);

    /* Two hundred strangers advertising addresses: the member's address stays, and nobody
     * is dialled back. */
    for (uint64_t id = 100; id < 300; id++) {
        char adv[64];
        snprintf(adv, sizeof(adv), "x 127.0.0.9:%u 127.0.0.9:%u", (unsigned)id, (unsigned)id);
        fd = raw_handshake_adv(port, 77, id, 2, adv);
        close(fd);
    }
    for (int i = 0; i < 200; i++)
        uv_run(&loop, UV_RUN_NOWAIT), usleep(500);
    cr_assert(has_peer_http(b, 1, "127.0.0.1:7001"), "a member's HTTP address was forgotten");
    sidecar_transport_peer_stats_t st[64];
    cr_assert_eq(sidecar_transport_stats(b, st, 64), 1, "strangers were added as peers");
    finish(a, b);
}

/* ---- host names with several addresses ------------------------------------------------------ */

Test(transport, dials_every_address_a_name_resolves_to, .init = init)
{
    private_hosts("electd-dual-stack");
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib); /* listens on 127.0.0.1 only */
    uint16_t port = sidecar_transport_port(b);
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "electd-dual-stack", port), 0);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a), "the name's second address (127.0.0.1) was never tried");
    finish(a, b);
}

/* ---- a second process under a member's id --------------------------------------------------- */

Test(transport, a_second_instance_of_a_member_is_refused_and_listed, .init = init)
{
    inbox_t ia = {0}, ib = {0}, ix = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib);
    uint16_t port = sidecar_transport_port(b);
    cr_assert_eq(sidecar_transport_peer_set(b, 1, NULL, "127.0.0.1", sidecar_transport_port(a)), 0);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", port), 0);
    RUN_UNTIL(connected(a) && has_peer_http(b, 1, "127.0.0.1:7001"));
    cr_assert(has_peer_http(b, 1, "127.0.0.1:7001"));
    sidecar_transport_pin_t pins[4];
    cr_assert_eq(sidecar_transport_pins(b, pins, 4), 1, "a's instance id was not pinned");
    cr_assert_eq(pins[0].id, 1);

    /* Same id 1, another data directory (instance), another HTTP address. */
    sidecar_transport_t *x = start_as(1, 77, NULL, &ix, 0xee);
    cr_assert_eq(sidecar_transport_peer_set(x, 2, NULL, "127.0.0.1", port), 0);
    sidecar_transport_refusal_t r[SIDECAR_TRANSPORT_REFUSED_MAX];
    RUN_UNTIL(sidecar_transport_refused(b, r, SIDECAR_TRANSPORT_REFUSED_MAX) == 1);
    cr_assert_eq(sidecar_transport_refused(b, r, SIDECAR_TRANSPORT_REFUSED_MAX), 1);
    cr_assert_eq(r[0].id, 1);
    cr_assert_str_eq(r[0].name, "a");
    cr_assert_str_eq(r[0].instance, "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee");
    cr_assert(strncmp(r[0].remote, "127.0.0.1:", 10) == 0, "%s", r[0].remote);
    cr_assert(!connected(x), "the second instance was admitted");
    cr_assert(has_peer_http(b, 1, "127.0.0.1:7001"), "the impostor changed a's address");
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 9};
    cr_assert_eq(sidecar_transport_send(x, &m), SIDECAR_TRANSPORT_ENOTCONN);
    sidecar_transport_close(x, closed_cb, NULL);
    RUN_UNTIL(closed == 1);
    closed = 0;
    cr_assert_eq(ib.n, 0);
    finish(a, b);
}

/* A joining node (no configuration yet) admits the member that adds it; once it has a
 * configuration, only its members (dialling back is exercised by test_members). */
Test(transport, a_joining_node_admits_anyone_until_it_has_a_configuration, .init = init)
{
    inbox_t ia = {0}, ib = {0};
    sidecar_transport_t *a = start(1, 77, NULL, &ia);
    sidecar_transport_t *b = start(2, 77, NULL, &ib);
    sidecar_transport_admit_unknown(b, true);
    cr_assert_eq(sidecar_transport_peer_set(a, 2, NULL, "127.0.0.1", sidecar_transport_port(b)), 0);
    RUN_UNTIL(connected(a));
    cr_assert(connected(a));
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3};
    cr_assert_eq(sidecar_transport_send(a, &m), 0);
    RUN_UNTIL(ib.n == 1);
    cr_assert_eq(ib.n, 1);
    /* a advertised no peer address (advertise_peer unset): nothing to dial back. Once b has
     * a configuration without a, a's frames are dropped. */
    sidecar_transport_admit_unknown(b, false);
    cr_assert_eq(sidecar_transport_send(a, &m), 0);
    RUN_UNTIL(sidecar_transport_unknown_dropped(b) >= 1);
    cr_assert_eq(sidecar_transport_unknown_dropped(b), 1);
    cr_assert_eq(ib.n, 1);
    finish(a, b);
}
