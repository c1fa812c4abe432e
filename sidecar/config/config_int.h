/* config_int.h — private to sidecar/config/: the settings table's row type, the parser's state
 * and the functions its files share. Nothing here is part of the interface; config.h is.
 *
 * The files, in the order a parse runs through them:
 *   settings.c  the table (every setting's name, type, default, range, help) and lookups;
 *   cmdline.c   pass 1: the command line (getopt_long) and the workload command after `--`;
 *   file.c      pass 2: the JSON config file, read and matched against the table;
 *   resolve.c   pass 3: flag > env > file > default, the entry point and freeing;
 *   values.c    one value into its field (common's parsers, config's ranges and messages);
 *   peers.c     --peers: name=host:port entries; command.c: commands (--exec, hooks);
 *   elections.c the file's named elections (after pass 4) and their reload;
 *   reload.c    SIGHUP: everything resolved again, compared with what runs;
 *   checks.c    pass 4 and 5: settings against each other, the file system, self-dial;
 *   messages.c  the one-line refusals; help.c: --help and the effective values;
 *   ids.c       node and cluster ids, address formatting. */
#ifndef ELECTD_SIDECAR_CONFIG_INT_H
#define ELECTD_SIDECAR_CONFIG_INT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "config.h"

#define SHOW_MAX 64   /* bytes of a value quoted back in an error message */
#define WHY_MAX  256  /* bytes of the explanation part of an error */
#define OPT_BASE 1000 /* getopt_long val of table row 0; above every short option */
#define PPM_ONE  1000000u

/* ---- the table (settings.c) ------------------------------------------------------------- */

typedef enum type {
    T_META,     /* --config, --help, --version: handled before the other settings */
    T_NAME,     /* node or cluster name */
    T_TOKEN,    /* secret: visible ASCII, never echoed */
    T_PATH,     /* non-empty path */
    T_ADDR,     /* host:port */
    T_PEERS,    /* name=host:port,... */
    T_DURATION, /* "500ms", "2s", "1m", "100" (= ms) -> uint32_t ms */
    T_COUNT,    /* whole number -> uint32_t */
    T_SIZE,     /* "8KiB", "1MiB", "512" (= bytes) -> uint32_t bytes */
    T_FRACTION, /* "0.05" -> double (+ ppm) */
    T_BOOL,     /* true/false/1/0 -> bool */
    T_ENUM,     /* one of choices -> int */
    T_ARGV,     /* command without a shell -> sidecar_argv_t */
} type_t;

enum {
    F_REQUIRED = 1 << 0,
    F_SECRET = 1 << 1,  /* never echoed in messages, never shown as a default */
    F_NO_ENV = 1 << 2,  /* not read from the environment */
    F_NO_FILE = 1 << 3, /* not accepted in the config file */
    F_TAIL = 1 << 4,    /* as a flag, takes the command after `--` (--exec) */
    F_PORT0 = 1 << 5,   /* port 0 allowed (the OS picks one) */
};

typedef struct setting {
    sidecar_config_setting_t pub;
    type_t type;
    unsigned flags;
    size_t offset;              /* of the destination in sidecar_config_t */
    uint32_t min, max;          /* DURATION ms, COUNT, SIZE bytes: inclusive;
                                   FRACTION: ppm, max exclusive */
    const char *const *choices; /* ENUM: NULL-terminated, index = stored value */
} setting_t;

/* Rows of the table; settings.c checks at compile time that the table has this many. */
#define N_SETTINGS 51

extern const setting_t config_settings[];

/* The row named name (and its index when index is not NULL), or NULL. */
const setting_t *config_find_setting(const char *name, size_t *index);
/* An ENUM row's NULL-terminated choices; the index of a choice is the stored value. */
const char *const *config_choices_of(const setting_t *s);

/* ---- the parser's state ------------------------------------------------------------------ */

typedef enum origin { O_NONE = 0, O_FLAG, O_ENV, O_FILE, O_DEFAULT } origin_t;

/* Where one setting's value came from. text: flag (NULL for a bare flag), env or default;
 * json: the config file's node. Both borrowed. */
typedef struct value {
    origin_t origin;
    const char *text;
    const cJSON *json;
} value_t;

typedef struct parser {
    sidecar_config_t *cfg;
    const sidecar_config_source_t *src;
    char *err;
    size_t err_size;
    value_t flag[N_SETTINGS];
    const cJSON *file[N_SETTINGS];
    origin_t origin[N_SETTINGS]; /* the source each setting was finally taken from */
    char *const *tail;           /* the command after `--` */
    size_t n_tail;
    bool dashdash;
    const char *file_label; /* the config file's name, for messages */
    char *file_buf;
    cJSON *root;
    const cJSON *elections; /* the file's "elections" value, when it has one */
    const char *election;   /* the election whose values are being parsed, for messages */
} parser_t;

