/* transport_handshake.c — the cluster handshake on both sides (layout in transport.h):
 * CHALLENGE with a fresh nonce, HELLO with its HMAC proof, name, addresses and instance id,
 * and the VERDICT; the admission of the sender, instance-id pins and the impostors refused. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bytes.h"
#include "config.h"
#include "transport_int.h"

const char *transport_refuse_text(int reason)
{
    switch (reason) {
    case REFUSE_VERSION:
        return "protocol version mismatch";
    case REFUSE_CLUSTER:
        return "peer belongs to another cluster";
    case REFUSE_TOKEN:
        return "cluster token mismatch";
    case REFUSE_NOT_ME:
        return "peer dialled the wrong node";
    case REFUSE_UNKNOWN:
        return "not a member of the configuration";
    case REFUSE_IMPOSTOR:
        return "another process (another data directory) already holds this member's name";
    case REFUSE_CERT_NAME:
        return "its TLS certificate does not name the member it claims to be";
    default:
        return "refused";
    }
}

/* proof = HMAC-SHA256(token, nonce || cluster_id || from || to || instance || n || text) */
static void proof(const char *token, size_t token_len, uint64_t cluster_id,
                  const uint8_t nonce[NONCE_LEN], uint64_t from, uint64_t to,
                  const uint8_t instance[INSTANCE_LEN], const uint8_t *text, size_t text_len,
                  uint8_t out[SIDECAR_SHA256_LEN])
{
    uint8_t msg[NONCE_LEN + 24 + INSTANCE_LEN + 1 + HTTP_ADDR_MAX];
    size_t off = 0;
    memcpy(msg, nonce, NONCE_LEN);
    off += NONCE_LEN;
    base_le_store64(msg + off, cluster_id);
    base_le_store64(msg + off + 8, from);
    base_le_store64(msg + off + 16, to);
    off += 24;
    memcpy(msg + off, instance, INSTANCE_LEN);
    off += INSTANCE_LEN;
    msg[off++] = (uint8_t)text_len;
    memcpy(msg + off, text, text_len);
    sidecar_hmac_sha256(token, token_len, msg, off + text_len, out);
}

size_t transport_hello_build(uint8_t out[HELLO_MAX], const transport_hello_t *h,
                             const uint8_t nonce[NONCE_LEN], uint64_t to)
{
    memcpy(out, "ELHI", 4);
    base_le_store16(out + 4, SIDECAR_TRANSPORT_VERSION);
    base_le_store64(out + 6, h->cluster_id);
    base_le_store64(out + 14, h->from);
    base_le_store64(out + 22, to);
    memcpy(out + HELLO_INSTANCE, h->instance, INSTANCE_LEN);
    proof(h->token, h->token_len, h->cluster_id, nonce, h->from, to, h->instance,
          (const uint8_t *)h->text, h->text_len, out + HELLO_PROOF);
    out[HELLO_LEN] = (uint8_t)h->text_len;
    memcpy(out + HELLO_LEN + 1, h->text, h->text_len);
    return HELLO_LEN + 1 + h->text_len;
}

