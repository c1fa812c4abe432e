#!/usr/bin/env bash
# check_deploy.sh — static checks of the shipped deployment files (CTest: deploy_files):
# shell scripts parse (sh -n for #!/bin/sh, bash -n for bash) and pass shellcheck; the
# Kubernetes manifests parse as YAML and contain what docs/kubernetes.md promises; the
# systemd units carry their hardening; the Dockerfile is multi-stage with a HEALTHCHECK;
# every deploy/ path the docs name exists. Nothing is applied or run: there is no cluster,
# no systemd and no container engine here.
# Usage: check_deploy.sh SOURCE_DIR
set -u -o pipefail
SRC=${1:?usage: check_deploy.sh SOURCE_DIR}
cd "$SRC" || exit 2
fails=0
bad() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}
ok() { echo "ok: $*"; }

# ---- shell scripts ------------------------------------------------------------------------
scripts=()
while IFS= read -r f; do scripts+=("$f"); done < <(
    { find deploy tests/deploy -type f -name '*.sh'; find deploy/hooks -type f 2>/dev/null; } | sort -u)
[ ${#scripts[@]} -ge 5 ] || bad "expected the demo, the hooks and the gate, found ${#scripts[@]} scripts"
for f in "${scripts[@]}"; do
    first=$(head -n 1 "$f")
    case $first in
    '#!/bin/sh'*) sh -n "$f" || bad "sh -n $f" ;;
    *bash*) bash -n "$f" || bad "bash -n $f" ;;
    *) bad "$f has no #!/bin/sh or bash shebang" ;;
    esac
    [ -x "$f" ] || bad "$f is not executable"
done
if command -v shellcheck >/dev/null 2>&1; then
    if shellcheck -S style "${scripts[@]}"; then
        ok "shellcheck: ${#scripts[@]} scripts"
    else
        bad "shellcheck"
    fi
else
    bad "shellcheck is missing (deploy/install-deps.sh installs it)"
fi

# ---- Kubernetes manifests -------------------------------------------------------------------
PY=""
for p in /usr/bin/python3 python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import yaml' 2>/dev/null; then
        PY=$p
        break
    fi
done
if [ -z "$PY" ]; then
    bad "python3 with PyYAML is missing (deploy/install-deps.sh installs python3-yaml)"
else
    if "$PY" - deploy/k8s <<'EOF'; then
import glob, os, sys, yaml

root = sys.argv[1]
docs = {}
problems = []
for path in sorted(glob.glob(os.path.join(root, "**", "*.yaml"), recursive=True)):
    try:
        for d in yaml.safe_load_all(open(path)):
            if d is None:
                continue
            for key in ("apiVersion", "kind") + (("metadata",) if d.get("kind") != "Kustomization" else ()):
                if key not in d:
                    problems.append(f"{path}: a document without {key}")
            if d.get("kind") != "Kustomization":
                docs.setdefault(d["kind"], []).append((path, d))
    except yaml.YAMLError as e:
        problems.append(f"{path}: not YAML: {e}")
print(f"parsed: {', '.join(f'{k} x{len(v)}' for k, v in sorted(docs.items()))}")

def need(cond, what):
    if not cond:
        problems.append(what)

for kind in ("StatefulSet", "Service", "PodDisruptionBudget", "ServiceAccount", "Role",
             "RoleBinding"):
    need(kind in docs, f"no {kind}")

services = {d["metadata"]["name"]: d for _, d in docs.get("Service", [])}
headless = [d for d in services.values() if d["spec"].get("clusterIP") == "None"]
need(headless, "no headless Service for peer discovery")
for h in headless:
    need(h["spec"].get("publishNotReadyAddresses") is True,
         "the headless Service must publish not-ready pods (peers find each other before ready)")
need(any("electd-role" in d["spec"].get("selector", {}) for d in services.values()),
     "no leader-only Service selecting the electd-role label")

