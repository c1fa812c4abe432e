/* tls_errors.c — tls_strerror(): the texts of the TLS_E* codes. Built into both the engine
 * (electd-tls.so, and the tests that link the engine) and the loader (tls_loader.c), so that
 * a program can name an error without loading the engine. */
#include "tls.h"

static const struct {
    int code;
    const char *text;
} errors[] = {
#define TLS_ERRNO_TEXT(name, value, text) {value, text},
    TLS_ERROR_TABLE(TLS_ERRNO_TEXT)
#undef TLS_ERRNO_TEXT
};

const char *tls_strerror(int err)
{
    if (err == 0)
        return "success";
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].text;
    return "unknown error";
}
