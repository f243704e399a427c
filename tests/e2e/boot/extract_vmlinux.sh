#!/bin/sh
# extract_vmlinux.sh BZIMAGE OUT: the uncompressed ELF vmlinux inside a bzImage, as the kernel's
# own scripts/extract-vmlinux finds it: the first xz, zstd or gzip stream in the file that
# decompresses to an ELF, trying each place its magic occurs (a short magic may also occur by
# chance before the payload). Debian's kernel is xz (CONFIG_KERNEL_XZ). The payload is followed by
# more of the bzImage, which the decompressor complains about after writing it all. Needs
# xz-utils (zstd, gzip for other kernels). Exit 1 when no stream gives an ELF.
set -u
in="$1" out="$2"
for codec in "$(printf '\3757zXZ') xz" "$(printf '\50\265\57\375') zstd" "$(printf '\37\213\10') gzip"; do
  magic="${codec% *}" tool="${codec##* }"
  command -v "$tool" >/dev/null 2>&1 || continue
  for off in $(LC_ALL=C grep -obUa "$magic" "$in" 2>/dev/null | head -32 | cut -d: -f1); do
    tail -c +$((off + 1)) "$in" | "$tool" -dcq > "$out" 2>/dev/null
    [ "$(head -c 4 "$out" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] && exit 0
  done
done
rm -f "$out"
echo "extract_vmlinux: found no compressed ELF vmlinux in $in" >&2
exit 1
