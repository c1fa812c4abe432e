/* bytes.h — little-endian loads and stores, the byte order of every format electd writes
 * (peer frames, the handshake, SQLite command blobs). Header-only; byte by byte, so any
 * alignment is fine and the host's own order does not matter. */
#ifndef ELECTD_BASE_BYTES_H
#define ELECTD_BASE_BYTES_H

#include <stddef.h>
#include <stdint.h>

/* Stores the low `width` bytes of v at p, least significant first. width <= 8. */
static inline void base_le_store(uint8_t *p, uint64_t v, size_t width)
{
    for (size_t i = 0; i < width; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Loads `width` bytes at p, least significant first. width <= 8. */
static inline uint64_t base_le_load(const uint8_t *p, size_t width)
{
    uint64_t v = 0;
    for (size_t i = width; i > 0; i--)
        v = (v << 8) | p[i - 1];
    return v;
}

static inline void base_le_store16(uint8_t *p, uint16_t v)
{
    base_le_store(p, v, 2);
}
static inline void base_le_store32(uint8_t *p, uint32_t v)
{
    base_le_store(p, v, 4);
}
static inline void base_le_store64(uint8_t *p, uint64_t v)
{
    base_le_store(p, v, 8);
}
static inline uint16_t base_le_load16(const uint8_t *p)
{
    return (uint16_t)base_le_load(p, 2);
}
static inline uint32_t base_le_load32(const uint8_t *p)
{
    return (uint32_t)base_le_load(p, 4);
}
static inline uint64_t base_le_load64(const uint8_t *p)
{
    return base_le_load(p, 8);
}

#endif
