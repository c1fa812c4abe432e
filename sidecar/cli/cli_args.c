/* cli_args.c — the CLI's command line: the subcommand words ("kv put", "members add"), the
 * options and where each applies, their values (durations, numbers and the address through
 * common's parsers), ELECTD_HTTP(_URL), the token and certificate variables, usage lines and
 * --help. */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "cli_int.h"

typedef struct usage {
    cli_cmd_t cmd;
    const char *name; /* as typed, for messages */
    const char *line;
    int min_pos, max_pos; /* positional arguments after the (sub)command words */
} usage_t;

static const usage_t USAGES[] = {
    {CLI_CMD_STATUS, "status", "electd status [options]", 0, 0},
    {CLI_CMD_LEADER, "leader", "electd leader [--wait[=DURATION]] [options]", 0, 0},
    {CLI_CMD_TRANSFER, "transfer", "electd transfer [--to NAME] [options]", 0, 0},
    {CLI_CMD_KV_GET, "kv get", "electd kv get KEY [--stale] [--raw] [options]", 1, 1},
    {CLI_CMD_KV_PUT, "kv put",
     "electd kv put KEY VALUE|- [--fence N [--election NAME]] [--if-match REV] [--ephemeral] "
     "[options]",
     2, 2},
    {CLI_CMD_KV_DEL, "kv del",
     "electd kv del KEY [--fence N [--election NAME]] [--if-match REV] [options]", 1, 1},
    {CLI_CMD_KV_LS, "kv ls", "electd kv ls [PREFIX] [--stale] [options]", 0, 1},
    {CLI_CMD_KV_WATCH, "kv watch", "electd kv watch KEY|--prefix PREFIX [--from REV] [options]", 0,
     1},
    {CLI_CMD_MEMBERS_LIST, "members", "electd members [list] [options]", 0, 0},
    {CLI_CMD_MEMBERS_ADD, "members add", "electd members add NAME PEER_ADDR [options]", 2, 2},
    {CLI_CMD_MEMBERS_REMOVE, "members remove", "electd members remove NAME [options]", 1, 1},
    {CLI_CMD_ELECTIONS_LIST, "elections", "electd elections [list] [options]", 0, 0},
    {CLI_CMD_ELECTIONS_TRANSFER, "elections transfer",
     "electd elections transfer ELECTION [--to NAME] [options]", 1, 1},
    {CLI_CMD_BACKUP, "backup", "electd backup FILE [options]", 1, 1},
    {CLI_CMD_MAINTENANCE_SHOW, "maintenance", "electd maintenance [options]", 0, 0},
    {CLI_CMD_MAINTENANCE_ON, "maintenance on", "electd maintenance on [--reason TEXT] [options]", 0,
     0},
    {CLI_CMD_MAINTENANCE_OFF, "maintenance off", "electd maintenance off [options]", 0, 0},
};
#define N_USAGES (sizeof(USAGES) / sizeof(USAGES[0]))

static const usage_t *usage_of(cli_cmd_t cmd)
{
    for (size_t i = 0; i < N_USAGES; i++)
        if (USAGES[i].cmd == cmd)
            return &USAGES[i];
    return NULL;
}

enum {
    O_HTTP,
    O_TOKEN,
    O_CACERT,
    O_CERT,
    O_KEY,
    O_INSECURE,
    O_JSON,
    O_TIMEOUT,
    O_STALE,
    O_RAW,
    O_FENCE,
    O_ELECTION,
    O_IF_MATCH,
    O_TO,
    O_WAIT,
    O_PREFIX,
    O_FROM,
    O_EPHEMERAL,
    O_REASON
};

typedef struct option {
    const char *name;
    int value;        /* 0 none, 1 required (--x V or --x=V), 2 optional (--x=V only) */
    unsigned cmds;    /* bit per cli_cmd_t where the option applies; 0 = everywhere */
    const char *help; /* "--name ARG" column, then the text */
    const char *text;
} option_t;

