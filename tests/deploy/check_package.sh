#!/usr/bin/env bash
# check_package.sh — the Debian package and what it ships (CTest: deb_package). Builds the
# package of this build tree as `make deb` does (cpack -G DEB, into a temporary directory),
# checks its control data (conffiles, maintainer scripts, shlibs Depends) and runs lintian on
# it (no errors); extracts it with dpkg-deb -x and runs the extracted electd, with the
# packaged /etc/electd/electd.json, as a 3-member group on loopback until it has one leader;
# renders the man page without warnings; checks the completions' syntax and behaviour; runs
# promtool on the alert rules, on the dashboard's queries and on a live member's /metrics, and
# checks that every metric the dashboard and the rules use is one a live member exports.
# Usage: check_package.sh SOURCE_DIR BUILD_DIR
set -u -o pipefail
SRC=$(cd "${1:?usage: check_package.sh SOURCE_DIR BUILD_DIR}" && pwd)
BUILD=$(cd "${2:?usage: check_package.sh SOURCE_DIR BUILD_DIR}" && pwd)
export LC_ALL=C
fails=0
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
ok() { echo "ok: $*"; }
need() {
    command -v "$1" >/dev/null 2>&1 || {
        bad "$1 is missing (deploy/install-deps.sh installs it)"
        return 1
    }
}

TMP=$(mktemp -d /tmp/electd-pkg.XXXXXX)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${PIDS[@]}"; do
        wait "$p" 2>/dev/null
    done
    rm -rf "$TMP"
}
trap cleanup EXIT

# ---- the package ------------------------------------------------------------------------------
need cpack && need dpkg-deb || exit 1
if ! (cd "$TMP" && cpack -G DEB -B "$TMP/pkg" --config "$BUILD/CPackConfig.cmake" >"$TMP/cpack.log" 2>&1); then
    cat "$TMP/cpack.log"
    bad "cpack -G DEB"
    exit 1
fi
VERSION=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$BUILD/CPackConfig.cmake")
DEB="$TMP/pkg/electd_${VERSION}_$(dpkg --print-architecture).deb"
[ -f "$DEB" ] || {
    bad "no $DEB (found: $(ls "$TMP/pkg"))"
    exit 1
}
ok "built $(basename "$DEB")"

CTRL="$TMP/control"
dpkg-deb -e "$DEB" "$CTRL"
grep -qx /etc/electd/electd.json "$CTRL/conffiles" || bad "conffiles does not list /etc/electd/electd.json"
grep -q '^Depends:.*libc6' "$CTRL/control" || bad "Depends has no shlibs (libc6): $(grep ^Depends "$CTRL/control")"
for s in postinst prerm postrm; do
    sh -n "$CTRL/$s" || bad "sh -n $s"
done
# postinst configure, with the commands it runs replaced by stand-ins that log their
# arguments (no user is created here): a new group and system user, the state directory.
SHIMS="$TMP/shims"
mkdir -p "$SHIMS"
for c in getent groupadd useradd install systemctl; do
    printf '#!/bin/sh\necho "%s $*" >>"%s"\n[ %s != getent ]\n' "$c" "$TMP/postinst.log" "$c" >"$SHIMS/$c"
    chmod +x "$SHIMS/$c"
done
PATH="$SHIMS:$PATH" sh "$CTRL/postinst" configure || bad "postinst configure failed"
if ! grep -qx 'groupadd --system electd' "$TMP/postinst.log" ||
    ! grep -q '^useradd --system --gid electd --home-dir /var/lib/electd .* electd$' "$TMP/postinst.log"; then
    bad "postinst did not add the group and system user electd: $(cat "$TMP/postinst.log")"
fi
if [ ! -d /var/lib/electd ]; then
    grep -qx 'install -d -m 0700 -o electd -g electd /var/lib/electd' "$TMP/postinst.log" ||
        bad "postinst did not create /var/lib/electd"
fi
ok "control: conffiles, Depends ($(sed -n 's/^Depends: //p' "$CTRL/control")), maintainer scripts"

