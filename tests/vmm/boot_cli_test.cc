// `cpumodel boot`, `vcpus` and `qmp` as a user runs them: bad input is exit 2 with one error line
// naming the thing, before any KVM work; on kvm_pvm (this project's machines) the boot gives up
// with exit 3 and says why. The real boots are in tests/e2e/boot_rig_test.cc.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>

#include "cpumodel/vmm/kvm.h"

#include "debian_kernel.h"

namespace {

struct CliRun {
  int code = -1;
  std::string out;  // stdout + stderr
};

CliRun cpumodel(const std::string& args) {
  CliRun r;
  std::string cmd = std::string("CPUMODEL_DATA_DIR=" CPUMODEL_SOURCE_DATA_DIR " " CPUMODEL_BINARY " ") + args +
                    " < /dev/null 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  int st = ::pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

using cpumodel::testing::debian_kernel;

TEST(BootCli, BadInputIsExit2BeforeKvm) {
  std::string kernel = debian_kernel();
  CliRun r = cpumodel("boot --cpu Haswell --kernel /etc/hostname");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("cpumodel: error: /etc/hostname: not a bzImage"), std::string::npos) << r.out;
  r = cpumodel("boot --cpu Haswell --kernel /nonexistent/vmlinuz");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--kernel /nonexistent/vmlinuz: cannot read"), std::string::npos) << r.out;
  if (kernel.empty()) GTEST_SKIP() << "no readable /boot/vmlinuz-* for the size checks";
  r = cpumodel("boot --cpu Haswell -m 32M -kernel " + kernel);
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("raise -m"), std::string::npos) << r.out;
  r = cpumodel("boot --cpu Haswell -m 1q -kernel " + kernel);
  EXPECT_EQ(r.code, 2) << r.out;
  r = cpumodel("boot --cpu Haswell -kernel " + kernel + " --serial tcp:1234");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("--serial tcp:1234"), std::string::npos) << r.out;
  r = cpumodel("boot --cpu Haswell -kernel " + kernel + " --qmp tcp:localhost:4444");
  EXPECT_EQ(r.code, 2) << r.out;
  r = cpumodel("boot --cpu Haswell -kernel " + kernel + " -initrd " + kernel + " -m 84M");
  EXPECT_EQ(r.code, 2) << r.out;
  EXPECT_NE(r.out.find("does not fit"), std::string::npos) << r.out;
}

TEST(BootCli, KvmPvmGivesUpWithExit3) {
  std::string kernel = debian_kernel();
  if (kernel.empty()) GTEST_SKIP() << "no readable /boot/vmlinuz-*";
  if (::access("/dev/kvm", R_OK | W_OK) != 0) GTEST_SKIP() << "/dev/kvm is missing or not accessible";
  if (cpumodel::vmm::detect_backend() != cpumodel::vmm::Backend::kPvm)
    GTEST_SKIP() << "not kvm_pvm: a real KVM would boot the kernel (tests/e2e/boot_rig_test.cc)";
  auto start = std::chrono::steady_clock::now();
  CliRun r = cpumodel("boot --cpu qemu64 --smp 2 -m 128M -kernel " + kernel + " --timeout 30");
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("(kvm_pvm) cannot run an unmodified Linux kernel"), std::string::npos) << r.out;
  EXPECT_LT(s, 15) << "fails fast";
}

TEST(VcpusCli, NobodyListening) {
  CliRun r = cpumodel("vcpus --qmp unix:/tmp/cpumodel-no-such-vm.qmp");
  EXPECT_EQ(r.code, 3) << r.out;
  EXPECT_NE(r.out.find("cannot connect"), std::string::npos) << r.out;
  r = cpumodel("qmp --qmp unix:/tmp/cpumodel-no-such-vm.qmp query-status --arguments '[1]'");
  EXPECT_EQ(r.code, 2) << r.out;
}

}  // namespace
