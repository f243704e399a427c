#!/usr/bin/env bash
# The main job on the bundled sample cluster (data/hosts): the whole story a person runs first.
#   1. this host: CPU, KVM backend, topology
#   2. the sample hosts, decoded
#   3. the cluster baseline of the Intel hosts, with its explanation
#   4. migrate there and back: a guest with the baseline model between the oldest and newest
#      hosts, and the classic trap (a guest started as the newer host's model cannot come back)
#   5. verify the baseline with +aes,-avx on this host's KVM (what the backend really enforced)
#   6. boot Linux with that model where the backend can (kvm_pvm cannot: it says so, exit 3)
set -uo pipefail
cpumodel="$1"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
intel=("$here"/data/hosts/intel/*.yaml)
step() { printf '\n=== %s\n$ %s\n' "$1" "${*:2}"; "${@:2}"; local rc=$?; [ $rc -eq 0 ] || echo "(exit $rc)"; }

step "1. This host: CPU, KVM backend, topology" "$cpumodel" host
for h in "$here"/data/hosts/*/*.yaml; do
  step "2. Decode sample host $(basename "$h" .yaml)" "$cpumodel" decode "$h"
done
step "3. Cluster baseline of the Intel sample hosts, explained" "$cpumodel" baseline "${intel[@]}" --explain
base="$("$cpumodel" baseline "${intel[@]}" --format qemu 2>/dev/null)"
old="$here/data/hosts/intel/Xeon-E5-2650.yaml" new="$here/data/hosts/intel/Ice-Lake-Server.yaml"
step "4a. Baseline guest: old -> new -> old" "$cpumodel" migrate-check --cpu "${base:-qemu64}" --path "$old,$new,$old"
step "4b. The trap: a guest started as the newer host's model, new -> old" \
  "$cpumodel" migrate-check --cpu Icelake-Server --path "$new,$old"
step "5. Verify the baseline with +aes,-avx on this host's KVM" \
  "$cpumodel" verify --cpu "${base:-qemu64},+aes,-avx" --smp 4,sockets=2,cores=2
kernel="$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)"
if [ -n "$kernel" ]; then
  step "6. Boot Linux with that model (where this host's KVM backend can)" \
    "$cpumodel" boot --cpu "${base:-qemu64},+aes,-avx" --smp 2 -m 256M --kernel "$kernel" \
    --append "console=ttyS0 quiet panic=-1" --timeout 60 --serial none
else
  printf '\n=== 6. Boot Linux: skipped, no /boot/vmlinuz-* on this machine (apt-get install linux-image-amd64)\n'
fi
exit 0
