/* gendoc.c — writes electd(8) and the bash and zsh completions at build time, from the same
 * sources as `electd --help` and `electd help`: the settings table (config.h) for the daemon's
 * flags, and the text `electd help` prints for the client subcommands and their options. So
 * the man page, the completions and the help cannot disagree.
 *
 * Usage: electd_gendoc man|bash|zsh ELECTD_BINARY OUTPUT
 * ELECTD_BINARY is run once as `ELECTD_BINARY help`; OUTPUT is written whole or not at all. */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"

#ifndef ELECTD_VERSION
#define ELECTD_VERSION "0.0.0"
#endif
#ifndef ELECTD_TLS_MODULE_DIR
#define ELECTD_TLS_MODULE_DIR "/usr/lib/electd"
#endif

#define HELP_MAX  (64 * 1024) /* bytes of `electd help` read */
#define LINES_MAX 256         /* lines of it kept */
#define WORDS_MAX 64          /* subcommands, their second words, client options */
#define WORD_MAX  64          /* bytes of one of those */

/* ---- the client's help, parsed ------------------------------------------------------- */

typedef struct client_opt {
    char names[2][WORD_MAX]; /* "--insecure", "-k"; names[1] empty when one */
    char arg[WORD_MAX];      /* "NAME", "FILE", "DURATION"; empty for none */
    bool arg_optional;       /* --wait[=DURATION] */
    const char *column;      /* "--to NAME", for the man page */
    const char *text;
} client_opt_t;

typedef struct client_cmd {
    char name[WORD_MAX];                /* "kv" */
    char subs[WORDS_MAX / 4][WORD_MAX]; /* "get", "put", ... */
    size_t n_subs;
} client_cmd_t;

typedef struct client_help {
    char buf[HELP_MAX + 1];
    const char *usage[LINES_MAX]; /* "electd kv get KEY [--stale] ..." */
    size_t n_usage;
    const char *prose[LINES_MAX]; /* the paragraph between the usage lines and the options */
    size_t n_prose;
    client_opt_t opts[WORDS_MAX];
    size_t n_opts;
    client_cmd_t cmds[WORDS_MAX];
    size_t n_cmds;
} client_help_t;

