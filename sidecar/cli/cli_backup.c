/* cli_backup.c — `electd backup FILE`: GET /v1/backup (an online backup taken inside the
 * member) written to FILE, a new file: the reply goes to a temporary file beside it, is synced,
 * and is linked to FILE only when complete, so FILE is never half-written nor replaced. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli_int.h"

#define BACKUP_BODY_MAX (1ull << 30) /* the server's own bound */

/* Writes data to a new FILE; false (reported) when FILE exists or the write fails. */
static bool write_new_file(const cli_ctx_t *c, const char *file, const char *data, size_t len)
{
    char tmp[4200];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%d", file, (int)getpid());
    if (n < 0 || (size_t)n >= sizeof(tmp)) {
        cli_fail(c, "%s: name too long", file);
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        cli_fail(c, "cannot create %s: %s", tmp, strerror(errno));
        return false;
    }
    bool ok = true;
    for (size_t done = 0; ok && done < len;) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        ok = w > 0;
        done += ok ? (size_t)w : 0;
    }
    ok = ok && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (!ok)
        cli_fail(c, "writing %s: %s", tmp, strerror(saved));
    else if (link(tmp, file) != 0) { /* fails rather than replace an existing FILE */
        ok = false;
        cli_fail(c, "cannot create %s: %s%s", file, strerror(errno),
                 errno == EEXIST ? " (choose a new name: a backup never replaces a file)" : "");
    }
    unlink(tmp);
    return ok;
}

int cli_backup(cli_ctx_t *c)
{
    const char *file = c->pos[0];
    if (access(file, F_OK) == 0) {
        cli_fail(c, "%s exists: choose a new name (a backup never replaces a file)", file);
        return SIDECAR_CLIENT_ERROR;
    }
    cli_request_t rq = {.method = "GET", .target = "/v1/backup", .body_max = BACKUP_BODY_MAX};
    cli_response_t rs;
    if (cli_call(c, &rq, &rs) != 0)
        return SIDECAR_CLIENT_ERROR;
    if (rs.status != 200) {
        int code = cli_report_error(c, &rs);
        cli_response_clear(&rs);
        return code;
    }
    const char *index = http_response_header(&rs.parser, "X-Electd-Backup-Index");
    const char *term = http_response_header(&rs.parser, "X-Electd-Backup-Term");
    bool ok = write_new_file(c, file, rs.body, rs.body_len);
    if (ok && c->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "file", file);
        cJSON_AddNumberToObject(o, "index", index ? strtod(index, NULL) : 0);
        cJSON_AddNumberToObject(o, "term", term ? strtod(term, NULL) : 0);
        cJSON_AddNumberToObject(o, "bytes", (double)rs.body_len);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        cJSON_free(s);
        cJSON_Delete(o);
    } else if (ok) {
        printf("backup at index %s (term %s), %zu bytes, written to %s\n", index ? index : "?",
               term ? term : "?", rs.body_len, file);
    }
    cli_response_clear(&rs);
    return ok ? SIDECAR_CLIENT_OK : SIDECAR_CLIENT_ERROR;
}
