/* test_codec.c — the Raft wire format (raft/codec.c) and the core's small helpers
 * (raft/util.c): every message round-trips, and hostile bytes are refused cleanly. Frames
 * under test live in exactly-sized heap buffers so the sanitizer build catches any read
 * past the end. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

/* ---- helpers --------------------------------------------------------------------------- */

static uint8_t payload_a[] = "set x=1";
static uint8_t payload_b[300];
static const uint8_t snap_data[] = {0x00, 0x01, 0xfe, 0xff, 0x7f, 0x80, 'S', 'N', 'A', 'P'};

static raft_conf_t sample_conf(void)
{
    raft_conf_t c;
    memset(&c, 0, sizeof(c));
    c.n = 3;
    c.members[0] = (raft_member_t){.id = 1, .voter = 1, .addr = "n1=127.0.0.1:7001"};
    c.members[1] = (raft_member_t){.id = 2, .voter = 1, .addr = "n2=127.0.0.1:7002"};
    c.members[2] = (raft_member_t){.id = 0xffffffffffffffffull, .voter = 0, .addr = ""};
    return c;
}

/* Variants of one message type: 0 bare, 1 with entries, 2 with snapshot data and conf,
 * 3 with everything at once. Every field gets a distinct non-zero value so a swapped or
 * dropped field shows up. */
enum { VARIANTS = 4 };

struct sample {
    raft_msg_t m;
    raft_entry_t entries[4];
    raft_conf_t conf;
    uint8_t noop[RAFT_TERM_START_SIZE];
    uint8_t conf_bytes[1024];
};

static void sample_make(struct sample *s, uint8_t type, int variant)
{
    memset(s, 0, sizeof(*s));
    for (size_t i = 0; i < sizeof(payload_b); i++) {
        payload_b[i] = (uint8_t)(i * 7 + 3);
    }
    s->m = (raft_msg_t){
        .type = type,
        .flags = RAFT_FLAGS_ALL & (uint8_t)(type * 3),
        .from = 0x0102030405060708ull,
        .to = 2,
        .term = 0xdeadbeefcafef00dull,
        .index = 11,
        .log_term = 12,
        .commit = 13,
        .hint = 14,
        .ctx = 15,
    };
    s->conf = sample_conf();
    if (variant == 1 || variant == 3) {
        raft_term_start_t ts = {.leader = 1, .stamp = 1700000000000ull};
        raft_term_start_encode(&ts, s->noop);
        size_t clen = 0;
        cr_assert_eq(raft_conf_encode(&s->conf, s->conf_bytes, sizeof(s->conf_bytes), &clen), 0);
        s->entries[0] = (raft_entry_t){.term = 5,
                                       .index = 100,
                                       .type = RAFT_ENTRY_NOOP,
                                       .len = RAFT_TERM_START_SIZE,
                                       .data = s->noop};
        s->entries[1] = (raft_entry_t){.term = 5,
                                       .index = 101,
                                       .type = RAFT_ENTRY_NORMAL,
                                       .len = sizeof(payload_a) - 1,
                                       .data = payload_a};
        s->entries[2] = (raft_entry_t){.term = 5, .index = 102, .type = RAFT_ENTRY_NORMAL};
        s->entries[3] = (raft_entry_t){.term = 6,
                                       .index = 103,
                                       .type = RAFT_ENTRY_CONF,
                                       .len = (uint32_t)clen,
                                       .data = s->conf_bytes};
        s->m.entries = s->entries;
        s->m.n_entries = 4;
    }
    if (variant == 2 || variant == 3) {
        s->m.snap_size = 1ull << 40;
        s->m.data = snap_data;
        s->m.len = sizeof(snap_data);
        s->m.conf = &s->conf;
    }
}

static void assert_msg_equal(const raft_msg_t *a, const raft_msg_t *b)
{
    cr_assert_eq(a->type, b->type);
    cr_assert_eq(a->flags, b->flags);
    cr_assert_eq(a->from, b->from);
    cr_assert_eq(a->to, b->to);
    cr_assert_eq(a->term, b->term);
    cr_assert_eq(a->index, b->index);
    cr_assert_eq(a->log_term, b->log_term);
    cr_assert_eq(a->commit, b->commit);
    cr_assert_eq(a->hint, b->hint);
    cr_assert_eq(a->ctx, b->ctx);
    cr_assert_eq(a->n_entries, b->n_entries);
    cr_assert_eq(a->n_entries == 0, a->entries == NULL || b->entries == NULL);
    for (uint32_t i = 0; i < a->n_entries; i++) {
        const raft_entry_t *x = &a->entries[i], *y = &b->entries[i];
        cr_assert_eq(x->term, y->term, "entry %u", i);
        cr_assert_eq(x->index, y->index, "entry %u", i);
        cr_assert_eq(x->type, y->type, "entry %u", i);
        cr_assert_eq(x->len, y->len, "entry %u", i);
        cr_assert_eq(x->data == NULL, y->data == NULL, "entry %u", i);
        if (x->len > 0) {
            cr_assert_arr_eq(x->data, y->data, x->len, "entry %u", i);
        }
    }
    cr_assert_eq(a->snap_size, b->snap_size);
    cr_assert_eq(a->len, b->len);
    cr_assert_eq(a->data == NULL, b->data == NULL);
    if (a->len > 0) {
        cr_assert_arr_eq(a->data, b->data, a->len);
    }
    cr_assert_eq(a->conf == NULL, b->conf == NULL);
    if (a->conf != NULL) {
        cr_assert_eq(a->conf->n, b->conf->n);
        for (uint32_t i = 0; i < a->conf->n; i++) {
            cr_assert_eq(a->conf->members[i].id, b->conf->members[i].id);
            cr_assert_eq(a->conf->members[i].voter, b->conf->members[i].voter);
            cr_assert_str_eq(a->conf->members[i].addr, b->conf->members[i].addr);
        }
    }
}

