#!/usr/bin/env bash
# `npm run tools`: makes every pinned tool available in the git-ignored cache $CJ_CACHE.
# Each step is skipped when its output is already there, and prints how long it took.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/versions.sh"
mkdir -p "$CJ_CACHE"
step() {
  local name=$1; shift; local t0=$SECONDS
  "$@"
  echo "[tools] $name: done in $((SECONDS - t0))s"
}
step postgres bash "$here/postgres.sh"
step kafka bash "$here/fetch-kafka.sh"
step etcd bash "$here/build-etcd.sh"
step helm bash "$here/build-helm.sh"
step kube bash "$here/build-k8s.sh"
step health bash "$here/build-health.sh"
step python-cloudevents bash "$here/python-cloudevents.sh"
