#!/usr/bin/env bash
# `npm run e2e:kind`: the install path of a real cluster, end to end, for machines with Docker.
#
#   1. create the kind cluster $CJ_KIND_CLUSTER (default cj-e2e) unless it exists;
#   2. docker build the image from the Dockerfile and kind-load it (cj-operator:e2e, never pulled);
#   3. Postgres and Kafka in namespace cj-deps (hack/kind/deps.yaml);
#   4. helm install charts/cj-operator into cj-system (webhook behind its Service, self-managed
#      certificate, 2 replicas with leader election, restricted Pod Security enforced);
#   5. in namespace cj-demo: the fake Anthropic judge (hack/kind/fake-judge.yaml), the sample
#      Secret and pool (pointed at the judge) and config/samples/cjbatch-small.yaml;
#   6. wait for Succeeded and print the batch and its results.
#
#   npm run e2e:kind                 # all of the above (re-runs reuse the cluster)
#   npm run e2e:kind -- --down       # delete the kind cluster
#
# The project's CI has no Docker: there the same path runs on the local process cluster
# (test/integration/helm.test.ts). This script checks its prerequisites and stops with the
# reason when one is missing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
CLUSTER=${CJ_KIND_CLUSTER:-cj-e2e}
IMAGE=cj-operator:e2e
CONTEXT=kind-$CLUSTER
SYSTEM_NS=cj-system
DEMO_NS=cj-demo
DEPS_NS=cj-deps
TIMEOUT=${CJ_E2E_TIMEOUT:-600}

say() { printf '\n\033[1m▶ %s\033[0m\n' "$*"; }
die() { printf '\nnpm run e2e:kind: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
}

down=0
for arg in "$@"; do
  case $arg in
    --down) down=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $arg" ;;
  esac
done

# --- prerequisites -----------------------------------------------------------------------
command -v kind >/dev/null 2>&1 ||
  die "kind not found on PATH. Install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation, e.g. \`go install sigs.k8s.io/kind@latest\`). Without Docker and kind, use the local process cluster: npm test / npm run demo."
command -v docker >/dev/null 2>&1 ||
  die "docker not found on PATH. kind runs Kubernetes nodes as Docker containers, so this needs Docker. Without it, use the local process cluster: npm test / npm run demo."
if ! docker_err=$(docker info 2>&1 >/dev/null); then
  die "the Docker daemon is not reachable (\`docker info\` failed: $(printf '%s' "$docker_err" | tail -1)). Start Docker, or use the local process cluster: npm test / npm run demo."
fi

if [ "$down" = 1 ]; then
  say "kind delete cluster --name $CLUSTER"
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

command -v kubectl >/dev/null 2>&1 || die "kubectl not found on PATH (https://kubernetes.io/docs/tasks/tools/)."
# helm: on PATH, or the pinned build `npm run tools` makes.
# shellcheck disable=SC1091  # hack/tools/versions.sh: plain VAR=value pins
. "$root/hack/tools/versions.sh"
HELM=$(command -v helm || true)
[ -n "$HELM" ] || HELM=$CJ_CACHE/helm/$HELM_VERSION/helm
[ -x "$HELM" ] || die "helm not found on PATH nor at $HELM; install helm or run \`npm run tools\`."

k() { kubectl --context "$CONTEXT" "$@"; }

# --- cluster and image -------------------------------------------------------------------
if kind get clusters 2>/dev/null | grep -qx "$CLUSTER"; then
  say "kind cluster $CLUSTER exists; reusing it"
else
  say "kind create cluster --name $CLUSTER"
  kind create cluster --name "$CLUSTER" --config "$here/cluster.yaml" --wait 180s
fi

say "docker build -t $IMAGE ."
docker build -t "$IMAGE" "$root"
say "kind load docker-image $IMAGE"
kind load docker-image "$IMAGE" --name "$CLUSTER"

# --- dependencies --------------------------------------------------------------------------
say "Postgres and Kafka in $DEPS_NS"
k apply -f "$here/deps.yaml"
k rollout status -n "$DEPS_NS" deployment/postgres --timeout=300s
k rollout status -n "$DEPS_NS" deployment/kafka --timeout=300s

# --- the chart -----------------------------------------------------------------------------
for ns in "$SYSTEM_NS" "$DEMO_NS"; do
  k create namespace "$ns" --dry-run=client -o yaml | k apply -f -
  k label namespace "$ns" --overwrite pod-security.kubernetes.io/enforce=restricted
done
say "helm upgrade --install cj-operator charts/cj-operator -n $SYSTEM_NS"
"$HELM" --kube-context "$CONTEXT" upgrade --install cj-operator "$root/charts/cj-operator" \
  -n "$SYSTEM_NS" \
  --set image.repository=cj-operator --set image.tag=e2e --set image.pullPolicy=Never \
  --set-string database.url="postgres://cj:cj@postgres.$DEPS_NS.svc:5432/cj" \
  --set-string kafka.brokers="kafka.$DEPS_NS.svc:9092" \
  --set "workerServiceAccount.extraNamespaces={$DEMO_NS}" \
  --wait --timeout 5m
k rollout status -n "$SYSTEM_NS" deployment/cj-operator --timeout=300s

# --- the sample ----------------------------------------------------------------------------
say "fake judge, pool and config/samples/cjbatch-small.yaml in $DEMO_NS"
k apply -n "$DEMO_NS" -f "$here/fake-judge.yaml"
k rollout status -n "$DEMO_NS" deployment/fake-judge --timeout=300s
k apply -n "$DEMO_NS" -f "$root/config/samples/secret.yaml"
sed "s#baseURL: .*#baseURL: http://fake-judge.$DEMO_NS.svc:8787#" "$root/config/samples/llmproviderpool.yaml" |
  k apply -n "$DEMO_NS" -f -
k wait -n "$DEMO_NS" --for=condition=Ready llmproviderpool/fake-pool --timeout=180s
# The webhook may need a moment after the rollout to publish its caBundle: retry the apply.
for i in $(seq 1 30); do
  if k apply -n "$DEMO_NS" -f "$root/config/samples/cjbatch-small.yaml"; then break; fi
  [ "$i" -lt 30 ] || die "the sample batch was not admitted (see the errors above)"
  sleep 2
done

say "waiting for sample-small to finish (up to ${TIMEOUT}s)"
phase=""
for _ in $(seq 1 "$TIMEOUT"); do
  phase=$(k get cjbatch sample-small -n "$DEMO_NS" -o jsonpath='{.status.phase}' 2>/dev/null || true)
  case $phase in Succeeded | Failed) break ;; esac
  sleep 1
done
k get cjbatch sample-small -n "$DEMO_NS" -o wide
if [ "$phase" != Succeeded ]; then
  k get cjbatch sample-small -n "$DEMO_NS" -o jsonpath='{range .status.conditions[*]}{.type}={.status} {.reason}: {.message}{"\n"}{end}' >&2 || true
  k logs -n "$SYSTEM_NS" deployment/cj-operator --tail=50 >&2 || true
  die "sample-small ended in phase '${phase:-none}', not Succeeded"
fi

say "results (ConfigMap sample-small-results)"
k get configmap sample-small-results -n "$DEMO_NS" -o jsonpath='{.data.results\.csv}'
echo
say "done. Tear down: npm run e2e:kind -- --down"
