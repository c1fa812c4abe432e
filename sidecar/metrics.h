/* metrics.h — histograms and a Prometheus text-format (0.0.4) writer for GET /metrics. */
#ifndef ELECTD_SIDECAR_METRICS_H
#define ELECTD_SIDECAR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define SIDECAR_HIST_BUCKETS 11 /* finite upper bounds; +Inf is implied */

/* Durations in seconds: 5 ms .. 30 s. */
typedef struct sidecar_hist {
    uint64_t buckets[SIDECAR_HIST_BUCKETS]; /* observations <= bound i (not cumulative) */
    uint64_t count;
    double sum;
} sidecar_hist_t;

void sidecar_hist_init(sidecar_hist_t *h);
void sidecar_hist_observe(sidecar_hist_t *h, double seconds);

/* A growable text buffer; on allocation failure it stops growing and sets failed. */
typedef struct sidecar_buf {
    char *data;
    size_t len, cap;
    int failed;
} sidecar_buf_t;

void sidecar_buf_printf(sidecar_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal, quotes included; control characters, quotes and
 * backslashes escaped (bytes >= 0x80 pass through: callers hand in UTF-8). */
void sidecar_buf_json_str(sidecar_buf_t *b, const char *s);
/* "# HELP" and "# TYPE" lines. */
void sidecar_metrics_header(sidecar_buf_t *b, const char *name, const char *type, const char *help);
/* A histogram family (header included); labels may be NULL or e.g. "hook=\"on-start\"". */
void sidecar_metrics_hist(sidecar_buf_t *b, const char *name, const char *labels,
                          const sidecar_hist_t *h);
/* Writes s as a label value: backslash, quote and newline escaped. */
void sidecar_metrics_label(sidecar_buf_t *b, const char *s);
void sidecar_buf_free(sidecar_buf_t *b);

#endif
