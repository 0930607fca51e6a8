#!/usr/bin/env bash
# Builds the kind node image $IMG_KIND_NODE offline, by hand: `kind build node-image` fetches
# every image it does not build from a registry. Needs the private dockerd (dockerd.sh start),
# the Kubernetes binaries (hack/tools/build-k8s.sh) and the node binaries (tools.sh go_bins).
#   1. a Debian root file system with systemd, containerd, runc and the CNI plugins;
#   2. kind's own base files (from the kind Go module), the runc wrapper, kubeadm/kubelet/kubectl,
#      crictl, a static bridge CNI config and a no-provisioner StorageClass;
#   3. one image with the component binaries, tagged with the names kubeadm pulls, saved and
#      imported into the node's containerd (pinned, so the kubelet never garbage-collects them).
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
have_image "$IMG_KIND_NODE" && { log "$IMG_KIND_NODE: cached"; exit 0; }
KB=$CJ_CACHE/kube/$KUBE_VERSION
NB=$KCACHE/node-bins
IMG_ROOTFS=cj-kind/node-rootfs:$DEBIAN_SUITE
IMG_COMPONENTS=cj-kind/k8s-components:v$KUBE_VERSION
for f in "$KB/kubeadm" "$KB/kubelet" "$KB/kubectl" "$KB/kube-apiserver" "$KB/kube-controller-manager" \
  "$KB/kube-scheduler" "$KB/kube-proxy" "$CJ_CACHE/etcd/$ETCD_VERSION/etcd" "$NB/crictl-$CRICTL_VERSION" \
  "$NB/coredns-$COREDNS_VERSION" "$NB/pause-$KUBE_VERSION"; do
  [ -x "$f" ] || die "$f missing: run hack/kind/tools.sh (it builds the binaries first)"
done

t0=$SECONDS
debootstrap_image "$IMG_ROOTFS" node-rootfs \
  --include=systemd,systemd-sysv,dbus,conntrack,iptables,nftables,iproute2,ethtool,util-linux,mount,kmod,libseccomp2,pigz,bash,ca-certificates,jq,procps,containerd,runc,containernetworking-plugins
log "node image: root file system ready ($((SECONDS - t0))s)"

# The images kubeadm pulls, by name; etcd is ours at ETCD_VERSION (cluster.yaml sets the tag).
images=$("$KB/kubeadm" config images list --kubernetes-version "v$KUBE_VERSION" |
  sed "s#^\(.*/etcd\):.*#\1:$ETCD_VERSION-0#")
grep -q "/coredns:v$COREDNS_VERSION\$" <<<"$images" ||
  die "kubeadm v$KUBE_VERSION asks for $(grep coredns <<<"$images"); set COREDNS_VERSION in hack/tools/versions.sh to match"
sandbox=$(grep '/pause:' <<<"$images")

ctx=$(mktemp -d); trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/bin"
for b in kube-apiserver kube-controller-manager kube-scheduler kube-proxy; do cp "$KB/$b" "$ctx/bin/"; done
cp "$CJ_CACHE/etcd/$ETCD_VERSION/etcd" "$ctx/bin/etcd"
cp "$NB/coredns-$COREDNS_VERSION" "$ctx/bin/coredns"
cp "$NB/pause-$KUBE_VERSION" "$ctx/bin/pause"
docker build -q --network host --build-arg "BASE=$IMG_DEBIAN" -t "$IMG_COMPONENTS" \
  -f "$KIND_HERE/images/components.Dockerfile" "$ctx" >/dev/null
for img in $images; do
  case $img in
    */coredns:*) printf 'FROM %s\nENTRYPOINT ["/coredns"]\n' "$IMG_COMPONENTS" | docker build -q --network none -t "$img" - >/dev/null ;;
    */pause:*) printf 'FROM %s\nENTRYPOINT ["/pause"]\n' "$IMG_COMPONENTS" | docker build -q --network none -t "$img" - >/dev/null ;;
    *) docker tag "$IMG_COMPONENTS" "$img" ;;
  esac
done
# shellcheck disable=SC2086  # one argument per image
docker save -o "$ctx/images.tar" $images
log "node image: component images tagged and saved ($((SECONDS - t0))s): $(echo $images)"

rm -rf "$ctx/bin"; mkdir -p "$ctx/bin"
for b in kubeadm kubelet kubectl; do cp "$KB/$b" "$ctx/bin/"; done
cp "$NB/crictl-$CRICTL_VERSION" "$ctx/bin/crictl"
kindsrc=$(GOFLAGS=-mod=mod go mod download -json "sigs.k8s.io/kind@v$KIND_VERSION" | jq -r .Dir)
cp -r "$kindsrc/images/base/files" "$ctx/kind-files"; chmod -R u+w "$ctx/kind-files"
echo "$sandbox" >"$ctx/kind-files/kind/sandbox-image"
echo "v$KUBE_VERSION" >"$ctx/version"
cp "$KIND_HERE/runc-wrapper" "$KIND_HERE/images/10-cj-bridge.conflist" "$KIND_HERE/images/default-storage.yaml" "$ctx/"
mv "$ctx/images.tar" "$ctx.images.tar"
docker build -q --network none --build-arg "BASE=$IMG_ROOTFS" -t "$IMG_KIND_NODE-stage" \
  -f "$KIND_HERE/images/kind-node.Dockerfile" "$ctx" >/dev/null
log "node image: base layer built ($((SECONDS - t0))s)"

# Import the component images into the node's containerd (content only, like kind's own build),
# then commit the container as the node image.
cid=$(docker run -d --privileged --network none --entrypoint sleep "$IMG_KIND_NODE-stage" infinity)
trap 'docker rm -f "$cid" >/dev/null 2>&1 || true; rm -rf "$ctx" "$ctx.images.tar"' EXIT
docker cp "$ctx.images.tar" "$cid:/kind/images.tar"
docker exec "$cid" sh -euc '
  containerd >/tmp/containerd.log 2>&1 & pid=$!
  for _ in $(seq 1 60); do ctr version >/dev/null 2>&1 && break; sleep 1; done
  ctr -n k8s.io images import --label=io.cri-containerd.pinned=pinned --no-unpack /kind/images.tar >/dev/null
  ctr -n k8s.io images ls -q
  rm -f /kind/images.tar /tmp/containerd.log
  kill "$pid"; wait "$pid" || true'
docker commit -c 'ENTRYPOINT ["/usr/local/bin/entrypoint", "/sbin/init"]' -c 'CMD []' "$cid" "$IMG_KIND_NODE" >/dev/null
docker rm -f "$cid" >/dev/null
docker rmi "$IMG_KIND_NODE-stage" >/dev/null
log "node image: $IMG_KIND_NODE ($((SECONDS - t0))s, $(docker image inspect -f '{{.Size}}' "$IMG_KIND_NODE" | numfmt --to=iec))"