#define BIT(c) (1u << (c))
static const option_t OPTIONS[] = {
    [O_HTTP] = {"http", 1, 0, "--http ADDR",
                "HOST:PORT, [IPv6]:PORT or https://HOST:PORT (env ELECTD_HTTP_URL, else "
                "ELECTD_HTTP; default " CLI_DEFAULT_HTTP ")"},
    [O_TOKEN] = {"token", 1, 0, "--token TOKEN",
                 "bearer token (env ELECTD_HTTP_TOKEN, else ELECTD_WORKLOAD_TOKEN)"},
    [O_CACERT] = {"cacert", 1, 0, "--cacert FILE",
                  "HTTPS: CA bundle (PEM) the server must chain to (env ELECTD_CACERT; "
                  "default: the system's)"},
    [O_CERT] = {"cert", 1, 0, "--cert FILE",
                "HTTPS: client certificate (PEM) to present, with --key (env ELECTD_CERT)"},
    [O_KEY] = {"key", 1, 0, "--key FILE", "HTTPS: the private key of --cert (env ELECTD_KEY)"},
    [O_INSECURE] = {"insecure", 0, 0, "--insecure, -k",
                    "HTTPS: do not verify the server's certificate (tests only)"},
    [O_JSON] = {"json", 0, 0, "--json", "print the server's JSON as is"},
    [O_TIMEOUT] = {"timeout", 1, 0, "--timeout DURATION",
                   "give up after this long (default 10s; 500ms, 2s, 1m, 1h; at most 24h)"},
    [O_STALE] = {"stale", 0, BIT(CLI_CMD_KV_GET) | BIT(CLI_CMD_KV_LS), "--stale",
                 "read this node's state as it is (no round trip to the leader)"},
    [O_RAW] = {"raw", 0, BIT(CLI_CMD_KV_GET), "--raw", "print the value's bytes, no newline added"},
    [O_FENCE] = {"fence", 1, BIT(CLI_CMD_KV_PUT) | BIT(CLI_CMD_KV_DEL), "--fence N",
                 "apply only if N is the current fencing token"},
    [O_ELECTION] = {"election", 1, BIT(CLI_CMD_KV_PUT) | BIT(CLI_CMD_KV_DEL), "--election NAME",
                    "with --fence: N is named election NAME's token ($ELECTD_ELECTION)"},
    [O_IF_MATCH] = {"if-match", 1, BIT(CLI_CMD_KV_PUT) | BIT(CLI_CMD_KV_DEL), "--if-match REV",
                    "apply only if the key's mod revision is REV"},
    [O_TO] = {"to", 1, BIT(CLI_CMD_TRANSFER) | BIT(CLI_CMD_ELECTIONS_TRANSFER), "--to NAME",
              "hand over to member NAME (default: transfer, the most up-to-date voter; "
              "elections transfer, the best other member declaring it)"},
    [O_WAIT] = {"wait", 2, BIT(CLI_CMD_LEADER), "--wait[=DURATION]",
                "wait for the next leader (a new term), at most DURATION (default 30s)"},
    [O_PREFIX] = {"prefix", 1, BIT(CLI_CMD_KV_WATCH), "--prefix PREFIX",
                  "watch every key that starts with PREFIX (instead of one KEY)"},
    [O_FROM] = {"from", 1, BIT(CLI_CMD_KV_WATCH), "--from REV",
                "the changes after revision REV (default: from now on)"},
    [O_EPHEMERAL] = {"ephemeral", 0, BIT(CLI_CMD_KV_PUT), "--ephemeral",
                     "bind the key to the member asked: deleted once it is removed or "
                     "unreachable"},
    [O_REASON] = {"reason", 1, BIT(CLI_CMD_MAINTENANCE_ON), "--reason TEXT",
                  "why maintenance is on (shown in status; at most 256 bytes)"},
};
#define N_OPTIONS (sizeof(OPTIONS) / sizeof(OPTIONS[0]))

/* ---- usage and help -------------------------------------------------------------------------- */

/* The options of cmd (all of them for CLI_CMD_NONE), then the exit codes. */
static void print_options(FILE *out, cli_cmd_t cmd)
{
    fprintf(out, "options:\n");
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const option_t *o = &OPTIONS[i];
        if (cmd == CLI_CMD_NONE || o->cmds == 0 || (o->cmds & BIT(cmd)) != 0)
            fprintf(out, "  %-19s %s\n", o->help, o->text);
    }
    fprintf(out, "exit status: 0 ok; 1 not found, condition failed (conflict, fenced), no leader;\n"
                 "             2 error (bad usage, connection refused, timeout, server error)\n");
}

static void print_usage_lines(FILE *out)
{
    for (size_t i = 0; i < N_USAGES; i++)
        fprintf(out, "%s%s\n", i ? "       " : "usage: ", USAGES[i].line);
}

