/* json_check.h — a strict check that bytes are one JSON document as RFC 8259 asks: valid
 * UTF-8 (no overlong forms, surrogates or code points past U+10FFFF; cJSON alone accepts any
 * byte inside a string), nothing after the value, and no object with the same name twice.
 * Header-only, for the tests and fuzz targets that check what electd sends. */
#ifndef ELECTD_TESTS_JSON_CHECK_H
#define ELECTD_TESTS_JSON_CHECK_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Length of the well-formed UTF-8 sequence at s (RFC 3629 table 3-7), 0 if there is none. */
static inline size_t json_check_utf8_len(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    if (c < 0x80)
        return 1;
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || len > n)
        return 0;
    uint8_t lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    uint8_t hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < len; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    return len;
}

static inline bool json_check_utf8(const void *data, size_t n)
{
    const uint8_t *s = data;
    for (size_t i = 0, len; i < n; i += len)
        if ((len = json_check_utf8_len(s + i, n - i)) == 0)
            return false;
    return true;
}

/* No object in the tree has a member name twice. */
static inline bool json_check_unique(const cJSON *v)
{
    for (const cJSON *a = v ? v->child : NULL; a != NULL; a = a->next) {
        if (cJSON_IsObject(v))
            for (const cJSON *b = a->next; b != NULL; b = b->next)
                if (a->string && b->string && strcmp(a->string, b->string) == 0)
                    return false;
        if (!json_check_unique(a))
            return false;
    }
    return true;
}

/* The parsed document (release with cJSON_Delete), or NULL when the bytes are not one strict
 * JSON document. */
static inline cJSON *json_check_parse(const char *data, size_t n)
{
    if (!json_check_utf8(data, n) || memchr(data, '\0', n) != NULL)
        return NULL;
    const char *end = NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(data, n, &end, false);
    if (o == NULL)
        return NULL;
    while (end < data + n && (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n'))
        end++;
    if (end != data + n || !json_check_unique(o)) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

#endif
