/* parse.c — the one parser of each kind of value electd reads from people: durations, sizes,
 * whole numbers, fractions, booleans, member names and host:port addresses. Flags, ELECTD_*
 * variables, the config file and the CLI all go through these, so a value means the same
 * everywhere (docs/configuration.md, "Values"). Pure: no allocation, no I/O. */
#include "common.h"

#include <arpa/inet.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MS_PER_S   1000ull
#define MS_PER_MIN (60ull * MS_PER_S)
#define MS_PER_H   (60ull * MS_PER_MIN)
#define KIB        1024ull

struct unit {
    const char *suffix;
    uint64_t mul;
};

static const struct unit duration_units[] = {
    {"", 1}, {"ms", 1}, {"s", MS_PER_S}, {"m", MS_PER_MIN}, {"h", MS_PER_H}, {NULL, 0},
};

static const struct unit size_units[] = {
    {"", 1}, {"B", 1}, {"KiB", KIB}, {"MiB", KIB *KIB}, {"GiB", KIB *KIB *KIB}, {NULL, 0},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Leading decimal digits into *out; *end after them. */
static int digits(const char *s, uint64_t *out, const char **end)
{
    uint64_t v = 0;
    const char *c = s;
    if (!is_digit(*c))
        return SIDECAR_PARSE_ESYNTAX;
    int rc = 0;
    for (; is_digit(*c); c++) {
        uint64_t d = (uint64_t)(*c - '0');
        if (v > (UINT64_MAX - d) / 10)
            rc = SIDECAR_PARSE_ERANGE; /* keep scanning: the syntax may still be wrong */
        else
            v = v * 10 + d;
    }
    *end = c;
    *out = v;
    return rc;
}

static int with_unit(const char *text, const struct unit *units, uint64_t *out)
{
    const char *end;
    uint64_t n;
    if (text == NULL)
        return SIDECAR_PARSE_ESYNTAX;
    int rc = digits(text, &n, &end);
    if (rc == SIDECAR_PARSE_ESYNTAX)
        return rc;
    for (const struct unit *u = units; u->suffix != NULL; u++) {
        if (strcmp(end, u->suffix) != 0)
            continue;
        if (rc != 0 || n > UINT64_MAX / u->mul)
            return SIDECAR_PARSE_ERANGE;
        *out = n * u->mul;
        return 0;
    }
    return SIDECAR_PARSE_ESYNTAX;
}

int sidecar_parse_duration_ms(const char *text, uint64_t *ms)
{
    return with_unit(text, duration_units, ms);
}

int sidecar_parse_size_bytes(const char *text, uint64_t *bytes)
{
    return with_unit(text, size_units, bytes);
}

int sidecar_parse_count(const char *text, uint64_t *n)
{
    static const struct unit none[] = {{"", 1}, {NULL, 0}};
    return with_unit(text, none, n);
}

int sidecar_parse_bool(const char *text, bool *out)
{
    if (text == NULL)
        return SIDECAR_PARSE_ESYNTAX;
    if (strcmp(text, "true") == 0 || strcmp(text, "1") == 0) {
        *out = true;
        return 0;
    }
    if (strcmp(text, "false") == 0 || strcmp(text, "0") == 0) {
        *out = false;
        return 0;
    }
    return SIDECAR_PARSE_ESYNTAX;
}

/* Digits, an optional .digits and an optional exponent; no sign, hex, inf or nan, which
 * strtod alone would take. */
static bool fraction_syntax(const char *s)
{
    const char *c = s;
    bool any = false;
    for (; is_digit(*c); c++)
        any = true;
    if (*c == '.')
        for (c++; is_digit(*c); c++)
            any = true;
    if (any && (*c == 'e' || *c == 'E')) {
        c++;
        if (*c == '+' || *c == '-')
            c++;
        if (!is_digit(*c))
            return false;
        while (is_digit(*c))
            c++;
    }
    return any && *c == '\0';
}

int sidecar_parse_fraction(const char *text, double *out)
{
    if (text == NULL || !fraction_syntax(text))
        return SIDECAR_PARSE_ESYNTAX;
    double d = strtod(text, NULL);
    if (!isfinite(d))
        return SIDECAR_PARSE_ERANGE;
    *out = d;
    return 0;
}

bool sidecar_parse_name_valid(const char *name)
{
    if (name == NULL)
        return false;
    size_t n = strlen(name);
    if (n == 0 || n > SIDECAR_NAME_MAX || !is_alnum(name[0]))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!is_alnum(name[i]) && name[i] != '.' && name[i] != '_' && name[i] != '-')
            return false;
    return true;
}