static void print_help(FILE *out)
{
    print_usage_lines(out);
    fprintf(out, "Subcommands ask the HTTP API of a running electd; the subcommand comes first.\n"
                 "KV reads and writes, transfers and membership changes follow one redirect\n"
                 "to the leader. A VALUE starting with '-' goes after '--'.\n"
                 "`electd elections` lists the named elections (holder, token, state);\n"
                 "`elections transfer ELECTION` asks for a graceful handover of one.\n"
                 "`kv watch KEY` (or --prefix PREFIX) prints each change as it is applied,\n"
                 "one line each, until interrupted (it follows on after a dropped connection).\n"
                 "`backup FILE` saves an online backup of the member's state (a new file);\n"
                 "a new group starts from it with the daemon's --restore FILE.\n"
                 "`maintenance on|off` freezes restarts, preemption, rebalancing and\n"
                 "voluntary transfers of the whole group (failover still happens);\n"
                 "`maintenance` alone shows whether it is on.\n"
                 "The daemon's own flags: electd --help.\n");
    print_options(out, CLI_CMD_NONE);
}

static int usage_error(const cli_ctx_t *c, const usage_t *u, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int usage_error(const cli_ctx_t *c, const usage_t *u, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vfail(c, fmt, ap);
    va_end(ap);
    if (u != NULL)
        fprintf(stderr, "usage: %s\n", u->line);
    else
        print_usage_lines(stderr);
    fprintf(stderr, "Try 'electd help'.\n");
    return SIDECAR_CLIENT_ERROR;
}

/* ---- words and options ----------------------------------------------------------------------- */

enum { MAX_WORDS = 8, MAX_OPTS = 32 };

/* argv split into words and options; options are checked once the command is known. */
typedef struct scan {
    const char *words[MAX_WORDS];
    int nwords;
    struct {
        int opt;
        const char *value;
        const char *text; /* as typed, for messages */
    } opts[MAX_OPTS];
    int nopts;
    bool help;
    const char *bad; /* the first argument that cannot be taken in, or NULL */
} scan_t;

/* Takes in the option argv[*i] (and its value, which may be the next argument). */
static bool scan_option(scan_t *s, int argc, char **argv, int *i)
{
    const char *a = argv[*i];
    if (strncmp(a, "--", 2) != 0 || s->nopts == MAX_OPTS)
        return false;
    const char *name = a + 2, *eq = strchr(name, '=');
    size_t nlen = eq ? (size_t)(eq - name) : strlen(name), k = 0;
    for (; k < N_OPTIONS; k++)
        if (strlen(OPTIONS[k].name) == nlen && strncmp(OPTIONS[k].name, name, nlen) == 0)
            break;
    if (k == N_OPTIONS || (eq != NULL && OPTIONS[k].value == 0))
        return false;
    const char *value = eq ? eq + 1 : NULL;
    if (OPTIONS[k].value == 1 && value == NULL) {
        if (*i + 1 == argc)
            return false;
        value = argv[++*i];
    }
    s->opts[s->nopts].opt = (int)k;
    s->opts[s->nopts].value = value;
    s->opts[s->nopts].text = a;
    s->nopts++;
    return true;
}

static void scan_argv(scan_t *s, int argc, char **argv)
{
    bool dashdash = false;
    memset(s, 0, sizeof(*s));
    for (int i = 1; i < argc && s->bad == NULL; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            if (s->nwords == MAX_WORDS)
                s->bad = "too many arguments";
            else
                s->words[s->nwords++] = a;
        } else if (strcmp(a, "--") == 0) {
            dashdash = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            s->help = true;
        } else if (strcmp(a, "-k") == 0 && s->nopts < MAX_OPTS) {
            s->opts[s->nopts].opt = O_INSECURE;
            s->opts[s->nopts].value = NULL;
            s->opts[s->nopts++].text = a;
        } else if (!scan_option(s, argc, argv, &i)) {
            s->bad = a;
        }
    }
}

