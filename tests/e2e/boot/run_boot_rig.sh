#!/usr/bin/env bash
# Boots the nested-SVM rig (../rig: QEMU TCG emulating an AMD CPU with SVM, kvm-amd inside) with
# what `cpumodel boot` needs in there: the host's kernel as /l2/vmlinuz and a busybox initramfs
# for the level-2 guest as /l2/initramfs.cpio.gz (l2_init), appended to the rig's initramfs as a
# second cpio archive. Each line of COMMANDS_FILE runs as `cpumodel LINE` (see ../rig/init);
# its output is between "@@BEGIN N" and "@@END N EXITCODE" on stdout.
#
# usage: run_boot_rig.sh CPUMODEL_BINARY DATA_DIR COMMANDS_FILE L2_INIT [TIMEOUT_SECONDS]
#   L2_INIT: the static l2_init program (l2_init.c). /l2 also gets serial-input (a shell line for
#   l2test=serial), hold_test.sh (the QMP and pinning check) and snapshot_cycles.sh (snapshots).
# Environment: RIG_KERNEL (default the newest /boot/vmlinuz-*), RIG_QEMU, RIG_SMP (default 2),
#   RIG_EXTRA_DIR (a directory whose files are added under /l2 too), RIG_ACCEL (default tcg:
#   QEMU 7.2's multi-threaded TCG for x86; tcg,thread=single was tried and is far too slow: one
#   8-vCPU level-2 boot made no progress in 20 minutes).
# reboot=t: a level-1 panic (seen: "stack guard page was hit" in a vCPU thread under kvm-amd)
# triple-faults at once, so -no-reboot ends QEMU instead of a hang until the timeout.
# softlockup_panic=1: so does a level-1 soft lockup. TCG's livelock shows as one ("soft lockup -
# CPU#0 stuck for 23s! [vcpu 3]"), and in every rig log that had one (3 of 3) the rig never
# recovered; it sat until the timeout (900 s in boot_rig), where the panic ends it in ~25 s.
set -euo pipefail
binary="$1" data="$2" commands="$3" l2_init="$4" timeout_s="${5:-600}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
qemu="${RIG_QEMU:-qemu-system-x86_64}"
kernel="${RIG_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)}"
[ -n "$kernel" ] && [ -r "$kernel" ] || { echo "run_boot_rig: no readable /boot/vmlinuz-* (apt-get install linux-image-amd64)" >&2; exit 3; }
command -v "$qemu" >/dev/null || { echo "run_boot_rig: $qemu missing (apt-get install qemu-system-x86)" >&2; exit 3; }
kver="${kernel##*/vmlinuz-}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$here/../rig/build_initramfs.sh" "$work/rig.cpio.gz" "$binary" "$data" "$commands" "$kver"
mkdir -p "$work/extra/l2"
cp "$kernel" "$work/extra/l2/vmlinuz"
# The same kernel uncompressed, as an ELF vmlinux (boot_rig's ELF boot, bench_boot's vmlinux rounds).
"$here/extract_vmlinux.sh" "$kernel" "$work/extra/l2/vmlinux" || echo "run_boot_rig: no /l2/vmlinux in this rig" >&2
"$here/build_l2_initramfs.sh" "$work/extra/l2/initramfs.cpio.gz" "$l2_init"
printf 'echo SERIAL-$((6*7))\n' > "$work/extra/l2/serial-input"
cp "$here/hold_test.sh" "$here/timeboot.sh" "$here/snapshot_cycles.sh" "$work/extra/l2/"
if [ -n "${RIG_EXTRA_DIR:-}" ]; then cp -a "$RIG_EXTRA_DIR"/. "$work/extra/l2/"; fi
(cd "$work/extra" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/extra.cpio.gz"
cat "$work/rig.cpio.gz" "$work/extra.cpio.gz" > "$work/initrd.cpio.gz"

timeout --kill-after=10 "$timeout_s" "$qemu" -accel "${RIG_ACCEL:-tcg}" -M microvm -cpu max -smp "${RIG_SMP:-2}" -m "${RIG_MEM:-2048}" \
  -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.cpio.gz" -append "console=ttyS0 quiet panic=-1 reboot=t softlockup_panic=1 tsc_early_khz=2000000"
