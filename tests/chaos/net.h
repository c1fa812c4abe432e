/* net.h — the chaos harness's network: where each electd listens and how a link between two
 * members is cut.
 *
 * Namespace mode (root): one network namespace per member, a veth pair from each to a bridge
 * the harness creates, addresses 10.213.S.1..N on it (S chosen per run; the harness itself is
 * 10.213.S.254 on the bridge, which is how clients reach every member's HTTP API). Cutting the
 * link from A to B adds, in B's namespace, a policy rule that silently drops A's TCP packets to
 * B's peer port: A's messages to B vanish (its connection stalls, new ones hang), while B's own
 * connection to A, and every client, keep working. A symmetric partition cuts both ways.
 *
 * Proxy mode (not root, or CHAOS_FORCE_PROXY=1): every member on 127.0.0.1; the address each
 * member is known by in --peers is a port of a proxy thread that forwards to the member's real
 * peer port. The proxy learns who dialled from the transport's HELLO (the dialler's node id) and
 * closes, and refuses, connections over a cut link.
 *
 * Names carry the harness's pid ("ch<pid>n<i>", "chbr<pid>") so that a later run removes what a
 * killed run left behind (chaos_net_reap_stale).
 */
#ifndef ELECTD_TESTS_CHAOS_NET_H
#define ELECTD_TESTS_CHAOS_NET_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define CHAOS_MAX_NODES       5
#define CHAOS_PEER_PORT       7001 /* namespace mode: every member listens on its own address */
#define CHAOS_HTTP_PORT       7480
#define CHAOS_PROXY_MAX_CONNS 64

struct chaos_proxy;

typedef struct chaos_net {
    bool netns; /* namespace mode, else proxy mode */
    int n;
    int subnet; /* 10.213.<subnet>.0/24 in namespace mode */
    char bridge[16];
    char ns[CHAOS_MAX_NODES][24];
    char ip[CHAOS_MAX_NODES][20];     /* address electd listens on (peer and HTTP) */
    int peer_port[CHAOS_MAX_NODES];   /* the port in --peers */
    int listen_port[CHAOS_MAX_NODES]; /* the port electd listens on for peers */
    int http_port[CHAOS_MAX_NODES];
    bool cut[CHAOS_MAX_NODES][CHAOS_MAX_NODES]; /* [from][to] */
    struct chaos_proxy *proxy;
    bool up;
} chaos_net_t;

/* Sets up n members' network. force_proxy selects proxy mode even as root. Returns 0, or -1
 * with a message in err. On failure nothing is left behind. */
int chaos_net_setup(chaos_net_t *net, int n, bool force_proxy, char *err, size_t errlen);

/* Cuts (cut = true) or heals the link from member `from` to member `to`. Returns 0 or -1. */
int chaos_net_cut(chaos_net_t *net, int from, int to, bool cut);

/* Heals every link. */
void chaos_net_heal_all(chaos_net_t *net);

/* In a forked child, before exec: enters member i's namespace (no-op in proxy mode).
 * Async-signal-safe. Returns 0 or -1. */
int chaos_net_enter(const chaos_net_t *net, int i);

/* Removes everything chaos_net_setup created (idempotent). */
void chaos_net_teardown(chaos_net_t *net);

/* Removes namespaces and bridges left by earlier harness runs whose process is gone. */
void chaos_net_reap_stale(void);

/* Runs argv (argv[0] looked up in PATH), waits at most 10 s; returns its exit status or -1.
 * Output goes to /dev/null unless quiet is false. */
int chaos_run_cmd(const char *const *argv, bool quiet);

/* Connections the proxy closed or refused over cut links (0 in namespace mode). */
unsigned long chaos_net_proxy_refused(const chaos_net_t *net);

#endif