static int why(char *buf, size_t size, const char *text)
{
    if (buf != NULL && size > 0)
        snprintf(buf, size, "%s", text);
    return SIDECAR_PARSE_ESYNTAX;
}

#define HOSTPORT_EXPECTED "expected host:port, e.g. 127.0.0.1:7480 or [::1]:7480"

/* "[v6]:port": the host part must be an IPv6 literal. */
static int bracketed(const char *text, const char **h, size_t *hn, const char **colon, char *w,
                     size_t ws)
{
    const char *close = strchr(text, ']');
    if (close == NULL || close[1] != ':')
        return why(w, ws, HOSTPORT_EXPECTED);
    *h = text + 1;
    *hn = (size_t)(close - *h);
    *colon = close + 1;
    char v6[INET6_ADDRSTRLEN];
    struct in6_addr a;
    if (*hn == 0 || *hn >= sizeof(v6))
        return why(w, ws, "invalid IPv6 address");
    memcpy(v6, *h, *hn);
    v6[*hn] = '\0';
    return inet_pton(AF_INET6, v6, &a) == 1 ? 0 : why(w, ws, "invalid IPv6 address");
}

/* "host:port": a name or an IPv4 address; a bare IPv6 literal is ambiguous and refused. */
static int plain(const char *text, const char **h, size_t *hn, const char **colon, char *w,
                 size_t ws)
{
    *h = text;
    *colon = strrchr(text, ':');
    if (*colon == NULL)
        return why(w, ws, HOSTPORT_EXPECTED);
    *hn = (size_t)(*colon - text);
    if (*hn == 0 || *hn > SIDECAR_HOST_MAX || memchr(text, ':', *hn) != NULL)
        return why(w, ws, HOSTPORT_EXPECTED " (IPv6 addresses in brackets)");
    for (size_t i = 0; i < *hn; i++)
        if (!is_alnum(text[i]) && text[i] != '.' && text[i] != '-')
            return why(w, ws, "invalid host name (letters, digits, '.', '-')");
    return 0;
}

int sidecar_parse_hostport(const char *text, bool port0_ok, char *host, size_t host_size,
                           uint16_t *port, char *w, size_t ws)
{
    const char *h, *colon, *end;
    size_t hn;
    if (text == NULL)
        return why(w, ws, HOSTPORT_EXPECTED);
    int rc = text[0] == '[' ? bracketed(text, &h, &hn, &colon, w, ws)
                            : plain(text, &h, &hn, &colon, w, ws);
    if (rc != 0)
        return rc;
    uint64_t n = 0;
    if (digits(colon + 1, &n, &end) != 0 || *end != '\0' || n > 65535 || (n == 0 && !port0_ok)) {
        snprintf(w, ws, "the port must be a number from %d to 65535", port0_ok ? 0 : 1);
        return SIDECAR_PARSE_ESYNTAX;
    }
    if (hn + 1 > host_size)
        return why(w, ws, "the host is too long");
    memcpy(host, h, hn);
    host[hn] = '\0';
    *port = (uint16_t)n;
    return 0;
}

void sidecar_format_duration(uint64_t ms, char *buf, size_t size)
{
    if (ms >= MS_PER_H && ms % MS_PER_H == 0)
        snprintf(buf, size, "%lluh", (unsigned long long)(ms / MS_PER_H));
    else if (ms >= MS_PER_MIN && ms % MS_PER_MIN == 0)
        snprintf(buf, size, "%llum", (unsigned long long)(ms / MS_PER_MIN));
    else if (ms >= MS_PER_S && ms % MS_PER_S == 0)
        snprintf(buf, size, "%llus", (unsigned long long)(ms / MS_PER_S));
    else
        snprintf(buf, size, "%llums", (unsigned long long)ms);
}

void sidecar_format_size(uint64_t bytes, char *buf, size_t size)
{
    if (bytes >= KIB * KIB * KIB && bytes % (KIB * KIB * KIB) == 0)
        snprintf(buf, size, "%lluGiB", (unsigned long long)(bytes / (KIB * KIB * KIB)));
    else if (bytes >= KIB * KIB && bytes % (KIB * KIB) == 0)
        snprintf(buf, size, "%lluMiB", (unsigned long long)(bytes / (KIB * KIB)));
    else if (bytes >= KIB && bytes % KIB == 0)
        snprintf(buf, size, "%lluKiB", (unsigned long long)(bytes / KIB));
    else
        snprintf(buf, size, "%llu bytes", (unsigned long long)bytes);
}
