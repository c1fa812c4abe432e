/* fuzz_codec.c — fuzz target for the Raft wire codec (raft/codec.c). Properties checked on
 * any input:
 *   - decoding never reads outside the input (the sanitizers check that) and never leaks;
 *   - a frame that decodes re-encodes to the very same bytes (the format is canonical) and
 *     the re-encoding decodes to an equal message;
 *   - decoded payloads point inside the input;
 *   - the same for configuration and term-start payloads.
 * Random bytes almost never carry a valid CRC, so each input is also tried a second time
 * with its length prefix and CRC made consistent: that view reaches the field parser. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "raft.h"

static void fail(const char *what)
{
    fprintf(stderr, "fuzz_codec: property broken: %s\n", what);
    abort();
}

static void check(int ok, const char *what)
{
    if (!ok) {
        fail(what);
    }
}

static int entries_same(const raft_msg_t *a, const raft_msg_t *b)
{
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const raft_entry_t *x = &a->entries[i], *y = &b->entries[i];
        if (x->term != y->term || x->index != y->index || x->type != y->type || x->len != y->len ||
            (x->data == NULL) != (y->data == NULL) ||
            (x->len > 0 && memcmp(x->data, y->data, x->len) != 0)) {
            return 0;
        }
    }
    return 1;
}

static int msg_same(const raft_msg_t *a, const raft_msg_t *b)
{
    if (a->type != b->type || a->flags != b->flags || a->from != b->from || a->to != b->to ||
        a->term != b->term || a->index != b->index || a->log_term != b->log_term ||
        a->commit != b->commit || a->hint != b->hint || a->ctx != b->ctx ||
        a->n_entries != b->n_entries || a->snap_size != b->snap_size || a->len != b->len ||
        (a->data == NULL) != (b->data == NULL) || (a->conf == NULL) != (b->conf == NULL)) {
        return 0;
    }
    if (a->len > 0 && memcmp(a->data, b->data, a->len) != 0) {
        return 0;
    }
    /* The decoder zeroes unused member slots and address tails, so whole structs compare. */
    if (a->conf != NULL && memcmp(a->conf, b->conf, sizeof(*a->conf)) != 0) {
        return 0;
    }
    return entries_same(a, b);
}

static int inside(const uint8_t *p, size_t n, const uint8_t *buf, size_t size)
{
    return p == NULL ? n == 0 : p >= buf && n <= size && p <= buf + size - n;
}

static void check_frame(const uint8_t *data, size_t size)
{
    raft_msg_t m;
    if (raft_msg_decode(data, size, &m) != 0) {
        check(m.entries == NULL && m.conf == NULL, "failed decode left allocations");
        return;
    }
    check(m.type >= 1 && m.type <= RAFT_MSG_TYPE_MAX, "decoded type in range");
    check((m.flags & ~RAFT_FLAGS_ALL) == 0, "decoded flags known");
    check(m.n_entries <= RAFT_MSG_ENTRIES_MAX, "decoded entry count bounded");
    check((m.n_entries == 0) == (m.entries == NULL), "entries allocated iff present");
    check(inside(m.data, m.len, data, size), "snapshot data inside the frame");
    for (uint32_t i = 0; i < m.n_entries; i++) {
        check(m.entries[i].len <= RAFT_ENTRY_MAX, "entry length bounded");
        check(inside(m.entries[i].data, m.entries[i].len, data, size), "entry data inside");
    }
    check(raft_msg_encoded_size(&m) == size, "encoded size equals input size");

    uint8_t *again = malloc(size);
    check(again != NULL, "malloc");
    size_t len = 0;
    check(raft_msg_encode(&m, again, size, &len) == 0, "decoded message re-encodes");
    check(len == size && memcmp(again, data, size) == 0, "re-encoding is byte-identical");

    raft_msg_t m2;
    check(raft_msg_decode(again, len, &m2) == 0, "re-encoding decodes");
    check(msg_same(&m, &m2), "re-encoding decodes to an equal message");
    raft_msg_free(&m2);
    raft_msg_free(&m);
    free(again);
}

