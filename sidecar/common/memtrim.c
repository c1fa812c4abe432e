/* memtrim.c — hands back the pages of code an idle member no longer runs (common.h). */
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common.h"

/* dl_iterate_phdr(): the read-only loaded segments of every object (code and constants:
 * never written, so each page is the file's clean copy in the page cache). MADV_RANDOM first:
 * a page touched again comes back alone, not with the fault-around of its neighbours. */
static int trim_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t page = (uintptr_t)data;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W) || ph->p_memsz == 0)
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        (void)madvise((void *)lo, hi - lo, MADV_RANDOM);
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    return 0;
}

void sidecar_trim_code(void)
{
    dl_iterate_phdr(trim_cb, (void *)(uintptr_t)sysconf(_SC_PAGESIZE));
}
