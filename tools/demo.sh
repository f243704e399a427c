#!/usr/bin/env bash
# The main job on the bundled sample cluster (data/hosts): what a person would run first.
set -uo pipefail
cpumodel="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
hosts=("$here"/data/hosts/*/*.xml "$here"/data/hosts/*/*.yaml)
step() { printf '\n=== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; local rc=$?; [ $rc -eq 0 ] || echo "(exit $rc)"; }

step "This host: CPU, KVM backend, topology" "$cpumodel" host
for h in "${hosts[@]}"; do
  [ -e "$h" ] || continue
  step "Decode sample host $(basename "$h")" "$cpumodel" decode "$h"
done
exit 0
