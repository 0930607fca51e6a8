#!/usr/bin/env bash
# Builds kube-apiserver and kube-controller-manager of $KUBE_VERSION from the Go module proxy
# through a wrapper module (k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces
# the staging modules with local paths). Output: $CJ_CACHE/kube/$KUBE_VERSION/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/versions.sh"
V=$KUBE_VERSION; MINOR=$(cut -d. -f2 <<<"$V")
OUT=$CJ_CACHE/kube/$V
if [ -x "$OUT/kube-apiserver" ] && [ -x "$OUT/kube-controller-manager" ]; then
  echo "[tools] kube $V: cached in $OUT"; exit 0; fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
W=$CJ_CACHE/build/k8s-$V; rm -rf "$W"; mkdir -p "$W" "$OUT"; cd "$W"
echo "[tools] kube $V: cold build from the Go module proxy (about 15-30 min on 2 cores; progress below)"
go mod init local/k8sbins >/dev/null 2>&1
GOMOD=$(go mod download -json "k8s.io/kubernetes@v$V" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
# One replace per staging module, derived from upstream's go.mod (the list changes by release).
for m in $(sed -n 's|^[[:space:]]*\(replace[[:space:]]\{1,\}\)\{0,1\}\(k8s.io/[^[:space:]]*\) => \./staging/src/.*|\2|p' "$GOMOD"); do
  go mod edit "-replace=$m=$m@v0.${V#1.}"
done
GODEBUG_LINE=$(sed -n 's/^godebug \(.*\)$/\1/p' "$GOMOD" | head -1)
[ -n "$GODEBUG_LINE" ] && go mod edit "-godebug=$GODEBUG_LINE" || true
cat > tools.go <<'EOG'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
)
EOG
echo "[tools] kube $V: resolving modules"
go get "k8s.io/kubernetes@v$V"
go mod tidy || echo "[tools] go mod tidy failed; continuing with -mod=mod"
LDF="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LDF="$LDF -X $p.gitVersion=v$V -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done
echo "[tools] kube $V: compiling (the slow part; go prints nothing until done, heartbeat every 60s)"
( while sleep 60; do echo "[tools] kube $V: still compiling... $(date +%T)"; done ) & HB=$!
trap 'kill $HB 2>/dev/null || true' EXIT
go build -mod=mod -trimpath -ldflags "$LDF" -o "$OUT.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
mv "$OUT.tmp"/* "$OUT/" && rmdir "$OUT.tmp"
echo "[tools] kube $V: built into $OUT"
