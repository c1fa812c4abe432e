/* shim_output.c — the workload's stdout and stderr as JSON log records (shim.h): the shim
 * reads both through pipes and writes one record per line to its own stdout or stderr, a
 * record only when that destination can take it without blocking (the watchdog must never
 * wait on a slow reader: the workload then waits on its full pipe, as it would without the
 * shim), and the rest of a line without newline when the workload's end closes its pipes. */
#include "shim.h"

#include "common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

int shim_output_open(shim_output_t *o)
{
    const char *names[SHIM_STREAMS] = {"stdout", "stderr"};
    for (int i = 0; i < SHIM_STREAMS; i++) {
        o->s[i] = (shim_stream_t){.rd = -1, .wr = -1, .dest = i + 1, .name = names[i]};
    }
    for (int i = 0; i < SHIM_STREAMS; i++) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            shim_output_close(o);
            return -1;
        }
        o->s[i].rd = p[0];
        o->s[i].wr = p[1];
    }
    return 0;
}

void shim_output_child(shim_output_t *o)
{
    /* dup2 clears close-on-exec on 1 and 2; the pipes' own descriptors close at exec. */
    for (int i = 0; i < SHIM_STREAMS; i++) {
        if (o->s[i].wr >= 0) {
            dup2(o->s[i].wr, o->s[i].dest);
        }
    }
}

void shim_output_parent(shim_output_t *o)
{
    for (int i = 0; i < SHIM_STREAMS; i++) {
        if (o->s[i].wr >= 0) {
            close(o->s[i].wr);
            o->s[i].wr = -1;
        }
    }
}

void shim_output_close(shim_output_t *o)
{
    for (int i = 0; i < SHIM_STREAMS; i++) {
        if (o->s[i].rd >= 0) {
            close(o->s[i].rd);
        }
        if (o->s[i].wr >= 0) {
            close(o->s[i].wr);
        }
        o->s[i].rd = o->s[i].wr = -1;
    }
}

/* True when fd takes a record now: a pipe with PIPE_BUF (>= one record) free, a file. */
static bool dest_ready(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLOUT};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/* n, less an incomplete UTF-8 character at the end of buf[0..n) (the rest of it is still to
 * be read): a cut between reads must not turn one character into two replacements. */
static size_t whole_chars(const char *buf, size_t n)
{
    for (size_t back = 1; back <= 3 && back <= n; back++) {
        unsigned char c = (unsigned char)buf[n - back];
        if ((c & 0xC0) == 0x80) {
            continue; /* a continuation byte: look further back */
        }
        size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        return need > back && back < n ? n - back : n;
    }
    return n;
}

/* The bytes of the next record: a whole line, or a full buffer, or (once the pipe closed)
 * what is left; 0 when no record is due yet. *ends: it ends with a newline. */
static size_t due(const shim_stream_t *st, bool *ends)
{
    const char *nl = memchr(st->buf, '\n', st->have);
    *ends = nl != NULL;
    if (nl != NULL) {
        return (size_t)(nl - st->buf);
    }
    if (st->rd < 0) {
        return st->have;
    }
    return st->have == sizeof(st->buf) ? whole_chars(st->buf, st->have) : 0;
}

/* Writes the records that are due while the destination takes them; true when one is still
 * due (the destination is full). */
static bool flush(shim_stream_t *st)
{
    bool ends;
    size_t n;
    while ((n = due(st, &ends)) > 0 || (ends && st->have > 0)) {
        if (!dest_ready(st->dest)) {
            return true;
        }
        size_t used = sidecar_log_output(st->dest, "workload", st->name, st->buf, n, ends);
        bool whole = used == n;
        if (whole && ends) {
            used++; /* the newline */
        }
        memmove(st->buf, st->buf + used, st->have - used);
        st->have -= used;
    }
    return false;
}

/* Reads what the workload wrote (once); EOF or an error closes the pipe. */
static void fill(shim_stream_t *st)
{
    ssize_t n = read(st->rd, st->buf + st->have, sizeof(st->buf) - st->have);
    if (n > 0) {
        st->have += (size_t)n;
    } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(st->rd);
        st->rd = -1;
    }
}

size_t shim_output_pollfds(shim_output_t *o, struct pollfd *p)
{
    size_t k = 0;
    for (int i = 0; i < SHIM_STREAMS; i++) {
        shim_stream_t *st = &o->s[i];
        st->slot = -1;
        if (flush(st)) {
            st->slot = (int)k;
            p[k++] = (struct pollfd){.fd = st->dest, .events = POLLOUT};
        } else if (st->rd >= 0 && st->have < sizeof(st->buf)) {
            st->slot = (int)k;
            p[k++] = (struct pollfd){.fd = st->rd, .events = POLLIN};
        }
    }
    return k;
}

void shim_output_step(shim_output_t *o, const struct pollfd *p)
{
    for (int i = 0; i < SHIM_STREAMS; i++) {
        shim_stream_t *st = &o->s[i];
        if (st->slot < 0 || p[st->slot].revents == 0) {
            continue;
        }
        if (p[st->slot].fd == st->rd) {
            fill(st);
        }
        flush(st);
    }
}

bool shim_output_done(shim_output_t *o)
{
    for (int i = 0; i < SHIM_STREAMS; i++) {
        if (o->s[i].rd >= 0 || o->s[i].have > 0) {
            return false;
        }
    }
    return true;
}