/* The input as a stream: walk it frame by frame as the transport would. */
static void check_stream(const uint8_t *data, size_t size)
{
    size_t at = 0;
    for (int frames = 0; frames < 64 && at < size; frames++) {
        size_t flen;
        if (raft_frame_len(data + at, size - at, &flen) != 0 || flen > size - at) {
            return;
        }
        check(flen >= RAFT_FRAME_HEADER && flen <= RAFT_FRAME_MAX, "frame length bounded");
        check_frame(data + at, flen);
        at += flen;
    }
}

/* Makes the length prefix and CRC of a copy consistent with its size, then decodes it. */
static void check_fixed_up(const uint8_t *data, size_t size)
{
    if (size < 8 || size > RAFT_FRAME_MAX) {
        return;
    }
    uint8_t *copy = malloc(size);
    check(copy != NULL, "malloc");
    memcpy(copy, data, size);
    uint32_t body = (uint32_t)(size - RAFT_FRAME_HEADER);
    uint32_t crc = raft_crc32c(0, copy + 4, size - 8);
    for (int i = 0; i < 4; i++) {
        copy[i] = (uint8_t)(body >> (8 * i));
        copy[size - 4 + i] = (uint8_t)(crc >> (8 * i));
    }
    check_frame(copy, size);
    free(copy);
}

static void check_conf(const uint8_t *data, size_t size)
{
    raft_conf_t c;
    if (raft_conf_decode(data, size, &c) != 0) {
        return;
    }
    check(c.n <= RAFT_MAX_MEMBERS, "conf member count bounded");
    for (uint32_t i = 0; i < c.n; i++) {
        check(memchr(c.members[i].addr, '\0', RAFT_ADDR_MAX) != NULL, "addr NUL-terminated");
        check(raft_conf_find(&c, c.members[i].id) == &c.members[i], "member ids unique");
    }
    check(raft_conf_encoded_size(&c) == size, "conf encoded size equals input size");
    uint8_t *again = malloc(size);
    check(again != NULL, "malloc");
    size_t len = 0;
    check(raft_conf_encode(&c, again, size, &len) == 0, "decoded conf re-encodes");
    check(len == size && memcmp(again, data, size) == 0, "conf re-encoding is byte-identical");
    free(again);
}

static void check_term_start(const uint8_t *data, size_t size)
{
    raft_term_start_t ts;
    if (raft_term_start_decode(data, size, &ts) != 0) {
        return;
    }
    uint8_t again[RAFT_TERM_START_SIZE];
    raft_term_start_encode(&ts, again);
    check(size == RAFT_TERM_START_SIZE && memcmp(again, data, size) == 0, "term start");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_frame(data, size);
    check_stream(data, size);
    check_fixed_up(data, size);
    check_conf(data, size);
    check_term_start(data, size);
    return 0;
}

/* ---- seeds: valid frames of every type, plain and with entries / snapshot / conf ---- */

static raft_conf_t seed_conf(void)
{
    raft_conf_t c;
    memset(&c, 0, sizeof(c));
    c.n = 3;
    c.members[0] = (raft_member_t){.id = 1, .voter = 1, .addr = "a=127.0.0.1:7001"};
    c.members[1] = (raft_member_t){.id = 2, .voter = 1, .addr = "b=127.0.0.1:7002"};
    c.members[2] = (raft_member_t){.id = 3, .voter = 0, .addr = "c=127.0.0.1:7003"};
    return c;
}

enum { SEED_VARIANTS = 3 };

/* n members with the longest addresses: mutating a length by one reaches the limits. */
static raft_conf_t seed_conf_long(uint32_t n)
{
    raft_conf_t c;
    memset(&c, 0, sizeof(c));
    c.n = n;
    for (uint32_t i = 0; i < c.n; i++) {
        c.members[i].id = 10 + i;
        c.members[i].voter = (uint8_t)(i % 2);
        memset(c.members[i].addr, 'a' + (int)i, RAFT_ADDR_MAX - 1);
    }
    return c;
}

