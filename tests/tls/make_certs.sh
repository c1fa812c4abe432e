#!/bin/sh
# make_certs.sh DIR — a throwaway PKI for the TLS tests, made with the openssl CLI at test
# time (nothing secret is committed). EC P-256 keys, valid for two days:
#   ca.crt/.key            the trusted CA           other-ca.crt/.key  an unrelated CA
#   member-b.crt/.key      CN=b, DNS:b.cluster.test, DNS:localhost, IP:127.0.0.1, IP:::1,
#                          serverAuth + clientAuth (a member: both ends of mutual TLS)
#   member-c.crt/.key      CN=c, DNS:c.cluster.test, serverAuth + clientAuth
#   client.crt/.key        CN=operator, clientAuth only
#   server-only.crt/.key   CN=web, serverAuth only (not usable as a client certificate)
#   imposter-b.crt/.key    CN=b with the same names as member-b, signed by the other CA
#   wildcard.crt/.key      CN=wild, DNS:*.cluster.test, serverAuth + clientAuth
#   garbage.pem            not PEM at all
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"

. "$here/pki.sh"

ca ca "electd test CA"
ca other-ca "another CA"
leaf member-b b serverAuth,clientAuth \
    "DNS:b.cluster.test,DNS:localhost,IP:127.0.0.1,IP:::1" ca
leaf member-c c serverAuth,clientAuth "DNS:c.cluster.test" ca
leaf client operator clientAuth "" ca
leaf server-only web serverAuth "DNS:localhost,IP:127.0.0.1" ca
leaf imposter-b b serverAuth,clientAuth \
    "DNS:b.cluster.test,DNS:localhost,IP:127.0.0.1,IP:::1" other-ca
leaf wildcard wild serverAuth,clientAuth "DNS:*.cluster.test" ca
echo "this is not a PEM file" >garbage.pem