/* ---- the passes ---------------------------------------------------------------------------- */

int config_scan_argv(parser_t *p); /* cmdline.c */
int config_load_file(parser_t *p); /* file.c */
/* Reads path (or p->src->file_text when set), parses the JSON object and matches its keys
 * against the table into p->file and p->elections (file.c). */
int config_read_file(parser_t *p, const char *path);
/* The file's elections into p->cfg->elections, against p->cfg's settings (elections.c). */
int config_load_elections(parser_t *p);
/* Refuses a command of list's elections whose program has a '/' and is not executable
 * (checks.c). */
int config_check_election_programs(parser_t *p, const sidecar_election_list_t *list);
int config_check_consistency(parser_t *p); /* checks.c */
int config_check_fs(parser_t *p);          /* checks.c */
/* A parser of src into cfg, reporting into err (cleared); NULL when out of memory, with the
 * message written. config_parser_free releases it and what it read (resolve.c). */
parser_t *config_parser_new(sidecar_config_t *cfg, const sidecar_config_source_t *src, char *err,
                            size_t err_size);
void config_parser_free(parser_t *p);
/* Passes 1 to 5 (resolve.c): what sidecar_config_parse runs into p->cfg, p kept for more. */
int config_passes(parser_t *p);
/* The "elections" object obj (NULL: none) into *out, sorted by name, against base's settings
 * (elections.c). */
int config_parse_elections(parser_t *p, const sidecar_config_t *base, const cJSON *obj,
                           sidecar_election_list_t *out);
/* Every setting the file holds parses as it would at start, into p->cfg (a scratch), even one
 * a flag or variable overrides (elections.c). */
int config_check_file_settings(parser_t *p);
/* What a reload may change, against the rest of p->cfg: the stop timeout inside the lease,
 * one mode per node, the HTTP API's authentication (checks.c). */
int config_check_reloaded(parser_t *p);
/* Refuses a command of cfg (--exec, the hooks, its elections') whose program has a '/' and is
 * not executable (checks.c). */
int config_check_programs(parser_t *p, const sidecar_config_t *cfg);

/* ---- one value into its field ------------------------------------------------------------ */

/* Parses v by s's type into the field s names (values.c). 0 or a refusal (config_fail). */
int config_apply(parser_t *p, const setting_t *s, const value_t *v);
/* The same into dst, a field of s's type outside p->cfg (an election's). */
int config_apply_to(parser_t *p, const setting_t *s, const value_t *v, void *dst);
/* --peers from a comma-separated string or a JSON array of strings (peers.c). */
int config_set_peers(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                     const cJSON *array);
/* A command from a JSON array, words split on blanks, or the tail after `--` (command.c). */
int config_set_argv(parser_t *p, const setting_t *s, const value_t *v, const char *text,
                    const cJSON *array, bool from_tail, sidecar_argv_t *dst);
/* Frees a command's words and zeroes it (command.c). */
void config_argv_free(sidecar_argv_t *a);
/* Host names compare without case (peers.c). */
bool config_same_host(const char *a, const char *b);

/* ---- messages (messages.c) --------------------------------------------------------------- */

/* Writes "electd: " and the message into p->err; returns code. */
int config_fail(parser_t *p, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "invalid <where> <value>: <why>", naming the setting the way the user gave it, never
 * echoing a secret. Returns SIDECAR_CONFIG_EINVAL. */
int config_invalid(parser_t *p, const setting_t *s, const value_t *v, const char *why_fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Quotes s for a message: escapes what is not printable ASCII, cuts long values. size >= 16. */
void config_show_text(const char *s, char *buf, size_t size);
/* How the user wrote a name that is not a setting's: as a flag, an ELECTD_* variable (given
 * without the prefix) or a key of the config file. */
typedef enum config_spelling {
    CONFIG_SPELL_FLAG,
    CONFIG_SPELL_ENV,
    CONFIG_SPELL_KEY
} config_spelling_t;
#define CONFIG_SUGGEST_MAX 128 /* bytes of a suggestion */
/* Writes " (did you mean --election-timeout?)" (in the form's spelling) into buf when one
 * setting that form may set is within a small edit distance of given (case and '_' for '-'
 * ignored), else "". */
void config_suggest(const char *given, config_spelling_t form, char *buf, size_t size);
/* strdup, or NULL with *rc = SIDECAR_CONFIG_ENOMEM and the message written. */
char *config_dup(parser_t *p, const char *s, int *rc);

#endif
