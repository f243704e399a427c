#!/usr/bin/env bash
# Long fuzzing runs (issue 9: at least 10 minutes per target), one target at a time.
#
#   tests/fuzz/long_run.sh [-b BUILD_DIR] [-o OUT_DIR] [TARGET...] [SECONDS]
#
# TARGET: fuzz_spec, fuzz_smp, ... (default: every directory in tests/fuzz/corpus); SECONDS per
# target (default 600). The targets come from BUILD_DIR (default build-fuzz), built with
#   cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
#         -DCPUMODEL_FUZZ=ON -DBUILD_TESTING=OFF && ninja -C build-fuzz fuzz
# On a shared machine run it niced and in the background:
#   nice -n 19 tests/fuzz/long_run.sh 600 > /tmp/fuzzlong.txt 2>&1 &
#
# For each target the checked-in seeds (tests/fuzz/corpus/TARGET, plus data/models for
# fuzz_models) are copied to OUT_DIR/TARGET/corpus (default OUT_DIR: $TMPDIR/fuzzlong), so the
# tree is never written. libFuzzer runs in fork mode with one worker: a crash, leak, timeout or
# OOM is saved as OUT_DIR/TARGET/{crash,leak,timeout,oom}-SHA1 and fuzzing goes on. Each saved
# input is then replayed once (output in ARTIFACT.txt) and classified: property (a violated
# parse(print(x)) == x or invariant, see fuzz_check.h), asan, ubsan, leak, timeout, oom, other.
# The libFuzzer log is OUT_DIR/TARGET/fuzz.log. At the end one table row per target:
#   target seconds execs exec/s cov ft corpus(files) findings [kinds]
# Exit status: 0 when no target had a finding, 1 otherwise, 2 on usage errors.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="$here/build-fuzz"
out_root="${TMPDIR:-/tmp}/fuzzlong"
seconds=600
usage() { echo "usage: $0 [-b BUILD_DIR] [-o OUT_DIR] [TARGET...] [SECONDS]" >&2; exit 2; }
while getopts "b:o:h" o; do
  case "$o" in b) build="$OPTARG" ;; o) out_root="$OPTARG" ;; *) usage ;; esac
done
shift $((OPTIND - 1))
targets=()
for a in "$@"; do
  if [[ "$a" =~ ^[0-9]+$ ]]; then seconds="$a"; else targets+=("$a"); fi
done
if [ ${#targets[@]} -eq 0 ]; then
  for d in "$here"/tests/fuzz/corpus/*/; do targets+=("$(basename "$d")"); done
fi
for t in "${targets[@]}"; do
  [ -x "$build/tests/fuzz/$t" ] || { echo "long_run: $build/tests/fuzz/$t not built (ninja -C $build fuzz)" >&2; exit 2; }
  [ -d "$here/tests/fuzz/corpus/$t" ] || { echo "long_run: no seeds in tests/fuzz/corpus/$t" >&2; exit 2; }
done

# Replays one saved input and prints its kind.
classify() {
  local bin="$1" input="$2" log="$2.txt"
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 timeout 60 "$bin" -timeout=10 -rss_limit_mb=2048 \
    "$input" >"$log" 2>&1
  if grep -aq "fuzz property violated" "$log"; then echo property
  elif grep -aq "LeakSanitizer" "$log"; then echo leak
  elif grep -aq "runtime error:" "$log"; then echo ubsan
  elif grep -aq "ERROR: AddressSanitizer" "$log"; then echo asan
  elif grep -aq "ERROR: libFuzzer: timeout" "$log" || [[ "$(basename "$input")" == timeout-* ]]; then echo timeout
  elif grep -aq "out-of-memory" "$log" || [[ "$(basename "$input")" == oom-* ]]; then echo oom
  else echo other
  fi
}

rows=()
total_findings=0
for t in "${targets[@]}"; do
  bin="$build/tests/fuzz/$t"
  out="$out_root/$t"
  rm -rf "$out"
  mkdir -p "$out/corpus"
  cp -r "$here/tests/fuzz/corpus/$t/." "$out/corpus/"
  [ "$t" = fuzz_models ] && cp "$here"/data/models/*.yaml "$out/corpus/"
  rm -f "$out/corpus/README.md"
  seeds=$(find "$out/corpus" -type f | wc -l)
  echo "long_run: $t for ${seconds}s from $seeds seeds in $out ($(date +%T))" >&2
  start=$(date +%s)
  (cd "$out" && UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
    "$bin" -fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/" "$out/corpus" >"$out/fuzz.log" 2>&1)
  elapsed=$(( $(date +%s) - start ))
  last=$(grep -a -E "^#[0-9]+: cov:" "$out/fuzz.log" | tail -1)
  execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
  cov=$(sed -E 's/.* cov: ([0-9]+).*/\1/' <<<"$last")
  ft=$(sed -E 's/.* ft: ([0-9]+).*/\1/' <<<"$last")
  execs=${execs:-0}
  rate=$(( elapsed > 0 ? execs / elapsed : 0 ))
  corpus=$(find "$out/corpus" -type f | wc -l)
  kinds=()
  n=0
  while IFS= read -r f; do
    kinds+=("$(classify "$bin" "$f")")
    n=$((n + 1))
  done < <(find "$out" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' -o -name 'timeout-*' \
             -o -name 'oom-*' -o -name 'slow-unit-*' \) ! -name '*.txt' | sort)
  summary=""
  [ $n -gt 0 ] && summary=" [$(printf '%s\n' "${kinds[@]}" | sort | uniq -c | awk '{printf "%s%s x%s", (NR > 1 ? ", " : ""), $2, $1}')]"
  total_findings=$((total_findings + n))
  rows+=("$(printf '%-26s %7s %12s %9s %6s %7s %7s  %s' "$t" "$elapsed" "$execs" "$rate" "${cov:--}" \
            "${ft:--}" "$corpus" "$n$summary")")
  echo "long_run: $t done: ${rows[-1]}" >&2
done
printf '%-26s %7s %12s %9s %6s %7s %7s  %s\n' target seconds execs exec/s cov ft corpus findings
printf '%s\n' "${rows[@]}"
[ $total_findings -eq 0 ]
