/* cmd.c — the command codec: encoding and decoding the payloads of NORMAL entries (KV writes,
 * fenced by the default election or by a named one, and the election commands). The format
 * is the table in store.h; decoding takes untrusted bytes and accepts only canonical ones. */
#include <string.h>

#include "store_int.h"

#include "bytes.h"

#define CMD_MAGIC       0xE5
#define CMD_V_KV        1 /* KV commands without an election */
#define CMD_V_ELECTION  2 /* KV commands fenced by an election, election commands */
#define CMD_F_IF_MATCH  0x01
#define CMD_F_EPHEMERAL 0x02 /* a PUT that binds the key to a member: its id follows the header */
#define CMD_F_ALL       (CMD_F_IF_MATCH | CMD_F_EPHEMERAL)

static bool name_char(char c, bool first)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return !first && (c == '.' || c == '_' || c == '-');
}

bool store_election_name_valid(const char *name, size_t len)
{
    if (!name || len == 0 || len > STORE_ELECTION_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(name[i], i == 0))
            return false;
    return true;
}

/* Length of a NUL-terminated election name, or 0 when it is not a valid one. */
static size_t name_len(const char *name)
{
    size_t n = name ? strnlen(name, STORE_ELECTION_NAME_MAX + 1) : 0;
    return store_election_name_valid(name, n) ? n : 0;
}

int store_key_check(const char *key, size_t len)
{
    if (!key || len == 0 || len > STORE_KEY_MAX || memchr(key, 0, len))
        return STORE_EKEY;
    return 0;
}

static int encode_kv(uint8_t op, const char *key, size_t key_len, const void *value,
                     size_t value_len, uint64_t owner, const store_cond_t *cond, uint8_t *buf,
                     size_t cap, size_t *len)
{
    int err = store_key_check(key, key_len);
    if (err)
        return err;
    if (value_len > STORE_VALUE_MAX || (value_len && !value))
        return STORE_EVALUE;
    const char *election = cond ? cond->election : NULL;
    size_t el_len = election ? name_len(election) : 0;
    if (election && el_len == 0)
        return STORE_ENAME;
    if (election && cond->fence == 0)
        return STORE_EINVAL;
    size_t extra = owner ? STORE_CMD_EPHEMERAL_EXTRA : 0;
    size_t head = STORE_CMD_HEADER + extra + (election ? 1 + el_len : 0);
    size_t total = head + key_len + value_len;
    if (!buf || cap < total)
        return STORE_ETOOBIG;
    buf[0] = CMD_MAGIC;
    buf[1] = election ? CMD_V_ELECTION : CMD_V_KV;
    buf[2] = op;
    buf[3] = (uint8_t)(((cond && cond->has_if_match) ? CMD_F_IF_MATCH : 0) |
                       (owner ? CMD_F_EPHEMERAL : 0));
    base_le_store64(buf + 4, (cond && cond->has_if_match) ? cond->if_match : 0);
    base_le_store64(buf + 12, cond ? cond->fence : 0);
    base_le_store16(buf + 20, (uint16_t)key_len);
    base_le_store32(buf + 22, (uint32_t)value_len);
    if (owner)
        base_le_store64(buf + STORE_CMD_HEADER, owner);
    if (election) {
        buf[STORE_CMD_HEADER + extra] = (uint8_t)el_len;
        memcpy(buf + STORE_CMD_HEADER + extra + 1, election, el_len);
    }
    memcpy(buf + head, key, key_len);
    if (value_len)
        memcpy(buf + head + key_len, value, value_len);
    *len = total;
    return 0;
}

int store_cmd_encode_put(const char *key, size_t key_len, const void *value, size_t value_len,
                         const store_cond_t *cond, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_kv(STORE_CMD_PUT, key, key_len, value, value_len, 0, cond, buf, cap, len);
}

int store_cmd_encode_put_ephemeral(const char *key, size_t key_len, const void *value,
                                   size_t value_len, uint64_t owner, const store_cond_t *cond,
                                   uint8_t *buf, size_t cap, size_t *len)
{
    if (owner == 0)
        return STORE_EINVAL;
    return encode_kv(STORE_CMD_PUT, key, key_len, value, value_len, owner, cond, buf, cap, len);
}

int store_cmd_encode_del(const char *key, size_t key_len, const store_cond_t *cond, uint8_t *buf,
                         size_t cap, size_t *len)
{
    return encode_kv(STORE_CMD_DEL, key, key_len, NULL, 0, 0, cond, buf, cap, len);
}

static int encode_election(uint8_t op, const char *name, uint64_t holder, uint64_t expect_token,
                           uint64_t unix_ms, uint8_t *buf, size_t cap, size_t *len)
{
    size_t n = name_len(name);
    if (n == 0)
        return STORE_ENAME;
    size_t total = STORE_CMD_ELECTION_HEADER + n;
    if (!buf || cap < total)
        return STORE_ETOOBIG;
    buf[0] = CMD_MAGIC;
    buf[1] = CMD_V_ELECTION;
    buf[2] = op;
    buf[3] = 0;
    base_le_store64(buf + 4, expect_token);
    base_le_store64(buf + 12, holder);
    base_le_store64(buf + 20, unix_ms);
    buf[28] = (uint8_t)n;
    memcpy(buf + STORE_CMD_ELECTION_HEADER, name, n);
    *len = total;
    return 0;
}

