/* eventlog.c — electd's event log: one bounded, escaped line per event, as text or JSON.
 *
 * A line is assembled in a stack buffer of SIDECAR_LOG_LINE_MAX bytes whose last
 * TAIL_RESERVE bytes are kept for the closing quote, the truncation marker and the newline,
 * so a cut line is still well formed. Pieces are appended as whole units (an escape
 * sequence, a UTF-8 character, a number, a key) so a cut never splits one.
 */
#include "common.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TAIL_RESERVE  32 /* > strlen("\",\"truncated\":true}\n") and " truncated=true\n" */
#define KEY_MAX       64 /* bytes of a key kept */
#define WRITE_RETRIES 16 /* partial writes / EINTR before a line counts as dropped */
#define FIELDS_MAX    64 /* fields of one line; more are dropped (and the line marked cut) */

static const char redacted[] = "[redacted]";

/* The keys a line's header and tail may carry: no field may take one of them. */
static const char *const header_keys[] = {"ts",   "level", "node", "term",
                                          "role", "src",   "msg",  "truncated"};

static struct {
    sidecar_log_level_t level;
    sidecar_log_format_t format;
    int fd;
    char node[SIDECAR_LOG_NODE_MAX];
    sidecar_log_state_cb state_cb;
    void *state_ud;
    uint64_t term;
    const char *role;
    const char *src; /* NULL: electd's own lines (term, role); else "src" (the shim) */
    char secrets[SIDECAR_LOG_SECRETS_MAX][SIDECAR_LOG_SECRET_MAX + 1];
    size_t secret_len[SIDECAR_LOG_SECRETS_MAX];
    size_t n_secrets;
    uint64_t dropped;
} g = {.level = SIDECAR_LOG_INFO, .format = SIDECAR_LOG_TEXT, .fd = 2};

typedef struct line {
    char buf[SIDECAR_LOG_LINE_MAX];
    size_t len;
    bool full; /* a unit did not fit: nothing more is appended before the tail */
} line_t;

void sidecar_log_init(sidecar_log_level_t level, sidecar_log_format_t format, int fd,
                      const char *node)
{
    g.level = level;
    g.format = format;
    g.fd = fd;
    g.node[0] = '\0';
    if (node) {
        snprintf(g.node, sizeof(g.node), "%s", node);
    }
}

void sidecar_log_set_state_cb(sidecar_log_state_cb cb, void *ud)
{
    g.state_cb = cb;
    g.state_ud = ud;
}

void sidecar_log_set_state(uint64_t term, const char *role)
{
    g.term = term;
    g.role = role;
}

int sidecar_log_add_secret(const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    if (n == 0 || n > SIDECAR_LOG_SECRET_MAX || g.n_secrets == SIDECAR_LOG_SECRETS_MAX) {
        return -1;
    }
    memcpy(g.secrets[g.n_secrets], secret, n + 1);
    g.secret_len[g.n_secrets] = n;
    g.n_secrets++;
    return 0;
}

int sidecar_log_replace_secret(const char *old, const char *secret)
{
    size_t n = secret ? strlen(secret) : 0;
    for (size_t k = 0; old != NULL && k < g.n_secrets; k++) {
        if (strcmp(g.secrets[k], old) != 0) {
            continue;
        }
        if (n == 0 || n > SIDECAR_LOG_SECRET_MAX) {
            return -1;
        }
        memcpy(g.secrets[k], secret, n + 1);
        g.secret_len[k] = n;
        return 0;
    }
    return sidecar_log_add_secret(secret);
}

void sidecar_log_clear_secrets(void)
{
    memset(g.secrets, 0, sizeof(g.secrets));
    memset(g.secret_len, 0, sizeof(g.secret_len));
    g.n_secrets = 0;
}

void sidecar_log_set_source(const char *src)
{
    g.src = src;
}

sidecar_log_format_t sidecar_log_current_format(void)
{
    return g.format;
}

bool sidecar_log_enabled(sidecar_log_level_t level)
{
    return level >= g.level;
}

uint64_t sidecar_log_dropped(void)
{
    return g.dropped;
}

const char *sidecar_log_level_name(sidecar_log_level_t level)
{
    switch (level) {
    case SIDECAR_LOG_DEBUG:
        return "debug";
    case SIDECAR_LOG_INFO:
        return "info";
    case SIDECAR_LOG_WARN:
        return "warn";
    case SIDECAR_LOG_ERROR:
        return "error";
    }
    return "unknown";
}

