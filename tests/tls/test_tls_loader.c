/* test_tls_loader.c — the loader that electd links instead of the engine (tls/tls_loader.c):
 * nothing of OpenSSL's TLS code is mapped before the first context, the module is found by
 * $ELECTD_TLS_MODULE, a module that cannot be loaded gives the error that names it, and a
 * mutual handshake through the loader works as through the engine, and an idle session keeps
 * little of the module's code resident. (That electd finds the module next to its own binary
 * is shown by tests/integration/test_peer_tls.c.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "tls_test_util.h"

TLS_TEST_CERTS_MAKE_HOOK()
TLS_TEST_CERTS_REMOVE_HOOK()

/* true when /proc/self/maps maps a file whose name contains `what`. */
static bool mapped(const char *what)
{
    FILE *f = fopen("/proc/self/maps", "r");
    cr_assert_not_null(f);
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strstr(line, what) != NULL;
    fclose(f);
    return found;
}

/* Resident KiB of the module's mappings with permissions `perms` ("r-xp": its code), from
 * /proc/self/smaps. */
static long module_rss_kib(const char *perms)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    cr_assert_not_null(f);
    char line[1024];
    bool in = false;
    long kib = 0, v = 0;
    while (fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        char p[5];
        if (sscanf(line, "%lx-%lx %4s", &lo, &hi, p) == 3) /* a mapping's first line */
            in = strstr(line, "electd-tls.so") && strcmp(p, perms) == 0;
        else if (in && sscanf(line, "Rss: %ld kB", &v) == 1)
            kib += v;
    }
    fclose(f);
    return kib;
}

static int open_server(tls_ctx_t **ctx, char *err, size_t len)
{
    tls_config_t cfg = {.role = TLS_ROLE_SERVER,
                        .cert_file = cert_path("member-b.crt"),
                        .key_file = cert_path("member-b.key"),
                        .ca_file = cert_path("ca.crt")};
    return tls_ctx_open(&cfg, ctx, err, len);
}

Test(tls_loader, module_is_loaded_by_the_first_context_and_works)
{
    cr_assert_not_null(getenv("ELECTD_TLS_MODULE"), "ctest sets ELECTD_TLS_MODULE");
    /* Before: the functions that take NULL answer without loading anything. */
    tls_ctx_close(NULL);
    tls_session_close(NULL);
    cr_assert_not(tls_session_peer_matches(NULL, "b"));
    cr_assert_str_eq(tls_strerror(TLS_EMODULE), "the TLS module (electd-tls.so) cannot be loaded");
    cr_assert_not(mapped("electd-tls.so"), "the module is mapped before any context");

    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", "ca");
    cr_assert(mapped("electd-tls.so"));
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, "member-c", "ca");
    tls_session_t *s = NULL, *c = NULL;
    cr_assert_eq(tls_session_open(sctx, NULL, &s), 0);
    cr_assert_eq(tls_session_open(cctx, "b.cluster.test", &c), 0);
    pump(s, c);
    cr_assert(tls_session_established(s), "server: %s", tls_session_error(s));
    cr_assert(tls_session_established(c), "client: %s", tls_session_error(c));
    cr_assert(tls_session_peer_matches(s, "c"));
    cr_assert_not(tls_session_peer_matches(s, "b"));
    cr_assert_str_eq(tls_session_peer_cn(c), "b");
    char err[TLS_ERROR_TEXT_MAX];
    cr_assert_eq(tls_ctx_reload(sctx, err, sizeof(err)), 0, "%s", err);
    tls_session_close(s);
    tls_session_close(c);
    tls_ctx_close(sctx);
    tls_ctx_close(cctx);
}

