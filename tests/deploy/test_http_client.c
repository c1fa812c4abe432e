/* test_http_client.c — the example worker's HTTP client reaches electd by host name, trying
 * each address the name resolves to (the first may have no listener, as ::1 for localhost on
 * stock Debian). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../sidecar/private_hosts.h"
#include "http_client.h"

/* A one-shot HTTP server on 127.0.0.1 in a child process; returns its port. */
static int serve_once(pid_t *pid)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    cr_assert_eq(listen(fd, 4), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    *pid = fork();
    cr_assert_geq(*pid, 0);
    if (*pid == 0) {
        alarm(10);
        int c = accept(fd, NULL, NULL);
        char buf[1024];
        ssize_t n = recv(c, buf, sizeof(buf), 0);
        (void)n;
        const char *reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        send(c, reply, strlen(reply), 0);
        close(c);
        _exit(0);
    }
    close(fd);
    return ntohs(sa.sin_port);
}

Test(http_client, a_host_name_is_resolved_and_each_address_tried)
{
    private_hosts("electd-dual-stack"); /* ::1 first, then 127.0.0.1 */
    pid_t pid;
    int port = serve_once(&pid);
    char addr[64], body[64];
    snprintf(addr, sizeof(addr), "electd-dual-stack:%d", port);
    int rv = http_client_request(addr, "GET", "/v1/status", NULL, 0, 3000, body, sizeof(body));
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    cr_assert_eq(rv, 200, "%d (%s)", rv, rv < 0 ? http_client_strerror(rv) : "");
    cr_assert_str_eq(body, "ok");
}