ROOT="$TMP/root"
dpkg-deb -x "$DEB" "$ROOT"
ELECTD="$ROOT/usr/bin/electd"
for f in usr/bin/electd etc/electd/electd.json lib/systemd/system/electd.service \
    lib/systemd/system/electd@.service usr/share/man/man8/electd.8.gz \
    usr/share/bash-completion/completions/electd usr/share/zsh/vendor-completions/_electd \
    usr/share/doc/electd/copyright usr/share/doc/electd/changelog.gz \
    usr/share/doc/electd/monitoring/electd-alerts.yaml \
    usr/share/doc/electd/monitoring/electd-dashboard.json; do
    [ -e "$ROOT/$f" ] || bad "the package has no /$f"
done
for u in "$ROOT"/lib/systemd/system/electd*.service; do
    grep -qxF "ExecReload=/bin/kill -HUP \$MAINPID" "$u" || bad "$(basename "$u") has no ExecReload"
done
# The TLS module sits where the packaged binary looks for it (tls/tls_loader.c).
moddir=$(strings "$ELECTD" | grep -m1 '^/.*/electd$' || true)
if [ -n "$moddir" ] && [ -f "$ROOT$moddir/electd-tls.so" ]; then
    ok "TLS module at $moddir/electd-tls.so, where electd looks"
else
    bad "electd-tls.so is not where the packaged electd looks ('$moddir')"
fi

# `make install` honours DESTDIR: the same files under a staging root.
if DESTDIR="$TMP/stage" cmake --install "$BUILD" >/dev/null 2>&1 &&
    [ -x "$TMP/stage$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$BUILD/CMakeCache.txt")/bin/electd" ]; then
    ok "cmake --install with DESTDIR"
else
    bad "cmake --install with DESTDIR did not stage bin/electd"
fi

if need lintian; then
    # As root lintian says so on stderr; only its findings matter.
    lintian --fail-on error "$DEB" >"$TMP/lintian.out" 2>/dev/null
    rc=$?
    grep -v '^N:' "$TMP/lintian.out"
    if [ $rc -eq 0 ] && ! grep -q '^E:' "$TMP/lintian.out"; then
        ok "lintian: no errors"
    else
        bad "lintian reports errors (exit $rc)"
    fi
fi

# ---- the extracted electd: a 3-member group on loopback ------------------------------------------
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
BASE=""
for _ in $(seq 1 50); do
    b=$((20000 + RANDOM % 9000))
    okp=1
    for i in 0 1 2 3 4 5; do port_free $((b + i)) || okp=0; done
    if [ $okp -eq 1 ]; then
        BASE=$b
        break
    fi
done
[ -n "$BASE" ] || {
    bad "no six free ports"
    exit 1
}
PEERS="a=127.0.0.1:$BASE,b=127.0.0.1:$((BASE + 1)),c=127.0.0.1:$((BASE + 2))"
i=0
for n in a b c; do
    "$ELECTD" --config "$ROOT/etc/electd/electd.json" --name "$n" --peers "$PEERS" \
        --data-dir "$TMP/data/$n" --listen-http "127.0.0.1:$((BASE + 3 + i))" \
        >"$TMP/$n.log" 2>&1 &
    PIDS+=($!)
    i=$((i + 1))
done
HTTP1="127.0.0.1:$((BASE + 3))"
leaders=""
for _ in $(seq 1 100); do # at most 10 s
    leaders=$(for k in 3 4 5; do
        "$ELECTD" status --json --http "127.0.0.1:$((BASE + k))" 2>/dev/null |
            sed -n 's/.*"role":"\([a-z]*\)".*/\1/p'
    done | grep -c '^leader$')
    [ "$leaders" = 1 ] && "$ELECTD" leader --http "$HTTP1" >/dev/null 2>&1 && break
    sleep 0.1
done
if [ "$leaders" = 1 ]; then
    ok "the packaged electd: 3 members, one leader ($("$ELECTD" leader --http "$HTTP1" 2>&1 | head -n 1))"
else
    bad "the packaged electd elected no single leader (leaders: $leaders)"
    tail -n 5 "$TMP"/[abc].log
fi

# The packaged (stripped) TLS module loads and runs a handshake: an https:// request to a
# plain-HTTP member fails in TLS, not in loading the module.
tls_out=$(ELECTD_TLS_MODULE="$ROOT$moddir/electd-tls.so" "$ELECTD" status --http "https://$HTTP1" \
    --timeout 2s 2>&1)
case $tls_out in
*"TLS failed"*) ok "the packaged TLS module loads" ;;
*) bad "the packaged TLS module: $tls_out" ;;
esac

