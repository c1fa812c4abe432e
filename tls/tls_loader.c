/* tls_loader.c — tls.h for electd without OpenSSL inside it: every function forwards to the
 * engine in the module electd-tls.so, which the first tls_ctx_open() loads with dlopen()
 * (RTLD_LOCAL: its libssl and libcrypto stay private to it). A member that configures no
 * TLS never maps OpenSSL's TLS code and keeps the RSS it had without TLS (docs/security.md,
 * "Memory"). Where the module is looked for: $ELECTD_TLS_MODULE when set (that path only),
 * else next to the executable (/proc/self/exe: the build tree, or a relocated install),
 * else ELECTD_TLS_MODULE_DIR, the install directory given at build time. A context or
 * session exists only once the module is loaded; before that the other functions see NULL
 * and answer as the engine does for NULL. Not thread-safe before the first context. */
#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <sys/mman.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tls_module.h"

#ifndef ELECTD_TLS_MODULE_DIR
#define ELECTD_TLS_MODULE_DIR "/usr/local/lib/electd"
#endif

static const struct tls_module *mod;

/* dlopen()s path and checks its table; on failure `why` gets the reason. */
static const struct tls_module *module_try(const char *path, char *why, size_t len)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(why, len, "%s", e ? e : "dlopen failed");
        return NULL;
    }
    const struct tls_module *m = dlsym(h, TLS_MODULE_SYMBOL);
    if (!m) {
        snprintf(why, len, "no symbol %s in it", TLS_MODULE_SYMBOL);
    } else if (m->abi != TLS_MODULE_ABI || m->table_size != sizeof(*m) ||
               m->config_size != sizeof(tls_config_t)) {
        snprintf(why, len, "it was built for another electd (module ABI %u, expected %u)",
                 (unsigned)m->abi, TLS_MODULE_ABI);
        m = NULL;
    }
    if (!m)
        dlclose(h);
    return m; /* never closed once in use: contexts and sessions live in it */
}

/* The directory of the running executable, or "" when /proc is not mounted. */
static void exe_dir(char *out, size_t len)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    out[0] = '\0';
    if (n <= 0)
        return;
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash)
        *slash = '\0';
    snprintf(out, len, "%s", exe);
}

static int module_load(char *err, size_t errlen)
{
    char path[PATH_MAX + 32], why[512] = "", dir[PATH_MAX];
    const char *env = getenv(TLS_MODULE_ENV);
    const char *hint = "";
    if (env && *env) {
        snprintf(path, sizeof(path), "%s", env);
        mod = module_try(path, why, sizeof(why));
    } else {
        exe_dir(dir, sizeof(dir));
        snprintf(path, sizeof(path), "%s/%s", dir, TLS_MODULE_FILE);
        if (dir[0] && access(path, F_OK) == 0) {
            mod = module_try(path, why, sizeof(why));
        } else {
            snprintf(path, sizeof(path), "%s/%s", ELECTD_TLS_MODULE_DIR, TLS_MODULE_FILE);
            mod = module_try(path, why, sizeof(why));
            hint = " (not next to the executable either; " TLS_MODULE_ENV " may name it)";
        }
    }
    if (mod)
        return 0;
    if (err && errlen)
        snprintf(err, errlen, "TLS is configured but %s cannot be loaded: %s%s", path, why, hint);
    return TLS_EMODULE;
}

/* dl_iterate_phdr(): for the object that holds the module's table, hands the pages of its
 * read-only segments (code, constants, symbol tables: never written, so a file's clean
 * copy) back to the kernel. */
static int trim_cb(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t table = (uintptr_t)data, page = (uintptr_t)sysconf(_SC_PAGESIZE);
    bool mine = false;
    for (int i = 0; i < info->dlpi_phnum && !mine; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        mine = ph->p_type == PT_LOAD && table >= lo && table < lo + ph->p_memsz;
    }
    for (int i = 0; mine && i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_LOAD || (ph->p_flags & PF_W))
            continue;
        uintptr_t lo = (info->dlpi_addr + ph->p_vaddr) & ~(page - 1);
        uintptr_t hi = (info->dlpi_addr + ph->p_vaddr + ph->p_memsz + page - 1) & ~(page - 1);
        (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
    }
    return mine;
}

#define TRIM_FREE     16 /* handshakes trimmed after unconditionally (a member's peers) */
#define TRIM_INTERVAL 60 /* seconds between later trims: a busy HTTPS server pays nothing */

