/* codec.c — the wire format of Raft messages between electd peers, and the payload
 * encodings of CONF and NOOP log entries. Decoding treats every byte as hostile: each read
 * is bounds-checked against the frame, every count and length against a named limit.
 *
 * ALL INTEGERS ARE LITTLE-ENDIAN, FIXED WIDTH. Offsets are from the start of the frame.
 *
 * FRAME (one raft_msg_t)
 *
 *   offset  size  field       meaning / rule
 *   ------  ----  ----------  -----------------------------------------------------------
 *        0     4  length      bytes that follow this field, CRC included;
 *                             FRAME_BODY_MIN (88) <= length <= RAFT_FRAME_MAX - 4
 *        4     1  version     RAFT_CODEC_VERSION (1); checked before the CRC, so a later
 *                             version is free to change everything after this byte
 *        5     1  type        raft_msg_type_t, 1 .. RAFT_MSG_TYPE_MAX
 *        6     1  flags       RAFT_FLAG_* bits; any bit outside RAFT_FLAGS_ALL is rejected
 *        7     8  from        sender id
 *       15     8  to          recipient id
 *       23     8  term
 *       31     8  index       \
 *       39     8  log_term     |  meaning by type: see raft_msg_t in raft.h
 *       47     8  commit       |
 *       55     8  hint         |
 *       63     8  ctx         /   (heartbeat round)
 *       71     4  n_entries   <= RAFT_MSG_ENTRIES_MAX
 *       75     *  entries     n_entries ENTRY records, back to back
 *        *     8  snap_size   SNAPSHOT: total bytes of the snapshot
 *        *     4  data_len    bytes of snapshot chunk data that follow
 *        *     *  data        data_len bytes
 *        *     1  has_conf    0 = no configuration, 1 = a CONF encoding follows
 *        *     *  conf        CONF encoding (below), only when has_conf = 1
 *   end-4      4  crc         CRC32C (Castagnoli) of bytes [4, end-4): everything after
 *                             the length field up to the CRC
 *
 *   The frame ends exactly after the CRC: bytes between the last field and the CRC are
 *   rejected. The smallest frame (no entries, no data, no conf) is 92 bytes.
 *
 * ENTRY record (inside a frame)
 *
 *   size  field  rule
 *   ----  -----  ---------------------------------------------------------------------------
 *      8  term
 *      8  index
 *      1  type   raft_entry_type_t: 0 normal, 1 noop, 2 conf; anything else is rejected
 *      4  len    <= RAFT_ENTRY_MAX
 *      *  data   len bytes
 *
 * CONF encoding (a raft_conf_t: the data of CONF entries, and a frame's conf)
 *
 *   size  field     rule
 *   ----  --------  ----------------------------------------------------------------------
 *      1  n         members that follow, <= RAFT_MAX_MEMBERS
 *   then n times:
 *      8  id        != 0, unique within the configuration
 *      1  voter     0 learner, 1 voter; anything else is rejected
 *      2  addr_len  < RAFT_ADDR_MAX (room for the NUL the decoder adds)
 *      *  addr      addr_len bytes, none of them NUL
 *
 * TERM-START encoding (the data of NOOP entries): exactly 16 bytes.
 *
 *   size  field
 *   ----  ------
 *      8  leader
 *      8  stamp
 *
 * Every encoding is canonical: one value has exactly one encoding, so decoding then
 * re-encoding reproduces the input byte for byte (the fuzz target checks this).
 */
#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "raft.h"

#include "bytes.h"

/* Sizes of the fixed parts described in the tables above. */
enum {
    FRAME_HEAD_SIZE = 4 + 1 + 1 + 1 + 8 * 8 + 4, /* length .. n_entries */
    FRAME_TAIL_SIZE = 8 + 4 + 1 + 4,             /* snap_size, data_len, has_conf, crc */
    FRAME_MIN_SIZE = FRAME_HEAD_SIZE + FRAME_TAIL_SIZE,
    FRAME_BODY_MIN = FRAME_MIN_SIZE - RAFT_FRAME_HEADER,
    FRAME_CRC_SIZE = 4,
    ENTRY_HEAD_SIZE = 8 + 8 + 1 + 4,
    CONF_HEAD_SIZE = 1,
    MEMBER_HEAD_SIZE = 8 + 1 + 2,
};

/* ---- writing ---------------------------------------------------------------------------
 * The encoders size the output first and check it against the caller's capacity, so the
 * writer only asserts: running past the end would be a sizing bug here, not bad input. */

