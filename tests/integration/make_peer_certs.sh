#!/bin/sh
# make_peer_certs.sh DIR — certificates for a peer-TLS cluster of members a, b, c (the
# integration tests' names), made with the openssl CLI at test time (tests/tls/pki.sh):
#   ca.crt             the cluster's CA             ca2.crt    a second CA (rotation)
#   trust.crt          ca.crt and ca2.crt in one bundle (what every member trusts)
#   a/b/c.crt/.key     CN=<name>, DNS:<name>, serverAuth + clientAuth, signed by ca
#   a-rotated.crt/.key CN=a, DNS:a, DNS:a.rotated.test, signed by ca2 (rotation target)
#   c-other.crt/.key   CN=c signed by other-ca, which nobody trusts
#   c-as-b.crt/.key    CN=b, DNS:b signed by ca: a real certificate, for another member
set -eu
dir=$1
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
cd "$dir"

. "$here/../tls/pki.sh"

ca ca "electd cluster CA"
ca ca2 "electd cluster CA 2"
ca other-ca "another CA"
cat ca.crt ca2.crt >trust.crt
for m in a b c; do
    leaf "$m" "$m" serverAuth,clientAuth "DNS:$m" ca
done
leaf a-rotated a serverAuth,clientAuth "DNS:a,DNS:a.rotated.test" ca2
leaf c-other c serverAuth,clientAuth "DNS:c" other-ca
leaf c-as-b b serverAuth,clientAuth "DNS:b" ca