int store_cmd_encode_election_assign(const char *name, uint64_t holder, uint64_t expect_token,
                                     uint64_t unix_ms, uint8_t *buf, size_t cap, size_t *len)
{
    return encode_election(STORE_CMD_ELECTION_ASSIGN, name, holder, expect_token, unix_ms, buf, cap,
                           len);
}

int store_cmd_encode_election_drop(const char *name, uint64_t expect_token, uint8_t *buf,
                                   size_t cap, size_t *len)
{
    return encode_election(STORE_CMD_ELECTION_DROP, name, 0, expect_token, 0, buf, cap, len);
}

/* ELECTION_ASSIGN / ELECTION_DROP (format 2); buf[0..3] are checked. */
static int decode_election(const uint8_t *buf, size_t len, store_cmd_t *cmd)
{
    if (len < STORE_CMD_ELECTION_HEADER || buf[3] != 0)
        return STORE_ECMD;
    size_t n = buf[28];
    if (len != STORE_CMD_ELECTION_HEADER + n)
        return STORE_ECMD;
    const char *name = (const char *)buf + STORE_CMD_ELECTION_HEADER;
    if (!store_election_name_valid(name, n))
        return STORE_ENAME;
    uint64_t holder = base_le_load64(buf + 12), unix_ms = base_le_load64(buf + 20);
    if (buf[2] == STORE_CMD_ELECTION_DROP && (holder != 0 || unix_ms != 0))
        return STORE_ECMD;
    cmd->op = buf[2];
    cmd->name = name;
    cmd->name_len = n;
    cmd->expect_token = base_le_load64(buf + 4);
    cmd->holder = holder;
    cmd->unix_ms = unix_ms;
    return 0;
}

/* PUT / DEL in format 1 or 2; buf[0..3) are checked. */
static int decode_kv(const uint8_t *buf, size_t len, uint8_t version, store_cmd_t *cmd)
{
    if (len < STORE_CMD_HEADER)
        return STORE_ECMD;
    uint8_t op = buf[2], flags = buf[3];
    if ((flags & ~CMD_F_ALL) || ((flags & CMD_F_EPHEMERAL) && op != STORE_CMD_PUT))
        return STORE_ECMD;
    uint64_t if_match = base_le_load64(buf + 4), fence = base_le_load64(buf + 12);
    size_t key_len = base_le_load16(buf + 20);
    size_t value_len = base_le_load32(buf + 22);
    if (!(flags & CMD_F_IF_MATCH) && if_match != 0)
        return STORE_ECMD;
    if (key_len == 0 || key_len > STORE_KEY_MAX)
        return STORE_EKEY;
    if (value_len > STORE_VALUE_MAX)
        return STORE_EVALUE;
    if (op == STORE_CMD_DEL && value_len != 0)
        return STORE_ECMD;
    size_t head = STORE_CMD_HEADER;
    uint64_t owner = 0;
    if (flags & CMD_F_EPHEMERAL) {
        if (len < head + STORE_CMD_EPHEMERAL_EXTRA)
            return STORE_ECMD;
        owner = base_le_load64(buf + head);
        if (owner == 0)
            return STORE_ECMD;
        head += STORE_CMD_EPHEMERAL_EXTRA;
    }
    if (version == CMD_V_ELECTION) {
        /* an election names what the fence is a token of: never without a fence */
        if (len < head + 1 || fence == 0)
            return STORE_ECMD;
        size_t n = buf[head];
        if (n == 0 || len < head + 1 + n)
            return STORE_ECMD;
        const char *name = (const char *)buf + head + 1;
        if (!store_election_name_valid(name, n))
            return STORE_ENAME;
        cmd->name = name;
        cmd->name_len = n;
        head += 1 + n;
    }
    if (len != head + key_len + value_len)
        return STORE_ECMD;
    const char *key = (const char *)buf + head;
    if (memchr(key, 0, key_len))
        return STORE_EKEY;
    cmd->op = op;
    cmd->cond.has_if_match = flags & CMD_F_IF_MATCH;
    cmd->cond.if_match = if_match;
    cmd->cond.fence = fence;
    cmd->key = key;
    cmd->key_len = key_len;
    cmd->value = value_len ? buf + head + key_len : NULL;
    cmd->value_len = value_len;
    cmd->owner = owner;
    return 0;
}

int store_cmd_decode(const uint8_t *buf, size_t len, store_cmd_t *cmd)
{
    memset(cmd, 0, sizeof *cmd);
    if (!buf || len < 4 || buf[0] != CMD_MAGIC)
        return STORE_ECMD;
    uint8_t version = buf[1], op = buf[2];
    int err = STORE_ECMD;
    if ((version == CMD_V_KV || version == CMD_V_ELECTION) &&
        (op == STORE_CMD_PUT || op == STORE_CMD_DEL))
        err = decode_kv(buf, len, version, cmd);
    else if (version == CMD_V_ELECTION &&
             (op == STORE_CMD_ELECTION_ASSIGN || op == STORE_CMD_ELECTION_DROP))
        err = decode_election(buf, len, cmd);
    if (err)
        memset(cmd, 0, sizeof *cmd);
    return err;
}
