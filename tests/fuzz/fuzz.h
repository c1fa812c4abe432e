/* fuzz.h — what a fuzz target in tests/fuzz/ provides, for libFuzzer and for the replay
 * driver (replay_main.c) that runs the same target as a bounded CTest test.
 *
 * A target defines LLVMFuzzerTestOneInput(), which must accept any bytes, must not leak,
 * and calls abort() when it finds a property broken (libFuzzer and the replay driver
 * both treat that as a crash and save the input).
 *
 * Optionally it also defines fuzz_seed(), handing out valid inputs for the driver to
 * mutate (and for run.sh to put in libFuzzer's starting corpus). Without it the driver
 * mutates the files of tests/fuzz/corpus/<target>/ if that directory exists, and random
 * bytes otherwise.
 */
#ifndef ELECTD_FUZZ_H
#define ELECTD_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_SEED_MAX (64 * 1024) /* bytes of one seed or corpus file the driver keeps */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes seed number i (0, 1, 2, ...) into buf[0..cap) and returns its length; returns 0
 * when there is no seed i (the driver stops asking at the first 0). */
size_t fuzz_seed(unsigned i, uint8_t *buf, size_t cap);

#endif