/* Encodes m into a heap buffer of exactly the frame's size. */
static uint8_t *encode(const raft_msg_t *m, size_t *len)
{
    size_t size = raft_msg_encoded_size(m);
    uint8_t *buf = malloc(size);
    cr_assert_not_null(buf);
    int rc = raft_msg_encode(m, buf, size, len);
    cr_assert_eq(rc, 0, "encode: %s", raft_strerror(rc));
    cr_assert_eq(*len, size);
    return buf;
}

static uint8_t *dup_bytes(const uint8_t *src, size_t len)
{
    uint8_t *p = malloc(len > 0 ? len : 1);
    cr_assert_not_null(p);
    memcpy(p, src, len);
    return p;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Recomputes the CRC of a frame edited in place, so that a test reaches the check behind
 * it. */
static void refresh_crc(uint8_t *buf, size_t len)
{
    put32(buf + len - 4, raft_crc32c(0, buf + 4, len - 8));
}

/* Decodes a copy of buf[0..len) (exactly sized) and returns the result; on failure checks
 * that nothing was left allocated in m. */
static int decode_copy(const uint8_t *buf, size_t len)
{
    uint8_t *copy = dup_bytes(buf, len);
    raft_msg_t m;
    memset(&m, 0xa5, sizeof(m));
    int rc = raft_msg_decode(copy, len, &m);
    if (rc != 0) {
        cr_assert_null(m.entries);
        cr_assert_null(m.conf);
    }
    raft_msg_free(&m);
    free(copy);
    return rc;
}

/* Offsets of the frame layout documented in raft/codec.c. */
enum {
    OFF_VERSION = 4,
    OFF_TYPE = 5,
    OFF_FLAGS = 6,
    OFF_N_ENTRIES = 71,
    OFF_ENTRIES = 75,
    MIN_FRAME = 92,
};

/* ---- round trips ------------------------------------------------------------------------ */

Test(codec, roundtrip_every_type_and_variant)
{
    for (uint8_t type = 1; type <= RAFT_MSG_TYPE_MAX; type++) {
        for (int variant = 0; variant < VARIANTS; variant++) {
            struct sample s;
            sample_make(&s, type, variant);
            size_t len = 0;
            uint8_t *buf = encode(&s.m, &len);

            size_t flen = 0;
            cr_assert_eq(raft_frame_len(buf, len, &flen), 0);
            cr_assert_eq(flen, len);

            raft_msg_t d;
            int rc = raft_msg_decode(buf, len, &d);
            cr_assert_eq(rc, 0, "type %u variant %d: %s", type, variant, raft_strerror(rc));
            assert_msg_equal(&s.m, &d);
            /* Zero-copy contract: payloads point into the frame. */
            if (d.n_entries > 0) {
                cr_assert(d.entries[1].data > buf && d.entries[1].data < buf + len);
            }
            if (d.len > 0) {
                cr_assert(d.data > buf && d.data < buf + len);
            }

            /* Canonical: re-encoding the decoded message gives the same bytes. */
            size_t len2 = 0;
            uint8_t *buf2 = encode(&d, &len2);
            cr_assert_eq(len2, len);
            cr_assert_arr_eq(buf2, buf, len);

            raft_msg_free(&d);
            cr_assert_null(d.entries);
            cr_assert_null(d.conf);
            free(buf2);
            free(buf);
        }
    }
}

Test(codec, propose_frame_roundtrips_with_its_one_command)
{
    /* What raft_forward() sends: index 0 and exactly one NORMAL entry (index 1, the
     * sender's term) carrying the command. */
    raft_entry_t e = {.term = 9,
                      .index = 1,
                      .type = RAFT_ENTRY_NORMAL,
                      .len = sizeof(payload_a) - 1,
                      .data = payload_a};
    raft_msg_t m = {
        .type = RAFT_MSG_PROPOSE, .from = 2, .to = 1, .term = 9, .n_entries = 1, .entries = &e};
    size_t len = 0;
    uint8_t *buf = encode(&m, &len);
    cr_assert_eq(len, MIN_FRAME + 8 + 8 + 1 + 4 + e.len);
    cr_assert_eq(buf[OFF_TYPE], 12);
    raft_msg_t d;
    cr_assert_eq(raft_msg_decode(buf, len, &d), 0);
    assert_msg_equal(&m, &d);
    cr_assert(d.entries[0].data > buf && d.entries[0].data < buf + len);
    cr_assert_str_eq(raft_msg_type_name(d.type), "propose");
    raft_msg_free(&d);
    free(buf);
}

Test(codec, bare_message_has_minimum_size_and_nothing_allocated)
{
    raft_msg_t m = {.type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 3};
    cr_assert_eq(raft_msg_encoded_size(&m), MIN_FRAME);
    size_t len;
    uint8_t *buf = encode(&m, &len);
    raft_msg_t d;
    cr_assert_eq(raft_msg_decode(buf, len, &d), 0);
    cr_assert_null(d.entries);
    cr_assert_null(d.conf);
    cr_assert_null(d.data);
    assert_msg_equal(&m, &d);
    raft_msg_free(&d);
    free(buf);
}

Test(codec, release_is_safe_on_zeroed_and_twice)
{
    raft_msg_t m;
    memset(&m, 0, sizeof(m));
    raft_msg_free(&m);
    raft_msg_free(&m);
    raft_msg_free(NULL);
}

Test(codec, largest_entry_roundtrips)
{
    uint8_t *big = malloc(RAFT_ENTRY_MAX);
    cr_assert_not_null(big);
    for (size_t i = 0; i < RAFT_ENTRY_MAX; i++) {
        big[i] = (uint8_t)(i ^ (i >> 8));
    }
    raft_entry_t e = {.term = 1, .index = 1, .len = RAFT_ENTRY_MAX, .data = big};
    raft_msg_t m = {.type = RAFT_MSG_APPEND, .n_entries = 1, .entries = &e};
    size_t len;
    uint8_t *buf = encode(&m, &len);
    raft_msg_t d;
    cr_assert_eq(raft_msg_decode(buf, len, &d), 0);
    assert_msg_equal(&m, &d);
    raft_msg_free(&d);
    free(buf);
    free(big);
}

/* ---- encoder refusals ------------------------------------------------------------------- */

Test(codec, encode_refuses_what_a_peer_would_reject)
{
    uint8_t buf[4096];
    size_t len;
    raft_msg_t m = {.type = RAFT_MSG_APPEND};

    m.type = 0;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL);
    m.type = RAFT_MSG_TYPE_MAX + 1;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL);
    m.type = RAFT_MSG_APPEND;
    m.flags = 0x10;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL);
    m.flags = 0;

    raft_entry_t e = {.type = RAFT_ENTRY_NORMAL, .len = 1, .data = NULL};
    m.entries = &e;
    m.n_entries = 1;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL); /* data NULL */
    e.data = payload_a;
    e.type = 3;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL); /* entry type */
    e.type = RAFT_ENTRY_NORMAL;
    e.len = RAFT_ENTRY_MAX + 1;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_ETOOBIG);
    e.len = 1;
    m.n_entries = RAFT_MSG_ENTRIES_MAX + 1;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_ETOOBIG);
    m.n_entries = 0;
    m.entries = NULL;

    m.n_entries = 1; /* entries NULL */
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL);
    m.n_entries = 0;

    raft_conf_t bad = sample_conf();
    bad.members[1].id = bad.members[0].id;
    m.conf = &bad;
    cr_assert_eq(raft_msg_encode(&m, buf, sizeof(buf), &len), RAFT_EINVAL);
    m.conf = NULL;

    /* Capacity one byte short. */
    size_t need = raft_msg_encoded_size(&m);
    cr_assert_eq(raft_msg_encode(&m, buf, need - 1, &len), RAFT_ETOOBIG);
    cr_assert_eq(raft_msg_encode(&m, buf, need, &len), 0);
    cr_assert_eq(len, need);
}

