/* client.c — the `electd status|leader|transfer|kv|members|help` subcommands (see client.h). */
#include <stdio.h>
#include <string.h>

#include "client.h"

static const char *const SUBCOMMANDS[] = {"status", "leader", "transfer", "kv", "members", "help"};

bool sidecar_client_is_subcommand(const char *arg)
{
    for (size_t i = 0; i < sizeof(SUBCOMMANDS) / sizeof(SUBCOMMANDS[0]); i++)
        if (strcmp(arg, SUBCOMMANDS[i]) == 0)
            return true;
    return false;
}

int sidecar_client_main(int argc, char **argv)
{
    (void)argc;
    fprintf(stderr, "electd %s: not implemented yet\n", argv[1]);
    return SIDECAR_CLIENT_ERROR;
}