# GET PATH from member K (0..2), HTTP/1.1 with Connection: close: the body on stdout.
http_get() {
    (
        exec 3<>"/dev/tcp/127.0.0.1/$((BASE + 3 + $1))" || exit 1
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3
        timeout 5 cat <&3
    ) | sed '1,/^\r$/d'
}
# The leader exports the per-peer replication metrics, followers do not: all three are read.
for k in 0 1 2; do
    http_get $k /v1/status >/dev/null # so that electd_http_requests_total has a row
    http_get $k /metrics >"$TMP/metrics$k.txt"
    grep -q '^electd_term ' "$TMP/metrics$k.txt" || bad "no electd_term in member $k's /metrics"
done
cat "$TMP"/metrics[012].txt >"$TMP/metrics.txt"

# ---- man page --------------------------------------------------------------------------------
MAN="$ROOT/usr/share/man/man8/electd.8.gz"
zcat "$MAN" >"$TMP/electd.8"
if groff -ww -man -z "$TMP/electd.8" 2>"$TMP/groff.err" && [ ! -s "$TMP/groff.err" ]; then
    ok "groff -ww -man: no warnings"
else
    bad "groff warns: $(head -n 5 "$TMP/groff.err")"
fi
if need man; then
    MANWIDTH=80 man --warnings -l "$MAN" >"$TMP/man.txt" 2>"$TMP/man.err"
    [ -s "$TMP/man.err" ] && bad "man --warnings: $(head -n 5 "$TMP/man.err")"
fi
# Every setting of `electd --help` (the table), every client subcommand and option.
FLAGS=$("$ELECTD" --help | sed -n 's/^  \(--[a-z-]*\).*/\1/p')
[ "$(echo "$FLAGS" | wc -l)" -ge 40 ] || bad "electd --help lists only $(echo "$FLAGS" | wc -l) flags"
CLIENT_OPTS=$("$ELECTD" help | sed -n 's/^  \(--[a-z-]*\).*/\1/p')
SUBCMDS="status leader transfer kv members elections backup"
MANTEXT=$(MANWIDTH=200 man -l "$MAN" 2>/dev/null)
missing=""
for w in $FLAGS $CLIENT_OPTS $SUBCMDS SIGTERM SIGHUP SIGUSR1 "EXIT STATUS" /etc/electd/electd.json; do
    grep -qF -- "$w" <<<"$MANTEXT" || missing="$missing $w"
done
if [ -z "$missing" ]; then
    ok "man page: every flag, subcommand, signal"
else
    bad "man page lacks:$missing"
fi

# ---- completion ------------------------------------------------------------------------------
BASHC="$ROOT/usr/share/bash-completion/completions/electd"
ZSHC="$ROOT/usr/share/zsh/vendor-completions/_electd"
bash -n "$BASHC" || bad "bash -n $BASHC"
if command -v zsh >/dev/null 2>&1; then
    zsh -n "$ZSHC" || bad "zsh -n $ZSHC"
else
    bad "zsh is missing (deploy/install-deps.sh installs it)"
fi
for f in "$BASHC" "$ZSHC"; do
    missing=""
    for w in $FLAGS $CLIENT_OPTS $SUBCMDS; do
        grep -qF -- "$w" "$f" || missing="$missing $w"
    done
    [ -z "$missing" ] || bad "$(basename "$f") lacks:$missing"
