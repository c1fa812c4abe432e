/* metrics.c — see metrics.h. */
#include "metrics.h"

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

void sidecar_metrics_printf(sidecar_metrics_buf_t *b, const char *fmt, ...)
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
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
}

void sidecar_metrics_header(sidecar_metrics_buf_t *b, const char *name, const char *type,
                            const char *help)
{
    sidecar_metrics_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void sidecar_metrics_hist(sidecar_metrics_buf_t *b, const char *name, const char *labels,
                          const sidecar_hist_t *h)
{
    const char *sep = labels && *labels ? "," : "";
    labels = labels ? labels : "";
    uint64_t cum = 0;
    for (int i = 0; i < SIDECAR_HIST_BUCKETS; i++) {
        cum += h->buckets[i];
        sidecar_metrics_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep, BOUNDS[i],
                               (unsigned long long)cum);
    }
    sidecar_metrics_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                           (unsigned long long)h->count);
    sidecar_metrics_printf(b, "%s_sum%s%s%s %.6f\n", name, *labels ? "{" : "", labels,
                           *labels ? "}" : "", h->sum);
    sidecar_metrics_printf(b, "%s_count%s%s%s %llu\n", name, *labels ? "{" : "", labels,
                           *labels ? "}" : "", (unsigned long long)h->count);
}

void sidecar_metrics_label(sidecar_metrics_buf_t *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            sidecar_metrics_printf(b, "\\%c", *s);
        else if (*s == '\n')
            sidecar_metrics_printf(b, "\\n");
        else
            sidecar_metrics_printf(b, "%c", *s);
    }
}

void sidecar_metrics_buf_free(sidecar_metrics_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