Test(codec, encode_refuses_frame_over_limit)
{
    size_t n = RAFT_FRAME_MAX; /* data alone fills the frame; the header tips it over */
    uint8_t *data = calloc(1, n);
    cr_assert_not_null(data);
    raft_msg_t m = {.type = RAFT_MSG_SNAPSHOT, .data = data, .len = (uint32_t)n};
    size_t cap = n + 4096, len;
    uint8_t *buf = malloc(cap);
    cr_assert_not_null(buf);
    cr_assert_eq(raft_msg_encode(&m, buf, cap, &len), RAFT_ETOOBIG);
    /* The largest frame that fits is accepted, and decodes. */
    m.len = (uint32_t)(RAFT_FRAME_MAX - MIN_FRAME);
    cr_assert_eq(raft_msg_encode(&m, buf, cap, &len), 0);
    cr_assert_eq(len, RAFT_FRAME_MAX);
    raft_msg_t d;
    cr_assert_eq(raft_msg_decode(buf, len, &d), 0);
    cr_assert_eq(d.len, m.len);
    raft_msg_free(&d);
    free(buf);
    free(data);
}

/* ---- decoder: hostile bytes --------------------------------------------------------------- */

Test(codec, every_truncation_fails_cleanly)
{
    struct sample s;
    sample_make(&s, RAFT_MSG_SNAPSHOT, 3);
    size_t len;
    uint8_t *buf = encode(&s.m, &len);
    for (size_t cut = 0; cut < len; cut++) {
        int rc = decode_copy(buf, cut);
        cr_assert_eq(rc, RAFT_ETRUNCATED, "cut at %zu: %s", cut, raft_strerror(rc));
    }
    cr_assert_eq(decode_copy(buf, len), 0);
    free(buf);
}