done
# What bash offers: complete(WORDS...) with the cursor on the last word.
bash_offers() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
             COMP_LINE="${COMP_WORDS[*]}"; _electd; printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "' \
        _ "$BASHC" "$@"
}
check_offer() {
    local want=$1
    shift
    local got
    got=$(bash_offers "$@")
    [ "$got" = "$want" ] || bad "bash completion of '$*': got '$got', want '$want'"
}
check_offer "--name " electd --na
check_offer "a b c " electd --peers a=h:1,b=h:2,c=h:3 --name ""
check_offer "debug " electd --log-level d
check_offer "del get ls put watch " electd kv ""
ELECTD_PEERS=a=h:1,b=h:2 check_offer "a b " electd transfer --to ""
# Without --peers or ELECTD_PEERS: the members the running electd knows (electd members).
ELECTD_HTTP=$HTTP1 check_offer "a b c " "$ELECTD" members remove ""
check_offer "elections " electd ele
# What zsh offers where the completion adds words itself (compadd stubbed to print them; the
# flags go through zsh's _arguments, which needs an interactive shell).
zsh_offers() {
    local cur=$1
    shift
    zsh -f -c 'compadd() { if [[ $1 == -a ]]; then print -r -- ${(P)2}; else shift; print -r -- $*; fi }
               words=("${@:2}"); CURRENT=$#words; PREFIX=$1; source "$ZSHC"' _ "$cur" "$@"
}
if command -v zsh >/dev/null 2>&1; then
    export ZSHC
    [ "$(zsh_offers "" electd kv "")" = "get put del ls watch" ] || bad "zsh completion of 'electd kv'"
    [ "$(ELECTD_PEERS=a=h:1,b=h:2 zsh_offers "" electd transfer --to "")" = "a b" ] ||
        bad "zsh completion of 'electd transfer --to'"
    case " $(zsh_offers "" electd "") " in
    *" elections "*) ;;
    *) bad "zsh completion of 'electd ' offers no subcommands" ;;
    esac
fi
ok "completion: bash -n, zsh -n, every flag and subcommand, what bash and zsh offer"

# ---- monitoring ------------------------------------------------------------------------------
MON="$SRC/deploy/monitoring"
if need promtool; then
    promtool check rules "$MON/electd-alerts.yaml" >/dev/null || bad "promtool check rules"
    # promtool check metrics exits 1 on lint problems too; it prints them.
    if (for k in 0 1 2; do promtool check metrics <"$TMP/metrics$k.txt" || exit 1; done) >"$TMP/lint.txt" 2>&1; then
        ok "promtool check rules and metrics"
    else
        bad "promtool check metrics: $(head -n 5 "$TMP/lint.txt")"
    fi
fi
# The dashboard's queries, with Grafana's variables replaced, as recording rules: promtool
# parses each one.
python3 - "$MON/electd-dashboard.json" "$TMP/dash-rules.yaml" "$TMP/metrics.txt" \
    "$MON/electd-alerts.yaml" >"$TMP/used.txt" <<'EOF' || bad "dashboard JSON"
import json, re, sys
dash = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
with open(sys.argv[2], "w") as out:
    out.write("groups:\n  - name: dashboard\n    rules:\n")
    for i, e in enumerate(exprs):
        e = (e.replace("$__rate_interval", "5m").replace("$__range", "1h")
              .replace("$job", ".*").replace("$instance", ".*"))
        out.write(f"      - record: dashboard_{i}\n        expr: {json.dumps(e)}\n")
live = set(re.findall(r"^(electd_[a-z0-9_]+)", open(sys.argv[3]).read(), re.M))
used = set()
for text in exprs + [open(sys.argv[4]).read()]:
    used |= set(re.findall(r"\b(electd_[a-z0-9_]+)", text))
for m in sorted(used - live):
    print(m)
EOF
if command -v promtool >/dev/null 2>&1; then
    promtool check rules "$TMP/dash-rules.yaml" >/dev/null || bad "the dashboard's queries do not parse"
fi
if [ -s "$TMP/used.txt" ]; then
    bad "metrics used by the dashboard or rules but not exported: $(tr '\n' ' ' <"$TMP/used.txt")"
else
    ok "every metric of the dashboard and the rules is exported by a live member"
fi

# ---- the example config file: its values are the documented defaults --------------------------
"$ELECTD" --help >"$TMP/help.txt"
if ! python3 - "$ROOT/etc/electd/electd.json" "$TMP/help.txt" <<'EOF'; then
import json, re, sys
conf = json.load(open(sys.argv[1]))
defaults = dict(re.findall(r"^  --([a-z-]+).*, default (\S+)$", open(sys.argv[2]).read(), re.M))
bad = 0
for k, v in conf.items():
    text = str(v).lower() if isinstance(v, bool) else str(v)
    if defaults.get(k) != text:
        print(f"{k}: {text!r}, default {defaults.get(k)!r}")
        bad = 1
sys.exit(bad)
EOF
    bad "/etc/electd/electd.json differs from the defaults of electd --help"
else
    ok "/etc/electd/electd.json holds the defaults of electd --help"
fi

echo "check_package: $fails failure(s)"
[ $fails -eq 0 ]
