#!/usr/bin/env bash
# A private Docker engine for the kind tier: its own data root (in the tool cache, so built
# images survive), exec root and socket, no default bridge, no iptables/NAT changes, and the
# runc wrapper (hack/kind/runc-wrapper) as its default runtime. It never talks to, nor stops,
# any other dockerd on the machine.
#   dockerd.sh start   start it unless ours is already running (DOCKER_HOST points at it)
#   dockerd.sh stop    stop ours by the pid it recorded
set -euo pipefail
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

running() { [ -f "$KDOCKER_PID" ] && kill -0 "$(cat "$KDOCKER_PID")" 2>/dev/null; }

start() {
  command -v dockerd >/dev/null ||
    die "dockerd not found. Install Docker from Debian: apt-get install docker.io (.ci/run does this)"
  if running && docker version >/dev/null 2>&1; then log "dockerd: ours is running (pid $(cat "$KDOCKER_PID"))"; return; fi
  mkdir -p "$KDOCKER_DATA" "$KDOCKER_RUN" "$KBIN"
  install -m 0755 "$KIND_HERE/runc-wrapper" "$KBIN/cj-runc"
  rm -f "$KDOCKER_SOCK" "$KDOCKER_PID"
  # setsid: the engine outlives this script's process group; `stop` ends it by its pid.
  setsid dockerd --data-root "$KDOCKER_DATA" --exec-root "$KDOCKER_RUN/exec" \
    -H "unix://$KDOCKER_SOCK" --pidfile "$KDOCKER_PID" \
    --bridge none --iptables=false --ip-masq=false --ip-forward=false \
    --add-runtime "cj-runc=$KBIN/cj-runc" --default-runtime cj-runc \
    >"$KCACHE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && { log "dockerd: started (pid $(cat "$KDOCKER_PID"), log $KCACHE/dockerd.log)"; return; }
    sleep 1
  done
  tail -20 "$KCACHE/dockerd.log" >&2
  die "the private dockerd did not answer on $KDOCKER_SOCK within 60s (log above)"
}

stop() {
  running || { log "dockerd: not running"; return; }
  local pid; pid=$(cat "$KDOCKER_PID")
  kill "$pid"
  for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || { log "dockerd: stopped (pid $pid)"; return; }; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  log "dockerd: killed (pid $pid)"
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
