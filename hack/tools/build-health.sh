#!/usr/bin/env bash
# Builds the health-check tools of hack/health into $CJ_CACHE/health/<pins>/:
#   argocd-health  runs an Argo CD Lua health check on an object (github.com/yuin/gopher-lua)
#   kstatus        sigs.k8s.io/cli-utils/pkg/kstatus/status.Compute on an object
# Rebuilt when any file in hack/health is newer than the binaries.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck disable=SC1091  # versions.sh: plain VAR=value pins
. "$here/versions.sh"
SRC=$(cd "$here/../health" && pwd)
OUT=$CJ_CACHE/health/lua-$GOPHER_LUA_VERSION-kstatus-$CLI_UTILS_VERSION
for pin in "github.com/yuin/gopher-lua v$GOPHER_LUA_VERSION" "sigs.k8s.io/cli-utils v$CLI_UTILS_VERSION"; do
  if ! grep -q "^	$pin$" "$SRC/go.mod"; then
    echo "[tools] health: hack/health/go.mod does not require $pin (hack/tools/versions.sh); update one of them" >&2
    exit 1
  fi
done
if [ -x "$OUT/argocd-health" ] && [ -x "$OUT/kstatus" ] && [ -z "$(find "$SRC" -newer "$OUT/kstatus" -type f | head -1)" ]; then
  echo "[tools] health: cached in $OUT"; exit 0
fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=readonly"
mkdir -p "$OUT"
echo "[tools] health: building argocd-health and kstatus from hack/health (1-2 min cold)"
cd "$SRC"
for t in argocd-health kstatus; do
  go build -trimpath -ldflags "-s -w" -o "$OUT/$t.tmp" "./$t"
  mv "$OUT/$t.tmp" "$OUT/$t"
done
echo "[tools] health: built into $OUT"
