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
