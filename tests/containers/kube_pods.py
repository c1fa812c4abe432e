#!/usr/bin/env python3
"""kube_pods.py — one Pod per member of deploy/k8s's StatefulSet, for `podman play kube`
(podman 4.3 plays Pods, not StatefulSets). The Pods are the StatefulSet's pod template, so the
manifests stay the single source; only what one host without a cluster needs is changed, each
change listed here:

  - the two ConfigMaps are emitted beside the Pods: electd-config from statefulset.yaml,
    electd-gate from gate.sh (as kustomization.yaml's configMapGenerator makes it);
  - hostNetwork and, per member, its own loopback ports: the peer and HTTP addresses in
    ELECTD_PEERS, ELECTD_LISTEN_*, ELECTD_ADVERTISE_HTTP and the gate's ELECTD_API, and the
    probes' port (a number: the name `http` maps to the member's port), the API address in
    the preStop command; the containerPorts
    are dropped (podman refuses port mappings on the host's network);
  - the downward API and the Secret as literal values (POD_NAME, namespace `default`,
    POD_IP 127.0.0.1, the tokens given on the command line);
  - the volumeClaimTemplate as a claim named electd-data-<pod> (podman: a named volume);
  - each emptyDir as a directory of the pod's own under --files-dir (mode 0777, as the
    kubelet makes one): podman 4.3 plays an emptyDir as the named volume of its name, one
    volume shared by every pod that names it, so the gates of all members shared one
    hold file and one state file;
  - a ConfigMap key mounted with subPath (podman 4.3 mounts configMap volumes as directories
    only) as that key's text written under --files-dir and mounted from there, read-only;
  - the labelling hook's API server: KUBERNETES_API and SERVICEACCOUNT_DIR point at a stub
    and a directory with a token, a CA file and the namespace;
  - the worker container runs the given image and command under the unchanged gate (the test
    worker, which logs start/stop lines for the overlap checker), with the given host
    directories mounted.
Everything else — the hooks, the gate, the probes' paths and timings, the security contexts,
the mounts, the settings in the ConfigMap — is the template's.

Usage: kube_pods.py --k8s DIR --image IMAGE --worker-image IMAGE --base-port N --api URL
                    --sa-dir DIR --token TOKEN --files-dir DIR --mount HOST:CONTAINER ...
                    -- WORKER_CMD ...
Prints the multi-document YAML on stdout.
"""
import argparse
import copy
import os
import sys

import yaml


TEMPLATE_HTTP_PORT = 7480  # the template's ELECTD_LISTEN_HTTP port


def env_value(env, name, value):
    for e in env:
        if e["name"] == name:
            e.pop("valueFrom", None)
            e["value"] = value
            return
    env.append({"name": name, "value": value})


