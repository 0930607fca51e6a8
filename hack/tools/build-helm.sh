#!/usr/bin/env bash
# Installs helm $HELM_VERSION with `go install` into $CJ_CACHE/helm/$HELM_VERSION/helm.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/versions.sh"
OUT=$CJ_CACHE/helm/$HELM_VERSION
if [ -x "$OUT/helm" ]; then echo "[tools] helm $HELM_VERSION: cached in $OUT"; exit 0; fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
mkdir -p "$OUT"
echo "[tools] helm $HELM_VERSION: go install from the module proxy (2-6 min cold)"
V=$HELM_VERSION; MINOR=$(cut -d. -f2 <<<"$V")
GOBIN="$OUT" go install -trimpath \
  -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$V" "helm.sh/helm/v3/cmd/helm@v$V"
echo "[tools] helm $HELM_VERSION: installed into $OUT"
