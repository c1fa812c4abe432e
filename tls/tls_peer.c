/* tls_peer.c — who the peer is: the verified certificate's subject CN and its DNS and IP
 * subject alternative names (kept as text for logs and handlers), and the check that the
 * certificate is for a given name (OpenSSL's X509_check_host / X509_check_ip_asc). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls_int.h"

#define NAME_TEXT_MAX 256 /* one name as text; longer ones are cut (DNS names are <= 253) */

/* The peer certificate, only when it was presented and verified against the trusted CA. */
static X509 *verified_peer(const struct tls_session *s)
{
    if (!s->established || s->err || !s->verifies_peer)
        return NULL;
    X509 *cert = SSL_get0_peer_certificate(s->ssl);
    if (!cert || SSL_get_verify_result(s->ssl) != X509_V_OK)
        return NULL;
    return cert;
}

/* Appends `text` (NUL-terminated) to the block; returns its offset, or -1 (no memory). */
static long block_add(char **block, size_t *len, const char *text)
{
    size_t n = strlen(text) + 1;
    char *nb = realloc(*block, *len + n);
    if (!nb)
        return -1;
    memcpy(nb + *len, text, n);
    *block = nb;
    long off = (long)*len;
    *len += n;
    return off;
}

static void cn_text(X509 *cert, char *out, size_t cap)
{
    out[0] = '\0';
    X509_NAME *subj = X509_get_subject_name(cert);
    int i = subj ? X509_NAME_get_index_by_NID(subj, NID_commonName, -1) : -1;
    if (i < 0)
        return;
    ASN1_STRING *v = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, i));
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, v);
    if (n < 0)
        return;
    snprintf(out, cap, "%.*s", n, (const char *)utf8);
    OPENSSL_free(utf8);
}

/* "DNS:name" or "IP:addr" for a SAN of those kinds; "" for other kinds. */
static void san_text(const GENERAL_NAME *g, char *out, size_t cap)
{
    out[0] = '\0';
    if (g->type == GEN_DNS) {
        const ASN1_IA5STRING *d = g->d.dNSName;
        snprintf(out, cap, "DNS:%.*s", ASN1_STRING_length(d),
                 (const char *)ASN1_STRING_get0_data(d));
    } else if (g->type == GEN_IPADD) {
        const ASN1_OCTET_STRING *a = g->d.iPAddress;
        char ip[INET6_ADDRSTRLEN];
        int len = ASN1_STRING_length(a), af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
        if (af && inet_ntop(af, ASN1_STRING_get0_data(a), ip, sizeof(ip)))
            snprintf(out, cap, "IP:%s", ip);
    }
}

int tls_peer_collect(struct tls_session *s)
{
    tls_peer_free(s);
    X509 *cert = verified_peer(s);
    if (!cert)
        return 0;
    char text[NAME_TEXT_MAX];
    char *block = NULL;
    size_t len = 0, n = 0;
    long cn_off = -1, offs[TLS_PEER_NAMES_MAX];
    cn_text(cert, text, sizeof(text));
    if (text[0] && (cn_off = block_add(&block, &len, text)) < 0)
        goto fail;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans) && n < TLS_PEER_NAMES_MAX; i++) {
        san_text(sk_GENERAL_NAME_value(sans, i), text, sizeof(text));
        if (text[0] && (offs[n++] = block_add(&block, &len, text)) < 0) {
            GENERAL_NAMES_free(sans);
            goto fail;
        }
    }
    GENERAL_NAMES_free(sans);
    ERR_clear_error();
    /* Pointers only once the block has stopped moving. */
    s->names_block = block;
    s->cn = cn_off >= 0 ? block + cn_off : NULL;
    for (size_t i = 0; i < n; i++)
        s->name[i] = block + offs[i];
    s->n_names = n;
    return 0;
fail:
    free(block);
    ERR_clear_error();
    return TLS_ENOMEM;
}

void tls_peer_free(struct tls_session *s)
{
    free(s->names_block);
    s->names_block = NULL;
    s->cn = NULL;
    s->n_names = 0;
}

const char *tls_session_peer_cn(const tls_session_t *s)
{
    return verified_peer(s) ? s->cn : NULL;
}

size_t tls_session_peer_name_count(const tls_session_t *s)
{
    return verified_peer(s) ? s->n_names : 0;
}

const char *tls_session_peer_name(const tls_session_t *s, size_t i)
{
    return i < tls_session_peer_name_count(s) ? s->name[i] : NULL;
}

bool tls_session_peer_matches(const tls_session_t *s, const char *name)
{
    X509 *cert = verified_peer(s);
    if (!cert || !name || !*name)
        return false;
    unsigned char ip[16];
    bool ok;
    if (inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1)
        ok = X509_check_ip_asc(cert, name, 0) == 1;
    else
        ok = X509_check_host(cert, name, strlen(name),
                             X509_CHECK_FLAG_ALWAYS_CHECK_SUBJECT |
                                 X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS,
                             NULL) == 1;
    ERR_clear_error();
    return ok;
}
