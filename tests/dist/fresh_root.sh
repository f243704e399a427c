#!/usr/bin/env bash
# Prove the README's set-up on a fresh Debian 12: debootstrap a bookworm root, enter it with chroot,
# install the .deb there, then clone the repository and time `./tools/setup.sh demo` (and, with
# --test, `./tools/setup.sh test`) from start to finish.
#
# usage (as root): tests/dist/fresh_root.sh [--test] REPO OUTDIR
#   REPO    a git repository of cpumodel (its committed HEAD is cloned, as a new user would)
#   OUTDIR  logs: debootstrap.log deb_install.log demo.log test.log, installed-*.txt, timings.txt
# environment:
#   ROOT=/work/chroot-fresh   where the new root goes (must not exist; REUSE_ROOT=1 to reuse one)
#   MIRROR=...                Debian mirror (default: the first one in this machine's apt sources)
#   DEB=FILE.deb              the package to check (default: newest REPO/build*/cpumodel_*.deb;
#                             none: the package step is skipped)
#   SHARED=/work/shared       bind-mounted read-only next to the clone, as ../shared
#   OVERLAY="tools/setup.sh"  files copied from REPO's working tree over the clone (uncommitted fixes)
#
# Needs root, network to the mirror and ~3 GB; takes minutes (demo) to tens of minutes (test).
# Not part of ctest. Mounts are undone on exit; the root is left for inspection (rm -rf it).
set -euo pipefail
run_test=0
[ "${1:-}" = --test ] && { run_test=1; shift; }
repo="$(cd "${1:?usage: fresh_root.sh [--test] REPO OUTDIR}" && pwd)"
mkdir -p "${2:?usage: fresh_root.sh [--test] REPO OUTDIR}"
out="$(cd "$2" && pwd)"
root="${ROOT:-/work/chroot-fresh}"
shared="${SHARED:-/work/shared}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "fresh_root: run as root" >&2; exit 2; }

if [ -z "${MIRROR:-}" ]; then  # the first Debian archive this machine's apt uses
  MIRROR="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources \
    2>/dev/null | grep -Eo 'https?://[^ ]*/debian/?( |$)' | grep -v security | head -n 1 | tr -d ' ' || true)"
fi
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
security="${MIRROR%/debian*}/debian-security"
if [ -z "${DEB:-}" ]; then DEB="$(ls -t "$repo"/build*/cpumodel_*.deb 2>/dev/null | head -n 1 || true)"; fi

