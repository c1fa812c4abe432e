/* cli.c — the entry points of cli.h: `electd status|leader|transfer|kv|members|elections|backup|
 * maintenance|
 * help` parsed (cli_args.c) and handed to the subcommand's file. The files of the CLI:
 * cli_int.h. */
#include <string.h>

#include "check.h"
#include "cli_int.h"

typedef int (*subcommand_fn)(cli_ctx_t *c);

static const subcommand_fn SUBCOMMANDS[CLI_CMD_COUNT] = {
    [CLI_CMD_STATUS] = cli_status,
    [CLI_CMD_LEADER] = cli_leader,
    [CLI_CMD_TRANSFER] = cli_transfer,
    [CLI_CMD_KV_GET] = cli_kv_get,
    [CLI_CMD_KV_PUT] = cli_kv_write,
    [CLI_CMD_KV_DEL] = cli_kv_write,
    [CLI_CMD_KV_LS] = cli_kv_ls,
    [CLI_CMD_KV_WATCH] = cli_kv_watch,
    [CLI_CMD_MEMBERS_LIST] = cli_members,
    [CLI_CMD_MEMBERS_ADD] = cli_members,
    [CLI_CMD_MEMBERS_REMOVE] = cli_members,
    [CLI_CMD_ELECTIONS_LIST] = cli_elections,
    [CLI_CMD_ELECTIONS_TRANSFER] = cli_elections,
    [CLI_CMD_BACKUP] = cli_backup,
    [CLI_CMD_MAINTENANCE_SHOW] = cli_maintenance,
    [CLI_CMD_MAINTENANCE_ON] = cli_maintenance,
    [CLI_CMD_MAINTENANCE_OFF] = cli_maintenance,
};

int sidecar_client_main(int argc, char **argv)
{
    static cli_ctx_t c;
    int code;
    if (!cli_args_parse(&c, argc, argv, &code))
        return code;
    /* cli_args_parse returns true only for a command that runs. */
    ELECTD_CHECK(c.cmd > CLI_CMD_HELP && c.cmd < CLI_CMD_COUNT && SUBCOMMANDS[c.cmd] != NULL);
    code = SUBCOMMANDS[c.cmd](&c);
    cli_tls_close();
    return code;
}

bool sidecar_client_is_subcommand(const char *arg)
{
    static const char *const names[] = {"status",    "leader", "transfer",    "kv",  "members",
                                        "elections", "backup", "maintenance", "help"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(arg, names[i]) == 0)
            return true;
    return false;
}