/* Runs `bin help` and reads its standard output into buf. 0, or -1 with a message. */
static int run_help(const char *bin, char *buf, size_t size)
{
    int fds[2];
    if (pipe(fds) != 0) {
        perror("electd_gendoc: pipe");
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("electd_gendoc: fork");
        return -1;
    }
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        close(fds[0]);
        close(fds[1]);
        execl(bin, bin, "help", (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t n;
    while (len < size - 1 && (n = read(fds[0], buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(fds[0]);
    int status;
    if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0 ||
        len == 0 || len >= size - 1) {
        fprintf(stderr, "electd_gendoc: `%s help` failed or printed nothing usable\n", bin);
        return -1;
    }
    return 0;
}

static void copy_word(char *dst, const char *src, size_t n)
{
    if (n >= WORD_MAX)
        n = WORD_MAX - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* "electd kv get KEY ...": the subcommand "kv" and its second word "get" when it is one
 * (lower-case, possibly in brackets: "[list]"). */
static void add_usage_words(client_help_t *h, const char *line)
{
    char w[3][WORD_MAX] = {{0}};
    const char *p = line;
    for (int k = 0; k < 3; k++) {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        copy_word(w[k], p, n);
        p += n;
    }
    client_cmd_t *c = NULL;
    for (size_t i = 0; i < h->n_cmds; i++)
        if (strcmp(h->cmds[i].name, w[1]) == 0)
            c = &h->cmds[i];
    if (c == NULL && h->n_cmds < WORDS_MAX) {
        c = &h->cmds[h->n_cmds++];
        snprintf(c->name, sizeof(c->name), "%s", w[1]);
    }
    char *sub = w[2];
    size_t n = strlen(sub);
    if (c == NULL || n < 2)
        return;
    if (sub[0] == '[' && sub[n - 1] == ']') {
        sub[n - 1] = '\0';
        sub++;
    }
    if (strcmp(sub, "options") == 0) /* "[options]": not a word of the command */
        return;
    for (const char *q = sub; *q; q++)
        if (!islower((unsigned char)*q))
            return;
    for (size_t i = 0; i < c->n_subs; i++)
        if (strcmp(c->subs[i], sub) == 0)
            return;
    if (c->n_subs < sizeof(c->subs) / sizeof(c->subs[0]))
        snprintf(c->subs[c->n_subs++], WORD_MAX, "%s", sub);
}

/* "  --to NAME           text", "  --insecure, -k      text", "  --wait[=DURATION]   text". */
static void add_option(client_help_t *h, char *line)
{
    if (h->n_opts == WORDS_MAX)
        return;
    client_opt_t *o = &h->opts[h->n_opts++];
    char *col = line + 2, *gap = strstr(col, "  ");
    if (gap == NULL)
        gap = col + strlen(col);
    char *text = gap;
    while (*text == ' ')
        text++;
    *gap = '\0';
    o->column = col;
    o->text = text;
    size_t n = strcspn(col, " ,[");
    copy_word(o->names[0], col, n);
    const char *rest = col + n;
    if (strncmp(rest, ", ", 2) == 0) {
        rest += 2;
        n = strcspn(rest, " ");
        copy_word(o->names[1], rest, n);
        rest += n;
    }
    if (strncmp(rest, "[=", 2) == 0) {
        o->arg_optional = true;
        rest += 2;
    } else if (*rest == ' ') {
        rest++;
    }
    copy_word(o->arg, rest, strcspn(rest, " ]"));
}

static int client_help_parse(client_help_t *h, const char *bin)
{
    if (run_help(bin, h->buf, sizeof(h->buf)) != 0)
        return -1;
    enum { USAGE, PROSE, OPTIONS, END } part = USAGE;
    for (char *line = strtok(h->buf, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (part == USAGE &&
            (strncmp(line, "usage: ", 7) == 0 || strncmp(line, "       ", 7) == 0)) {
            if (h->n_usage < LINES_MAX) {
                h->usage[h->n_usage++] = line + 7;
                add_usage_words(h, line + 7);
            }
        } else if (strcmp(line, "options:") == 0) {
            part = OPTIONS;
        } else if (part == OPTIONS && strncmp(line, "  -", 3) == 0) {
            add_option(h, line);
        } else if (part == OPTIONS) {
            part = END; /* the exit status: the man page has its own section */
        } else if (part != END && h->n_prose < LINES_MAX) {
            part = PROSE;
            h->prose[h->n_prose++] = line;
        }
    }
    if (h->n_usage == 0 || h->n_opts == 0) {
        fprintf(stderr, "electd_gendoc: `%s help` has no usage lines or no options\n", bin);
        return -1;
    }
    /* `help` itself is a subcommand without a usage line. */
    if (h->n_cmds < WORDS_MAX)
        snprintf(h->cmds[h->n_cmds++].name, WORD_MAX, "help");
    return 0;
}

/* ---- roff ---------------------------------------------------------------------------- */

/* Text for roff: backslashes escaped, a dash that starts a word (an option) is a minus
 * sign, a line never starts with a control character. */
static void roff(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    for (const char *p = s; *p; p++) {
        if (*p == '\\')
            fputs("\\e", f);
        else if (*p == '-' && (p == s || !isalnum((unsigned char)p[-1])))
            fputs("\\-", f);
        else
            fputc(*p, f);
    }
}

static void man_setting(FILE *f, size_t i)
{
    const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
    const char *const *choices = sidecar_config_setting_choices(i);
    bool is_bool = choices != NULL && strcmp(choices[0], "true") == 0;
    fputs(".TP\n\\fB", f);
    roff(f, "--");
    roff(f, s->name);
    fputs("\\fR", f);
    if (s->unit != NULL && is_bool) {
        fputs("[=\\fI", f);
        roff(f, s->unit);
        fputs("\\fR]", f);
    } else if (s->unit != NULL) {
        fputs(" \\fI", f);
        roff(f, s->unit);
        fputs("\\fR", f);
    }
    fputs("\n", f);
    roff(f, s->help);
    fputs(".\n", f);
    if (choices != NULL && !is_bool) {
        fputs("One of:", f);
        for (size_t k = 0; choices[k] != NULL; k++)
            fprintf(f, "%s \\fB%s\\fR", k ? "," : "", choices[k]);
        fputs(".\n", f);
    }
    if (s->def != NULL && !s->secret) {
        fputs("Default: \\fB", f);
        roff(f, s->def);
        fputs("\\fR.\n", f);
    }
    if (s->env) {
        char env[SIDECAR_CONFIG_ENV_NAME_MAX];
        sidecar_config_env_name(s->name, env, sizeof(env));
        fprintf(f, "Environment: \\fB%s\\fR.\n", env);
    }
    if (!s->file && s->unit != NULL)
        fputs("Not accepted in the config file.\n", f);
}

static void man_section(FILE *f, const char *name, const char *body)
{
    fprintf(f, ".SH %s\n%s", name, body);
}

static void write_man(FILE *f, const client_help_t *h)
{
    fprintf(f,
            ".\\\" electd(8). Generated at build time by deploy/gendoc/gendoc.c from the settings\n"
            ".\\\" table of `electd --help` and the text of `electd help`: do not edit.\n"
            ".TH ELECTD 8 \"\" \"electd %s\" \"System Administration\"\n",
            ELECTD_VERSION);
    man_section(f, "NAME",
                "electd \\- leader\\-election sidecar: one primary among the copies of a "
                "workload\n");
    man_section(f, "SYNOPSIS",
                ".B electd\n[\\fIFLAGS\\fR] [\\fB\\-\\-exec \\-\\-\\fR \\fICOMMAND\\fR "
                "[\\fIARGS\\fR...]]\n.br\n.B electd\n\\fISUBCOMMAND\\fR [\\fIOPTIONS\\fR]\n");
    man_section(f, "DESCRIPTION",
                "electd runs beside each copy of a workload that must have exactly one active\n"
                "primary. The electd processes of all copies form a Raft group; only the member\n"
                "that leads the group and holds a valid leader lease runs the workload, either\n"
                "supervising it (\\fB\\-\\-exec\\fR) or through hooks (\\fB\\-\\-on\\-start\\fR, "
                "\\fB\\-\\-on\\-stop\\fR).\n"
                "A local HTTP API reports who leads, serves health and readiness checks and\n"
                "Prometheus metrics (\\fB/metrics\\fR), and holds a small replicated key\\-value "
                "store\nwhose writes the primary fences with a token.\n"
                ".PP\n"
                "The same binary is the client of a running member's API: see\n"
                ".B CLIENT SUBCOMMANDS.\n");
    man_section(
        f, "OPTIONS",
        "Every setting is a flag, an environment variable \\fBELECTD_\\fR\\fINAME\\fR (upper "
        "case,\n\\(oq\\-\\(cq becomes \\(oq_\\(cq) and a key of the JSON file given with "
        "\\fB\\-\\-config\\fR.\nPrecedence: flag, then environment, then config file, then "
        "default.\nAn unknown flag, file key or set \\fBELECTD_*\\fR variable is refused.\n"
        "Durations take ms, s, m or h (a bare number is ms); sizes take B, KiB, MiB or GiB\n"
        "(a bare number is bytes); booleans are true, false, 1 or 0 (a bare flag is true).\n"
        "Named elections (several workloads, each with its own primary) are declared in\n"
        "the config file only, under the key \\fB\"elections\"\\fR.\n");
    for (size_t i = 0; i < sidecar_config_setting_count(); i++)
        man_setting(f, i);

    fputs(".SH CLIENT SUBCOMMANDS\n.nf\n", f);
    for (size_t i = 0; i < h->n_usage; i++) {
        roff(f, h->usage[i]);
        fputs("\n", f);
    }
    fputs(".fi\n.PP\n", f);
    for (size_t i = 0; i < h->n_prose; i++) {
        roff(f, h->prose[i]);
        fputs("\n", f);
    }
    fputs(".PP\nOptions of the subcommands:\n", f);
    for (size_t i = 0; i < h->n_opts; i++) {
        fputs(".TP\n\\fB", f);
        roff(f, h->opts[i].column);
        fputs("\\fR\n", f);
        roff(f, h->opts[i].text);
        fputs("\n", f);
    }

    man_section(f, "SIGNALS",
                ".TP\n.BR SIGTERM \", \" SIGINT\n"
                "Graceful stop. A leader first stops its workload (the hooks: \\fIon\\-stop\\fR "
                "runs) and\nhands leadership to another member, which starts at once; then electd "
                "exits.\nA second signal stops at once.\n"
                ".TP\n.B SIGHUP\n"
                "Reload: the TLS certificates and keys (peer and HTTPS) are read again and,\n"
                "with \\fB\\-\\-config\\fR, the whole configuration is resolved again (same\n"
                "precedence: a flag or an environment variable keeps its value). The log level\n"
                "and format, the hooks (\\fIon\\-start\\fR, \\fIon\\-stop\\fR, "
                "\\fIon\\-change\\fR) and their\n"
                "timeouts, the HTTP token and the named elections change; a hook that runs\n"
                "finishes with its old command. The whole file is checked first: a bad file is\n"
                "refused with one log line and every running setting stays. Other settings that\n"
                "differ in the file need a restart: the log names them. The last log line of a\n"
                "reload says what changed.\n"
                ".TP\n.BR SIGUSR1 \", \" SIGUSR2\nLogged and ignored.\n");
    man_section(f, "EXIT STATUS",
                "The daemon:\n"
                ".TP\n.B 0\nStopped by SIGTERM or SIGINT after a clean shutdown, or \\fB\\-\\-help"
                "\\fR, \\fB\\-\\-version\\fR.\n"
                ".TP\n.B 1\nCould not start (data directory, database, ports, workload, named "
                "elections);\nthe reason is on standard error.\n"
                ".TP\n.B 2\nInvalid configuration; one line on standard error names the setting.\n"
                ".PP\nThe client subcommands:\n"
                ".TP\n.B 0\nThe request succeeded.\n"
                ".TP\n.B 1\nA definite no: not found, a condition failed (conflict, fenced, "
                "handover\nrefused), no leader known, no change within \\fBleader \\-\\-wait\\fR.\n"
                ".TP\n.B 2\nAn error: bad usage, connection refused, timeout, a server error or a\n"
                "malformed reply.\n");
    fprintf(f,
            ".SH ENVIRONMENT\n"
            ".TP\n.BI ELECTD_ NAME\nEach setting above, as listed with it.\n"
            ".TP\n.B ELECTD_TLS_MODULE\n"
            "Path of the TLS module \\fIelectd\\-tls.so\\fR, loaded at the first TLS context;\n"
            "by default it is looked for next to the binary, then in \\fI%s\\fR.\n"
            ".TP\n.BR ELECTD_HTTP_URL \", \" ELECTD_HTTP\n"
            "The client: the API to ask (\\fB\\-\\-http\\fR).\n"
            ".TP\n.BR ELECTD_HTTP_TOKEN \", \" ELECTD_WORKLOAD_TOKEN\n"
            "The client: the bearer token (\\fB\\-\\-token\\fR).\n"
            ".TP\n.BR ELECTD_CACERT \", \" ELECTD_CERT \", \" ELECTD_KEY\n"
            "The client: HTTPS files (\\fB\\-\\-cacert\\fR, \\fB\\-\\-cert\\fR, "
            "\\fB\\-\\-key\\fR).\n"
            ".PP\nWorkloads and hooks receive \\fBELECTD_ROLE\\fR, \\fBELECTD_NODE_NAME\\fR,\n"
            "\\fBELECTD_LEADER_NAME\\fR, \\fBELECTD_TERM\\fR, \\fBELECTD_FENCING_TOKEN\\fR, "
            "\\fBELECTD_HTTP\\fR,\n\\fBELECTD_HTTP_URL\\fR, \\fBELECTD_LEASE_MS\\fR and "
            "\\fBELECTD_WORKLOAD_TOKEN\\fR; the role is\nalso the hooks' argument.\n",
            ELECTD_TLS_MODULE_DIR);
    fprintf(f,
            ".SH FILES\n"
            ".TP\n.I /etc/electd/electd.json\n"
            "The config file of \\fIelectd.service\\fR (\\fB\\-\\-config\\fR); keys are the flag "
            "names.\n"
            ".TP\n.I /etc/electd/electd.env\n"
            "Per\\-host settings and secrets as \\fBELECTD_\\fR\\fINAME\\fR=\\fIvalue\\fR lines, "
            "read by the\nunit; keep it readable by root only.\n"
            ".TP\n.I /var/lib/electd/\n"
            "The data directory of the unit: \\fIelectd.db\\fR (SQLite: the Raft log, the "
            "key\\-value\nstore, the leadership history).\n"
            ".TP\n.I %s/electd\\-tls.so\n"
            "The TLS engine, loaded only when TLS is configured.\n"
            ".TP\n.IR electd.service \", \" electd@.service\n"
            "The systemd units: one group per host, or one instance per workload reading\n"
            "\\fI/etc/electd/\\fR\\fIINSTANCE\\fR\\fI.json\\fR.\n",
            ELECTD_TLS_MODULE_DIR);
    man_section(f, "SEE ALSO",
                ".BR systemctl (1),\n.BR systemd.service (5);\n"
                "the guides in \\fI/usr/share/doc/electd/\\fR (getting\\-started.md, "
                "configuration.md,\napi.md, operations.md, guarantees.md).\n");
}

/* ---- shell completion ------------------------------------------------------------------ */

/* How a value is completed. */
typedef enum value_kind { V_NONE, V_FILE, V_DIR, V_NAME, V_CMD, V_CHOICE } value_kind_t;

static value_kind_t kind_of_unit(const char *name, const char *unit)
{
    if (unit == NULL)
        return V_NONE;
    if (strcmp(unit, "FILE") == 0)
        return V_FILE;
    if (strcmp(unit, "DIR") == 0)
        return V_DIR;
    if (strcmp(unit, "CMD") == 0)
        return V_CMD;
    /* A member's name: this node's --name, a transfer's --to (not --cluster-name). */
    if (strcmp(unit, "NAME") == 0 && (strcmp(name, "name") == 0 || strcmp(name, "to") == 0))
        return V_NAME;
    return V_NONE;
}

static void daemon_flag_list(FILE *f)
{
    for (size_t i = 0; i < sidecar_config_setting_count(); i++)
        fprintf(f, "%s--%s", i ? " " : "", sidecar_config_setting_at(i)->name);
}

static void client_word_lists(FILE *f, const client_help_t *h, const char *prefix, char eq)
{
    fprintf(f, "%s_commands%c\"", prefix, eq);
    for (size_t i = 0; i < h->n_cmds; i++)
        fprintf(f, "%s%s", i ? " " : "", h->cmds[i].name);
    fprintf(f, "\"\n%s_client_options%c\"", prefix, eq);
    for (size_t i = 0; i < h->n_opts; i++)
        for (int k = 0; k < 2; k++)
            if (h->opts[i].names[k][0])
                fprintf(f, "%s%s", i || k ? " " : "", h->opts[i].names[k]);
    fputs("\"\n", f);
}

/* The shell code completing a value of the given kind (bash or zsh). */
static const char *complete_code(value_kind_t kind, bool zsh)
{
    switch (kind) {
    case V_FILE:
        return zsh ? "_files" : "COMPREPLY=($(compgen -f -- \"$cur\"))";
    case V_DIR:
        return zsh ? "_files -/" : "COMPREPLY=($(compgen -d -- \"$cur\"))";
    case V_NAME:
        return zsh ? "_electd_peer_names"
                   : "COMPREPLY=($(compgen -W \"$(_electd_peer_names)\" -- \"$cur\"))";
    case V_CMD:
        return zsh ? "_command_names -e" : "COMPREPLY=($(compgen -c -- \"$cur\"))";
    default:
        return zsh ? ":" : ":";
    }
}

/* One `case` branch per client option that takes a value: fmt gets the option and the code
 * completing its value. */
static void client_arg_cases(FILE *f, const client_help_t *h, const char *fmt, bool zsh)
{
    for (size_t i = 0; i < h->n_opts; i++) {
        const client_opt_t *o = &h->opts[i];
        if (o->arg[0] && !o->arg_optional)
            fprintf(f, fmt, o->names[0], complete_code(kind_of_unit(o->names[0] + 2, o->arg), zsh));
    }
}

/* One `case` branch per subcommand with second words ("kv": get put del ls): open (given the
 * subcommand), the words separated by spaces, then close. */
static void client_sub_cases(FILE *f, const client_help_t *h, const char *open, const char *close)
{
    for (size_t i = 0; i < h->n_cmds; i++) {
        const client_cmd_t *c = &h->cmds[i];
        if (c->n_subs == 0)
            continue;
        fprintf(f, open, c->name);
        for (size_t k = 0; k < c->n_subs; k++)
            fprintf(f, "%s%s", k ? " " : "", c->subs[k]);
        fputs(close, f);
    }
}

static void write_bash(FILE *f, const client_help_t *h)
{
    fputs("# bash completion for electd(8). Generated at build time by deploy/gendoc/gendoc.c\n"
          "# from electd's settings table and `electd help`: do not edit.\n\n",
          f);
    client_word_lists(f, h, "_electd", '=');
    fputs("_electd_daemon_flags=\"", f);
    daemon_flag_list(f);
    fputs("\"\n\n"
          "# Member names: those of --peers on the command line, else of $ELECTD_PEERS, else the\n"
          "# members the local electd knows (`electd members`, given a second at most).\n"
          "_electd_peer_names()\n{\n"
          "    local peers=${ELECTD_PEERS-} re='--peers[=[:space:]]+([^[:space:]]+)' w\n"
          "    if [[ $COMP_LINE =~ $re ]]; then\n"
          "        peers=${BASH_REMATCH[1]}\n"
          "    fi\n"
          "    if [[ -z $peers ]]; then\n"
          "        \"${COMP_WORDS[0]}\" members --json --timeout 1s 2>/dev/null |\n"
          "            grep -o '\"name\":\"[^\"]*\"' | cut -d'\"' -f4\n"
          "        return\n"
          "    fi\n"
          "    local IFS=,\n"
          "    for w in $peers; do\n"
          "        printf '%s\\n' \"${w%%=*}\"\n"
          "    done\n"
          "}\n\n"
          "_electd_client()\n{\n"
          "    local cmd=$1 cur=$2 prev=$3\n"
          "    case $prev in\n",
          f);
    client_arg_cases(f, h, "    %s)\n        %s\n        return\n        ;;\n", false);
    fputs("    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$_electd_client_options\" -- \"$cur\"))\n"
          "        return\n"
          "    fi\n"
          "    if ((COMP_CWORD == 2)); then\n"
          "        case $cmd in\n",
          f);
    client_sub_cases(f, h, "        %s) COMPREPLY=($(compgen -W \"", "\" -- \"$cur\")) ;;\n");
    fputs("        backup) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
          "        esac\n"
          "    elif ((COMP_CWORD == 3)) && [[ $cmd == members && $prev == remove ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$(_electd_peer_names)\" -- \"$cur\"))\n"
          "    fi\n"
          "}\n\n"
          "_electd()\n{\n"
          "    local cur=${COMP_WORDS[COMP_CWORD]} prev='' eq=0 i\n"
          "    ((COMP_CWORD > 0)) && prev=${COMP_WORDS[COMP_CWORD - 1]}\n"
          "    # --flag=value: bash splits it at '=' into three words.\n"
          "    if [[ $cur == = ]]; then\n"
          "        cur='' eq=1\n"
          "    elif [[ $prev == = ]] && ((COMP_CWORD > 1)); then\n"
          "        prev=${COMP_WORDS[COMP_CWORD - 2]} eq=1\n"
          "    fi\n"
          "    COMPREPLY=()\n"
          "    if ((COMP_CWORD > 1)) && [[ \" $_electd_commands \" == *\" ${COMP_WORDS[1]} \"* ]]; "
          "then\n"
          "        _electd_client \"${COMP_WORDS[1]}\" \"$cur\" \"$prev\"\n"
          "        return\n"
          "    fi\n"
          "    # After `--`: the workload command of --exec.\n"
          "    for ((i = 1; i < COMP_CWORD; i++)); do\n"
          "        if [[ ${COMP_WORDS[i]} == -- ]]; then\n"
          "            if ((i + 1 == COMP_CWORD)); then\n"
          "                COMPREPLY=($(compgen -c -- \"$cur\"))\n"
          "            else\n"
          "                COMPREPLY=($(compgen -f -- \"$cur\"))\n"
          "            fi\n"
          "            return\n"
          "        fi\n"
          "    done\n"
          "    case $prev in\n",
          f);
    for (size_t i = 0; i < sidecar_config_setting_count(); i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        const char *const *choices = sidecar_config_setting_choices(i);
        if (s->unit == NULL || strcmp(s->name, "exec") == 0)
            continue;
        bool is_bool = choices != NULL && strcmp(choices[0], "true") == 0;
        /* A boolean takes a value only as --flag=value; --flag alone means true. */
        fprintf(f, "    --%s)\n", s->name);
        if (is_bool)
            fputs("        ((eq)) || return\n", f);
        if (choices != NULL) {
            fputs("        COMPREPLY=($(compgen -W \"", f);
            for (size_t k = 0; choices[k] != NULL; k++)
                fprintf(f, "%s%s", k ? " " : "", choices[k]);
            fputs("\" -- \"$cur\"))\n", f);
        } else {
            fprintf(f, "        %s\n", complete_code(kind_of_unit(s->name, s->unit), false));
        }
        fputs("        return\n        ;;\n", f);
    }
    fputs("    esac\n"
          "    if [[ $cur == -* ]]; then\n"
          "        COMPREPLY=($(compgen -W \"$_electd_daemon_flags\" -- \"$cur\"))\n"
          "    elif ((COMP_CWORD == 1)); then\n"
          "        COMPREPLY=($(compgen -W \"$_electd_commands\" -- \"$cur\"))\n"
          "    fi\n"
          "}\n\n"
          "complete -F _electd electd\n",
          f);
}

/* A description inside a zsh _arguments spec: the help up to its first ';' or '(', at most
 * 70 bytes, without the characters the spec or the single quotes around it would take. */
static void zsh_desc(FILE *f, const char *help)
{
    size_t n = strcspn(help, ";(");
    if (n > 70)
        n = 70;
    while (n > 0 && help[n - 1] == ' ')
        n--;
    for (size_t k = 0; k < n; k++) {
        if (strchr("[]:'\"`$\\", help[k]) == NULL)
            fputc(help[k], f);
    }
}

/* A value's placeholder as the message of a zsh spec: its colons escaped. */
static void zsh_message(FILE *f, const char *unit)
{
    for (const char *p = unit; *p; p++) {
        if (*p == ':')
            fputc('\\', f);
        fputc(*p, f);
    }
}

static void write_zsh(FILE *f, const client_help_t *h)
{
    fputs("#compdef electd\n"
          "# zsh completion for electd(8). Generated at build time by deploy/gendoc/gendoc.c\n"
          "# from electd's settings table and `electd help`: do not edit.\n\n",
          f);
    fputs("# Member names: those of --peers on the command line, else of $ELECTD_PEERS, else the\n"
          "# members the local electd knows (`electd members`, given a second at most).\n"
          "_electd_peer_names() {\n"
          "  local peers=${ELECTD_PEERS-} w i\n"
          "  for (( i = 2; i <= $#words; i++ )); do\n"
          "    case ${words[i]} in\n"
          "      --peers) peers=${words[i+1]-} ;;\n"
          "      --peers=*) peers=${words[i]#--peers=} ;;\n"
          "    esac\n"
          "  done\n"
          "  local -a names\n"
          "  if [[ -z $peers ]]; then\n"
          "    names=(${(f)\"$(${words[1]} members --json --timeout 1s 2>/dev/null |\n"
          "      grep -o '\"name\":\"[^\"]*\"' | cut -d'\"' -f4)\"})\n"
          "  fi\n"
          "  for w in ${(s:,:)peers}; do names+=(${w%%=*}); done\n"
          "  compadd -a names\n"
          "}\n\n"
          "_electd_client() {\n"
          "  local cmd=${words[2]}\n"
          "  case ${words[CURRENT-1]} in\n",
          f);
    client_arg_cases(f, h, "    %s) %s; return ;;\n", true);
    fputs("  esac\n"
          "  if [[ $PREFIX == -* ]]; then\n"
          "    compadd -- ${=_electd_client_options}\n"
          "    return\n"
          "  fi\n"
          "  if (( CURRENT == 3 )); then\n"
          "    case $cmd in\n",
          f);
    client_sub_cases(f, h, "      %s) compadd -- ", " ;;\n");
    fputs("      backup) _files ;;\n"
          "    esac\n"
          "  elif (( CURRENT == 4 )) && [[ $cmd == members && ${words[3]} == remove ]]; then\n"
          "    _electd_peer_names\n"
          "  fi\n"
          "}\n\n"
          "_electd() {\n",
          f);
    client_word_lists(f, h, "  local _electd", '=');
    fputs("  local i\n"
          "  if (( CURRENT > 2 )) && (( ${${=_electd_commands}[(Ie)${words[2]}]} )); then\n"
          "    _electd_client\n"
          "    return\n"
          "  fi\n"
          "  # After `--`: the workload command of --exec.\n"
          "  for (( i = 2; i < CURRENT; i++ )); do\n"
          "    if [[ ${words[i]} == -- ]]; then\n"
          "      shift i words\n"
          "      (( CURRENT -= i ))\n"
          "      _normal\n"
          "      return\n"
          "    fi\n"
          "  done\n"
          "  if (( CURRENT == 2 )) && [[ $PREFIX != -* ]]; then\n"
          "    compadd -- ${=_electd_commands}\n"
          "    return\n"
          "  fi\n"
          "  _arguments : \\\n",
          f);
    for (size_t i = 0; i < sidecar_config_setting_count(); i++) {
        const sidecar_config_setting_t *s = sidecar_config_setting_at(i);
        const char *const *choices = sidecar_config_setting_choices(i);
        bool is_bool = choices != NULL && strcmp(choices[0], "true") == 0;
        fprintf(f, "    '--%s", s->name);
        if (s->unit != NULL && strcmp(s->name, "exec") != 0)
            fputs(is_bool ? "=-" : "=", f);
        fputc('[', f);
        zsh_desc(f, s->help);
        fputc(']', f);
        if (s->unit != NULL && strcmp(s->name, "exec") != 0) {
            fputs(is_bool ? "::" : ":", f);
            zsh_message(f, s->unit);
            fputc(':', f);
            if (choices != NULL) {
                fputc('(', f);
                for (size_t k = 0; choices[k] != NULL; k++)
                    fprintf(f, "%s%s", k ? " " : "", choices[k]);
                fputc(')', f);
            } else {
                value_kind_t kind = kind_of_unit(s->name, s->unit);
                fputs(kind == V_NONE ? " " : complete_code(kind, true), f);
            }
        }
        fputs("' \\\n", f);
    }
    fputs("    '*:: :'\n"
          "}\n\n"
          "_electd \"$@\"\n",
          f);
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "man") != 0 && strcmp(argv[1], "bash") != 0 &&
                      strcmp(argv[1], "zsh") != 0)) {
        fprintf(stderr, "usage: electd_gendoc man|bash|zsh ELECTD_BINARY OUTPUT\n");
        return 2;
    }
    static client_help_t help;
    if (client_help_parse(&help, argv[2]) != 0)
        return 1;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", argv[3]);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        perror(tmp);
        return 1;
    }
    if (strcmp(argv[1], "man") == 0)
        write_man(f, &help);
    else if (strcmp(argv[1], "bash") == 0)
        write_bash(f, &help);
    else
        write_zsh(f, &help);
    bool failed = ferror(f) != 0;
    if (fclose(f) != 0 || failed || rename(tmp, argv[3]) != 0) {
        perror(argv[3]);
        remove(tmp);
        return 1;
    }
    return 0;
}
