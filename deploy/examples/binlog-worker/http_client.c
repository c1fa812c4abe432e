/* http_client.c — one bounded HTTP/1.1 request over a fresh TCP connection (see
 * http_client.h). Non-blocking socket plus poll() against one deadline, so a frozen or
 * partitioned electd costs at most timeout_ms.
 *
 * Sample code, meant to be copied: the example worker stands alone (libc only) so that a user
 * can lift it into their own workload. electd itself reads HTTP responses with the one parser
 * in http/ (http/response.c); this file keeps its own small one on purpose. */
#include "http_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_HEAD_MAX 1024

static char bearer[HTTP_CLIENT_TOKEN_MAX + 1]; /* "" = no Authorization header */

int http_client_bearer_set(const char *token)
{
    bearer[0] = '\0';
    if (token == NULL || *token == '\0')
        return 0;
    size_t n = strlen(token);
    if (n > HTTP_CLIENT_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f)
            return -1;
    memcpy(bearer, token, n + 1);
    return 0;
}

const char *http_client_strerror(int code)
{
    switch (code) {
#define X(name, value, text)                                                                       \
    case value:                                                                                    \
        return text;
        HTTP_CLIENT_ERRORS(X)
#undef X
    }
    return "unknown error";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Splits "HOST:PORT" or "[IPv6]:PORT" and resolves it. HOST may be a name (an operator's
 * --electd-http, or a name electd advertised); every address it has is tried in turn. */
static int resolve(const char *addr, struct addrinfo **out)
{
    char host[256];
    const char *port;
    if (addr[0] == '[') {
        const char *end = strchr(addr, ']');
        if (end == NULL || end[1] != ':' || (size_t)(end - addr - 1) >= sizeof(host))
            return HTTP_CLIENT_EADDR;
        memcpy(host, addr + 1, (size_t)(end - addr - 1));
        host[end - addr - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(addr, ':');
        if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
            return HTTP_CLIENT_EADDR;
        memcpy(host, addr, (size_t)(colon - addr));
        host[colon - addr] = '\0';
        port = colon + 1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    return getaddrinfo(host, port, &hints, out) == 0 ? 0 : HTTP_CLIENT_EADDR;
}

/* Waits for `events` on fd until the deadline. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return HTTP_CLIENT_ETIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int rv = poll(&p, 1, (int)left);
        if (rv > 0)
            return 0;
        if (rv < 0 && errno != EINTR)
            return HTTP_CLIENT_EIO;
        /* EINTR (a SIGTERM arrived): keep going, the deadline still bounds us. */
    }
}

static int send_all(int fd, const char *buf, size_t len, int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            buf += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return HTTP_CLIENT_EIO;
        int rv = wait_fd(fd, POLLOUT, deadline);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/* Parses the status line and finds the body; `resp` is NUL-terminated. */
static int parse_reply(char *resp, size_t len, char *body_out, size_t body_cap)
{
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*1[01] %3d", &status) != 1 || status < 100 || status > 599)
        return HTTP_CLIENT_EPROTO;
    char *sep = strstr(resp, "\r\n\r\n");
    if (sep == NULL)
        return HTTP_CLIENT_EPROTO;
    if (body_out != NULL && body_cap > 0) {
        const char *body = sep + 4;
        size_t n = len - (size_t)(body - resp);
        if (n >= body_cap)
            n = body_cap - 1;
        memcpy(body_out, body, n);
        body_out[n] = '\0';
    }
    return status;
}

/* Returns the Content-Length of a complete header block, or -1 when there is none yet. */
static long content_length(const char *resp)
{
    const char *sep = strstr(resp, "\r\n\r\n");
    if (sep == NULL)
        return -1;
    for (const char *p = strstr(resp, "\r\n"); p != NULL && p < sep; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            return strtol(p + 2 + 15, NULL, 10);
    }
    return -1;
}

/* Connects to one address; HTTP_CLIENT_ECONNECT means "try the next one". */
static int connect_one(const struct addrinfo *a, int64_t deadline, int *fd_out)
{
    int fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return HTTP_CLIENT_ECONNECT;
    int rv = 0;
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
        rv = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : HTTP_CLIENT_ECONNECT;
        int err = 0;
        socklen_t elen = sizeof(err);
        if (rv == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err != 0))
            rv = HTTP_CLIENT_ECONNECT;
    }
    if (rv != 0) {
        close(fd);
        return rv;
    }
    *fd_out = fd;
    return 0;
}

int http_client_request(const char *addr, const char *method, const char *path, const char *body,
                        size_t body_len, int timeout_ms, char *body_out, size_t body_cap)
{
    int64_t deadline = now_ms() + timeout_ms;
    struct addrinfo *ai = NULL;
    char *resp = NULL;
    int fd = -1;
    int rv = resolve(addr, &ai);
    if (rv != 0)
        goto fail;
    rv = HTTP_CLIENT_ECONNECT;
    for (const struct addrinfo *a = ai; a != NULL && rv == HTTP_CLIENT_ECONNECT; a = a->ai_next)
        rv = connect_one(a, deadline, &fd);
    if (rv != 0)
        goto fail;

    char head[REQUEST_HEAD_MAX];
    int n = snprintf(head, sizeof(head),
                     "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %zu\r\n"
                     "%s%s%sConnection: close\r\n\r\n",
                     method, path, addr, body_len, *bearer ? "Authorization: Bearer " : "", bearer,
                     *bearer ? "\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head)) {
        rv = HTTP_CLIENT_EADDR;
        goto fail;
    }
    /* No shutdown(SHUT_WR) afterwards: electd treats a half-closed client as gone. */
    if ((rv = send_all(fd, head, (size_t)n, deadline)) != 0 ||
        (body_len > 0 && (rv = send_all(fd, body, body_len, deadline)) != 0))
        goto fail;

    resp = malloc(HTTP_CLIENT_MAX_RESPONSE_BYTES + 1);
    if (resp == NULL) {
        rv = HTTP_CLIENT_EIO;
        goto fail;
    }
    size_t have = 0;
    for (;;) {
        if (have == HTTP_CLIENT_MAX_RESPONSE_BYTES) {
            rv = HTTP_CLIENT_ETOOBIG;
            goto fail;
        }
        ssize_t got = recv(fd, resp + have, HTTP_CLIENT_MAX_RESPONSE_BYTES - have, 0);
        if (got == 0)
            break; /* the server closed: the reply is complete */
        if (got > 0) {
            have += (size_t)got;
            resp[have] = '\0';
            long clen = content_length(resp);
            const char *sep = strstr(resp, "\r\n\r\n");
            if (clen >= 0 && sep != NULL && have - (size_t)(sep + 4 - resp) >= (size_t)clen)
                break;
            continue;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            rv = HTTP_CLIENT_EIO;
            goto fail;
        }
        if ((rv = wait_fd(fd, POLLIN, deadline)) != 0)
            goto fail;
    }
    resp[have] = '\0';
    rv = parse_reply(resp, have, body_out, body_cap);

fail:
    free(resp);
    if (fd >= 0)
        close(fd);
    if (ai != NULL)
        freeaddrinfo(ai);
    if (rv < 0 && body_out != NULL && body_cap > 0)
        body_out[0] = '\0';
    return rv;
}
