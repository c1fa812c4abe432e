/* vec.h — the one growable-array helper: reserve room for `need` items in an array that
 * doubles when full. Header-only. */
#ifndef ELECTD_BASE_VEC_H
#define ELECTD_BASE_VEC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Makes *arrp (an array of item_size-byte items with capacity *cap) hold at least `need`
 * items: doubles from max(*cap, min_cap) until it fits, reallocating once. Returns 0, or -1
 * when memory runs out or the size would overflow; the array and *cap are unchanged then.
 * arrp points at the caller's array pointer (use BASE_VEC_RESERVE). */
static inline int base_vec_reserve(void *arrp, size_t *cap, size_t need, size_t item_size,
                                   size_t min_cap)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap > min_cap ? *cap : (min_cap ? min_cap : 1);
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return -1;
        n *= 2;
    }
    if (n > SIZE_MAX / item_size)
        return -1;
    void *arr;
    memcpy(&arr, arrp, sizeof(arr)); /* the caller's pointer, whatever its item type */
    void *grown = realloc(arr, n * item_size);
    if (grown == NULL)
        return -1;
    memcpy(arrp, &grown, sizeof(grown));
    *cap = n;
    return 0;
}

/* BASE_VEC_RESERVE(items, cap, need, min_cap): items is a T *, cap a size_t lvalue. */
#define BASE_VEC_RESERVE(items, cap, need, min_cap)                                                \
    base_vec_reserve(&(items), &(cap), (need), sizeof(*(items)), (min_cap))

#endif