static unsigned trims;
static uint64_t last_trim_s;

static uint64_t monotonic_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec;
}

/* OpenSSL's set-up and a context's loading run once and touch most of the module's code
 * (about 2 MiB); an idle member then needs only the record layer's. Dropping the clean
 * read-only pages after a context is made lets only what runs afterwards come back. */
static void module_trim(void)
{
    dl_iterate_phdr(trim_cb, (void *)(uintptr_t)mod);
    trims++;
    last_trim_s = monotonic_s();
}

/* After a handshake: its code ran once; trimmed for the first TRIM_FREE handshakes (a
 * member's peer connections at start), then at most once per TRIM_INTERVAL, so that a
 * server accepting many connections does not fault its code back in for each. */
static void module_trim_after_handshake(void)
{
    if (trims < TRIM_FREE || monotonic_s() - last_trim_s >= TRIM_INTERVAL)
        module_trim();
}

int tls_ctx_open(const tls_config_t *cfg, tls_ctx_t **out, char *err, size_t errlen)
{
    if (err && errlen)
        err[0] = '\0';
    if (!mod && module_load(err, errlen) != 0)
        return TLS_EMODULE;
    int rc = mod->ctx_open(cfg, out, err, errlen);
    module_trim();
    return rc;
}

int tls_ctx_reload(tls_ctx_t *ctx, char *err, size_t errlen)
{
    int rc = mod && ctx ? mod->ctx_reload(ctx, err, errlen) : TLS_EINVAL;
    if (mod)
        module_trim();
    return rc;
}

tls_role_t tls_ctx_role(const tls_ctx_t *ctx)
{
    return mod->ctx_role(ctx); /* a context exists: the module is loaded */
}

bool tls_ctx_requires_peer_cert(const tls_ctx_t *ctx)
{
    return mod->ctx_requires_peer_cert(ctx);
}

void tls_ctx_close(tls_ctx_t *ctx)
{
    if (mod && ctx)
        mod->ctx_close(ctx);
}

int tls_session_open(tls_ctx_t *ctx, const char *server_name, tls_session_t **out)
{
    return mod && ctx ? mod->session_open(ctx, server_name, out) : TLS_EINVAL;
}

void tls_session_close(tls_session_t *s)
{
    if (mod && s)
        mod->session_close(s);
}

/* A session exists only once the module is loaded: the functions below forward as they
 * are (the engine checks its arguments as it always does). */

int tls_session_feed(tls_session_t *s, const void *data, size_t len, size_t *used)
{
    return mod->session_feed(s, data, len, used);
}

int tls_session_handshake(tls_session_t *s)
{
    return mod->session_handshake(s);
}

int tls_session_read(tls_session_t *s, void *buf, size_t cap, size_t *n)
{
    bool was = mod->session_established(s);
    int rc = mod->session_read(s, buf, cap, n);
    if (!was && mod->session_established(s))
        module_trim_after_handshake(); /* the handshake's code ran; the record layer's stays */
    return rc;
}

int tls_session_write(tls_session_t *s, const void *data, size_t len)
{
    return mod->session_write(s, data, len);
}

void tls_session_shutdown(tls_session_t *s)
{
    mod->session_shutdown(s);
}

size_t tls_session_out_pending(const tls_session_t *s)
{
    return mod->session_out_pending(s);
}

size_t tls_session_out_read(tls_session_t *s, void *buf, size_t cap)
{
    return mod->session_out_read(s, buf, cap);
}

bool tls_session_established(const tls_session_t *s)
{
    return mod->session_established(s);
}

const char *tls_session_error(const tls_session_t *s)
{
    return mod->session_error(s);
}

const char *tls_session_peer_cn(const tls_session_t *s)
{
    return mod && s ? mod->session_peer_cn(s) : NULL;
}

size_t tls_session_peer_name_count(const tls_session_t *s)
{
    return mod && s ? mod->session_peer_name_count(s) : 0;
}

const char *tls_session_peer_name(const tls_session_t *s, size_t i)
{
    return mod && s ? mod->session_peer_name(s, i) : NULL;
}

bool tls_session_peer_matches(const tls_session_t *s, const char *name)
{
    if (!mod || !s)
        return false;
    bool ok = mod->session_peer_matches(s, name);
    module_trim_after_handshake(); /* the name check's code (X.509, ASN.1) ran once too */
    return ok;
}
