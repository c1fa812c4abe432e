/* httpc.c — see httpc.h. Connection: close; the answer is read with http/'s response parser. */
#include "httpc.h"

#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for ev on fd until deadline; returns true when ready. */
static bool wait_fd(int fd, short ev, int64_t deadline)
{
    for (int i = 0; i < 1000; i++) {
        int left = (int)(deadline - now_ms());
        if (left <= 0)
            return false;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, left);
        if (r > 0)
            return true;
        if (r < 0 && errno != EINTR)
            return false;
    }
    return false;
}

int httpc_request(const char *ip, int port, const char *method, const char *path,
                  const char *header, const char *body, int timeout_ms, httpc_resp_t *resp)
{
    int64_t deadline = now_ms() + timeout_ms;
    resp->status = HTTPC_NOT_SENT;
    resp->body[0] = '\0';
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
        return resp->status;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return resp->status;
    char req[1024];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof(req),
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n%s%s"
                     "Content-Length: %zu\r\n\r\n%s",
                     method, path, ip, port, header ? header : "", header ? "\r\n" : "", blen,
                     body ? body : "");
    if (n <= 0 || (size_t)n >= sizeof(req))
        goto out;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (errno != EINPROGRESS || !wait_fd(fd, POLLOUT, deadline))
            goto out;
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0)
            goto out;
    }
    resp->status = HTTPC_LOST; /* from here on the server may have seen (part of) it */
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(fd, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EAGAIN && wait_fd(fd, POLLOUT, deadline))
            continue;
        goto out;
    }
    http_response_t rs;
    http_response_open(&rs, 0, HTTPC_BODY_MAX);
    char buf[4096];
    int rc = 0;
    for (int i = 0; i < 100000 && rc == 0; i++) {
        ssize_t r = recv(fd, buf, sizeof(buf), 0);
        if (r > 0)
            rc = http_response_feed(&rs, buf, (size_t)r);
        else if (r == 0)
            rc = http_response_finish(&rs) == 0 ? 1 : -1;
        else if (!(errno == EAGAIN && wait_fd(fd, POLLIN, deadline)) && errno != EINTR)
            rc = -1;
    }
    if (rc == 1) {
        resp->status = rs.status;
        snprintf(resp->body, sizeof(resp->body), "%s", http_response_body(&rs, NULL));
    }
    http_response_close(&rs);
out:
    close(fd);
    return resp->status;
}