def downward(env, pod, token):
    """The downward API's fields and the Secret's keys as plain values."""
    fields = {"metadata.name": pod, "metadata.namespace": "default", "status.podIP": "127.0.0.1"}
    for e in env:
        src = e.get("valueFrom")
        if not src:
            continue
        if "fieldRef" in src:
            e["value"] = fields[src["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in src:
            e["value"] = token
        else:
            sys.exit(f"kube_pods: no local value for {e['name']}'s {list(src)}")
        del e["valueFrom"]
    # Kubernetes expands $(VAR) from earlier entries; podman does too, but plain values leave
    # nothing to the engine.
    values = {e["name"]: e.get("value", "") for e in env}
    for e in env:
        for k, v in values.items():
            if "value" in e:
                e["value"] = e["value"].replace(f"$({k})", v)


def subpath_files(spec, configmaps, files_dir):
    """Mounts of one ConfigMap key (subPath) as files from files_dir, for podman 4.3."""
    vols = {v["name"]: v for v in spec["volumes"]}
    for c in spec["containers"]:
        for m in c.get("volumeMounts", []):
            v = vols.get(m["name"], {})
            if "subPath" not in m or "configMap" not in v:
                continue
            data = configmaps[v["configMap"]["name"]]["data"][m["subPath"]]
            path = os.path.join(files_dir, f"{v['configMap']['name']}-{m['subPath']}")
            with open(path, "w") as f:
                f.write(data)
            os.chmod(path, 0o644)
            name = f"{m['name']}-{m['subPath']}".replace(".", "-")
            spec["volumes"].append({"name": name, "hostPath": {"path": path, "type": "File"}})
            m["name"] = name
            del m["subPath"]
            m["readOnly"] = True


def member_pod(sts, i, n, args):
    tpl = copy.deepcopy(sts["spec"]["template"])
    pod = f"{sts['metadata']['name']}-{i}"
    peer = lambda j: args.base_port + 2 * j
    http = lambda j: args.base_port + 2 * j + 1
    peers = ",".join(f"{sts['metadata']['name']}-{j}=127.0.0.1:{peer(j)}" for j in range(n))
    spec = tpl["spec"]
    spec["hostNetwork"] = True
    spec["restartPolicy"] = "Never"
    for c in spec["containers"]:
        env = c.setdefault("env", [])
        downward(env, pod, args.token)
        c.pop("ports", None)
        for probe in ("livenessProbe", "readinessProbe"):
            if probe in c:
                c[probe]["httpGet"]["port"] = http(i)
                c[probe]["httpGet"]["host"] = "127.0.0.1"
        if c["name"] == "electd":
            c["image"] = args.image
            cmd = c["lifecycle"]["preStop"]["exec"]["command"]
            api = f"http://127.0.0.1:{TEMPLATE_HTTP_PORT}/"
            assert any(api in a for a in cmd), "the preStop no longer calls the local API"
            c["lifecycle"]["preStop"]["exec"]["command"] = [
                a.replace(api, f"http://127.0.0.1:{http(i)}/") for a in cmd]
            env_value(env, "ELECTD_PEERS", peers)
            env_value(env, "ELECTD_LISTEN_PEER", f"127.0.0.1:{peer(i)}")
            env_value(env, "ELECTD_LISTEN_HTTP", f"127.0.0.1:{http(i)}")
            env_value(env, "ELECTD_ADVERTISE_HTTP", f"127.0.0.1:{http(i)}")
            env_value(env, "KUBERNETES_API", args.api)
            env_value(env, "SERVICEACCOUNT_DIR", "/var/run/secrets/electd-test-sa")
            c["volumeMounts"].append(
                {"name": "sa", "mountPath": "/var/run/secrets/electd-test-sa", "readOnly": True})
        else:
            c["image"] = args.worker_image
            c["args"] = args.cmd
            env_value(env, "ELECTD_API", f"127.0.0.1:{http(i)}")
            for k, m in enumerate(args.mount):
                c["volumeMounts"].append({"name": f"host{k}", "mountPath": m.split(":", 1)[1]})
    vols = spec["volumes"]
    for v in vols:
        if "emptyDir" in v:
            path = os.path.join(args.files_dir, f"{pod}-{v['name']}")
            os.makedirs(path, exist_ok=True)
            os.chmod(path, 0o777)
            del v["emptyDir"]
            v["hostPath"] = {"path": path, "type": "Directory"}
    vols.append({"name": "sa", "hostPath": {"path": args.sa_dir, "type": "Directory"}})
    for k, m in enumerate(args.mount):
        vols.append({"name": f"host{k}", "hostPath": {"path": m.split(":", 1)[0]}})
    for claim in sts["spec"].get("volumeClaimTemplates", []):
        name = claim["metadata"]["name"]
        vols.append({"name": name, "persistentVolumeClaim": {"claimName": f"{name}-{pod}"}})
    subpath_files(spec, args.configmaps, args.files_dir)
    tpl["metadata"]["name"] = pod
    return {"apiVersion": "v1", "kind": "Pod", "metadata": tpl["metadata"], "spec": spec}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k8s", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--worker-image", required=True)
    ap.add_argument("--base-port", type=int, required=True)
    ap.add_argument("--api", required=True)
    ap.add_argument("--sa-dir", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--files-dir", required=True)
    ap.add_argument("--mount", action="append", default=[])
    ap.add_argument("cmd", nargs="+")
    args = ap.parse_args()

    with open(f"{args.k8s}/statefulset.yaml") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    out = [d for d in docs if d["kind"] == "ConfigMap"]
    with open(f"{args.k8s}/gate.sh") as f:
        out.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "electd-gate"},
                    "data": {"gate.sh": f.read()}})
    args.configmaps = {d["metadata"]["name"]: d for d in out}
    n = sts["spec"]["replicas"]
    out += [member_pod(sts, i, n, args) for i in range(n)]
    yaml.safe_dump_all(out, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
