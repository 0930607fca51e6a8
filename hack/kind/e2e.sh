#!/usr/bin/env bash
# `npm run e2e:kind`: the e2e tier. A real kind cluster (real kubelet, containerd, kube-proxy,
# CoreDNS) runs the project's real image, installed with Helm, against Postgres, Kafka and the
# fake Anthropic judge running as pods; test/e2e/ (vitest project `e2e`) drives and checks it.
#
#   1. tools: hack/kind/tools.sh (cached after the first run; builds the kind node image offline);
#   2. kind create cluster (API server on 127.0.0.1 only);
#   3. docker build of the project's Dockerfile (the operator image and its fake-judge target),
#      `kind load docker-image` of those and of the Postgres, Kafka and kube-network-policies images;
#   4. NetworkPolicy enforcement (offline: kube-network-policies as a DaemonSet, checked on the node);
#   5. vitest run --project e2e;
#   6. kind delete cluster, stop the private dockerd (by its pid), print the time per step.
#
#   npm run e2e:kind                  # all of the above
#   CJ_KIND_KEEP=1 npm run e2e:kind   # keep the cluster and dockerd afterwards (debugging);
#                                     # then: npm run e2e:kind -- --down
# Offline unless the developer's Docker runs and a registry answers (hack/kind/lib.sh decides;
# CJ_KIND_STOCK=1/0 forces it): then stock kind node image and registry base images
# (docs/local-cluster.md; that path is untested here, where no registry is reachable).
# Any step that cannot run fails the run and says why; nothing is skipped.
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

CLUSTER=${CJ_KIND_CLUSTER:-cj-e2e}
RUN=$KCACHE/run/$CLUSTER
export KUBECONFIG=$RUN/kubeconfig
STOCK=$CJ_KIND_STOCK   # decided in lib.sh
# Rebuilt every run (the tests compare the pods' image digest with this build's, not the tag).
IMAGE=cj-operator:e2e
JUDGE_IMAGE=cj-fake-judge:e2e

if [ "${1:-}" = --down ]; then
  kind delete cluster --name "$CLUSTER" || true
  bash "$KIND_HERE/dockerd.sh" stop
  exit 0
