#!/bin/sh
# k8s-label.sh — labels this pod electd-role=primary or electd-role=standby, so that a
# Service selecting electd-role=primary sends traffic to the primary only (see
# deploy/k8s/services.yaml). Run it as the on-change notification, which gets the new role
# as its last argument:
#
#   electd ... --on-change "/etc/electd/hooks/k8s-label.sh"
#
# It talks to the Kubernetes API with the pod's service account (a Role that may get and
# patch pods: deploy/k8s/rbac.yaml), using curl; POD_NAME and POD_NAMESPACE come from the
# downward API. A label follows leadership with a delay (the hook's run, the Endpoints
# update); it routes traffic, it does not fence it: writers still carry the token.
set -eu

role=${1:-${ELECTD_ROLE:-}}
if [ "$#" -gt 1 ]; then
    shift $(($# - 1))
    role=$1
fi
case $role in
primary | standby) ;;
*)
    echo "k8s-label: unknown role '$role'" >&2
    exit 2
    ;;
esac

sa=${SERVICEACCOUNT_DIR:-/var/run/secrets/kubernetes.io/serviceaccount}
api=${KUBERNETES_API:-https://${KUBERNETES_SERVICE_HOST:?not in a pod}:${KUBERNETES_SERVICE_PORT:-443}}
pod=${POD_NAME:?set POD_NAME from the downward API (metadata.name)}
ns=${POD_NAMESPACE:-$(cat "$sa/namespace")}
# HOOK_ROLE_LABEL (set in electd's environment) overrides the label's name; electd passes
# no ELECTD_* variable of its own environment on to hooks, hence the name.
label=${HOOK_ROLE_LABEL:-electd-role}

code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 \
    --cacert "$sa/ca.crt" -H "Authorization: Bearer $(cat "$sa/token")" \
    -X PATCH -H 'Content-Type: application/merge-patch+json' \
    --data "{\"metadata\":{\"labels\":{\"$label\":\"$role\"}}}" \
    "$api/api/v1/namespaces/$ns/pods/$pod")
case $code in
2??)
    echo "k8s-label: $ns/$pod $label=$role (term ${ELECTD_TERM:-?})"
    ;;
*)
    echo "k8s-label: patching $ns/$pod failed with HTTP $code" >&2
    exit 1
    ;;
esac