/* The command from the leading words: "kv put", "members add", ... *used = words consumed. */
static cli_cmd_t resolve_cmd(const char *const *words, int n, int *used)
{
    static const struct {
        const char *a, *b;
        cli_cmd_t cmd;
    } table[] = {
        {"status", NULL, CLI_CMD_STATUS},
        {"leader", NULL, CLI_CMD_LEADER},
        {"transfer", NULL, CLI_CMD_TRANSFER},
        {"help", NULL, CLI_CMD_HELP},
        {"backup", NULL, CLI_CMD_BACKUP},
        {"kv", "get", CLI_CMD_KV_GET},
        {"kv", "put", CLI_CMD_KV_PUT},
        {"kv", "del", CLI_CMD_KV_DEL},
        {"kv", "ls", CLI_CMD_KV_LS},
        {"kv", "watch", CLI_CMD_KV_WATCH},
        {"members", "list", CLI_CMD_MEMBERS_LIST},
        {"members", "add", CLI_CMD_MEMBERS_ADD},
        {"members", "remove", CLI_CMD_MEMBERS_REMOVE},
        {"elections", "list", CLI_CMD_ELECTIONS_LIST},
        {"elections", "transfer", CLI_CMD_ELECTIONS_TRANSFER},
        {"maintenance", "on", CLI_CMD_MAINTENANCE_ON},
        {"maintenance", "off", CLI_CMD_MAINTENANCE_OFF},
    };
    *used = 0;
    if (n == 0)
        return CLI_CMD_NONE;
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        if (strcmp(words[0], table[i].a) != 0)
            continue;
        if (table[i].b == NULL) {
            *used = 1;
            return table[i].cmd;
        }
        if (n > 1 && strcmp(words[1], table[i].b) == 0) {
            *used = 2;
            return table[i].cmd;
        }
    }
    if (strcmp(words[0], "members") == 0) { /* `electd members` alone lists */
        *used = 1;
        return CLI_CMD_MEMBERS_LIST;
    }
    if (strcmp(words[0], "elections") == 0) { /* and `electd elections` */
        *used = 1;
        return CLI_CMD_ELECTIONS_LIST;
    }
    if (strcmp(words[0], "maintenance") == 0) { /* `electd maintenance` shows it */
        *used = 1;
        return CLI_CMD_MAINTENANCE_SHOW;
    }
    return CLI_CMD_NONE;
}

/* ---- values ---------------------------------------------------------------------------------- */

/* A duration of --timeout or --wait: common's syntax (ms, s, m, h; bare = ms), 1 ms .. 24 h. */
static bool duration_option(const char *text, uint32_t *ms)
{
    uint64_t v;
    if (sidecar_parse_duration_ms(text, &v) != 0 || v == 0 || v > CLI_DURATION_MAX_MS)
        return false;
    *ms = (uint32_t)v;
    return true;
}

static bool number_option(const char *text)
{
    uint64_t v;
    return sidecar_parse_count(text, &v) == 0;
}

#define DURATION_EXPECTED "expected 1ms to 24h, e.g. 500ms, 2s, 1m or 1h"

/* Applies one option to c (*http for --http). 0, or the exit code of a usage error. */
static int apply_option(cli_ctx_t *c, const usage_t *u, int opt, const char *v, const char **http)
{
    switch (opt) {
    case O_HTTP:
        *http = v;
        return 0;
    case O_TOKEN:
        c->token = *v ? v : NULL;
        return 0;
    case O_CACERT:
        c->cacert = *v ? v : NULL;
        return 0;
    case O_CERT:
        c->cert = *v ? v : NULL;
        return 0;
    case O_KEY:
        c->key = *v ? v : NULL;
        return 0;
    case O_INSECURE:
        c->insecure = true;
        return 0;
    case O_JSON:
        c->json = true;
        return 0;
    case O_TIMEOUT:
        if (!duration_option(v, &c->timeout_ms))
            return usage_error(c, u, "invalid --timeout '%s': " DURATION_EXPECTED, v);
        return 0;
    case O_STALE:
        c->stale = true;
        return 0;
    case O_RAW:
        c->raw = true;
        return 0;
    case O_EPHEMERAL:
        c->ephemeral = true;
        return 0;
    case O_FENCE:
        if (!number_option(v))
            return usage_error(c, u, "invalid --fence '%s': expected a number", v);
        c->fence = v;
        return 0;
    case O_ELECTION:
        if (!sidecar_parse_name_valid(v))
            return usage_error(c, u,
                               "invalid --election '%s': expected a name (1-63 letters, digits, "
                               "'.', '_' or '-')",
                               v);
        c->election = v;
        return 0;
    case O_IF_MATCH:
        if (!number_option(v))
            return usage_error(c, u, "invalid --if-match '%s': expected a revision", v);
        c->if_match = v;
        return 0;
    case O_TO:
        c->to = v;
        return 0;
    case O_WAIT:
        c->wait = true;
        if (v != NULL && !duration_option(v, &c->wait_ms))
            return usage_error(c, u, "invalid --wait '%s': " DURATION_EXPECTED, v);
        return 0;
    case O_PREFIX:
        c->prefix = v;
        return 0;
    case O_FROM:
        if (!number_option(v))
            return usage_error(c, u, "invalid --from '%s': expected a revision", v);
        c->from = v;
        return 0;
    case O_REASON:
        if (strlen(v) > 256)
            return usage_error(c, u, "--reason is too long: at most 256 bytes");
        c->reason = v;
        return 0;
    }
    ELECTD_CHECK(!"an option without a case");
    return SIDECAR_CLIENT_ERROR;
}