Test(tls_loader, a_missing_module_is_named_with_the_reason)
{
    setenv("ELECTD_TLS_MODULE", "/nonexistent/electd-tls.so", 1);
    tls_ctx_t *ctx = NULL;
    char err[512];
    cr_assert_eq(open_server(&ctx, err, sizeof(err)), TLS_EMODULE);
    cr_assert_null(ctx);
    cr_assert(strstr(err, "TLS is configured but /nonexistent/electd-tls.so cannot be loaded: ") ==
                  err,
              "%s", err);
    cr_assert(strstr(err, "No such file or directory"), "%s", err);
    /* Still not loaded: a later attempt tries again and says the same. */
    cr_assert_eq(open_server(&ctx, err, sizeof(err)), TLS_EMODULE);
    cr_assert_not(mapped("libssl"));
}

Test(tls_loader, a_file_that_is_not_the_module_is_refused)
{
    setenv("ELECTD_TLS_MODULE", cert_path("garbage.pem"), 1);
    tls_ctx_t *ctx = NULL;
    char err[512];
    cr_assert_eq(open_server(&ctx, err, sizeof(err)), TLS_EMODULE);
    cr_assert(strstr(err, "garbage.pem cannot be loaded: "), "%s", err);
}

Test(tls_loader, without_the_variable_it_looks_next_to_the_program_then_in_the_install_dir)
{
    /* This test program is not next to the module, and the module is not installed on the
     * test machine: the error names the install directory and says where else it looked. */
    unsetenv("ELECTD_TLS_MODULE");
    tls_ctx_t *ctx = NULL;
    char err[512];
    int rc = open_server(&ctx, err, sizeof(err));
    if (rc == 0) {
        tls_ctx_close(ctx);
        cr_skip_test("electd-tls.so is installed on this machine");
    }
    cr_assert_eq(rc, TLS_EMODULE);
    cr_assert(strstr(err, "/electd/electd-tls.so cannot be loaded: "), "%s", err);
    cr_assert(strstr(err, "not next to the executable either"), "%s", err);
}

Test(tls_loader, an_idle_session_keeps_little_of_the_module_resident)
{
    /* A member's peer connections after their handshakes: small records both ways (Raft
     * heartbeats). The loader hands the module's clean pages back after the handshake and after
     * the certificate's name check, and the module's layout (tls/tls_module_layout.ld) keeps
     * the record layer's code together: what comes back is that code, not 64 KiB windows of
     * OpenSSL's 2.5 MiB around each function it calls (1.1 MiB before). */
    tls_ctx_t *sctx = ctx_new(TLS_ROLE_SERVER, "member-b", "ca");
    tls_ctx_t *cctx = ctx_new(TLS_ROLE_CLIENT, "member-c", "ca");
    tls_session_t *s = NULL, *c = NULL;
    cr_assert_eq(tls_session_open(sctx, NULL, &s), 0);
    cr_assert_eq(tls_session_open(cctx, NULL, &c), 0);
    pump(s, c);
    cr_assert(tls_session_established(s) && tls_session_established(c));
    cr_assert(tls_session_peer_matches(s, "c"));
    cr_assert(tls_session_peer_matches(c, "b"));
    char msg[64] = "append entries", got[64];
    for (int i = 0; i < 200; i++) {
        size_t n = 0;
        cr_assert_eq(tls_session_write(i % 2 ? s : c, msg, sizeof(msg)), 0);
        move_out(i % 2 ? s : c, i % 2 ? c : s);
        cr_assert_eq(tls_session_read(i % 2 ? c : s, got, sizeof(got), &n), 0);
        cr_assert_eq(n, sizeof(msg));
    }
    long code = module_rss_kib("r-xp"), rodata = module_rss_kib("r--p");
    cr_log_info("module resident while idle: code %ld KiB, read-only %ld KiB", code, rodata);
#if defined(__SANITIZE_ADDRESS__)
    cr_skip_test("sizes under AddressSanitizer say nothing about a release build");
#endif
    cr_assert_leq(code, 512, "the module's code resident for an idle session: %ld KiB", code);
    tls_session_close(s);
    tls_session_close(c);
    tls_ctx_close(sctx);
    tls_ctx_close(cctx);
}