struct writer {
    uint8_t *p;
    size_t pos;
    size_t cap;
};

static void put_bytes(struct writer *w, const void *src, size_t n)
{
    assert(w->pos <= w->cap && n <= w->cap - w->pos);
    if (n > 0) {
        memcpy(w->p + w->pos, src, n);
    }
    w->pos += n;
}

static void put_le(struct writer *w, uint64_t v, size_t width)
{
    assert(w->pos <= w->cap && width <= w->cap - w->pos);
    base_le_store(w->p + w->pos, v, width);
    w->pos += width;
}

static void put_u8(struct writer *w, uint8_t v)
{
    put_le(w, v, 1);
}

static void put_u16(struct writer *w, uint16_t v)
{
    put_le(w, v, 2);
}

static void put_u32(struct writer *w, uint32_t v)
{
    put_le(w, v, 4);
}

static void put_u64(struct writer *w, uint64_t v)
{
    put_le(w, v, 8);
}

/* ---- reading ---------------------------------------------------------------------------
 * A read past the end sets `short_read` and yields zeros; callers check the flag once per
 * record rather than after every field. Nothing is ever read outside p[0..len). */

struct reader {
    const uint8_t *p;
    size_t pos;
    size_t len;
    bool short_read;
};

static bool have(struct reader *r, size_t n)
{
    if (r->short_read || n > r->len - r->pos) {
        r->short_read = true;
        return false;
    }
    return true;
}

static uint64_t get_le(struct reader *r, size_t width)
{
    if (!have(r, width)) {
        return 0;
    }
    uint64_t v = base_le_load(r->p + r->pos, width);
    r->pos += width;
    return v;
}

static uint8_t get_u8(struct reader *r)
{
    return (uint8_t)get_le(r, 1);
}

static uint16_t get_u16(struct reader *r)
{
    return (uint16_t)get_le(r, 2);
}

static uint32_t get_u32(struct reader *r)
{
    return (uint32_t)get_le(r, 4);
}

static uint64_t get_u64(struct reader *r)
{
    return get_le(r, 8);
}

/* Returns a pointer to the next n bytes and skips them, or NULL (and short_read). */
static const uint8_t *get_bytes(struct reader *r, size_t n)
{
    if (!have(r, n)) {
        return NULL;
    }
    const uint8_t *at = r->p + r->pos;
    r->pos += n;
    return at;
}

