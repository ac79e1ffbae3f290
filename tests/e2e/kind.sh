#!/usr/bin/env bash
# End to end on a throwaway kind cluster: build and load both images, install the chart and
# PostgreSQL with pgvector, apply a RagCorpDeployment, wait for Ready, roll out a second image
# tag, roll back, and tear everything down (also on failure).
#
#   make e2e-kind                 # needs docker (with a running engine), kind, kubectl, helm
#   KEEP_CLUSTER=1 make e2e-kind  # leave the cluster up for a look around
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER=${DOCKER:-docker}
CLUSTER=${CLUSTER:-ragcorp-e2e}
NAMESPACE=ragcorp-e2e
TIMEOUT=${TIMEOUT:-600s}

skip() {
    echo "e2e-kind: SKIPPED: $1" >&2
    exit 0
}
command -v "$DOCKER" >/dev/null 2>&1 || skip "docker is not installed"
"$DOCKER" info >/dev/null 2>&1 || skip "docker is installed but no Docker engine answers"
for tool in kind kubectl helm; do
    command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed"
done

step() { printf '\n==> %s\n' "$*"; }
teardown() {
    if [ "${KEEP_CLUSTER:-0}" = 1 ]; then
        echo "keeping cluster $CLUSTER (kind delete cluster --name $CLUSTER)"
    else
        kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    fi
}
trap teardown EXIT

step "images"
# The offline provider (no Gemini key in CI); e2e-2 differs only in /app/VERSION.
"$DOCKER" build -q -t ragcorp-service:e2e-1 --build-arg EXTRAS=service,local --build-arg VERSION=e2e-1 .
"$DOCKER" build -q -t ragcorp-service:e2e-2 --build-arg EXTRAS=service,local --build-arg VERSION=e2e-2 .
"$DOCKER" build -q -t ragcorp-operator:e2e --build-arg VERSION=e2e -f operator/Dockerfile .

step "cluster"
kind create cluster --name "$CLUSTER" --wait 180s
for image in ragcorp-service:e2e-1 ragcorp-service:e2e-2 ragcorp-operator:e2e; do
    kind load docker-image --name "$CLUSTER" "$image"
done

step "operator (Helm chart)"
helm install ragcorp-operator charts/ragcorp-operator --namespace ragcorp-system --create-namespace \
    --set image.repository=ragcorp-operator --set image.tag=e2e --set image.pullPolicy=Never \
    --set resyncSeconds=30 --wait --timeout "$TIMEOUT"

step "PostgreSQL with pgvector"
kubectl create namespace "$NAMESPACE"
kubectl -n "$NAMESPACE" apply -f tests/e2e/postgres.yaml
kubectl -n "$NAMESPACE" rollout status deployment/postgres --timeout "$TIMEOUT"
kubectl -n "$NAMESPACE" create secret generic ragcorp-database \
    --from-literal=DATABASE_URL=postgresql://ragcorp:ragcorp@postgres:5432/ragcorp
kubectl -n "$NAMESPACE" create secret generic ragcorp-keys \
    --from-literal=API_KEYS='e2e-key:ingest,ask,metrics'

wait_for() {  # wait_for JSONPATH VALUE
    kubectl -n "$NAMESPACE" wait rcd/ragcorp --for="jsonpath=$1=$2" --timeout "$TIMEOUT"
}
served_version() {
    local color
    color=$(kubectl -n "$NAMESPACE" get rcd ragcorp -o jsonpath='{.status.activeColor}')
    kubectl -n "$NAMESPACE" exec "deployment/ragcorp-$color" -- cat /app/VERSION
}

step "deploy e2e-1"
kubectl -n "$NAMESPACE" apply -f tests/e2e/ragcorp.yaml
kubectl -n "$NAMESPACE" wait rcd/ragcorp --for=condition=Ready --timeout "$TIMEOUT"
[ "$(served_version)" = e2e-1 ]

step "roll out e2e-2 (migrate, deploy standby, smoke test, promote)"
kubectl -n "$NAMESPACE" patch rcd ragcorp --type merge -p '{"spec":{"image":"ragcorp-service:e2e-2"}}'
wait_for '{.status.activeImage}' ragcorp-service:e2e-2
wait_for '{.status.phase}' Idle
[ "$(served_version)" = e2e-2 ]

step "roll back to e2e-1"
kubectl -n "$NAMESPACE" annotate rcd ragcorp ragcorp.dev/rollback=previous
wait_for '{.status.activeImage}' ragcorp-service:e2e-1
wait_for '{.status.phase}' Idle
kubectl -n "$NAMESPACE" wait rcd/ragcorp --for=condition=Ready --timeout "$TIMEOUT"
[ "$(served_version)" = e2e-1 ]

kubectl -n "$NAMESPACE" get rcd ragcorp -o wide
echo "e2e-kind: passed"
