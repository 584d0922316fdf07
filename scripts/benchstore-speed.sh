#!/usr/bin/env bash
# Measures the bench object store's own speed floor (unshaped) with lakecache's S3 client:
# ranged reads of a 1 GiB object and whole-object GETs of 2,000 x 16 KiB objects.
# Usage: scripts/benchstore-speed.sh   (needs a release build: make build)
set -euo pipefail
cd "$(dirname "$0")/.."
B=.build/release/lakecache-s3bench
[ -x "$B" ] || swift build -c release --product lakecache-s3bench >/dev/null
work=$(mktemp -d /tmp/lakecache-bsspeed.XXXXXX)
python3 tools/benchstore/benchstore.py --root "$work/data" --port-file "$work/port" --bucket bench 2>"$work/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 100); do [ -s "$work/port" ] && break; sleep 0.1; done
ep=http://127.0.0.1:$(cat "$work/port")
export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
head -c $((1 << 30)) /dev/urandom > "$work/1g.bin"
$B put --endpoint "$ep" --bucket bench --key big --file "$work/1g.bin" --concurrency 4
for c in 4 16; do $B ranged-read --endpoint "$ep" --bucket bench --key big --concurrency $c --part-size $((8 << 20)); done
python3 - "$ep" <<'PY'
import sys, os, boto3, concurrent.futures as cf
s3 = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="bench", aws_secret_access_key="bench", region_name="us-east-1")
data = os.urandom(16384)
with cf.ThreadPoolExecutor(16) as ex:
    list(ex.map(lambda i: s3.put_object(Bucket="bench", Key="small/%05d" % i, Body=data), range(2000)))
PY
for c in 8 32; do $B small-gets --endpoint "$ep" --bucket bench --prefix small/ --concurrency $c --rounds 2; done
