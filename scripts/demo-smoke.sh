#!/usr/bin/env bash
# Smoke test of `make demo` / `make demo-stop`: runs the demo twice in a row on a private mount point and
# state directory (so a user's demo at /mnt/lake is left alone), stops it, and checks nothing is left.
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d /var/tmp/lakecache-demo-smoke.XXXXXX)
export LAKE_MOUNT="$work/mnt" LAKE_DEMO_DIR="$work/state"
trap 'python3 scripts/demo.py stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
python3 scripts/demo.py start
python3 scripts/demo.py start >/dev/null   # a second run in a row replaces the first
test -s "$LAKE_MOUNT/checkpoints/step-000100/model.safetensors"
python3 scripts/demo.py stop
if grep -q " $LAKE_MOUNT " /proc/self/mountinfo; then echo "demo smoke: $LAKE_MOUNT is still mounted" >&2; exit 1; fi
if [ -e "$LAKE_DEMO_DIR" ]; then echo "demo smoke: $LAKE_DEMO_DIR was not removed" >&2; exit 1; fi
echo "demo smoke: passed"
