// bench_boot: boot-to-init time and VMM memory, `cpumodel boot` vs QEMU 7.2 microvm, side by side
// in one run of the nested-SVM rig (tests/e2e/boot/run_boot_rig.sh): the same Debian kernel, the
// same level-2 initramfs (l2_init), the same -cpu/-smp/-m, both on the rig's kvm-amd. Boot-to-init
// is from starting the VMM until the guest's /init writes "@@L2 init" to the serial port
// (tests/e2e/boot/timeboot.sh). Prints figures; asserts nothing.
//
// usage: bench_boot [CPU [SMP [ROUNDS]]]     (default Haswell-noTSX 1 1)
// What the rig can and cannot show: every level-2 instruction runs under TCG (QEMU's emulator
// emulating SVM), so absolute times are ~100x a real host's and are dominated by the guest kernel
// itself (decompression, initcalls), which both VMMs run alike; VM exits cost ~0.3 ms each. The
// ratio measures what the VMMs do differently (firmware, device setup, exits); Firecracker's 125 ms
// to init needs real hardware.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "run_capture.h"

namespace {

using cpumodel::testing::run_capture;

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// QEMU with its shared libraries, their loader and the microvm firmware, for the rig's /l2/qemu.
// The rig has no /lib64/ld-linux-x86-64.so.2 of its own (cpumodel is static), so QEMU is started
// through the staged loader.
bool stage_qemu(const std::string& dir) {
  std::string qemu = trim(run_capture("command -v qemu-system-x86_64"));
  if (qemu.empty()) return false;
  std::string script = "set -e; d=" + dir + "/qemu; mkdir -p $d/lib $d/share; cp " + qemu +
                       " $d/; for l in $(ldd " + qemu +
                       " | awk '/=> \\//{print $3} /^\\t\\/.*ld-linux/{print $1}'); do cp -L $l $d/lib/; done; "
                       "for f in bios-microvm.bin qboot.rom linuxboot_dma.bin pvh.bin kvmvapic.bin; do "
                       "[ -e /usr/share/qemu/$f ] && cp -L /usr/share/qemu/$f $d/share/; done; true";
  return std::system(script.c_str()) == 0;
}

struct Figures {
  std::vector<double> init_ms;
  std::vector<double> peak_kib;
  std::vector<double> overhead_kib, private_kib;  // ours only (--stats)
  int failures = 0;
};

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? -1 : s / static_cast<double>(v.size());
}

}  // namespace

int main(int argc, char** argv) {
  std::string cpu = argc > 1 ? argv[1] : "Haswell-noTSX";
  std::string smp = argc > 2 ? argv[2] : "1";
  int rounds = argc > 3 ? std::atoi(argv[3]) : 1;
  // vmlinuz: Debian's bzImage, which decompresses itself in the guest; vmlinux: the same kernel
  // uncompressed (ELF; QEMU boots it by its PVH note, we by its 64-bit entry).
  std::string image = argc > 4 ? argv[4] : "vmlinuz";
  if (image != "vmlinuz" && image != "vmlinux") {
    std::printf("bench_boot: the kernel is vmlinuz or vmlinux, not %s\n", image.c_str());
    return 2;
  }
  char dir[] = "/tmp/cpumodel-benchboot-XXXXXX";
  if (!::mkdtemp(dir) || !stage_qemu(dir)) {
    std::printf("bench_boot: needs qemu-system-x86 and a writable /tmp\n");
    return 0;
  }
  const std::string append = "console=ttyS0 quiet panic=-1 mitigations=off";
  const std::string common = "-m 256M -kernel /l2/" + image + " -initrd /l2/initramfs.cpio.gz -append \"" + append + "\"";
  std::string ours = "--version; sh /l2/timeboot.sh ours cpumodel boot --cpu " + cpu + " --smp " + smp + " " + common +
                     " --stats";
  std::string qemu = "--version; sh /l2/timeboot.sh qemu /l2/qemu/lib/ld-linux-x86-64.so.2 --library-path /l2/qemu/lib "
                     "/l2/qemu/qemu-system-x86_64 "
                     "-L /l2/qemu/share -enable-kvm -M microvm -cpu " + cpu + " -smp " + smp +
                     " -nographic -no-reboot -nodefaults -serial stdio " + common;
  {
    std::ofstream c(std::string(dir) + "/commands");
    for (int r = 0; r < rounds; ++r) c << ours << "\n" << qemu << "\n";
  }
  std::string cmd = std::string("RIG_EXTRA_DIR=") + dir + " " CPUMODEL_E2E_DIR "/boot/run_boot_rig.sh " CPUMODEL_BINARY
                    " " CPUMODEL_SOURCE_DATA_DIR " " + dir + "/commands " CPUMODEL_L2_INIT " 3000 2>&1";
  std::printf("bench_boot: %s -smp %s, /l2/%s, %d round(s) in the nested-SVM rig (takes minutes)...\n",
              cpu.c_str(), smp.c_str(), image.c_str(), rounds);
  std::fflush(stdout);
  std::string out = run_capture(cmd);
  std::ofstream(std::string(dir) + "/rig.log") << out;

  std::map<std::string, Figures> fig;
  std::regex bench(R"(@@BENCH (\w+) init_ms (-?\d+) peak_rss_kib (\d+) exit (\d+))");
  std::regex stats(R"(VMM overhead (\d+) KiB \(private (\d+) KiB)");
  std::istringstream in(out);
  std::string last;
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (std::regex_search(line, m, bench)) {
      Figures& f = fig[m[1]];
      last = m[1];
      if (std::stoi(m[2]) < 0 || std::stoi(m[4]) != 0) ++f.failures;
      if (std::stoi(m[2]) >= 0) f.init_ms.push_back(std::stod(m[2]));
      f.peak_kib.push_back(std::stod(m[3]));
    } else if (std::regex_search(line, m, stats) && !last.empty()) {
      fig[last].overhead_kib.push_back(std::stod(m[1]));
      fig[last].private_kib.push_back(std::stod(m[2]));
    }
  }
  if (fig.empty()) {
    std::printf("bench_boot: no @@BENCH figures; rig log in %s/rig.log\n", dir);
    return 0;
  }
  std::printf("\n%-8s %10s %14s %18s %14s %9s\n", "VMM", "init (ms)", "peak RSS KiB", "overhead KiB", "private KiB",
              "failures");
  for (const auto& [name, f] : fig)
    std::printf("%-8s %10.0f %14.0f %18s %14s %9d\n", name.c_str(), mean(f.init_ms), mean(f.peak_kib),
                f.overhead_kib.empty() ? "-" : std::to_string(static_cast<long>(mean(f.overhead_kib))).c_str(),
                f.private_kib.empty() ? "-" : std::to_string(static_cast<long>(mean(f.private_kib))).c_str(),
                f.failures);
  if (fig.count("ours") && fig.count("qemu") && mean(fig["qemu"].init_ms) > 0)
    std::printf("\nboot-to-init, ours / QEMU microvm: %.2fx (target < 0.5x)\n",
                mean(fig["ours"].init_ms) / mean(fig["qemu"].init_ms));
  std::printf("overhead = peak RSS - guest RAM resident (ours, --stats); private = anonymous memory that is not\n"
              "guest RAM; the rest is the executable and shared libraries. QEMU's peak RSS includes its guest RAM.\n"
              "rig log: %s/rig.log\n", dir);
  return 0;
}
