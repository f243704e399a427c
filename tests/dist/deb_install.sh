#!/usr/bin/env bash
# Install the cpumodel .deb on a clean Debian 12 machine (or chroot) and check what a user gets.
#
# usage (as root): tests/dist/deb_install.sh path/to/cpumodel_VERSION_amd64.deb [CONSUMER_DIR]
#
#   Build the package first:  cmake -S . -B build-dist -G Ninja -DCMAKE_BUILD_TYPE=Release \
#                               -DBUILD_TESTING=OFF -DCMAKE_INSTALL_PREFIX=/usr
#                             ninja -C build-dist && (cd build-dist && cpack -G DEB)
#   CONSUMER_DIR (optional, e.g. tests/consumer): also build that find_package(cpumodel) project
#   against the installed package; needs cmake, g++ and the -dev packages the .deb suggests.
#
# Installs with `apt install ./FILE.deb` (dependencies from the archive), then checks: the binary
# runs (--version, list, host), the catalog, the man page, bash completion, headers, libraries and
# the CMake package config are where a Debian tool keeps them. Prints one PASS/FAIL line per check
# and exits 1 if any check failed. Not part of ctest: it needs root and changes the system.
set -uo pipefail
deb="${1:?usage: deb_install.sh FILE.deb [CONSUMER_DIR]}"
consumer="${2:-}"
case "$deb" in /*) ;; *) deb="$PWD/$deb" ;; esac
failed=0
check() {  # check NAME COMMAND...: run it, show its output indented, PASS/FAIL
  local name="$1"; shift
  local out rc
  out="$("$@" 2>&1)"; rc=$?
  [ -n "$out" ] && printf '%s\n' "$out" | head -n 15 | sed 's/^/    /'
  if [ $rc -eq 0 ]; then echo "PASS $name"; else echo "FAIL $name (exit $rc)"; failed=1; fi
}
timed() {  # timed NAME COMMAND...: like check, with the wall time
  local t0=$SECONDS; check "$@"; echo "     ($1: $((SECONDS - t0)) s)"
}

export DEBIAN_FRONTEND=noninteractive
timed "apt-get update" apt-get update -qq
timed "apt install $(basename "$deb")" apt install -y -q "$deb"
check "package metadata" dpkg-query -W -f='${Package} ${Version}\nDepends: ${Depends}\n' cpumodel
check "file list" bash -c "dpkg -L cpumodel | while read -r f; do [ -d \"\$f\" ] || echo \"\$f\"; done | wc -l"
check "cpumodel on PATH" bash -c 'command -v cpumodel'
check "cpumodel --version" cpumodel --version
check "cpumodel list" bash -o pipefail -c 'cpumodel list | grep -E "Haswell-noTSX|EPYC-Rome" | head -n 4'
check "catalog in /usr/share/cpumodel/models" bash -o pipefail -c 'ls /usr/share/cpumodel/models/*.yaml | wc -l'
check "cpumodel show Haswell-noTSX" bash -o pipefail -c 'cpumodel show Haswell-noTSX | head -n 5'
check "man page" bash -c 'if command -v man >/dev/null; then man -w cpumodel; else ls /usr/share/man/man1/cpumodel.1*; fi'
check "bash completion" bash -c '. /usr/share/bash-completion/completions/cpumodel && complete -p cpumodel \
  && [ "$(cpumodel complete commands | wc -l)" -gt 10 ]'
check "headers" ls /usr/include/cpumodel/cpuid/result.h /usr/include/cpumodel/models/catalog.h
check "libraries" bash -c 'ls /usr/lib/*/libcpumodel_*.a'
check "cmake package config" bash -c 'ls /usr/lib/*/cmake/cpumodel/cpumodelConfig.cmake'
# `host` exits 3 when this machine has no usable KVM; that is an honest answer, not a failure.
check "cpumodel host" bash -c 'cpumodel host; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 3 ]'

if [ -n "$consumer" ]; then
  work="$(mktemp -d)"
  timed "consumer project (find_package)" bash -c "cmake -S '$consumer' -B '$work' >/dev/null \
    && cmake --build '$work' >/dev/null && '$work/consumer'"
  rm -rf "$work"
fi
[ $failed -eq 0 ] && echo "deb_install: all checks passed" || echo "deb_install: some checks FAILED"
exit $failed