/* A non-empty environment variable, or NULL. */
static const char *env_value(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* The defaults, then the environment: ELECTD_HTTP_URL (which electd gives its workload with
 * the scheme), else ELECTD_HTTP; ELECTD_HTTP_TOKEN (else the workload's
 * ELECTD_WORKLOAD_TOKEN, inside a workload or a hook); ELECTD_CACERT, ELECTD_CERT,
 * ELECTD_KEY. */
static const char *ctx_defaults(cli_ctx_t *c)
{
    memset(c, 0, sizeof(*c));
    c->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
    c->wait_ms = CLI_DEFAULT_WAIT_MS;
    c->prog = "electd";
    c->token = getenv("ELECTD_HTTP_TOKEN");
    if (c->token == NULL || *c->token == '\0')
        c->token = getenv("ELECTD_WORKLOAD_TOKEN");
    if (c->token != NULL && *c->token == '\0')
        c->token = NULL;
    c->cacert = env_value("ELECTD_CACERT");
    c->cert = env_value("ELECTD_CERT");
    c->key = env_value("ELECTD_KEY");
    const char *http = env_value("ELECTD_HTTP_URL");
    if (http == NULL)
        http = env_value("ELECTD_HTTP");
    return http != NULL ? http : CLI_DEFAULT_HTTP;
}

/* The positional arguments, the options, the token and the address, for command u. */
static int take_arguments(cli_ctx_t *c, const usage_t *u, const scan_t *s, int used,
                          const char *http)
{
    char why[128];
    if (s->bad != NULL)
        return usage_error(c, u, "bad option or argument '%s'", s->bad);
    c->npos = s->nwords - used;
    if (c->npos < u->min_pos || c->npos > u->max_pos)
        return usage_error(c, u, c->npos < u->min_pos ? "missing arguments" : "too many arguments");
    for (int i = 0; i < c->npos; i++)
        c->pos[i] = s->words[used + i];
    for (int i = 0; i < s->nopts; i++) {
        const option_t *o = &OPTIONS[s->opts[i].opt];
        if (o->cmds != 0 && (o->cmds & BIT(c->cmd)) == 0)
            return usage_error(c, u, "%s does not apply here", s->opts[i].text);
        int rc = apply_option(c, u, s->opts[i].opt, s->opts[i].value, &http);
        if (rc != 0)
            return rc;
    }
    for (const char *p = c->token; p != NULL && *p; p++)
        if (!isgraph((unsigned char)*p))
            return usage_error(c, u, "the token has spaces or control characters");
    if (c->election != NULL && c->fence == NULL)
        return usage_error(c, u, "--election goes with --fence (the election's token)");
    if (c->cmd == CLI_CMD_KV_WATCH && (c->npos == 1) == (c->prefix != NULL))
        return usage_error(c, u, "give one KEY or --prefix PREFIX");
    if ((c->cert == NULL) != (c->key == NULL))
        return usage_error(c, u, "--cert and --key go together (or ELECTD_CERT and ELECTD_KEY)");
    if (cli_addr_parse(http, &c->addr, why, sizeof(why)) != 0)
        return usage_error(c, u, "invalid HTTP address '%s': %s", http, why);
    return 0;
}

bool cli_args_parse(cli_ctx_t *c, int argc, char **argv, int *exit_code)
{
    static scan_t s;
    const char *http = ctx_defaults(c);
    int used = 0;
    scan_argv(&s, argc, argv);
    c->cmd = resolve_cmd(s.words, s.nwords, &used);
    const usage_t *u = usage_of(c->cmd);
    if (u != NULL) {
        snprintf(c->prog_buf, sizeof(c->prog_buf), "electd %s", u->name);
        c->prog = c->prog_buf;
    }
    *exit_code = SIDECAR_CLIENT_OK;
    if (c->cmd == CLI_CMD_HELP || (c->cmd == CLI_CMD_NONE && s.help)) {
        print_help(stdout);
    } else if (c->cmd == CLI_CMD_NONE && s.nwords > 0 && strcmp(s.words[0], "kv") == 0) {
        *exit_code = usage_error(c, NULL, "kv needs one of get, put, del, ls, watch");
    } else if (c->cmd == CLI_CMD_NONE) {
        *exit_code = usage_error(c, NULL, "unknown subcommand '%s'", s.nwords ? s.words[0] : "");
    } else if (s.help) {
        printf("usage: %s\n", u->line);
        print_options(stdout, c->cmd);
    } else {
        *exit_code = take_arguments(c, u, &s, used, http);
        if (*exit_code == 0) {
            c->deadline_ms = cli_now_ms() + c->timeout_ms;
            return true;
        }
    }
    return false;
}