size_t fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
    raft_conf_t conf = seed_conf();
    size_t len = 0;
    unsigned n_frames = RAFT_MSG_TYPE_MAX * SEED_VARIANTS;
    if (i == n_frames) { /* bare conf encodings */
        return raft_conf_encode(&conf, buf, cap, &len) == 0 ? len : 0;
    }
    if (i == n_frames + 1 || i == n_frames + 2) {
        conf = seed_conf_long(i == n_frames + 1 ? 1 : RAFT_MAX_MEMBERS);
        return raft_conf_encode(&conf, buf, cap, &len) == 0 ? len : 0;
    }
    if (i == n_frames + 3) { /* a snapshot chunk carrying the full conf */
        conf = seed_conf_long(RAFT_MAX_MEMBERS);
        raft_msg_t m = {.type = RAFT_MSG_SNAPSHOT, .flags = RAFT_FLAG_LAST, .conf = &conf};
        return raft_msg_encode(&m, buf, cap, &len) == 0 ? len : 0;
    }
    if (i == n_frames + 4) { /* a term-start payload */
        if (cap < RAFT_TERM_START_SIZE) {
            return 0;
        }
        raft_term_start_encode(&(raft_term_start_t){.leader = 2, .stamp = 1700000000000ull}, buf);
        return RAFT_TERM_START_SIZE;
    }
    if (i == n_frames + 5) { /* a forwarded command exactly as raft_forward() sends it */
        static uint8_t fwd[] = "assign e1";
        raft_entry_t e = {.term = 7, .index = 1, .type = RAFT_ENTRY_NORMAL, .len = 9, .data = fwd};
        raft_msg_t m = {
            .type = RAFT_MSG_PROPOSE, .from = 2, .to = 1, .term = 7, .n_entries = 1, .entries = &e};
        return raft_msg_encode(&m, buf, cap, &len) == 0 ? len : 0;
    }
    if (i > n_frames) {
        return 0;
    }

    int variant = (int)(i % SEED_VARIANTS);
    raft_msg_t m = {
        .type = (uint8_t)(1 + i / SEED_VARIANTS),
        .flags = (uint8_t)(i & RAFT_FLAGS_ALL),
        .from = 1,
        .to = 2,
        .term = 7,
        .index = 100,
        .log_term = 6,
        .commit = 99,
        .hint = 98,
        .ctx = 42,
    };
    static uint8_t cmd[] = "put k v";
    uint8_t noop[RAFT_TERM_START_SIZE];
    uint8_t conf_bytes[512];
    size_t conf_len = 0;
    raft_term_start_encode(&(raft_term_start_t){.leader = 1, .stamp = 5}, noop);
    if (raft_conf_encode(&conf, conf_bytes, sizeof(conf_bytes), &conf_len) != 0) {
        return 0;
    }
    raft_entry_t entries[3] = {
        {.term = 7, .index = 101, .type = RAFT_ENTRY_NOOP, .len = sizeof(noop), .data = noop},
        {.term = 7, .index = 102, .type = RAFT_ENTRY_NORMAL, .len = 7, .data = cmd},
        {.term = 7,
         .index = 103,
         .type = RAFT_ENTRY_CONF,
         .len = (uint32_t)conf_len,
         .data = conf_bytes},
    };
    static const uint8_t snap[] = "snapshot chunk bytes";
    if (variant == 1) {
        m.entries = entries;
        m.n_entries = 3;
    } else if (variant == 2) {
        m.snap_size = 4096;
        m.data = snap;
        m.len = sizeof(snap);
        m.conf = &conf;
    }
    return raft_msg_encode(&m, buf, cap, &len) == 0 ? len : 0;
}