/* Adds without wrapping: a size that saturates is simply "too big" to every caller. */
static size_t add_sat(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* ---- configuration ----------------------------------------------------------------------- */

/* Length of a member's address, or RAFT_ADDR_MAX when it has no NUL within the array. */
static size_t addr_len(const raft_member_t *mb)
{
    const void *nul = memchr(mb->addr, '\0', RAFT_ADDR_MAX);
    return nul == NULL ? RAFT_ADDR_MAX : (size_t)((const char *)nul - mb->addr);
}

size_t raft_conf_encoded_size(const raft_conf_t *c)
{
    assert(c != NULL);
    size_t size = CONF_HEAD_SIZE;
    uint32_t n = c->n < RAFT_MAX_MEMBERS ? c->n : RAFT_MAX_MEMBERS;
    for (uint32_t i = 0; i < n; i++) {
        size += MEMBER_HEAD_SIZE + addr_len(&c->members[i]);
    }
    return size;
}

/* The rules the decoder enforces, applied to an in-memory conf before it is encoded, so
 * this node never sends what its peers would reject. */
static bool conf_valid(const raft_conf_t *c)
{
    if (c->n > RAFT_MAX_MEMBERS) {
        return false;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        const raft_member_t *mb = &c->members[i];
        if (mb->id == 0 || mb->voter > 1 || addr_len(mb) >= RAFT_ADDR_MAX) {
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (c->members[j].id == mb->id) {
                return false;
            }
        }
    }
    return true;
}

static void conf_put(struct writer *w, const raft_conf_t *c)
{
    put_u8(w, (uint8_t)c->n);
    for (uint32_t i = 0; i < c->n; i++) {
        const raft_member_t *mb = &c->members[i];
        size_t alen = addr_len(mb);
        put_u64(w, mb->id);
        put_u8(w, mb->voter);
        put_u16(w, (uint16_t)alen);
        put_bytes(w, mb->addr, alen);
    }
}

int raft_conf_encode(const raft_conf_t *c, uint8_t *buf, size_t cap, size_t *len)
{
    if (c == NULL || len == NULL || (buf == NULL && cap > 0) || !conf_valid(c)) {
        return RAFT_EINVAL;
    }
    size_t size = raft_conf_encoded_size(c);
    if (size > cap) {
        return RAFT_ETOOBIG;
    }
    struct writer w = {buf, 0, cap};
    conf_put(&w, c);
    assert(w.pos == size);
    *len = size;
    return 0;
}

/* Parses one CONF encoding at r's position into c (which it zeroes first, so unused member
 * slots and address tails compare equal). A short read is reported through r->short_read
 * and RAFT_ETRUNCATED; the caller decides what running out of bytes means in its context. */
static int conf_get(struct reader *r, raft_conf_t *c)
{
    memset(c, 0, sizeof(*c));
    uint8_t n = get_u8(r);
    if (r->short_read) {
        return RAFT_ETRUNCATED;
    }
    if (n > RAFT_MAX_MEMBERS) {
        return RAFT_ETOOBIG;
    }
    for (uint32_t i = 0; i < n; i++) {
        raft_member_t *mb = &c->members[i];
        mb->id = get_u64(r);
        mb->voter = get_u8(r);
        uint16_t alen = get_u16(r);
        if (r->short_read) {
            return RAFT_ETRUNCATED;
        }
        if (mb->id == 0 || mb->voter > 1 || alen >= RAFT_ADDR_MAX) {
            return RAFT_EMALFORMED;
        }
        const uint8_t *addr = get_bytes(r, alen);
        if (addr == NULL) {
            return RAFT_ETRUNCATED;
        }
        /* An embedded NUL would silently shorten the address: reject, keep it canonical. */
        if (memchr(addr, '\0', alen) != NULL) {
            return RAFT_EMALFORMED;
        }
        memcpy(mb->addr, addr, alen);
        for (uint32_t j = 0; j < i; j++) {
            if (c->members[j].id == mb->id) {
                return RAFT_EMALFORMED;
            }
        }
    }
    c->n = n;
    return 0;
}

int raft_conf_decode(const uint8_t *buf, size_t len, raft_conf_t *c)
{
    if ((buf == NULL && len > 0) || c == NULL) {
        return RAFT_EINVAL;
    }
    struct reader r = {buf, 0, len, false};
    int rc = conf_get(&r, c);
    if (rc == 0 && r.pos != len) {
        rc = RAFT_EMALFORMED; /* trailing bytes */
    }
    if (rc != 0) {
        memset(c, 0, sizeof(*c));
    }
    return rc;
}

/* ---- term start --------------------------------------------------------------------------- */

void raft_term_start_encode(const raft_term_start_t *ts, uint8_t buf[RAFT_TERM_START_SIZE])
{
    assert(ts != NULL && buf != NULL);
    struct writer w = {buf, 0, RAFT_TERM_START_SIZE};
    put_u64(&w, ts->leader);
    put_u64(&w, ts->stamp);
}

int raft_term_start_decode(const uint8_t *buf, size_t len, raft_term_start_t *ts)
{
    if ((buf == NULL && len > 0) || ts == NULL) {
        return RAFT_EINVAL;
    }
    if (len < RAFT_TERM_START_SIZE) {
        return RAFT_ETRUNCATED;
    }
    if (len > RAFT_TERM_START_SIZE) {
        return RAFT_EMALFORMED;
    }
    struct reader r = {buf, 0, len, false};
    ts->leader = get_u64(&r);
    ts->stamp = get_u64(&r);
    assert(!r.short_read);
    return 0;
}

/* ---- messages ----------------------------------------------------------------------------- */

size_t raft_msg_encoded_size(const raft_msg_t *m)
{
    assert(m != NULL);
    size_t size = FRAME_MIN_SIZE;
    if (m->entries != NULL) {
        for (uint32_t i = 0; i < m->n_entries; i++) {
            size = add_sat(size, add_sat(ENTRY_HEAD_SIZE, m->entries[i].len));
        }
    }
    size = add_sat(size, m->len);
    if (m->conf != NULL) {
        size = add_sat(size, raft_conf_encoded_size(m->conf));
    }
    return size;
}

/* Structural checks only (what the decoder would reject); whether a message makes sense
 * for the receiver's state is raft_step's business. */
static int msg_check(const raft_msg_t *m)
{
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || (m->flags & ~RAFT_FLAGS_ALL) != 0) {
        return RAFT_EINVAL;
    }
    if (m->n_entries > RAFT_MSG_ENTRIES_MAX) {
        return RAFT_ETOOBIG;
    }
    if (m->n_entries > 0 && m->entries == NULL) {
        return RAFT_EINVAL;
    }
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry_t *e = &m->entries[i];
        if (e->type > RAFT_ENTRY_CONF || (e->len > 0 && e->data == NULL)) {
            return RAFT_EINVAL;
        }
        if (e->len > RAFT_ENTRY_MAX) {
            return RAFT_ETOOBIG;
        }
    }
    if (m->len > 0 && m->data == NULL) {
        return RAFT_EINVAL;
    }
    if (m->conf != NULL && !conf_valid(m->conf)) {
        return RAFT_EINVAL;
    }
    return 0;
}

