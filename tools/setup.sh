#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine (as root): installs what is missing, configures,
# builds, then runs the main job on the bundled sample data (`demo`) or the whole test suite (`test`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mode="${1:-}"
case "$mode" in demo|test|build) ;; *) echo "usage: tools/setup.sh demo|test|build" >&2; exit 2 ;; esac

# Build and run dependencies (Debian 12 package names). Test-only tools are installed for `test`.
pkgs=(build-essential cmake ninja-build pkg-config libboost-program-options-dev libyaml-cpp-dev
      libcpu-features-dev libgtest-dev libgmock-dev libprotobuf-dev protobuf-compiler cpuid)
if [ "$mode" = test ]; then
  pkgs+=(qemu-system-x86 libvirt-clients linux-image-amd64 busybox-static clang-14 libclang-rt-14-dev
         cpio valgrind)
  pkgs+=(python3)  # tools/qemu_expand.py: the catalog fidelity test re-checks its QEMU 7.2 golden
  pkgs+=(xz-utils)  # tests/e2e/qemu_cpuid_test: unpacks the kernel's vmlinux for a fast PVH boot
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

jobs=$(nproc)
build() {  # build DIR [cmake args...]
  local dir="$1"; shift
  cmake -S "$here" -B "$here/$dir" -G Ninja -DCPUMODEL_WERROR=ON "$@" >/dev/null
  cmake --build "$here/$dir" -j "$jobs"
}

case "$mode" in
  build)
    build build -DBUILD_TESTING=ON  # explicit: `demo` caches BUILD_TESTING=OFF in the same build/
    ;;
  demo)
    build build -DBUILD_TESTING=OFF
    exec "$here/tools/demo.sh" "$here/build/tools/cpumodel"
    ;;
  test)
    build build -DBUILD_TESTING=ON  # explicit: `demo` caches BUILD_TESTING=OFF in the same build/
    (cd "$here/build" && ctest --output-on-failure --no-tests=error -j "$jobs")
    # The whole unit-test suite again under AddressSanitizer + UndefinedBehaviorSanitizer.
    build build-asan -DCMAKE_BUILD_TYPE=Debug -DCPUMODEL_SANITIZE=ON
    (cd "$here/build-asan" && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure --no-tests=error -j "$jobs" -LE slow)
    # libFuzzer targets (tests/fuzz; clang-14, ASan+UBSan; libraries + targets only): each runs a
    # short fixed budget from its checked-in seeds. No -Werror here: GCC's warnings gate the code.
    cmake -S "$here" -B "$here/build-fuzz" -G Ninja -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
      -DCPUMODEL_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
    cmake --build "$here/build-fuzz" -j "$jobs" --target fuzz
    (cd "$here/build-fuzz" && ctest --output-on-failure --no-tests=error -j "$jobs" -L fuzz)
    ;;
esac