fi
[ $# -eq 0 ] || die "unknown argument: $1 (usage: npm run e2e:kind [-- --down])"

mkdir -p "$RUN"
export KIND_TIMES=$RUN/times; : >"$KIND_TIMES"
T0=$SECONDS
cleanup() {
  local rc=$?
  if [ "${CJ_KIND_KEEP:-0}" = 1 ]; then
    log "CJ_KIND_KEEP=1: cluster $CLUSTER and dockerd left running (KUBECONFIG=$KUBECONFIG; stop: npm run e2e:kind -- --down)"
  else
    kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
    if [ "$STOCK" != 1 ]; then
      # Earlier builds of the e2e images, now untagged, would fill the private engine's data root.
      docker image prune -f >/dev/null 2>&1 || true
      bash "$KIND_HERE/dockerd.sh" stop
    fi
  fi
  echo "[kind] time per step (s):"; sed 's/^/[kind]   /' "$KIND_TIMES"
  echo "[kind]   total $((SECONDS - T0))"
  [ $rc -eq 0 ] && log "e2e: PASSED" || log "e2e: FAILED (exit $rc)"
  exit $rc
}
trap cleanup EXIT
# A run stopped by a signal is not a pass: exit with its code so cleanup says FAILED.
trap 'exit 143' TERM
trap 'exit 130' INT

if [ "$STOCK" = 1 ]; then
  docker version >/dev/null 2>&1 || die "CJ_KIND_STOCK=1 needs a running Docker (docker version failed)"
fi
step tools bash "$KIND_HERE/tools.sh"
if [ "$STOCK" = 1 ]; then
  NODE_IMAGE_ARGS=(); NODE_BASE=node:22-slim
else
  NODE_IMAGE_ARGS=(--image "$IMG_KIND_NODE"); NODE_BASE=$IMG_NODEJS
fi

create_cluster() {
  kind delete cluster --name "$CLUSTER" >/dev/null 2>&1 || true
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  local cni=true; [ "$STOCK" = 1 ] && cni=false
  sed -e "s/\${API_PORT}/$port/" -e "s/\${DISABLE_DEFAULT_CNI}/$cni/" "$KIND_HERE/cluster.yaml" >"$RUN/cluster.yaml"
  # Offline, etcd is the tools' ETCD_VERSION (the node image carries it under that tag).
  [ "$STOCK" = 1 ] || cat >>"$RUN/cluster.yaml" <<YAML
  - |
    kind: ClusterConfiguration
    etcd:
      local:
        imageTag: "$ETCD_VERSION-0"
    # kubeadm's default 4 min for the static pods to come up is too short on a shared 2-core
    # machine at load 40 (the node unpacks the component image first): it failed twice so.
    apiServer:
      timeoutForControlPlane: 10m0s
YAML
  kind create cluster --name "$CLUSTER" "${NODE_IMAGE_ARGS[@]}" --config "$RUN/cluster.yaml" \
    --kubeconfig "$KUBECONFIG" --wait 180s
  kubectl wait --for=condition=Ready node --all --timeout=120s
}
step kind-create create_cluster

build_images() {
  # The product image and the judge come from the project's Dockerfile, from one build stage.
  docker build -q --network host --build-arg "NODE_IMAGE=$NODE_BASE" -t "$IMAGE" "$ROOT" >/dev/null
  docker build -q --network host --build-arg "NODE_IMAGE=$NODE_BASE" --target fake-judge -t "$JUDGE_IMAGE" "$ROOT" >/dev/null
}
step image-build build_images

load_images() {
  local imgs=("$IMAGE" "$JUDGE_IMAGE" "$IMG_POSTGRES" "$IMG_KAFKA")
  [ "$STOCK" = 1 ] || imgs+=("$IMG_NETPOL")
  kind load docker-image --name "$CLUSTER" "${imgs[@]}"
}
step image-load load_images

# NetworkPolicy enforcement, before anything the tests install. Stock kind's kindnetd enforces it
# already; the offline node has no kindnetd, so kube-network-policies runs as its own DaemonSet
# (hack/kind/netpol.yaml; its iptables come from the node's kube-proxy image). Running is not
# enough: the agent stays up when it cannot bind its queue, and the cluster would then silently
# enforce nothing. So the node must show the diversion and the bound queue, or the run fails.
network_policy() {
  local cidr; cidr=$(jq -r '.plugins[0].ipam.ranges[0][0].subnet' "$KIND_HERE/images/10-cj-bridge.conflist")
  sed -e "s#\${NETPOL_IMAGE}#$IMG_NETPOL#" -e "s#\${IPTABLES_IMAGE}#registry.k8s.io/kube-proxy:v$KUBE_VERSION#" \
    -e "s#\${POD_CIDR}#$cidr#" "$KIND_HERE/netpol.yaml" | kubectl apply -f - >/dev/null
  local ds=(-n kube-system -l app=kube-network-policies)
  if ! kubectl -n kube-system rollout status ds/kube-network-policies --timeout=120s; then
    kubectl describe pods "${ds[@]}" | tail -25 >&2; kubectl logs "${ds[@]}" --tail=30 >&2 || true
    die "kube-network-policies did not become Ready: NetworkPolicy would not be enforced"
  fi
  local node=$CLUSTER-control-plane i
  for i in $(seq 60); do
    if docker exec "$node" iptables -t mangle -C POSTROUTING -j CJ-NETPOL 2>/dev/null &&
      docker exec "$node" awk '$1 == 98 { found = 1 } END { exit !found }' /proc/net/netfilter/nfnetlink_queue; then
      log "kube-network-policies: pod traffic diverted to NFQUEUE 98, the agent bound to it (after ${i}s)"; return 0; fi
    sleep 1
  done
  kubectl logs "${ds[@]}" --tail=40 >&2 || true
  die "kube-network-policies runs but the node shows no diversion (mangle POSTROUTING -> CJ-NETPOL) or no listener on NFQUEUE 98 within 60s: NetworkPolicy would not be enforced"
}
[ "$STOCK" = 1 ] || step network-policy network_policy

run_suite() {
  # What the suite needs to know; it fails, naming the variable, when one is missing.
  CJ_E2E_KUBECONFIG=$KUBECONFIG CJ_E2E_IMAGE=$IMAGE \
    CJ_E2E_IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE") \
    CJ_E2E_JUDGE_IMAGE=$JUDGE_IMAGE \
    CJ_E2E_POSTGRES_IMAGE=$IMG_POSTGRES CJ_E2E_KAFKA_IMAGE=$IMG_KAFKA \
    CJ_E2E_KUBECTL=$(command -v kubectl) CJ_E2E_HELM=$(command -v helm) CJ_E2E_NODE=$CLUSTER-control-plane \
    CJ_E2E_HEALTH_DIR=$CJ_CACHE/health/lua-$GOPHER_LUA_VERSION-kstatus-$CLI_UTILS_VERSION \
    npx vitest run --project e2e
}
step e2e-suite run_suite