for path, s in docs.get("StatefulSet", []):
    spec = s["spec"]
    name = s["metadata"]["name"]
    need(spec.get("replicas") == 3, f"{path}: replicas must be 3")
    need(spec.get("serviceName") in [h["metadata"]["name"] for h in headless],
         f"{path}: serviceName must be the headless Service")
    pod = spec["template"]["spec"]
    cs = {c["name"]: c for c in pod["containers"]}
    need("electd" in cs and len(cs) == 2, f"{path}: want the workload and the electd containers")
    e = cs.get("electd", {})
    probes = (e.get("livenessProbe", {}).get("httpGet", {}).get("path"),
              e.get("readinessProbe", {}).get("httpGet", {}).get("path"))
    need(probes == ("/healthz", "/readyz"), f"{path}: electd probes are {probes}")
    need("preStop" in e.get("lifecycle", {}), f"{path}: electd has no preStop handover")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    need(10 <= grace <= 120, f"{path}: terminationGracePeriodSeconds {grace}")
    env = {v["name"]: v.get("value", "") for v in e.get("env", [])}
    peers = env.get("ELECTD_PEERS", "")
    need(all(f"{name}-{i}=" in peers for i in range(3)), f"{path}: ELECTD_PEERS {peers!r}")
    need(any(m.get("mountPath") == "/var/lib/electd" for m in e.get("volumeMounts", [])),
         f"{path}: no volume for electd's data")
    need(pod.get("serviceAccountName"), f"{path}: no service account for the label hook")

for path, p in docs.get("PodDisruptionBudget", []):
    need(p["spec"].get("maxUnavailable") == 1 or p["spec"].get("minAvailable") == 2,
         f"{path}: the PDB must keep a quorum (2 of 3)")

roles = [d for _, d in docs.get("Role", [])]
need(any("patch" in r.get("verbs", []) and "pods" in r.get("resources", [])
         for role in roles for r in role.get("rules", [])), "no Role that may patch pods")

for p in problems:
    print("problem:", p)
sys.exit(1 if problems else 0)
EOF
        ok "Kubernetes manifests parse and have their parts"
    else
        bad "Kubernetes manifests"
    fi
fi

# ---- systemd, Docker ------------------------------------------------------------------------
for unit in deploy/systemd/electd.service deploy/systemd/electd@.service; do
    if [ ! -f "$unit" ]; then
        bad "$unit is missing"
        continue
    fi
    for want in '^ExecStart=/usr/bin/electd' '^User=electd' '^NoNewPrivileges=yes' \
        '^ProtectSystem=strict' '^StateDirectory=electd' '^KillSignal=SIGTERM' \
        '^TimeoutStopSec=' '^Restart=' '^WantedBy=multi-user.target'; do
        grep -q "$want" "$unit" || bad "$unit lacks $want"
    done
done
grep -q '%i' deploy/systemd/electd@.service 2>/dev/null || bad "the template unit does not use %i"
if command -v systemd-analyze >/dev/null 2>&1; then
    # Loaded as real units (copies under their own names); only the binary may be missing.
    tmp=$(mktemp -d)
    cp deploy/systemd/electd.service "$tmp/electd.service"
    cp deploy/systemd/electd@.service "$tmp/electd@check.service"
    out=$(cd "$tmp" && timeout 60 systemd-analyze verify ./electd.service ./electd@check.service 2>&1 |
        grep -v 'Command /usr/bin/electd is not executable')
    rm -rf "$tmp"
    if [ -n "$out" ]; then
        bad "systemd-analyze verify: $out"
    else
        ok "systemd-analyze verify: both units"
    fi
fi

df=deploy/docker/Dockerfile
if [ -f "$df" ]; then
    grep -q '^ARG BUILD_BASE=debian:12$' "$df" || bad "$df's build base is not Debian 12"
    grep -q '^ARG RUNTIME_BASE=debian:12-slim$' "$df" || bad "$df's runtime base is not Debian 12"
    [ "$(grep -c '^FROM ' "$df")" -ge 3 ] || bad "$df is not a multi-stage build"
    grep -q '^FROM scratch AS minimal' "$df" || bad "$df has no FROM scratch minimal target"
    grep -A 2 '^HEALTHCHECK ' "$df" | grep -q '/healthz' || bad "$df has no HEALTHCHECK on /healthz"
    grep -q '^USER ' "$df" || bad "$df runs as root"
    grep -q 'install-deps.sh' "$df" || bad "$df does not install the build deps the project way"
else
    bad "$df is missing"
fi

# ---- docs name files that exist -------------------------------------------------------------
for doc in docs/getting-started.md docs/operations.md docs/kubernetes.md; do
    [ -f "$doc" ] || {
        bad "$doc is missing"
        continue
    }
    while IFS= read -r path; do
        [ -e "$path" ] || bad "$doc names $path, which does not exist"
    done < <(grep -oE '(^|[^A-Za-z0-9_./-])deploy/[A-Za-z0-9_./@-]*[A-Za-z0-9_@-]' "$doc" |
        sed 's/^[^d]*//' | sort -u)
done
grep -q '^demo:' Makefile || bad "the Makefile has no demo target"

if [ $fails -gt 0 ]; then
    echo "$fails checks failed"
    exit 1
fi
echo "all deployment checks passed"
