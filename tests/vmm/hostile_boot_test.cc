// Hostile guests through `cpumodel boot` (issue 9): a synthetic bzImage whose 64-bit entry is one
// of the test guests (tests/vmm/test_guests.S) triple-faults, halts with interrupts off, spins,
// storms I/O ports, writes to or executes from unmapped memory. The boot VMM must end each run
// within --timeout with the exit code of CLI.md and one line saying what happened. Each case
// prints what the VMM printed (`[hostile boot] ...`). Skipped where /dev/kvm is missing.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <span>
#include <string>
#include <vector>

extern "C" const uint8_t guest_triple_begin[], guest_triple_end[], guest_spin_begin[], guest_spin_end[];
extern "C" const uint8_t guest_mmio_begin[], guest_mmio_end[], guest_hlt_begin[], guest_hlt_end[];
extern "C" const uint8_t guest_iostorm_begin[], guest_iostorm_end[], guest_fetch_begin[], guest_fetch_end[];

namespace {

// A bzImage with a 2.15 header (as tests/vmm/linux_boot_test.cc's fake_bzimage; fields from
// Linux's Documentation/arch/x86/boot.rst) whose protected-mode part holds `code` at offset 0x200,
// the 64-bit entry point.
std::vector<uint8_t> hostile_bzimage(std::span<const uint8_t> code) {
  std::vector<uint8_t> img(5 * 512 + 4096, 0x90);
  auto put = [&](size_t off, auto v) { std::memcpy(img.data() + off, &v, sizeof v); };
  img[0x1f1] = 4;  // setup_sects
  put(0x1fe, uint16_t{0xaa55});
  img[0x200] = 0xeb;
  img[0x201] = 0x66;
  std::memcpy(img.data() + 0x202, "HdrS", 4);
  put(0x206, uint16_t{0x20f});     // protocol 2.15
  img[0x211] = 0x1;                // loadflags: LOADED_HIGH
  put(0x214, uint32_t{0x100000});  // code32_start
  put(0x22c, uint32_t{0x7fffffff});
  put(0x230, uint32_t{0x200000});  // kernel_alignment
  img[0x234] = 1;                  // relocatable
  put(0x236, uint16_t{0x1});       // xloadflags: XLF_KERNEL_64
  put(0x238, uint32_t{2047});
  put(0x258, uint64_t{0x1000000});
  put(0x260, uint32_t{0x400000});  // init_size
  std::memcpy(img.data() + 5 * 512 + 0x200, code.data(), code.size());
  return img;
}

struct BootRun {
  int code = -1;
  std::string out;
  double seconds = 0;
};

BootRun boot(std::span<const uint8_t> guest, double timeout_s) {
  char path[] = "/tmp/cpumodel-hostile-XXXXXX";
  int fd = ::mkstemp(path);
  EXPECT_GE(fd, 0);
  auto img = hostile_bzimage(guest);
  EXPECT_EQ(::write(fd, img.data(), img.size()), static_cast<ssize_t>(img.size()));
  ::close(fd);
  // The kvm_pvm watch (no serial output: give up with exit 3) is off: these guests never print.
  std::string cmd = "CPUMODEL_PVM_WATCH=0 CPUMODEL_DATA_DIR=" CPUMODEL_SOURCE_DATA_DIR " " CPUMODEL_BINARY
                    " boot --cpu host -m 64M --serial none --timeout " + std::to_string(timeout_s) +
                    " --kernel " + path + " < /dev/null 2>&1";
  BootRun r;
  auto t0 = std::chrono::steady_clock::now();
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.out.append(buf, n);
  int st = ::pclose(p);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  ::unlink(path);
  std::printf("[hostile boot] exit %d after %.2f s: %s", r.code, r.seconds, r.out.c_str());
  return r;
}

std::span<const uint8_t> code(const uint8_t* b, const uint8_t* e) { return {b, static_cast<size_t>(e - b)}; }

#define REQUIRE_KVM() \
  if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not accessible"

size_t lines(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(HostileBoot, TripleFaultEndsTheRunAtOnce) {
  REQUIRE_KVM();
  BootRun r = boot(code(guest_triple_begin, guest_triple_end), 20);
  // Linux itself resets by triple fault (reboot=t): like QEMU -no-reboot it ends the run, exit 0.
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("triple-fault"), std::string::npos) << r.out;
  EXPECT_LT(r.seconds, 20.0) << "ended by the fault, not the 20 s timeout";
  EXPECT_EQ(lines(r.out), 1u) << r.out;
}

TEST(HostileBoot, GuestsThatNeverEndStopAtTheTimeout) {
  REQUIRE_KVM();
  const double timeout_s = 1;
  struct Case {
    const char* name;
    std::span<const uint8_t> guest;
  } cases[] = {
      {"hlt with interrupts off", code(guest_hlt_begin, guest_hlt_end)},
      {"spin", code(guest_spin_begin, guest_spin_end)},
      {"I/O storm on ports 0x80/0x81 (nobody's: ignored)", code(guest_iostorm_begin, guest_iostorm_end)},
      {"write to unmapped memory (dropped, as QEMU does), then spin", code(guest_mmio_begin, guest_mmio_end)},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    BootRun r = boot(c.guest, timeout_s);
    EXPECT_EQ(r.code, 1) << r.out;  // CLI.md: the guest did not end by itself
    EXPECT_NE(r.out.find("--timeout"), std::string::npos) << r.out;
    EXPECT_GE(r.seconds, timeout_s);
    EXPECT_LT(r.seconds, timeout_s + 30.0) << "the kick must end it (loose: a loaded machine is slow)";
    EXPECT_EQ(r.out.rfind("cpumodel: error: ", 0), 0u) << r.out;
  }
}

TEST(HostileBoot, InternalErrorIsReportedWithRegisters) {
  REQUIRE_KVM();
  BootRun r = boot(code(guest_fetch_begin, guest_fetch_end), 20);
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("KVM internal error"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("rip 0000000020000000"), std::string::npos) << r.out;  // where the fetch failed
  EXPECT_LT(r.seconds, 20.0) << "ended by the fault, not the 20 s timeout";
}

}  // namespace
