# Shared by hack/kind/*.sh (sourced): pinned versions, cache paths, the private Docker engine.
# shellcheck shell=bash disable=SC1091
KIND_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$KIND_HERE/../.." && pwd)
. "$ROOT/hack/tools/versions.sh"

# Everything built for kind lives in the git-ignored tool cache, so a fresh clone reuses it.
KCACHE=$CJ_CACHE/kind
KBIN=$KCACHE/bin
# The private dockerd: its own data root (kept: it holds the built images between runs), its
# own exec root and socket (short paths: unix sockets are limited to 108 bytes).
KDOCKER_DATA=$KCACHE/docker
KDOCKER_RUN=/run/cj-kind-docker
KDOCKER_SOCK=$KDOCKER_RUN/docker.sock
KDOCKER_PID=$KDOCKER_RUN/dockerd.pid

# Images this tooling builds (never pulled: there is no registry).
# Stock or offline. Unless CJ_KIND_STOCK says (1 or 0): stock when the developer's own Docker
# answers and Docker Hub's registry API does (401 = "log in", i.e. reachable); else offline,
# with the private engine and everything built here. CI machines have no Docker running and no
# registry, so they take the offline path; the stock path is untested here.
if [ -z "${CJ_KIND_STOCK:-}" ]; then
  CJ_KIND_STOCK=0
  if docker info >/dev/null 2>&1 &&
    [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null)" = 401 ]; then
    CJ_KIND_STOCK=1
  fi
fi
export CJ_KIND_STOCK
# Stock: the registry's Debian base. Offline: ours, from debootstrap.
if [ "$CJ_KIND_STOCK" = 1 ]; then IMG_DEBIAN=debian:$DEBIAN_SUITE-slim; else IMG_DEBIAN=cj-kind/debian:$DEBIAN_SUITE; fi
IMG_NODEJS=cj-kind/nodejs:$NODE_VERSION
IMG_POSTGRES=cj-kind/postgres:$DEBIAN_SUITE
IMG_KAFKA=cj-kind/kafka:$KAFKA_VERSION
IMG_KIND_NODE=cj-kind/node:v$KUBE_VERSION
IMG_NETPOL=cj-kind/kube-network-policies:v$KNP_VERSION

log() { printf '[kind] %s\n' "$*"; }
die() { printf '[kind] FAILED: %s\n' "$*" >&2; exit 1; }
# step NAME CMD...: runs one step, prints its time, and appends "NAME SECONDS" to $KIND_TIMES.
# The command runs as a background job so that `set -e` holds inside shell functions (it is
# ignored in anything run on the left of `||`).
step() {
  local name=$1; shift; local t0=$SECONDS rc=0
  log "$name: start $(date -u +%T)"
  "$@" <&0 & wait $! || rc=$?
  [ -z "${KIND_TIMES:-}" ] || echo "$name $((SECONDS - t0))$([ $rc = 0 ] || echo " FAILED")" >>"$KIND_TIMES"
  [ $rc = 0 ] || die "$name failed (exit $rc); see the output above"
  log "$name: done in $((SECONDS - t0))s"
}

# Offline, the docker client (and kind, which runs `docker` from PATH) talks to the private engine.
[ "$CJ_KIND_STOCK" = 1 ] || export DOCKER_HOST=unix://$KDOCKER_SOCK
export PATH=$KBIN:$CJ_CACHE/kube/$KUBE_VERSION:$CJ_CACHE/helm/$HELM_VERSION:$PATH
# The classic builder: BuildKit would try to fetch its Dockerfile frontend from a registry.
export DOCKER_BUILDKIT=0
have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# A Debian root file system from the Debian mirror apt already uses, imported as an image.
debootstrap_image() { # IMAGE NAME [--include=...]
  local image=$1 name=$2; shift 2
  have_image "$image" && { log "$image: cached"; return; }
  command -v debootstrap >/dev/null || die "debootstrap not found (apt-get install debootstrap)"
  local mirror dir=$KCACHE/rootfs/$name
  mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
  mirror=${mirror:-http://deb.debian.org/debian}
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    log "$image: debootstrap $DEBIAN_SUITE from $mirror (1.5-4 min)"
    debootstrap --variant=minbase "$@" "$DEBIAN_SUITE" "$dir" "$mirror" >"$dir.log" 2>&1 ||
      { tail -20 "$dir.log" >&2; return 1; }
    rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/*_Packages
    touch "$dir/.complete"
  fi
  tar -C "$dir" --exclude=./.complete -c . | docker import - "$image" >/dev/null
  rm -rf "$dir"   # the image now holds it
}