Test(codec, every_single_bit_flip_is_rejected)
{
    struct sample s;
    sample_make(&s, RAFT_MSG_APPEND, 3);
    size_t len;
    uint8_t *buf = encode(&s.m, &len);
    for (size_t byte = 0; byte < len; byte++) {
        for (int bit = 0; bit < 8; bit++) {
            buf[byte] ^= (uint8_t)(1u << bit);
            int rc = decode_copy(buf, len);
            buf[byte] ^= (uint8_t)(1u << bit);
            if (byte < RAFT_FRAME_HEADER) {
                /* A changed length prefix: too long for the buffer, absurd, or shorter
                 * than the buffer (trailing bytes / below the minimum). */
                cr_assert(rc == RAFT_ETRUNCATED || rc == RAFT_ETOOBIG || rc == RAFT_EMALFORMED,
                          "byte %zu bit %d: %s", byte, bit, raft_strerror(rc));
            } else if (byte == OFF_VERSION) {
                cr_assert_eq(rc, RAFT_EVERSION, "bit %d: %s", bit, raft_strerror(rc));
            } else {
                cr_assert_eq(rc, RAFT_ECHECKSUM, "byte %zu bit %d: %s", byte, bit,
                             raft_strerror(rc));
            }
        }
    }
    free(buf);
}

Test(codec, wrong_version_is_rejected_even_with_a_good_crc)
{
    raft_msg_t m = {.type = RAFT_MSG_VOTE, .term = 9};
    size_t len;
    uint8_t *buf = encode(&m, &len);
    const uint8_t versions[] = {0, RAFT_CODEC_VERSION + 1, 0xff};
    for (size_t i = 0; i < sizeof(versions); i++) {
        buf[OFF_VERSION] = versions[i];
        refresh_crc(buf, len);
        cr_assert_eq(decode_copy(buf, len), RAFT_EVERSION, "version %u", versions[i]);
    }
    free(buf);
}

Test(codec, length_prefix_out_of_range)
{
    raft_msg_t m = {.type = RAFT_MSG_VOTE};
    size_t len;
    uint8_t *buf = encode(&m, &len);

    put32(buf, RAFT_FRAME_MAX - 3); /* whole frame one byte over the limit */
    cr_assert_eq(decode_copy(buf, len), RAFT_ETOOBIG);
    put32(buf, 0xffffffffu);
    cr_assert_eq(decode_copy(buf, len), RAFT_ETOOBIG);
    put32(buf, 0);
    cr_assert_eq(decode_copy(buf, len), RAFT_EMALFORMED);
    put32(buf, MIN_FRAME - 5); /* one byte under the minimum */
    cr_assert_eq(decode_copy(buf, len), RAFT_EMALFORMED);
    free(buf);
}

Test(codec, frame_len_on_short_and_absurd_prefixes)
{
    uint8_t b[8] = {0};
    size_t flen = 12345;
    for (size_t avail = 0; avail < RAFT_FRAME_HEADER; avail++) {
        cr_assert_eq(raft_frame_len(b, avail, &flen), RAFT_ETRUNCATED, "avail %zu", avail);
    }
    cr_assert_eq(raft_frame_len(NULL, 0, &flen), RAFT_ETRUNCATED);

    put32(b, 0xffffffffu);
    cr_assert_eq(raft_frame_len(b, 4, &flen), RAFT_ETOOBIG);
    put32(b, RAFT_FRAME_MAX);
    cr_assert_eq(raft_frame_len(b, 4, &flen), RAFT_ETOOBIG);
    put32(b, RAFT_FRAME_MAX - RAFT_FRAME_HEADER);
    cr_assert_eq(raft_frame_len(b, 4, &flen), 0);
    cr_assert_eq(flen, RAFT_FRAME_MAX);
    put32(b, 0);
    cr_assert_eq(raft_frame_len(b, 4, &flen), RAFT_EMALFORMED);
    put32(b, MIN_FRAME - RAFT_FRAME_HEADER);
    cr_assert_eq(raft_frame_len(b, 4, &flen), 0);
    cr_assert_eq(flen, MIN_FRAME);
}

