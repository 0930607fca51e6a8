#!/usr/bin/env bash
# A Python venv with the official CloudEvents SDK (pinned by hash in python-cloudevents.txt) under
# $CJ_CACHE/python-cloudevents. Rebuilt when the pins change: the venv keeps the sha256 of the pin
# file it was built from in .pins, which the integration test checks too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd); . "$here/versions.sh"
pins="$here/python-cloudevents.txt"
venv="$CJ_CACHE/python-cloudevents"
want=$(sha256sum "$pins" | cut -d' ' -f1)
if [[ -f "$venv/.pins" && $(cat "$venv/.pins") == "$want" ]]; then exit 0; fi
command -v python3 >/dev/null || { echo "python3 is required (Debian: apt-get install python3 python3-venv)" >&2; exit 1; }
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
  --require-hashes -r "$pins"
"$venv/bin/python" -c 'from cloudevents.core.bindings.kafka import from_kafka'
echo "$want" > "$venv/.pins"
