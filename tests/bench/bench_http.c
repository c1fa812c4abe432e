/* bench_http.c — HTTP server throughput and tail latency on loopback: the server runs on
 * its own loop thread with a trivial JSON route (the shape of GET /v1/leader), and `wrk`
 * drives it at 1, 16 and 64 connections. Prints a table of requests/s and p99 latency
 * over several runs; it never fails on time.
 *
 *   bench_http [--runs N] [--seconds S]   (defaults: 3 runs of 3 s per row) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct srv {
    uv_loop_t loop;
    http_server_t *http;
    uv_async_t stop;
    uv_thread_t thread;
};

static void h_leader(http_req_t *req, void *data)
{
    (void)data;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "leader", "node-1");
    cJSON_AddStringToObject(j, "address", "127.0.0.1:7480");
    cJSON_AddNumberToObject(j, "term", 42);
    http_req_reply_json(req, 200, j);
    cJSON_Delete(j);
}

static void on_stop(uv_async_t *a)
{
    struct srv *s = a->data;
    http_server_close(s->http, NULL, NULL);
    uv_close((uv_handle_t *)a, NULL);
}

static void loop_thread(void *arg)
{
    struct srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
}

/* wrk's latency values: "812.00us", "1.23ms", "2.01s". */
static double to_ms(const char *v)
{
    double x = atof(v);
    if (strstr(v, "us"))
        return x / 1000.0;
    if (strstr(v, "ms"))
        return x;
    if (strstr(v, "s"))
        return x * 1000.0;
    return x;
}

static int run_wrk(int port, int conns, int seconds, double *rps, double *p99_ms)
{
    char cmd[256];
    int threads = conns < 2 ? 1 : 2;
    snprintf(cmd, sizeof(cmd), "wrk -t%d -c%d -d%ds --latency http://127.0.0.1:%d/v1/leader 2>&1",
             threads, conns, seconds, port);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[512];
    *rps = -1;
    *p99_ms = -1;
    while (fgets(line, sizeof(line), p)) {
        char v[64];
        if (sscanf(line, " Requests/sec: %lf", rps) == 1)
            continue;
        if (sscanf(line, " 99%% %63s", v) == 1)
            *p99_ms = to_ms(v);
    }
    int rc = pclose(p);
    return rc == 0 && *rps >= 0 ? 0 : -1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int runs = 3, seconds = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--seconds"))
            seconds = atoi(argv[i + 1]);
    }
    if (runs < 1 || runs > 50 || seconds < 1 || seconds > 60) {
        fprintf(stderr, "usage: bench_http [--runs 1..50] [--seconds 1..60]\n");
        return 2;
    }
    if (system("command -v wrk >/dev/null") != 0) {
        printf("bench_http: wrk not found; nothing measured\n");
        return 0;
    }

    struct srv s;
    memset(&s, 0, sizeof(s));
    http_options_t opts = {.limits = {.max_connections = 256}};
    if (uv_loop_init(&s.loop) || http_server_open(&s.loop, &opts, &s.http) ||
        http_server_route(s.http, HTTP_METHOD_GET, "/v1/leader", 0, h_leader, NULL) ||
        http_server_listen(s.http, "127.0.0.1:0")) {
        fprintf(stderr, "bench_http: cannot start the server\n");
        return 1;
    }
    int port = http_server_port(s.http);
    uv_async_init(&s.loop, &s.stop, on_stop);
    s.stop.data = &s;
    uv_thread_create(&s.thread, loop_thread, &s);

    printf("HTTP GET /v1/leader (JSON, keep-alive) on loopback with wrk, %d runs x %d s\n", runs,
           seconds);
    printf("%6s | %12s %12s %12s | %10s %10s %10s\n", "conns", "req/s med", "req/s min",
           "req/s max", "p99 med", "p99 min", "p99 max");
    printf("-------+----------------------------------------+---------------------------------\n");
    static const int conns[] = {1, 16, 64};
    for (size_t k = 0; k < sizeof(conns) / sizeof(conns[0]); k++) {
        double rps[50], p99[50];
        int ok = 0;
        for (int r = 0; r < runs; r++) {
            if (run_wrk(port, conns[k], seconds, &rps[ok], &p99[ok]) == 0)
                ok++;
        }
        if (!ok) {
            printf("%6d | wrk failed\n", conns[k]);
            continue;
        }
        qsort(rps, (size_t)ok, sizeof(double), cmp);
        qsort(p99, (size_t)ok, sizeof(double), cmp);
        printf("%6d | %12.0f %12.0f %12.0f | %8.2fms %8.2fms %8.2fms\n", conns[k], rps[ok / 2],
               rps[0], rps[ok - 1], p99[ok / 2], p99[0], p99[ok - 1]);
    }

    uv_async_send(&s.stop);
    uv_thread_join(&s.thread);
    int rc = uv_loop_close(&s.loop);
    if (rc != 0)
        fprintf(stderr, "bench_http: loop did not close cleanly\n");
    return rc != 0;
}