Test(codec, trailing_bytes_are_rejected)
{
    struct sample s;
    sample_make(&s, RAFT_MSG_APPEND, 1);
    size_t len;
    uint8_t *buf = encode(&s.m, &len);

    /* After the frame: the buffer holds more than the one frame it claims. */
    uint8_t *longer = malloc(len + 1);
    cr_assert_not_null(longer);
    memcpy(longer, buf, len);
    longer[len] = 0;
    cr_assert_eq(decode_copy(longer, len + 1), RAFT_EMALFORMED);

    /* Inside the frame: a byte between the last field and the CRC, CRC made valid. */
    memcpy(longer, buf, len - 4);
    longer[len - 4] = 0;
    put32(longer, (uint32_t)(len + 1 - RAFT_FRAME_HEADER));
    refresh_crc(longer, len + 1);
    cr_assert_eq(decode_copy(longer, len + 1), RAFT_EMALFORMED);
    free(longer);
    free(buf);
}

/* Builds a bare frame, lets `edit` change the bytes, refreshes the CRC, and decodes. */
static int decode_edited(uint8_t type, int variant, void (*edit)(uint8_t *buf, size_t len))
{
    struct sample s;
    sample_make(&s, type, variant);
    size_t len;
    uint8_t *buf = encode(&s.m, &len);
    edit(buf, len);
    refresh_crc(buf, len);
    int rc = decode_copy(buf, len);
    free(buf);
    return rc;
}

static void set_type_0(uint8_t *b, size_t n)
{
    (void)n;
    b[OFF_TYPE] = 0;
}
static void set_type_over_max(uint8_t *b, size_t n)
{
    (void)n;
    b[OFF_TYPE] = RAFT_MSG_TYPE_MAX + 1;
}
static void set_flag_unknown(uint8_t *b, size_t n)
{
    (void)n;
    b[OFF_FLAGS] |= 0x10;
}
static void set_n_entries_over_max(uint8_t *b, size_t n)
{
    (void)n;
    put32(b + OFF_N_ENTRIES, RAFT_MSG_ENTRIES_MAX + 1);
}
static void set_n_entries_beyond_frame(uint8_t *b, size_t n)
{
    (void)n;
    put32(b + OFF_N_ENTRIES, RAFT_MSG_ENTRIES_MAX); /* frame holds only 4 */
}
/* First entry (variant 1) is the 16-byte NOOP: term 8, index 8, type 1, len 4. */
static void set_entry_type_unknown(uint8_t *b, size_t n)
{
    (void)n;
    b[OFF_ENTRIES + 16] = 3;
}
static void set_entry_len_over_max(uint8_t *b, size_t n)
{
    (void)n;
    put32(b + OFF_ENTRIES + 17, RAFT_ENTRY_MAX + 1);
}
static void set_entry_len_overrun(uint8_t *b, size_t n)
{
    put32(b + OFF_ENTRIES + 17, (uint32_t)n); /* longer than what is left */
}
static void set_entry_len_short(uint8_t *b, size_t n)
{
    (void)n;
    put32(b + OFF_ENTRIES + 17, 15); /* the rest no longer parses as the encoder wrote it */
}
/* Variant 0 tail: ... snap_size(8) data_len(4) has_conf(1) crc(4). */
static void set_has_conf_2(uint8_t *b, size_t n)
{
    b[n - 5] = 2;
}
static void set_has_conf_1_without_conf(uint8_t *b, size_t n)
{
    b[n - 5] = 1;
}
static void set_data_len_overrun(uint8_t *b, size_t n)
{
    put32(b + n - 9, 1);
}

Test(codec, decoder_rejects_bad_fields_behind_a_good_crc)
{
    cr_assert_eq(decode_edited(RAFT_MSG_VOTE, 0, set_type_0), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_VOTE, 0, set_type_over_max), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_VOTE, 0, set_flag_unknown), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_APPEND, 1, set_n_entries_over_max), RAFT_ETOOBIG);
    cr_assert_eq(decode_edited(RAFT_MSG_APPEND, 1, set_n_entries_beyond_frame), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_APPEND, 1, set_entry_type_unknown), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_APPEND, 1, set_entry_len_over_max), RAFT_ETOOBIG);
    cr_assert_eq(decode_edited(RAFT_MSG_APPEND, 1, set_entry_len_overrun), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_APPEND, 1, set_entry_len_short), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_SNAPSHOT, 0, set_has_conf_2), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_SNAPSHOT, 0, set_has_conf_1_without_conf), RAFT_EMALFORMED);
    cr_assert_eq(decode_edited(RAFT_MSG_SNAPSHOT, 0, set_data_len_overrun), RAFT_EMALFORMED);
}