int raft_msg_encode(const raft_msg_t *m, uint8_t *buf, size_t cap, size_t *len)
{
    if (m == NULL || len == NULL || (buf == NULL && cap > 0)) {
        return RAFT_EINVAL;
    }
    int rc = msg_check(m);
    if (rc != 0) {
        return rc;
    }
    size_t size = raft_msg_encoded_size(m);
    if (size > RAFT_FRAME_MAX || size > cap) {
        return RAFT_ETOOBIG;
    }

    struct writer w = {buf, 0, cap};
    put_u32(&w, (uint32_t)(size - RAFT_FRAME_HEADER));
    put_u8(&w, RAFT_CODEC_VERSION);
    put_u8(&w, m->type);
    put_u8(&w, m->flags);
    put_u64(&w, m->from);
    put_u64(&w, m->to);
    put_u64(&w, m->term);
    put_u64(&w, m->index);
    put_u64(&w, m->log_term);
    put_u64(&w, m->commit);
    put_u64(&w, m->hint);
    put_u64(&w, m->ctx);
    put_u32(&w, m->n_entries);
    for (uint32_t i = 0; i < m->n_entries; i++) {
        const raft_entry_t *e = &m->entries[i];
        put_u64(&w, e->term);
        put_u64(&w, e->index);
        put_u8(&w, e->type);
        put_u32(&w, e->len);
        put_bytes(&w, e->data, e->len);
    }
    put_u64(&w, m->snap_size);
    put_u32(&w, m->len);
    put_bytes(&w, m->data, m->len);
    put_u8(&w, m->conf != NULL);
    if (m->conf != NULL) {
        conf_put(&w, m->conf);
    }
    put_u32(&w, raft_crc32c(0, buf + RAFT_FRAME_HEADER, w.pos - RAFT_FRAME_HEADER));
    assert(w.pos == size);
    *len = size;
    return 0;
}

/* The length prefix's rules, shared by raft_frame_len and raft_msg_decode. */
static int frame_len_check(uint32_t body, size_t *frame_len)
{
    if (body > RAFT_FRAME_MAX - RAFT_FRAME_HEADER) {
        return RAFT_ETOOBIG;
    }
    if (body < FRAME_BODY_MIN) {
        return RAFT_EMALFORMED;
    }
    *frame_len = (size_t)body + RAFT_FRAME_HEADER;
    return 0;
}

int raft_frame_len(const uint8_t *buf, size_t avail, size_t *frame_len)
{
    if ((buf == NULL && avail > 0) || frame_len == NULL) {
        return RAFT_EINVAL;
    }
    if (avail < RAFT_FRAME_HEADER) {
        return RAFT_ETRUNCATED;
    }
    return frame_len_check(base_le_load32(buf), frame_len);
}

/* Parses the fields of a frame whose length, version and CRC were already checked. r
 * covers [after version .. before CRC). Allocates m->entries and m->conf; on error the
 * caller releases them. */
