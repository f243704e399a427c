#!/usr/bin/env bash
# Builds the nested-SVM rig's initramfs: busybox (static) as /bin/busybox and /init, the kvm-amd
# modules of the host's kernel (irqbypass, kvm, ccp, kvm-amd, loaded in that order), our cpumodel
# binary with its shared libraries (ldd) and the model catalog, and the commands to run.
#
# usage: build_initramfs.sh OUT.cpio.gz CPUMODEL_BINARY DATA_DIR COMMANDS_FILE [KERNEL_VERSION]
#   COMMANDS_FILE: one cpumodel argument list per line (e.g. "verify --cpu Haswell --smp 4").
# Environment: RIG_BUSYBOX (default /bin/busybox), RIG_MODULES_DIR (default /lib/modules/VERSION).
set -euo pipefail
out="$1" binary="$2" data="$3" commands="$4"
kver="${5:-$(ls /lib/modules | sort -V | tail -1)}"
busybox="${RIG_BUSYBOX:-/bin/busybox}"
moddir="${RIG_MODULES_DIR:-/lib/modules/$kver}/kernel"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

die() { echo "build_initramfs: $*" >&2; exit 3; }
[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
case "$(ldd "$busybox" 2>&1 || true)" in
  *"not a dynamic"*) ;;
  *) die "$busybox is not statically linked (apt-get install busybox-static)" ;;
esac
[ -x "$binary" ] || die "$binary: no cpumodel binary"
[ -d "$data/models" ] || die "$data/models: no model catalog"

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,lib/modules,opt/cpumodel/bin,opt/cpumodel/share}

cp "$busybox" "$root/bin/busybox"
for tool in sh mount insmod poweroff cat echo mkdir sleep; do ln -s busybox "$root/bin/$tool"; done

# Modules: .ko, or .ko.xz/.ko.zst decompressed (busybox insmod takes plain ELF objects).
n=0
for m in virt/lib/irqbypass arch/x86/kvm/kvm drivers/crypto/ccp/ccp arch/x86/kvm/kvm-amd; do
  n=$((n + 1))
  dst="$root/lib/modules/$n-$(basename "$m").ko"
  if [ -f "$moddir/$m.ko" ]; then cp "$moddir/$m.ko" "$dst"
  elif [ -f "$moddir/$m.ko.xz" ]; then xz -dc "$moddir/$m.ko.xz" > "$dst"
  elif [ -f "$moddir/$m.ko.zst" ]; then zstd -qdc "$moddir/$m.ko.zst" > "$dst"
  else die "$moddir/$m.ko: missing (apt-get install linux-image-amd64)"; fi
done

# cpumodel and every shared library it needs, at the same paths (so the loader finds them).
strip --strip-debug -o "$root/opt/cpumodel/bin/cpumodel" "$binary" 2>/dev/null || cp "$binary" "$root/opt/cpumodel/bin/cpumodel"
for lib in $(ldd "$binary" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp -r "$data/models" "$root/opt/cpumodel/share/models"
cp "$commands" "$root/commands"
cp "$here/init" "$root/init"
chmod +x "$root/init"

(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out"