Test(codec, conf_inside_frame_is_checked)
{
    /* A frame whose conf has a duplicate id: built by hand since the encoder refuses it. */
    raft_msg_t m = {.type = RAFT_MSG_SNAPSHOT};
    size_t len;
    uint8_t *bare = encode(&m, &len);
    uint8_t conf[1 + 2 * 11] = {2, 7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0,
                                7, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0};
    size_t flen = len + sizeof(conf);
    uint8_t *buf = malloc(flen);
    cr_assert_not_null(buf);
    memcpy(buf, bare, len - 5);
    buf[len - 5] = 1; /* has_conf */
    memcpy(buf + len - 4, conf, sizeof(conf));
    put32(buf, (uint32_t)(flen - RAFT_FRAME_HEADER));
    refresh_crc(buf, flen);
    cr_assert_eq(decode_copy(buf, flen), RAFT_EMALFORMED);

    conf[12] = 8; /* distinct ids: now valid */
    memcpy(buf + len - 4, conf, sizeof(conf));
    refresh_crc(buf, flen);
    cr_assert_eq(decode_copy(buf, flen), 0);
    free(buf);
    free(bare);
}

/* ---- streams ------------------------------------------------------------------------------ */

Test(codec, byte_at_a_time_stream_reassembly)
{
    enum { N = 3 * VARIANTS };
    struct sample s[N];
    uint8_t *frames[N];
    size_t lens[N], total = 0;
    for (int i = 0; i < N; i++) {
        sample_make(&s[i], (uint8_t)(RAFT_MSG_APPEND + i / VARIANTS * 2), i % VARIANTS);
        frames[i] = encode(&s[i].m, &lens[i]);
        total += lens[i];
    }
    uint8_t *stream = malloc(total);
    cr_assert_not_null(stream);
    for (size_t i = 0, at = 0; i < N; at += lens[i], i++) {
        memcpy(stream + at, frames[i], lens[i]);
    }

    /* The reader's buffer grows by one byte at a time, as from a slow socket. */
    uint8_t *rbuf = malloc(total);
    cr_assert_not_null(rbuf);
    size_t have = 0;
    int decoded = 0;
    for (size_t fed = 0; fed < total; fed++) {
        rbuf[have++] = stream[fed];
        size_t flen;
        int rc = raft_frame_len(rbuf, have, &flen);
        if (rc == RAFT_ETRUNCATED || (rc == 0 && have < flen)) {
            continue;
        }
        cr_assert_eq(rc, 0, "%s", raft_strerror(rc));
        cr_assert_eq(flen, lens[decoded]);
        raft_msg_t d;
        cr_assert_eq(raft_msg_decode(rbuf, flen, &d), 0);
        assert_msg_equal(&s[decoded].m, &d);
        raft_msg_free(&d);
        decoded++;
        memmove(rbuf, rbuf + flen, have - flen);
        have -= flen;
    }
    cr_assert_eq(decoded, N);
    cr_assert_eq(have, 0);
    for (int i = 0; i < N; i++) {
        free(frames[i]);
    }
    free(rbuf);
    free(stream);
}

/* ---- CRC32C --------------------------------------------------------------------------------- */

