/* raft_log.c — the in-memory Raft log between the last compaction point and the last index.
 * Entry payloads are reference counted (see raft_int.h) so borrowed copies survive
 * truncation and compaction until the batch that borrowed them is done. */
#include "raft_int.h"

#include <stddef.h>

struct data_hdr {
    uint32_t refs;
    uint32_t len;
    max_align_t align[]; /* payload follows, suitably aligned */
};

static struct data_hdr *hdr_of(uint8_t *data)
{
    return (struct data_hdr *)(data - offsetof(struct data_hdr, align));
}

uint8_t *raft_entry_data_new(const void *src, uint32_t len)
{
    struct data_hdr *h = malloc(sizeof(*h) + (len ? len : 1));
    if (h == NULL)
        return NULL;
    h->refs = 1;
    h->len = len;
    uint8_t *data = (uint8_t *)h->align;
    if (len > 0)
        memcpy(data, src, len);
    return data;
}

uint8_t *raft_entry_data_ref(uint8_t *data)
{
    if (data != NULL)
        hdr_of(data)->refs++;
    return data;
}

void raft_entry_data_unref(uint8_t *data)
{
    if (data == NULL)
        return;
    struct data_hdr *h = hdr_of(data);
    assert(h->refs > 0);
    if (--h->refs == 0)
        free(h);
}

void raft_log_open(struct raft_log *l, uint64_t prev_index, uint64_t prev_term)
{
    memset(l, 0, sizeof(*l));
    l->prev_index = prev_index;
    l->prev_term = prev_term;
    l->offset = prev_index + 1;
    l->unstable = prev_index + 1;
}

void raft_log_close(struct raft_log *l)
{
    for (size_t i = 0; i < l->n; i++)
        raft_entry_data_unref(l->ents[i].data);
    free(l->ents);
    memset(l, 0, sizeof(*l));
}

uint64_t raft_log_last_index(const struct raft_log *l)
{
    return l->offset + l->n - 1;
}

uint64_t raft_log_last_term(const struct raft_log *l)
{
    return l->n > 0 ? l->ents[l->n - 1].term : l->prev_term;
}

int raft_log_term(const struct raft_log *l, uint64_t index, uint64_t *term)
{
    if (index == l->prev_index) {
        *term = l->prev_term;
        return 0;
    }
    if (index < l->prev_index)
        return RAFT_ECOMPACTED;
    if (index > raft_log_last_index(l))
        return RAFT_EUNAVAILABLE;
    *term = l->ents[index - l->offset].term;
    return 0;
}

uint64_t raft_log_term_or0(const struct raft_log *l, uint64_t index)
{
    uint64_t t = 0;
    return raft_log_term(l, index, &t) == 0 ? t : 0;
}

raft_entry_t *raft_log_get(const struct raft_log *l, uint64_t index)
{
    if (index < l->offset || index > raft_log_last_index(l))
        return NULL;
    return &l->ents[index - l->offset];
}

int raft_log_append(struct raft_log *l, const raft_entry_t *e)
{
    assert(e->index == raft_log_last_index(l) + 1);
    if (BASE_VEC_RESERVE(l->ents, l->cap, l->n + 1, 64) != 0)
        return RAFT_ENOMEM;
    l->ents[l->n] = *e;
    l->ents[l->n].data = raft_entry_data_ref(e->data);
    l->n++;
    return 0;
}

void raft_log_truncate(struct raft_log *l, uint64_t index)
{
    assert(index > l->prev_index);
    while (l->n > 0 && raft_log_last_index(l) >= index) {
        raft_entry_data_unref(l->ents[l->n - 1].data);
        l->n--;
    }
    if (index < l->unstable)
        l->unstable = index; /* handed out but replaced: persist the new ones again */
}

void raft_log_compact(struct raft_log *l, uint64_t index)
{
    if (index <= l->prev_index)
        return;
    assert(index <= raft_log_last_index(l));
    size_t drop = index - l->offset + 1;
    l->prev_term = l->ents[drop - 1].term;
    l->prev_index = index;
    for (size_t i = 0; i < drop; i++)
        raft_entry_data_unref(l->ents[i].data);
    memmove(l->ents, l->ents + drop, (l->n - drop) * sizeof(*l->ents));
    l->n -= drop;
    l->offset = index + 1;
    if (l->unstable < l->offset)
        l->unstable = l->offset;
    /* Give memory back after a large compaction: an idle node should stay small. */
    if (l->cap > 256 && l->n < l->cap / 4) {
        size_t cap = l->n > 64 ? l->n * 2 : 64;
        raft_entry_t *ents = realloc(l->ents, cap * sizeof(*ents));
        if (ents != NULL) {
            l->ents = ents;
            l->cap = cap;
        }
    }
}

void raft_log_reset(struct raft_log *l, uint64_t index, uint64_t term)
{
    for (size_t i = 0; i < l->n; i++)
        raft_entry_data_unref(l->ents[i].data);
    l->n = 0;
    l->prev_index = index;
    l->prev_term = term;
    l->offset = index + 1;
    l->unstable = index + 1;
}

int raft_log_slice(const struct raft_log *l, uint64_t lo, uint64_t hi, size_t max_bytes,
                   raft_entry_t **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (lo > hi)
        return 0;
    if (lo < l->offset)
        return RAFT_ECOMPACTED;
    if (hi > raft_log_last_index(l))
        return RAFT_EUNAVAILABLE;
    size_t count = 0;
    size_t bytes = 0;
    for (uint64_t i = lo; i <= hi; i++) {
        const raft_entry_t *e = &l->ents[i - l->offset];
        /* Always at least one entry, so progress is made whatever max_bytes says. */
        if (count > 0 && (bytes + e->len > max_bytes || count >= RAFT_MSG_ENTRIES_MAX))
            break;
        bytes += e->len;
        count++;
    }
    raft_entry_t *ents = malloc(count * sizeof(*ents));
    if (ents == NULL)
        return RAFT_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        ents[i] = l->ents[lo - l->offset + i];
        ents[i].data = raft_entry_data_ref(ents[i].data);
    }
    *out = ents;
    *n = count;
    return 0;
}

void raft_entries_free(raft_entry_t *ents, size_t n)
{
    for (size_t i = 0; i < n; i++)
        raft_entry_data_unref(ents[i].data);
    free(ents);
}