timings="$out/timings.txt"
: >"$timings"
note() { echo "$*" | tee -a "$timings"; }
timed() {  # timed NAME LOG COMMAND...: run, log, record the wall time and the exit code
  local name="$1" log="$2"; shift 2
  local t0 rc=0
  t0=$(date +%s.%N)
  "$@" >"$log" 2>&1 || rc=$?
  note "$(printf '%-34s %8.1f s  exit %d  (log %s)' "$name" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{print b-a}')" "$rc" \
    "$(basename "$log")")"
  return $rc
}
# A clean environment inside the root, as after `su -` on a new machine.
in_root() { chroot "$root" /usr/bin/env -i HOME=/root TERM="${TERM:-dumb}" LANG=C.UTF-8 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
packages() { in_root dpkg-query -W -f='${Package}\n' | sort; }

mounted=()
cleanup() {
  local i
  for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R "${mounted[$i]}" 2>/dev/null || umount -lR "${mounted[$i]}" || true; done
}
trap cleanup EXIT
bind() {  # bind SRC DST [ro]
  mkdir -p "$2"
  mount --rbind "$1" "$2"; mount --make-rslave "$2"; mounted+=("$2")
  [ "${3:-}" = ro ] && mount -o remount,bind,ro "$2"
  return 0
}

# 1. A fresh Debian 12 root (required + important packages, like a minimal installed system).
if [ -e "$root" ] && [ "${REUSE_ROOT:-0}" != 1 ]; then
  echo "fresh_root: $root exists; remove it (or REUSE_ROOT=1)" >&2; exit 2
fi
note "mirror $MIRROR; root $root; repo $repo"
if [ ! -e "$root/etc/debian_version" ]; then
  command -v debootstrap >/dev/null || apt-get install -y -q debootstrap >/dev/null
  timed "debootstrap bookworm" "$out/debootstrap.log" debootstrap bookworm "$root" "$MIRROR"
fi
cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $security bookworm-security main
EOF
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"  # no daemons start inside the chroot
chmod 755 "$root/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mkdir -p "$root/proc" "$root/sys"
mount -t proc proc "$root/proc"; mounted+=("$root/proc")
mount -t sysfs sys "$root/sys"; mounted+=("$root/sys")
bind /dev "$root/dev"  # includes /dev/kvm, /dev/pts, /dev/shm
packages >"$out/installed-0-debootstrap.txt"
note "fresh root: $(wc -l <"$out/installed-0-debootstrap.txt") packages; /dev/kvm $( [ -c "$root/dev/kvm" ] && echo present || echo absent)"

# 2. The .deb on the clean root: install, check, purge (so the source build below starts clean).
if [ -n "$DEB" ]; then
  mkdir -p "$root/tmp/dist"
  cp "$DEB" "$here/deb_install.sh" "$root/tmp/dist/"
  timed "deb_install.sh $(basename "$DEB")" "$out/deb_install.log" \
    in_root bash /tmp/dist/deb_install.sh "/tmp/dist/$(basename "$DEB")" || true
  grep -E '^(PASS|FAIL)|\( *apt|s\)$' "$out/deb_install.log" | sed 's/^/  /' | tee -a "$timings"
  packages >"$out/installed-1-deb.txt"
  timed "apt-get purge cpumodel + autoremove" "$out/deb_purge.log" \
    in_root bash -c 'apt-get purge -y -q cpumodel && apt-get autoremove --purge -y -q' || true
fi

# 3. A fresh clone (git is not in a minimal system: installing it is the one step by hand).
timed "apt-get install git" "$out/git.log" in_root bash -c 'apt-get update -q && apt-get install -y -q git'
bind "$repo" "$root/mnt/repo" ro
bind "$shared" "$root/work/shared" ro
rm -rf "$root/work/cpumodel"
timed "git clone" "$out/clone.log" in_root git clone /mnt/repo /work/cpumodel
note "cloned commit $(in_root git -C /work/cpumodel rev-parse HEAD)"
for f in ${OVERLAY:-}; do cp "$repo/$f" "$root/work/cpumodel/$f"; note "overlay from working tree: $f"; done
packages >"$out/installed-2-before-demo.txt"

# 4. The README's first command, timed from start to finish.
demo_rc=0
timed "./tools/setup.sh demo" "$out/demo.log" in_root bash -c 'cd /work/cpumodel && ./tools/setup.sh demo' || demo_rc=$?
packages >"$out/installed-3-after-demo.txt"
note "setup.sh demo installed $(comm -13 "$out/installed-2-before-demo.txt" "$out/installed-3-after-demo.txt" | wc -l) packages: $(comm -13 "$out/installed-2-before-demo.txt" "$out/installed-3-after-demo.txt" | tr '\n' ' ')"

# 5. The package's headers, libraries and CMake config from another project (needs the -dev
#    packages the demo just installed), then purge it again.
if [ -n "$DEB" ] && [ $demo_rc -eq 0 ]; then
  timed "deb_install.sh + consumer" "$out/deb_consumer.log" in_root bash /tmp/dist/deb_install.sh \
    "/tmp/dist/$(basename "$DEB")" /work/cpumodel/tests/consumer || true
  grep -E '^FAIL|consumer' "$out/deb_consumer.log" | sed 's/^/  /' | tee -a "$timings"
  in_root apt-get purge -y -q cpumodel >/dev/null 2>&1 || true
fi

# 6. The README's second command (CI), at low priority: tens of minutes on 2 shared cores.
if [ $run_test -eq 1 ]; then
  timed "./tools/setup.sh test" "$out/test.log" \
    in_root nice -n 10 bash -c 'cd /work/cpumodel && ./tools/setup.sh test' || true
  packages >"$out/installed-4-after-test.txt"
  note "setup.sh test installed $(comm -13 "$out/installed-3-after-demo.txt" "$out/installed-4-after-test.txt" | wc -l) more packages"
  grep -E 'tests passed|tests failed|No tests were found|\(Failed\)|\(Timeout\)|\*\*\*' "$out/test.log" | sed 's/^/  /' | tee -a "$timings" || true
fi
note "done; demo exit $demo_rc"
exit $demo_rc