static uint32_t crc32c_bitwise(uint32_t crc, const uint8_t *p, size_t len)
{
    crc = ~crc;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0x82f63b78u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

Test(codec, crc32c_known_answers)
{
    cr_assert_eq(raft_crc32c(0, "123456789", 9), 0xe3069283u);
    cr_assert_eq(raft_crc32c(0, "", 0), 0u);
    uint8_t zeros[32] = {0}, ones[32];
    memset(ones, 0xff, sizeof(ones));
    /* RFC 3720 (iSCSI) appendix B.4 test vectors. */
    cr_assert_eq(raft_crc32c(0, zeros, 32), 0x8a9136aau);
    cr_assert_eq(raft_crc32c(0, ones, 32), 0x62a8ab43u);
    cr_assert_eq(raft_crc32c_table(0, "123456789", 9), 0xe3069283u);
    cr_assert_eq(raft_crc32c_table(0, ones, 32), 0x62a8ab43u);
#ifdef __x86_64__
    cr_assert(raft_crc32c_hw_available(), "every x86-64 CPU this runs on has SSE4.2");
#endif
}

Test(codec, crc32c_matches_bitwise_reference_and_continues)
{
    uint8_t buf[301];
    for (size_t i = 0; i < sizeof(buf); i++) {
        buf[i] = (uint8_t)(i * 131 + 17);
    }
    for (size_t off = 0; off < 8; off++) { /* every alignment */
        for (size_t len = 0; len + off <= sizeof(buf); len += 7) {
            uint32_t want = crc32c_bitwise(0, buf + off, len);
            cr_assert_eq(raft_crc32c(0, buf + off, len), want, "off %zu len %zu", off, len);
            cr_assert_eq(raft_crc32c_table(0, buf + off, len), want, "off %zu len %zu", off, len);
            size_t half = len / 2;
            uint32_t c = raft_crc32c(0, buf + off, half);
            cr_assert_eq(raft_crc32c(c, buf + off + half, len - half), want);
        }
    }
}

/* ---- configuration encoding ------------------------------------------------------------------ */

static void assert_conf_roundtrip(const raft_conf_t *c)
{
    size_t size = raft_conf_encoded_size(c), len = 0;
    uint8_t *buf = malloc(size);
    cr_assert_not_null(buf);
    cr_assert_eq(raft_conf_encode(c, buf, size, &len), 0);
    cr_assert_eq(len, size);
    raft_conf_t d;
    memset(&d, 0x5a, sizeof(d));
    cr_assert_eq(raft_conf_decode(buf, len, &d), 0);
    cr_assert_eq(d.n, c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        cr_assert_eq(d.members[i].id, c->members[i].id);
        cr_assert_eq(d.members[i].voter, c->members[i].voter);
        cr_assert_str_eq(d.members[i].addr, c->members[i].addr);
    }
    /* Every shorter prefix is truncated, never accepted. */
    for (size_t cut = 0; cut < len; cut++) {
        uint8_t *p = dup_bytes(buf, cut);
        cr_assert_eq(raft_conf_decode(p, cut, &d), RAFT_ETRUNCATED, "cut %zu", cut);
        free(p);
    }
    free(buf);
}

Test(codec, conf_roundtrips)
{
    raft_conf_t c = sample_conf();
    assert_conf_roundtrip(&c);
    cr_assert_eq(raft_conf_encoded_size(&c), 1 + 3 * 11 + 17 + 17);

    memset(&c, 0, sizeof(c)); /* empty */
    assert_conf_roundtrip(&c);

    c.n = RAFT_MAX_MEMBERS; /* full, longest addresses */
    for (uint32_t i = 0; i < c.n; i++) {
        c.members[i].id = 1000 + i;
        c.members[i].voter = i % 2;
        memset(c.members[i].addr, 'a' + (int)i, RAFT_ADDR_MAX - 1);
        c.members[i].addr[RAFT_ADDR_MAX - 1] = '\0';
    }
    assert_conf_roundtrip(&c);
}

Test(codec, conf_encode_refuses_invalid)
{
    uint8_t buf[4096];
    size_t len;
    raft_conf_t c = sample_conf();
    c.members[1].id = 0;
    cr_assert_eq(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c = sample_conf();
    c.members[2].id = c.members[0].id;
    cr_assert_eq(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c = sample_conf();
    memset(c.members[0].addr, 'x', RAFT_ADDR_MAX); /* no NUL */
    cr_assert_eq(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c = sample_conf();
    c.members[0].voter = 2;
    cr_assert_eq(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c = sample_conf();
    c.n = RAFT_MAX_MEMBERS + 1;
    cr_assert_eq(raft_conf_encode(&c, buf, sizeof(buf), &len), RAFT_EINVAL);
    c = sample_conf();
    cr_assert_eq(raft_conf_encode(&c, buf, raft_conf_encoded_size(&c) - 1, &len), RAFT_ETOOBIG);
}

/* Decodes a hand-built conf from an exactly sized copy. */
static int conf_decode_bytes(const uint8_t *bytes, size_t len)
{
    uint8_t *p = dup_bytes(bytes, len);
    raft_conf_t c;
    int rc = raft_conf_decode(p, len, &c);
    free(p);
    return rc;
}

Test(codec, conf_decode_rejects_hostile_bytes)
{
    /* One member: id 5, voter, addr "ab". */
    const uint8_t good[] = {1, 5, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 'a', 'b'};
    cr_assert_eq(conf_decode_bytes(good, sizeof(good)), 0);

    uint8_t b[sizeof(good) + 1];
    memcpy(b, good, sizeof(good));
    b[sizeof(good)] = 0;
    cr_assert_eq(conf_decode_bytes(b, sizeof(good) + 1), RAFT_EMALFORMED); /* trailing */

    memcpy(b, good, sizeof(good));
    b[0] = RAFT_MAX_MEMBERS + 1;
    cr_assert_eq(conf_decode_bytes(b, sizeof(good)), RAFT_ETOOBIG);

    memcpy(b, good, sizeof(good));
    b[1] = 0; /* id 0 */
    cr_assert_eq(conf_decode_bytes(b, sizeof(good)), RAFT_EMALFORMED);

    memcpy(b, good, sizeof(good));
    b[9] = 2; /* voter neither 0 nor 1 */
    cr_assert_eq(conf_decode_bytes(b, sizeof(good)), RAFT_EMALFORMED);

    memcpy(b, good, sizeof(good));
    b[13] = '\0'; /* NUL inside the address */
    cr_assert_eq(conf_decode_bytes(b, sizeof(good)), RAFT_EMALFORMED);

    /* Address of RAFT_ADDR_MAX bytes: no room for the NUL. */
    uint8_t longaddr[12 + RAFT_ADDR_MAX];
    memset(longaddr, 'z', sizeof(longaddr));
    memcpy(longaddr, good, 10);
    longaddr[10] = RAFT_ADDR_MAX & 0xff;
    longaddr[11] = RAFT_ADDR_MAX >> 8;
    cr_assert_eq(conf_decode_bytes(longaddr, sizeof(longaddr)), RAFT_EMALFORMED);
    longaddr[10] = RAFT_ADDR_MAX - 1; /* one shorter fits, with one byte left over */
    cr_assert_eq(conf_decode_bytes(longaddr, sizeof(longaddr)), RAFT_EMALFORMED);
    cr_assert_eq(conf_decode_bytes(longaddr, sizeof(longaddr) - 1), 0);

    /* Duplicate ids. */
    const uint8_t dup[] = {2, 5, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    cr_assert_eq(conf_decode_bytes(dup, sizeof(dup)), RAFT_EMALFORMED);

    /* Address length that overruns the buffer. */
    memcpy(b, good, sizeof(good));
    b[10] = 0xff;
    b[11] = 0x00;
    cr_assert_eq(conf_decode_bytes(b, sizeof(good)), RAFT_EMALFORMED);
    b[10] = 3;
    cr_assert_eq(conf_decode_bytes(b, sizeof(good)), RAFT_ETRUNCATED);
}

/* ---- term start ------------------------------------------------------------------------------ */

Test(codec, term_start_roundtrip_and_exact_length)
{
    raft_term_start_t ts = {.leader = 0x1122334455667788ull, .stamp = 1732238850123ull}, d;
    uint8_t buf[RAFT_TERM_START_SIZE + 1];
    raft_term_start_encode(&ts, buf);
    cr_assert_eq(buf[0], 0x88); /* little-endian */
    cr_assert_eq(raft_term_start_decode(buf, RAFT_TERM_START_SIZE, &d), 0);
    cr_assert_eq(d.leader, ts.leader);
    cr_assert_eq(d.stamp, ts.stamp);
    cr_assert_eq(raft_term_start_decode(buf, RAFT_TERM_START_SIZE - 1, &d), RAFT_ETRUNCATED);
    cr_assert_eq(raft_term_start_decode(buf, 0, &d), RAFT_ETRUNCATED);
    cr_assert_eq(raft_term_start_decode(buf, RAFT_TERM_START_SIZE + 1, &d), RAFT_EMALFORMED);
}

/* ---- util.c ------------------------------------------------------------------------------------
 */

Test(util, strerror_covers_every_code)
{
#define CHECK_TEXT(name, code, text) cr_assert_str_eq(raft_strerror(RAFT_E##name), text);
    RAFT_ERRNO_MAP(CHECK_TEXT)
#undef CHECK_TEXT
    cr_assert_str_eq(raft_strerror(-1000), "unknown error");
    cr_assert_str_eq(raft_strerror(42), "unknown error");
    cr_assert_not_null(raft_strerror(0));
}

Test(util, role_and_type_names)
{
    cr_assert_str_eq(raft_role_name(RAFT_FOLLOWER), "follower");
    cr_assert_str_eq(raft_role_name(RAFT_PRECANDIDATE), "precandidate");
    cr_assert_str_eq(raft_role_name(RAFT_CANDIDATE), "candidate");
    cr_assert_str_eq(raft_role_name(RAFT_LEADER), "leader");
    cr_assert_str_eq(raft_role_name((raft_role_t)7), "unknown");
    cr_assert_str_eq(raft_msg_type_name(RAFT_MSG_APPEND_RESP), "append_resp");
    cr_assert_str_eq(raft_msg_type_name(RAFT_MSG_TIMEOUT_NOW), "timeout_now");
    for (int t = 1; t <= RAFT_MSG_TYPE_MAX; t++) {
        cr_assert_str_neq(raft_msg_type_name(t), "unknown", "type %d", t);
    }
    cr_assert_str_eq(raft_msg_type_name(0), "unknown");
    cr_assert_str_eq(raft_msg_type_name(RAFT_MSG_TYPE_MAX + 1), "unknown");
    cr_assert_str_eq(raft_msg_type_name(-1), "unknown");
}

Test(util, conf_find_and_voters)
{
    raft_conf_t c = sample_conf();
    cr_assert_eq(raft_conf_voters(&c), 2);
    cr_assert_eq(raft_conf_find(&c, 2), &c.members[1]);
    cr_assert_eq(raft_conf_find(&c, 0xffffffffffffffffull), &c.members[2]);
    cr_assert_null(raft_conf_find(&c, 3));
    cr_assert_null(raft_conf_find(&c, 0));
    /* Members past n are not part of the configuration. */
    c.members[3] = (raft_member_t){.id = 9, .voter = 1};
    cr_assert_null(raft_conf_find(&c, 9));
    cr_assert_eq(raft_conf_voters(&c), 2);
    memset(&c, 0, sizeof(c));
    cr_assert_eq(raft_conf_voters(&c), 0);
}