static int msg_fields_get(struct reader *r, raft_msg_t *m)
{
    m->type = get_u8(r);
    m->flags = get_u8(r);
    m->from = get_u64(r);
    m->to = get_u64(r);
    m->term = get_u64(r);
    m->index = get_u64(r);
    m->log_term = get_u64(r);
    m->commit = get_u64(r);
    m->hint = get_u64(r);
    m->ctx = get_u64(r);
    uint32_t n_entries = get_u32(r);
    if (r->short_read) {
        return RAFT_EMALFORMED; /* cannot happen past the minimum-length check; be safe */
    }
    if (m->type < 1 || m->type > RAFT_MSG_TYPE_MAX || (m->flags & ~RAFT_FLAGS_ALL) != 0) {
        return RAFT_EMALFORMED;
    }
    if (n_entries > RAFT_MSG_ENTRIES_MAX) {
        return RAFT_ETOOBIG;
    }
    /* Every entry needs at least its header: refuse a count the frame cannot hold before
     * allocating for it. */
    if (n_entries > (r->len - r->pos) / ENTRY_HEAD_SIZE) {
        return RAFT_EMALFORMED;
    }
    if (n_entries > 0) {
        m->entries = calloc(n_entries, sizeof(*m->entries));
        if (m->entries == NULL) {
            return RAFT_ENOMEM;
        }
        m->n_entries = n_entries;
    }
    for (uint32_t i = 0; i < n_entries; i++) {
        raft_entry_t *e = &m->entries[i];
        e->term = get_u64(r);
        e->index = get_u64(r);
        e->type = get_u8(r);
        e->len = get_u32(r);
        if (r->short_read) {
            return RAFT_EMALFORMED;
        }
        if (e->type > RAFT_ENTRY_CONF) {
            return RAFT_EMALFORMED;
        }
        if (e->len > RAFT_ENTRY_MAX) {
            return RAFT_ETOOBIG;
        }
        const uint8_t *data = get_bytes(r, e->len);
        if (data == NULL) {
            return RAFT_EMALFORMED; /* entry overruns the frame */
        }
        /* raft_entry_t.data is not const, but decoded entries are only read: the header's
         * contract says data points into the caller's (const) buffer. */
        e->data = e->len > 0 ? (uint8_t *)(uintptr_t)data : NULL;
    }
    m->snap_size = get_u64(r);
    m->len = get_u32(r);
    if (r->short_read) {
        return RAFT_EMALFORMED;
    }
    const uint8_t *data = get_bytes(r, m->len);
    if (data == NULL) {
        return RAFT_EMALFORMED;
    }
    m->data = m->len > 0 ? data : NULL;
    uint8_t has_conf = get_u8(r);
    if (r->short_read || has_conf > 1) {
        return RAFT_EMALFORMED;
    }
    if (has_conf) {
        m->conf = malloc(sizeof(*m->conf));
        if (m->conf == NULL) {
            return RAFT_ENOMEM;
        }
        int rc = conf_get(r, m->conf);
        if (rc != 0) {
            /* Inside a frame of known length a short conf is malformed, not truncated. */
            return rc == RAFT_ETRUNCATED ? RAFT_EMALFORMED : rc;
        }
    }
    if (r->pos != r->len) {
        return RAFT_EMALFORMED; /* bytes between the last field and the CRC */
    }
    return 0;
}

int raft_msg_decode(const uint8_t *buf, size_t len, raft_msg_t *m)
{
    if ((buf == NULL && len > 0) || m == NULL) {
        return RAFT_EINVAL;
    }
    memset(m, 0, sizeof(*m));
    if (len < RAFT_FRAME_HEADER) {
        return RAFT_ETRUNCATED;
    }
    size_t frame_len;
    int rc = frame_len_check(base_le_load32(buf), &frame_len);
    if (rc != 0) {
        return rc;
    }
    if (len < frame_len) {
        return RAFT_ETRUNCATED;
    }
    if (len > frame_len) {
        return RAFT_EMALFORMED; /* the caller must pass exactly one frame */
    }
    if (buf[RAFT_FRAME_HEADER] != RAFT_CODEC_VERSION) {
        return RAFT_EVERSION;
    }
    size_t crc_at = len - FRAME_CRC_SIZE;
    uint32_t crc = raft_crc32c(0, buf + RAFT_FRAME_HEADER, crc_at - RAFT_FRAME_HEADER);
    if (crc != base_le_load32(buf + crc_at)) {
        return RAFT_ECHECKSUM;
    }
    struct reader r = {buf, RAFT_FRAME_HEADER + 1, crc_at, false};
    rc = msg_fields_get(&r, m);
    if (rc != 0) {
        raft_msg_free(m);
        memset(m, 0, sizeof(*m));
    }
    return rc;
}

void raft_msg_free(raft_msg_t *m)
{
    if (m == NULL) {
        return;
    }
    free(m->entries);
    free(m->conf);
    m->entries = NULL;
    m->n_entries = 0;
    m->conf = NULL;
}
