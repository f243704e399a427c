#!/usr/bin/env bash
# Builds the level-2 guest's initramfs: the static l2_init program as /init, and static busybox
# as /bin/sh (l2test=serial runs the typed line with it).
# usage: build_l2_initramfs.sh OUT.cpio.gz L2_INIT_BINARY     Environment: RIG_BUSYBOX (/bin/busybox).
set -euo pipefail
out="$1" init="$2"
busybox="${RIG_BUSYBOX:-/bin/busybox}"
[ -x "$busybox" ] || { echo "build_l2_initramfs: $busybox missing (apt-get install busybox-static)" >&2; exit 3; }
[ -x "$init" ] || { echo "build_l2_initramfs: $init: no l2_init binary" >&2; exit 3; }
root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp}
cp "$busybox" "$root/bin/busybox"
for tool in sh echo cat; do ln -s busybox "$root/bin/$tool"; done
cp "$init" "$root/init"
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