static const char *level_upper(sidecar_log_level_t level)
{
    switch (level) {
    case SIDECAR_LOG_DEBUG:
        return "DEBUG";
    case SIDECAR_LOG_INFO:
        return "INFO";
    case SIDECAR_LOG_WARN:
        return "WARN";
    case SIDECAR_LOG_ERROR:
        return "ERROR";
    }
    return "UNKNOWN";
}

/* ---- the line buffer ---------------------------------------------------------------- */

/* Appends a whole unit, or marks the line full when it would eat into the tail. */
static bool put(line_t *l, const char *s, size_t n)
{
    if (l->full || l->len + n > sizeof(l->buf) - TAIL_RESERVE) {
        l->full = true;
        return false;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
    return true;
}

static bool puts_(line_t *l, const char *s)
{
    return put(l, s, strlen(s));
}

/* Appends into the reserved tail: only for the closing pieces of a line. */
static void put_tail(line_t *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len + n <= sizeof(l->buf)) {
        memcpy(l->buf + l->len, s, n);
        l->len += n;
    }
}

/* Length of the valid UTF-8 sequence at s (1-4), or 0 when s[0] starts no valid sequence:
 * overlong forms, surrogates and code points above U+10FFFF are invalid (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    uint32_t cp, min;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
        need = 2, cp = c & 0x1Fu, min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3, cp = c & 0x0Fu, min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4, cp = c & 0x07u, min = 0x10000;
    } else {
        return 0;
    }
    if (n < need) {
        return 0;
    }
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[i] & 0x3Fu);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
        return 0;
    }
    return need;
}

/* Appends one escaped byte or character of s (n bytes left); returns bytes consumed, 0 when
 * the line is full. JSON: RFC 8259 escapes, invalid UTF-8 as \ufffd. Text: C-like escapes
 * inside double quotes, invalid UTF-8 as \xNN. */
static size_t put_escaped_unit(line_t *l, const unsigned char *s, size_t n, bool json)
{
    char tmp[8];
    unsigned char c = s[0];
    const char *esc = NULL;
    switch (c) {
    case '"':
        esc = "\\\"";
        break;
    case '\\':
        esc = "\\\\";
        break;
    case '\n':
        esc = "\\n";
        break;
    case '\r':
        esc = "\\r";
        break;
    case '\t':
        esc = "\\t";
        break;
    default:
        break;
    }
    if (esc) {
        return puts_(l, esc) ? 1 : 0;
    }
    if (c < 0x20 || c == 0x7f) {
        snprintf(tmp, sizeof(tmp), json ? "\\u%04x" : "\\x%02x", c);
        return puts_(l, tmp) ? 1 : 0;
    }
    size_t u = utf8_len(s, n);
    if (u == 0) {
        if (json) {
            return puts_(l, "\\ufffd") ? 1 : 0;
        }
        snprintf(tmp, sizeof(tmp), "\\x%02x", c);
        return puts_(l, tmp) ? 1 : 0;
    }
    return put(l, (const char *)s, u) ? u : 0;
}

/* The length of the registered secret that starts at s, or 0. */
static size_t secret_at(const char *s, size_t n)
{
    for (size_t k = 0; k < g.n_secrets; k++) {
        size_t sl = g.secret_len[k];
        if (sl <= n && s[0] == g.secrets[k][0] && memcmp(s, g.secrets[k], sl) == 0) {
            return sl;
        }
    }
    return 0;
}

/* Appends the escaped contents of s[0..n) (no quotes), secrets replaced, as far as they fit;
 * returns the bytes of s consumed (n unless cut; a cut falls between two units). */
static size_t put_escaped_n(line_t *l, const char *s, size_t n, bool json)
{
    size_t i = 0;
    while (i < n) {
        size_t sl = secret_at(s + i, n - i);
        if (sl > 0) {
            if (!puts_(l, redacted)) {
                return i;
            }
            i += sl;
            continue;
        }
        size_t used = put_escaped_unit(l, (const unsigned char *)s + i, n - i, json);
        if (used == 0) {
            return i;
        }
        i += used;
    }
    return i;
}

static bool put_escaped(line_t *l, const char *s, size_t n, bool json)
{
    return put_escaped_n(l, s, n, json) == n;
}

/* Appends "s[0..n)" (always closed, even when cut); returns the bytes of s consumed. */
static size_t put_quoted_n(line_t *l, const char *s, size_t n, bool json)
{
    if (!puts_(l, "\"")) {
        return 0;
    }
    size_t used = put_escaped_n(l, s, n, json);
    put_tail(l, "\"");
    return used;
}

static bool put_quoted(line_t *l, const char *s, bool json)
{
    size_t n = s ? strlen(s) : 0;
    return put_quoted_n(l, s ? s : "", n, json) == n;
}

