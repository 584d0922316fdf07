#!/usr/bin/env bash
# make fuzz: builds lakecache-fuzz with libFuzzer and AddressSanitizer (its own build folder, .build-fuzz) and
# runs each target for FUZZ_SECONDS (default 60) from its seed corpus in Fuzz/corpus/TARGET. New inputs go to
# a scratch corpus, not the repository; a crash stops the run and leaves its input in Fuzz/crashes/ (add it to
# Fuzz/corpus/TARGET once fixed: CorpusReplayTests replays every corpus file in make test).
# Usage: scripts/fuzz.sh [TARGET...]   (targets: xml url control config events)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(xml url control config events)
# SwiftPM passes -sanitize=fuzzer and -sanitize=address as two flags, and swiftc keeps only the last: the
# code then has no coverage counters and libFuzzer fuzzes blind (the check below catches that). The combined
# flag, after SwiftPM's, keeps both.
swift build --scratch-path .build-fuzz --sanitize=fuzzer --sanitize=address -Xswiftc -DFUZZING \
    -Xswiftc -sanitize=fuzzer,address --product lakecache-fuzz
bin=.build-fuzz/debug/lakecache-fuzz
mkdir -p Fuzz/crashes
for t in "${targets[@]}"; do
    work=$(mktemp -d /tmp/lakecache-fuzz-$t.XXXXXX)
    echo "== fuzz $t for ${seconds}s"
    # -rss_limit_mb: the targets parse at most a few MiB; -max_len bounds an input (the config file's limit is 1 MiB).
    FUZZ_TARGET=$t $bin "$work" "Fuzz/corpus/$t" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -timeout=60 \
        -artifact_prefix="Fuzz/crashes/$t-" -print_final_stats=1 > "$work.log" 2>&1 || true
    grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==ERROR|SUMMARY)" "$work.log" || true
    # A binary without coverage counters fuzzes blind (an incremental build once lost them): that is a failure.
    if grep -q "Is the code instrumented for coverage" "$work.log"; then
        echo "fuzz $t: libFuzzer sees no coverage; rebuild from scratch (rm -rf .build-fuzz)"; rm -f "$work.log"; exit 1
    fi
    rm -f "$work.log"
    rm -rf "$work"
    # A slow unit (over 10 s) is reported, not a failure; a crash, a leak, an out-of-memory or a timeout is.
    for f in Fuzz/crashes/$t-slow-unit-*; do [ -e "$f" ] && echo "fuzz $t: slow input (over 10 s) in $f"; done
    if ls Fuzz/crashes/$t-* 2>/dev/null | grep -qv slow-unit; then echo "fuzz $t: failure, input in $(ls Fuzz/crashes/$t-* | grep -v slow-unit | head -1)"; exit 1; fi
done
echo "fuzz: no crash in ${targets[*]} (${seconds}s each)"
