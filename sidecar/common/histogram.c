/* histogram.c — histograms and the Prometheus text writer (see common.h). */
#include "common.h"

#include "vec.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const double BOUNDS[SIDECAR_HIST_BUCKETS] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                    0.5,   1,    2.5,   5,    30};

void sidecar_hist_init(sidecar_hist_t *h)
{
    memset(h, 0, sizeof(*h));
}

void sidecar_hist_observe(sidecar_hist_t *h, double seconds)
{
    for (int i = 0; i < SIDECAR_HIST_BUCKETS; i++)
        if (seconds <= BOUNDS[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum += seconds;
}

void sidecar_buf_printf(sidecar_buf_t *b, const char *fmt, ...)
{
    if (b->failed)
        return;
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->data ? b->data + b->len : NULL, b->data ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (BASE_VEC_RESERVE(b->data, b->cap, b->len + (size_t)n + 1, 4096) != 0) {
            b->failed = 1;
            return;
        }
    }
}

void sidecar_metrics_header(sidecar_buf_t *b, const char *name, const char *type, const char *help)
{
    sidecar_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void sidecar_metrics_hist(sidecar_buf_t *b, const char *name, const char *labels,
                          const sidecar_hist_t *h)
{
    const char *sep = labels && *labels ? "," : "";
    labels = labels ? labels : "";
    uint64_t cum = 0;
    for (int i = 0; i < SIDECAR_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        sidecar_buf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, BOUNDS[i],
                           (unsigned long long)cum);
    }
    sidecar_buf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                       (unsigned long long)h->count);
    sidecar_buf_printf(b, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels,
                       *labels ? "}" : "", h->sum);
    sidecar_buf_printf(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
                       *labels ? "}" : "", (unsigned long long)h->count);
}

void sidecar_metrics_label(sidecar_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sidecar_buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            sidecar_buf_printf(b, "\\n");
        else
            sidecar_buf_printf(b, "%c", *s);
    }
}

void sidecar_buf_free(sidecar_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static void append(sidecar_buf_t *b, const char *s, size_t n)
{
    if (b->failed || n == 0)
        return;
    if (b->cap - b->len <= n) {
        if (BASE_VEC_RESERVE(b->data, b->cap, b->len + n + 1, 4096) != 0) {
            b->failed = 1;
            return;
        }
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void sidecar_buf_json_str(sidecar_buf_t *b, const char *s)
{
    append(b, "\"", 1);
    const char *run = s;
    for (const char *p = s; p && *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        append(b, run, (size_t)(p - run));
        char esc[8];
        int n = c == '"' || c == '\\' ? snprintf(esc, sizeof(esc), "\\%c", c)
                                      : snprintf(esc, sizeof(esc), "\\u%04x", c);
        append(b, esc, (size_t)n);
        run = p + 1;
    }
    if (s)
        append(b, run, strlen(run));
    append(b, "\"", 1);
}