/* Text values are bare when that is unambiguous for a logfmt reader. */
static bool text_needs_quotes(const char *s)
{
    if (s == NULL || *s == '\0') {
        return true;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p >= 0x7f) {
            return true;
        }
    }
    return secret_at(s, strlen(s)) > 0; /* keep the redaction marker readable */
}

static bool put_text_value(line_t *l, const char *s)
{
    if (text_needs_quotes(s)) {
        return put_quoted(l, s, false);
    }
    return put_escaped(l, s, strlen(s), false);
}

/* Keys are written as [A-Za-z0-9_.-], so they need no quoting in either format. */
static void key_clean(const char *key, char k[KEY_MAX + 1])
{
    size_t n = 0;
    for (const char *p = key ? key : ""; *p && n < KEY_MAX; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '_' || c == '.' || c == '-';
        k[n++] = ok ? c : '_';
    }
    if (n == 0) {
        k[n++] = '_';
    }
    k[n] = '\0';
}

/* True when k is a header key or one of keys[0..n). */
static bool key_taken(const char *k, char keys[][KEY_MAX + 1], size_t n)
{
    for (size_t i = 0; i < sizeof(header_keys) / sizeof(header_keys[0]); i++) {
        if (strcmp(k, header_keys[i]) == 0) {
            return true;
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(k, keys[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* The key field `pos` is written under, unique on its line given the keys[0..n) written
 * before: its own, else `<key>_<pos>`; false when both are taken (the field is dropped). */
static bool key_unique(const char *key, size_t pos, char keys[][KEY_MAX + 1], size_t n,
                       char out[KEY_MAX + 1])
{
    key_clean(key, out);
    if (!key_taken(out, keys, n)) {
        return true;
    }
    char suffix[24];
    int sn = snprintf(suffix, sizeof(suffix), "_%zu", pos);
    size_t keep = strlen(out);
    if (keep + (size_t)sn > KEY_MAX) {
        keep = KEY_MAX - (size_t)sn;
    }
    memcpy(out + keep, suffix, (size_t)sn + 1);
    return !key_taken(out, keys, n);
}

static void format_number(const sidecar_log_field_t *f, bool json, char *buf, size_t size)
{
    switch (f->type) {
    case SIDECAR_LOG_FIELD_INT:
        snprintf(buf, size, "%" PRId64, f->v.i);
        break;
    case SIDECAR_LOG_FIELD_UINT:
        snprintf(buf, size, "%" PRIu64, f->v.u);
        break;
    case SIDECAR_LOG_FIELD_DOUBLE:
        if (!isfinite(f->v.d)) {
            snprintf(buf, size, "%s", json ? "null" : (isnan(f->v.d) ? "nan" : "inf"));
        } else {
            snprintf(buf, size, "%.15g", f->v.d);
        }
        break;
    case SIDECAR_LOG_FIELD_BOOL:
        snprintf(buf, size, "%s", f->v.b ? "true" : "false");
        break;
    case SIDECAR_LOG_FIELD_ID: /* the API's form; a string in JSON */
        snprintf(buf, size, json ? "\"%016" PRIx64 "\"" : "%016" PRIx64, f->v.u);
        break;
    default:
        snprintf(buf, size, "null");
        break;
    }
}

/* ---- assembling a line -------------------------------------------------------------- */

static void put_timestamp(line_t *l)
{
    struct timespec ts;
    struct tm tm;
    char buf[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, sizeof(buf) - n, ".%03ldZ", ts.tv_nsec / 1000000L);
    puts_(l, buf);
}

/* One field under key: `,"k":v` or ` k=v`. A field whose key or number does not fit is
 * dropped whole; a string value is cut (and closed). */
static void put_field(line_t *l, const sidecar_log_field_t *f, const char *key, bool json)
{
    size_t mark = l->len;
    char num[64];
    if (!puts_(l, json ? ",\"" : " ") || !puts_(l, key) || !puts_(l, json ? "\":" : "=")) {
        l->len = mark;
        return;
    }
    if (f->type == SIDECAR_LOG_FIELD_STR) {
        size_t before = l->len;
        if (json) {
            put_quoted(l, f->v.s, true);
        } else {
            put_text_value(l, f->v.s);
        }
        if (l->len == before) { /* not even the opening quote fitted: no half field */
            l->len = mark;
        }
        return;
    }
    format_number(f, json, num, sizeof(num));
    if (!puts_(l, num)) {
        l->len = mark;
    }
}

static void write_line(int fd, const line_t *l)
{
    size_t off = 0;
    for (int tries = 0; off < l->len && tries < WRITE_RETRIES; tries++) {
        ssize_t n = write(fd, l->buf + off, l->len - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno != EINTR && errno != EAGAIN) {
            break;
        }
    }
    if (off < l->len) {
        g.dropped++;
    }
}

static void put_value(line_t *l, const char *s, bool json)
{
    if (json) {
        put_quoted(l, s, true);
    } else {
        put_text_value(l, s);
    }
}

/* The start of every line: time, level, node, then the term and role of electd's node, or
 * src for another program (the shim, a workload's output). */
static void put_header(line_t *l, sidecar_log_level_t level, const char *src, bool json)
{
    if (json) {
        puts_(l, "{\"ts\":\"");
        put_timestamp(l);
        puts_(l, "\",\"level\":\"");
        puts_(l, sidecar_log_level_name(level));
        puts_(l, "\",\"node\":");
    } else {
        put_timestamp(l);
        puts_(l, " ");
        puts_(l, level_upper(level));
        puts_(l, " node=");
    }
    put_value(l, g.node, json);
    if (src != NULL) {
        puts_(l, json ? ",\"src\":" : " src=");
        put_value(l, src, json);
        return;
    }
    uint64_t term = g.term;
    const char *role = g.role;
    char num[32];
    if (g.state_cb) {
        term = 0;
        role = NULL;
        g.state_cb(g.state_ud, &term, &role);
    }
    snprintf(num, sizeof(num), "%" PRIu64, term);
    puts_(l, json ? ",\"term\":" : " term=");
    puts_(l, num);
    puts_(l, json ? ",\"role\":" : " role=");
    put_value(l, role ? role : "unknown", json);
}

/* Appends fields[0..n) under keys unique on the line; true when some were left out. */
static bool put_fields(line_t *l, const sidecar_log_field_t *fields, size_t n, bool json)
{
    char keys[FIELDS_MAX][KEY_MAX + 1];
    size_t nk = 0;
    bool left_out = false;
    for (size_t i = 0; i < n && !l->full; i++) {
        if (fields[i].type == SIDECAR_LOG_FIELD_END) {
            continue;
        }
        if (nk == FIELDS_MAX || !key_unique(fields[i].key, i, keys, nk, keys[nk])) {
            left_out = true;
            continue;
        }
        put_field(l, &fields[i], keys[nk++], json);
    }
    return left_out;
}

/* Closes the line (marked `cut` when something did not fit) and writes it. */
static void finish(int fd, line_t *l, const char *mark, bool cut, bool json)
{
    if (l->full || cut) {
        put_tail(l, mark);
    }
    put_tail(l, json ? "}\n" : "\n");
    write_line(fd, l);
}

static void emit(sidecar_log_level_t level, const char *msg, bool msg_cut,
                 const sidecar_log_field_t *fields, size_t n)
{
    line_t l;
    bool json = g.format == SIDECAR_LOG_JSON;

    l.len = 0;
    l.full = false;
    put_header(&l, level, g.src, json);
    puts_(&l, json ? ",\"msg\":" : " msg=");
    put_quoted(&l, msg, json);
    bool cut = put_fields(&l, fields, n, json) || msg_cut;
    finish(g.fd, &l, json ? ",\"truncated\":true" : " truncated=true", cut, json);
}

size_t sidecar_log_output(int fd, const char *src, const char *stream, const char *s, size_t n,
                          bool ends)
{
    line_t l;
    bool json = g.format == SIDECAR_LOG_JSON;

    l.len = 0;
    l.full = false;
    put_header(&l, SIDECAR_LOG_INFO, src ? src : "", json);
    puts_(&l, json ? ",\"stream\":" : " stream=");
    put_value(&l, stream, json);
    puts_(&l, json ? ",\"line\":" : " line=");
    size_t used = put_quoted_n(&l, s, n, json);
    finish(fd >= 0 ? fd : g.fd, &l, json ? ",\"partial\":true" : " partial=true", used < n || !ends,
           json);
    return used;
}

void sidecar_log_fields(sidecar_log_level_t level, const char *msg,
                        const sidecar_log_field_t *fields, size_t n)
{
    if (!sidecar_log_enabled(level)) {
        return;
    }
    emit(level, msg ? msg : "", false, fields, n);
}

void sidecar_logf(sidecar_log_level_t level, const char *fmt, ...)
{
    char msg[SIDECAR_LOG_LINE_MAX];
    va_list ap;
    if (!sidecar_log_enabled(level)) {
        return;
    }
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        msg[0] = '\0';
    }
    emit(level, msg, n >= (int)sizeof(msg), NULL, 0);
}