static uint64_t unix_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void hex_format(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* ---- client: HELLO, then the verdict ------------------------------------------------------ */

static int send_hello(struct out_conn *c)
{
    struct sidecar_transport *t = c->t;
    transport_hello_t h = {.cluster_id = t->cfg.cluster_id,
                           .from = t->cfg.self_id,
                           .instance = t->instance,
                           .token = t->token,
                           .token_len = t->token_len,
                           .text = t->http,
                           .text_len = t->http_len};
    uint8_t hello[HELLO_MAX];
    size_t len = transport_hello_build(hello, &h, c->hs + 6, c->peer->id);
    return transport_write((uv_stream_t *)&c->tcp, c->tls, NULL, hello, len);
}

/* ELOK: the connection is ready for frames. */
static void out_admitted(struct out_conn *c)
{
    struct peer *p = c->peer;
    c->state = OUT_READY;
    uv_timer_stop(&p->timer);
    transport_addrs_free(p);
    p->attempts = 0;
    p->st.connected = true;
    p->st.connects++;
    p->st.refused_us = NULL;
    SIDECAR_LOG(SIDECAR_LOG_INFO, "peer connected", SIDECAR_LOG_ID("peer", p->id),
                SIDECAR_LOG_STR("name", p->name), SIDECAR_LOG_STR("host", p->host),
                SIDECAR_LOG_UINT("port", p->port), SIDECAR_LOG_STR("addr", p->addr_used));
}

static void out_verdict(struct out_conn *c)
{
    struct peer *p = c->peer;
    const uint8_t *v = c->hs + CHALLENGE_LEN;
    if (memcmp(v, "ELOK", 4) == 0) {
        out_admitted(c);
        return;
    }
    bool no = memcmp(v, "ELNO", 4) == 0;
    p->st.refused_us = no ? transport_refuse_text(v[4]) : "garbage";
    if (no && v[4] == REFUSE_CERT_NAME)
        SIDECAR_LOG(SIDECAR_LOG_ERROR,
                    "peer refused us: our TLS certificate does not name this member (its CN or a "
                    "DNS SAN must be our --name)",
                    SIDECAR_LOG_STR("self", c->t->name), SIDECAR_LOG_STR("peer_name", p->name),
                    SIDECAR_LOG_ID("peer", p->id), SIDECAR_LOG_STR("addr", p->addr_used));
    else if (no && v[4] == REFUSE_IMPOSTOR)
        SIDECAR_LOG(SIDECAR_LOG_ERROR,
                    "peer refused us: it knows another process (another data directory) under "
                    "our name; if our data directory was replaced, remove this member and add it "
                    "again",
                    SIDECAR_LOG_STR("self", c->t->name), SIDECAR_LOG_STR("peer_name", p->name),
                    SIDECAR_LOG_ID("peer", p->id), SIDECAR_LOG_STR("addr", p->addr_used));
    else {
        char ours[20]; /* the peer's cluster id is not in its VERDICT; its own log names it */
        snprintf(ours, sizeof(ours), "%016" PRIx64, c->t->cfg.cluster_id);
        SIDECAR_LOG(SIDECAR_LOG_WARN, "peer refused us", SIDECAR_LOG_STR("self", c->t->name),
                    SIDECAR_LOG_STR("peer_name", p->name), SIDECAR_LOG_ID("peer", p->id),
                    SIDECAR_LOG_STR("reason", p->st.refused_us),
                    SIDECAR_LOG_STR("our_cluster", ours), SIDECAR_LOG_STR("addr", p->addr_used));
    }
    p->next_ai = NULL; /* an electd answered: the other addresses would not change that */
    transport_out_close(c, "refused", 0);
}

void transport_out_handshake(struct out_conn *c)
{
    if (!c->hello_sent && c->hs_len >= CHALLENGE_LEN) {
        if (memcmp(c->hs, "ELCH", 4) != 0 ||
            base_le_load16(c->hs + 4) != SIDECAR_TRANSPORT_VERSION) {
            transport_out_close(c, "bad challenge (not an electd peer port, or another version)",
                                0);
            return;
        }
        int rv = send_hello(c);
        if (rv != 0) {
            transport_out_close(c, "write failed", rv);
            return;
        }
        c->hello_sent = true;
    }
    if (c->hello_sent && c->hs_len == CHALLENGE_LEN + VERDICT_LEN)
        out_verdict(c);
}

/* ---- server: the challenge, then HELLO ---------------------------------------------------- */

int transport_challenge_send(struct in_conn *c)
{
    transport_random_fill(c->nonce, NONCE_LEN);
    uint8_t ch[CHALLENGE_LEN];
    memcpy(ch, "ELCH", 4);
    base_le_store16(ch + 4, SIDECAR_TRANSPORT_VERSION);
    memcpy(ch + 6, c->nonce, NONCE_LEN);
    return transport_in_write(c, ch, sizeof(ch));
}

/* The HELLO's text "<name> <http> <peer>", split in place (fields may be empty). */
typedef struct hello_text {
    char buf[HTTP_ADDR_MAX + 1];
    const char *name, *http, *peer;
} hello_text_t;

/* Refuses the HELLO h of `from` (its text split in ht). Both sides are named: this member
 * and its cluster id, the sender's id, the name and cluster id it claims (not proven when
 * the refusal is about the cluster or the token) and its address. */
static void in_refuse(struct in_conn *c, int reason, uint64_t from, const uint8_t *h,
                      const hello_text_t *ht)
{
    struct sidecar_transport *t = c->t;
    t->rejected++;
    if (reason != REFUSE_UNKNOWN && reason != REFUSE_IMPOSTOR && reason != REFUSE_CERT_NAME) {
        char ours[20], theirs[20];
        snprintf(ours, sizeof(ours), "%016" PRIx64, t->cfg.cluster_id);
        snprintf(theirs, sizeof(theirs), "%016" PRIx64, base_le_load64(h + 6));
        SIDECAR_LOG(SIDECAR_LOG_WARN, "refused peer connection", SIDECAR_LOG_STR("self", t->name),
                    SIDECAR_LOG_STR("our_cluster", ours), SIDECAR_LOG_ID("from", from),
                    SIDECAR_LOG_STR("peer_name", ht->name),
                    SIDECAR_LOG_STR("their_cluster", theirs), SIDECAR_LOG_STR("remote", c->remote),
                    SIDECAR_LOG_STR("reason", transport_refuse_text(reason)));
    }
    uint8_t v[VERDICT_LEN] = {'E', 'L', 'N', 'O', (uint8_t)reason};
    transport_in_write(c, v, sizeof(v));
    transport_in_close(c);
}

static void hello_text_split(hello_text_t *h, const uint8_t *text, size_t len)
{
    bool has_nul = memchr(text, '\0', len) != NULL;
    memcpy(h->buf, text, len);
    h->buf[len] = '\0';
    char *sp1 = strchr(h->buf, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    h->name = h->buf;
    h->http = h->peer = "";
    if (sp1 != NULL) {
        *sp1 = '\0';
        h->http = sp1 + 1;
    }
    if (sp2 != NULL) {
        *sp2 = '\0';
        h->peer = sp2 + 1;
    }
    if (has_nul || strlen(h->name) >= SIDECAR_TRANSPORT_NAME_MAX)
        h->name = h->http = h->peer = "";
}

/* Lists a refused impostor (the newest SIDECAR_TRANSPORT_REFUSED_MAX, one row per id and
 * instance). */
static void record_refusal(struct in_conn *c, uint64_t id, const hello_text_t *h,
                           const uint8_t instance[INSTANCE_LEN])
{
    struct sidecar_transport *t = c->t;
    char inst[2 * INSTANCE_LEN + 1];
    hex_format(instance, INSTANCE_LEN, inst);
    sidecar_transport_refusal_t *r = NULL, *oldest = &t->refused[0];
    for (size_t i = 0; i < SIDECAR_TRANSPORT_REFUSED_MAX && r == NULL; i++) {
        sidecar_transport_refusal_t *x = &t->refused[i];
        if (x->count > 0 && x->id == id && strcmp(x->instance, inst) == 0)
            r = x;
        else if (x->last_unix_ms < oldest->last_unix_ms)
            oldest = x;
    }
    uint64_t now = unix_ms();
    if (r == NULL) {
        r = oldest;
        memset(r, 0, sizeof(*r));
        r->id = id;
        r->first_unix_ms = now;
        memcpy(r->instance, inst, sizeof(inst));
    }
    transport_name_copy(r->name, h->name);
    snprintf(r->remote, sizeof(r->remote), "%s", c->remote);
    snprintf(r->advertised, sizeof(r->advertised), "%s %s", h->http, h->peer);
    r->last_unix_ms = now;
    r->count++;
}

/* A second process under p's member id (another instance id than the pinned one). */
static int refuse_impostor(struct in_conn *c, const struct peer *p, const uint8_t *instance,
                           const hello_text_t *h)
{
    record_refusal(c, p->id, h, instance);
    char seen[2 * INSTANCE_LEN + 1], pinned[2 * INSTANCE_LEN + 1];
    hex_format(instance, INSTANCE_LEN, seen);
    hex_format(p->pin, INSTANCE_LEN, pinned);
    SIDECAR_LOG(SIDECAR_LOG_ERROR,
                "refused a second process under a member's name (another data directory)",
                SIDECAR_LOG_STR("self", c->t->name), SIDECAR_LOG_STR("name", h->name),
                SIDECAR_LOG_STR("member", p->name), SIDECAR_LOG_ID("id", p->id),
                SIDECAR_LOG_STR("remote", c->remote), SIDECAR_LOG_STR("http", h->http),
                SIDECAR_LOG_STR("peer_addr", h->peer), SIDECAR_LOG_STR("instance", seen),
                SIDECAR_LOG_STR("pinned_instance", pinned));
    return REFUSE_IMPOSTOR;
}

/* Admission and the instance pin of a handshaken peer. Returns 0 or a REFUSE_ reason. */
static int hello_admit(struct in_conn *c, uint64_t from, const uint8_t *instance,
                       const hello_text_t *h)
{
    struct sidecar_transport *t = c->t;
    if (!transport_admitted(t, from)) {
        transport_stranger_dropped(c, from, h->name, "handshake");
        return REFUSE_UNKNOWN;
    }
    struct peer *p = transport_peer_find(t, from, NULL);
    char host[SIDECAR_TRANSPORT_HOST_MAX];
    uint16_t port;
    if (p == NULL && t->admit_unknown && t->n_peers < RAFT_MAX_MEMBERS &&
        sidecar_config_hostport_parse(h->peer, host, sizeof(host), &port) == 0) {
        /* We are joining and have not applied the configuration that names this member yet:
         * dial it back at the address it advertised, or we could never answer. */
        SIDECAR_LOG(SIDECAR_LOG_INFO, "dialling back a peer not yet in our configuration",
                    SIDECAR_LOG_ID("peer", from), SIDECAR_LOG_STR("name", h->name),
                    SIDECAR_LOG_STR("host", host), SIDECAR_LOG_UINT("port", port));
        p = transport_peer_add(t, from, h->name, host, port, false);
    }
    if (p == NULL)
        return 0;
    if (p->pinned && memcmp(p->pin, instance, INSTANCE_LEN) != 0)
        return refuse_impostor(c, p, instance, h);
    if (!p->pinned) {
        memcpy(p->pin, instance, INSTANCE_LEN);
        p->pinned = true;
        if (p->member && t->cfg.pinned_cb != NULL)
            t->cfg.pinned_cb(t->cfg.ud);
    }
    snprintf(p->http, sizeof(p->http), "%s", h->http);
    return 0;
}

/* The HELLO's fixed fields: version, cluster, addressee, proof. Returns 0 or a REFUSE_
 * reason. */
static int hello_verify(struct in_conn *c, const uint8_t *h, uint64_t from)
{
    struct sidecar_transport *t = c->t;
    uint64_t to = base_le_load64(h + 22);
    if (base_le_load16(h + 4) != SIDECAR_TRANSPORT_VERSION)
        return REFUSE_VERSION;
    if (base_le_load64(h + 6) != t->cfg.cluster_id)
        return REFUSE_CLUSTER;
    if (to != t->cfg.self_id || from == 0 || from == t->cfg.self_id)
        return REFUSE_NOT_ME;
    uint8_t want[SIDECAR_SHA256_LEN];
    proof(t->token, t->token_len, t->cfg.cluster_id, c->nonce, from, to, h + HELLO_INSTANCE,
          h + HELLO_LEN + 1, h[HELLO_LEN], want);
    if (!sidecar_mem_equal(want, h + HELLO_PROOF, sizeof(want)))
        return REFUSE_TOKEN;
    return 0;
}

void transport_hello_check(struct in_conn *c)
{
    const uint8_t *h = c->buf;
    if (memcmp(h, "ELHI", 4) != 0) {
        /* 0x16: a TLS handshake record, from a member with peer TLS (and we have none). */
        transport_in_bad_input(c, h[0] == 0x16 ? "a TLS handshake: the peer uses peer TLS and "
                                                 "this member does not (--peer-cert-file)"
                                               : "not an electd handshake");
        return;
    }
    uint64_t from = base_le_load64(h + 14);
    size_t text_len = h[HELLO_LEN];
    hello_text_t text;
    hello_text_split(&text, h + HELLO_LEN + 1, text_len);
    int reason = hello_verify(c, h, from);
    if (reason == 0 && c->tls != NULL)
        reason = transport_tls_hello_name(c, from, text.name);
    if (reason == 0)
        reason = hello_admit(c, from, h + HELLO_INSTANCE, &text);
    if (reason != 0) {
        in_refuse(c, reason, from, h, &text);
        return;
    }
    c->from = from;
    c->state = IN_READY;
    uv_timer_stop(&c->timer);
    uint8_t ok[VERDICT_LEN] = {'E', 'L', 'O', 'K', 0};
    transport_in_write(c, ok, sizeof(ok));
    size_t used = HELLO_LEN + 1 + text_len;
    c->len -= used;
    memmove(c->buf, c->buf + used, c->len);
}
