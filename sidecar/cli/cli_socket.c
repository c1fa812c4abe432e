/* cli_socket.c — the CLI's sockets and deadlines: the monotonic clock, HOST:PORT addresses,
 * connecting to each address a host resolves to (a bounded share of the time for each but the
 * last), and sending or waiting on a non-blocking socket until a deadline. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli_int.h"

uint64_t cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cli_sleep_ms(uint64_t ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int cli_remaining_ms(uint64_t deadline_ms)
{
    uint64_t now = cli_now_ms();
    if (now >= deadline_ms)
        return 0;
    uint64_t left = deadline_ms - now;
    return left > INT32_MAX ? INT32_MAX : (int)left;
}

int cli_addr_parse(const char *text, cli_addr_t *a, char *why, size_t why_size)
{
    uint16_t port;
    char hostport[CLI_HOST_MAX_BYTES + 16];
    memset(a, 0, sizeof(*a));
    if (strncasecmp(text, "https://", 8) == 0) {
        a->tls = true;
        text += 8;
    } else if (strncasecmp(text, "http://", 7) == 0) {
        text += 7;
    }
    size_t n = strlen(text);
    if (n > 0 && text[n - 1] == '/')
        n--; /* "https://host:port/" as a browser writes it; no other path */
    if (n >= sizeof(hostport)) {
        if (why != NULL)
            snprintf(why, why_size, "too long");
        return CLI_EADDR;
    }
    memcpy(hostport, text, n);
    hostport[n] = '\0';
    if (sidecar_parse_hostport(hostport, false, a->host, sizeof(a->host), &port, why, why_size) !=
        0)
        return CLI_EADDR;
    snprintf(a->port, sizeof(a->port), "%u", (unsigned)port);
    a->v6 = strchr(a->host, ':') != NULL;
    return 0;
}

void cli_addr_format(const cli_addr_t *a, char *buf, size_t size)
{
    snprintf(buf, size, a->v6 ? "[%s]:%s" : "%s:%s", a->host, a->port);
}

/* Polls fd for events until deadline_ms: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, uint64_t deadline_ms)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        int left = cli_remaining_ms(deadline_ms);
        if (left == 0)
            return 0;
        int n = poll(&p, 1, left);
        if (n >= 0)
            return n > 0 ? 1 : 0;
        if (errno != EINTR)
            return -1;
    }
}

/* The outcome of a connect that did not complete at once. */
static int connect_finish(int fd, uint64_t deadline_ms)
{
    int n = wait_fd(fd, POLLOUT, deadline_ms);
    if (n == 0)
        return CLI_ETIMEOUT;
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) != 0)
        return CLI_ECONNECT;
    if (soerr == ECONNREFUSED)
        return CLI_ECONNREFUSED;
    return soerr == 0 ? 0 : CLI_ECONNECT;
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline_ms, int *fd_out)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return CLI_ECONNECT;
    int rv = CLI_ECONNECT, flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        goto fail;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno == ECONNREFUSED)
            rv = CLI_ECONNREFUSED;
        else if (errno == EINPROGRESS)
            rv = connect_finish(fd, deadline_ms);
        if (rv != 0)
            goto fail;
    }
    *fd_out = fd;
    return 0;
fail:
    close(fd);
    return rv;
}

/* Tries every address the host resolves to, in the resolver's order; an IP literal needs no
 * resolver. A name goes through the system resolver, whose own timeouts apply (it cannot be
 * interrupted). An address that does not answer may take CLI_CONNECT_SHARE_MS while more
 * remain, so that one silent address (::1 dropped by a firewall when the server listens on
 * 127.0.0.1) does not use up the whole --timeout. */
int cli_connect(const cli_addr_t *a, uint64_t deadline_ms, int *fd_out)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    hints.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo(a->host, a->port, &hints, &res) != 0) {
        hints.ai_flags &= ~AI_NUMERICHOST;
        if (getaddrinfo(a->host, a->port, &hints, &res) != 0)
            return CLI_ERESOLVE;
    }
    int rv = CLI_ECONNECT;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        uint64_t until = deadline_ms, share = cli_now_ms() + CLI_CONNECT_SHARE_MS;
        if (ai->ai_next != NULL && share < until)
            until = share;
        rv = connect_one(ai, until, fd_out);
        if (rv == 0 || cli_remaining_ms(deadline_ms) == 0)
            break;
    }
    freeaddrinfo(res);
    return rv;
}

int cli_send_all(int fd, const char *p, size_t n, uint64_t deadline_ms)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
            return CLI_EIO;
        int k = wait_fd(fd, POLLOUT, deadline_ms);
        if (k <= 0)
            return k == 0 ? CLI_ETIMEOUT : CLI_EIO;
    }
    return 0;
}

int cli_wait_readable(int fd, uint64_t deadline_ms)
{
    int k = wait_fd(fd, POLLIN, deadline_ms);
    return k > 0 ? 0 : k == 0 ? CLI_ETIMEOUT : CLI_EIO;
}
