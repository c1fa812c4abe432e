/* clock.c — the boot-time clock of every lease deadline (see common.h). */
#include "common.h"

#include <time.h>

uint64_t sidecar_clock_boot_ns(void)
{
    /* CLOCK_BOOTTIME counts the time a host spends suspended; CLOCK_MONOTONIC (libuv's clock)
     * stops. Followers' election timers see the suspended time pass (they were not
     * suspended), so a lease that did not count it would outlive what they granted. */
    struct timespec ts;
    clock_gettime(CLOCK_BOOTTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
