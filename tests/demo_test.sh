#!/usr/bin/env bash
# The README's main job (tools/demo.sh) on the bundled sample cluster: it runs every step and
# tells the story: the baseline, a guest that goes there and back, the newer->older trap caught,
# a verify on this host's KVM, and a boot (or the backend's reason it cannot).
# usage: demo_test.sh CPUMODEL_BINARY
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="$("$here/tools/demo.sh" "$1" 2>&1)" || { echo "demo.sh failed"; echo "$out"; exit 1; }
fail=0
for want in "=== 1. This host" "baseline of 5 hosts (GenuineIntel)" "result: the guest can go along the path and back" \
            "cannot migrate" "=== 5. Verify" "=== 6. Boot Linux"; do
  grep -qF -- "$want" <<<"$out" || { echo "demo output lacks: $want"; fail=1; }
done
[ $fail -eq 0 ] || echo "$out" | tail -40
exit $fail
