#!/usr/bin/env bash
# Boots the nested-SVM rig: QEMU's TCG emulates an AMD CPU with SVM, Linux loads kvm-amd inside,
# and cpumodel runs there on a real (nested) KVM that enforces CPUID masking. Prints the serial
# console; each command's output is between "@@BEGIN N ARGS" and "@@END N EXITCODE".
#
# usage: run_rig.sh CPUMODEL_BINARY DATA_DIR COMMANDS_FILE [TIMEOUT_SECONDS]
# Environment: RIG_KERNEL (default the newest /boot/vmlinuz-*), RIG_QEMU (qemu-system-x86_64).
set -euo pipefail
binary="$1" data="$2" commands="$3" timeout_s="${4:-600}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
qemu="${RIG_QEMU:-qemu-system-x86_64}"
kernel="${RIG_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}"
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "run_rig: no readable /boot/vmlinuz-* (apt-get install linux-image-amd64)" >&2; exit 3; }
command -v "$qemu" >/dev/null || { echo "run_rig: $qemu missing (apt-get install qemu-system-x86)" >&2; exit 3; }
kver="${kernel##*/vmlinuz-}"

initrd="$(mktemp --suffix=.cpio.gz)"
trap 'rm -f "$initrd"' EXIT
"$here/build_initramfs.sh" "$initrd" "$binary" "$data" "$commands" "$kver"

exec timeout --kill-after=10 "$timeout_s" "$qemu" -accel tcg -M microvm -cpu max -smp 1 -m 1024 \
  -nographic -no-reboot \
  -kernel "$kernel" -initrd "$initrd" -append "console=ttyS0 quiet panic=-1 tsc_early_khz=2000000"
