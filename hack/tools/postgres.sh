#!/usr/bin/env bash
# Postgres comes from Debian's package (see docs/decisions.md): a real server binary, the same
# major as production-like installs, no download at test time. Installed only when missing.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "[tools] postgres: $(ls -d /usr/lib/postgresql/*/bin | tail -1) present"; exit 0; fi
echo "[tools] postgres: installing Debian package postgresql (about 1 min)"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
echo "[tools] postgres: installed $(ls -d /usr/lib/postgresql/*/bin | tail -1)"
