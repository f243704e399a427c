#!/usr/bin/env bash
# Long fuzzing runs (at least 10 minutes per target; the issue-9 budget), after
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
#         -DCPUMODEL_FUZZ=ON -DBUILD_TESTING=OFF && ninja -C build-fuzz fuzz
# Usage: tests/fuzz/run_long.sh [-t SECONDS] [-b BUILD_DIR] [TARGET...]   (default: every target, 600 s)
# Each target runs in fork mode (one worker; crashes, timeouts and OOMs are recorded and the run
# goes on), growing build-fuzz/long/<target>/corpus from the checked-in seeds; findings land in
# build-fuzz/long/<target>/ as crash-*/leak-*/timeout-* files, the log in .../fuzz.log, and a
# summary line per target (execs, cov, ft, corpus, findings) is printed at the end.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=600
build="$here/build-fuzz"
while getopts "t:b:" o; do
  case "$o" in t) seconds="$OPTARG" ;; b) build="$OPTARG" ;; *) exit 2 ;; esac
done
shift $((OPTIND - 1))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in "$here"/tests/fuzz/corpus/*/; do targets+=("$(basename "$f")"); done
fi
summary=()
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  [ -x "$bin" ] || { echo "run_long: $bin not built (ninja -C $build fuzz)" >&2; exit 2; }
  out="$build/long/$t"
  mkdir -p "$out/corpus"
  seeds=("$here/tests/fuzz/corpus/$t")
  [ "$t" = fuzz_models ] && seeds+=("$here/data/models")
  echo "run_long: $t for ${seconds}s -> $out" >&2
  (cd "$out" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 "$bin" -fork=1 -ignore_crashes=1 \
      -ignore_timeouts=1 -ignore_ooms=1 -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -artifact_prefix="$out/" "$out/corpus" "${seeds[@]}" >"$out/fuzz.log" 2>&1) || true
  last=$(grep -a -E "^#[0-9]+" "$out/fuzz.log" | tail -1)
  findings=$(find "$out" -maxdepth 1 \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) | wc -l)
  summary+=("$t: ${last:-no stats} findings: $findings")
done
printf '%s\n' "${summary[@]}"
