#!/usr/bin/env bash
# Builds the level-2 guest's initramfs: static busybox and tests/e2e/boot/l2_init as /init.
# usage: build_l2_initramfs.sh OUT.cpio.gz     Environment: RIG_BUSYBOX (default /bin/busybox).
set -euo pipefail
out="$1"
busybox="${RIG_BUSYBOX:-/bin/busybox}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ -x "$busybox" ] || { echo "build_l2_initramfs: $busybox missing (apt-get install busybox-static)" >&2; exit 3; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$busybox" "$root/bin/busybox"
for tool in sh mount awk grep sed cat echo nproc poweroff reboot sleep; do ln -s busybox "$root/bin/$tool"; done
cp "$here/l2_init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
