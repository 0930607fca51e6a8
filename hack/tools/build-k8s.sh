#!/usr/bin/env bash
# Builds the Kubernetes $KUBE_VERSION binaries of both tiers in ONE `go build` of one wrapper
# module, so the packages they share compile once: kube-apiserver and kube-controller-manager
# for the process cluster (hack/cluster), plus kubelet, kubeadm, kube-scheduler, kube-proxy and
# kubectl for the kind node image (hack/kind/node-image.sh). From the Go module proxy
# (k8s.io/kubernetes cannot be `go install`ed: its go.mod replaces the staging modules with
# local paths). Output: $CJ_CACHE/kube/$KUBE_VERSION/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/versions.sh"
V=$KUBE_VERSION; MINOR=$(cut -d. -f2 <<<"$V")
OUT=$CJ_CACHE/kube/$V
BINS="kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubeadm kubectl"
missing=""; for b in $BINS; do [ -x "$OUT/$b" ] || missing="$missing $b"; done
if [ -z "$missing" ]; then echo "[tools] kube $V: cached in $OUT"; exit 0; fi
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
W=$CJ_CACHE/build/k8s-bins-$V; rm -rf "$W"; mkdir -p "$W" "$OUT"; cd "$W"
echo "[tools] kube $V: building$missing from the Go module proxy (cold: about 20-35 min on 2 cores; progress below)"
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
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubectl"
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
rm -rf "$OUT.bins.tmp"
go build -mod=mod -trimpath -ldflags "$LDF" -o "$OUT.bins.tmp/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kube-proxy \
  k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubeadm k8s.io/kubernetes/cmd/kubectl
mv "$OUT.bins.tmp"/* "$OUT/" && rmdir "$OUT.bins.tmp"
echo "[tools] kube $V: built into $OUT"
