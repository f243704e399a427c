// The nested-SVM rig (label `slow`): one boot of Linux under QEMU's TCG with `-cpu max` (AMD SVM
// emulated), kvm-amd loaded inside, and `cpumodel verify` run there on a KVM that really applies
// the CPUID table. There the guest must see exactly what was intended. Skipped when QEMU, a
// kernel image or busybox-static is missing (tools/setup.sh test installs them).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The catalog models verified in the rig, across vendors and generations.
const std::vector<std::string> kModels = {
    "qemu64",        "kvm64",          "Nehalem",     "Westmere",       "SandyBridge",
    "IvyBridge",     "Haswell-noTSX",  "Broadwell",   "Skylake-Client", "Cascadelake-Server",
    "Icelake-Server", "Opteron_G3",    "EPYC",        "EPYC-Rome",      "Dhyana"};
const std::string kHaswell = "verify --cpu Haswell,+aes,-avx --smp 4,sockets=2,cores=2";

struct Command {
  std::string args;
  std::string output;
  int exit_code = -1;
};

struct Rig {
  bool ran = false;
  std::string skip;       // why the rig cannot run here
  std::string console;    // the whole serial console
  std::map<std::string, Command> commands;  // by argument line
};

bool exists(const std::string& path) { return ::access(path.c_str(), R_OK) == 0; }

std::string newest_kernel() {
  FILE* p = ::popen("ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1", "r");
  char buf[512] = {0};
  std::string k = std::fgets(buf, sizeof buf, p) ? buf : "";
  ::pclose(p);
  while (!k.empty() && k.back() == '\n') k.pop_back();
  return k;
}

void parse(Rig& rig) {
  std::istringstream in(rig.console);
  Command* current = nullptr;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.rfind("@@BEGIN ", 0) == 0) {
      std::string rest = line.substr(8);
      std::string args = rest.substr(rest.find(' ') + 1);
      current = &rig.commands[args];
      current->args = args;
    } else if (line.rfind("@@END ", 0) == 0 && current) {
      current->exit_code = std::stoi(line.substr(line.rfind(' ') + 1));
      current = nullptr;
    } else if (current) {
      current->output += line + "\n";
    }
  }
}

const Rig& rig() {
  static Rig r = [] {
    Rig rig;
    rig.ran = true;
    std::string kernel = newest_kernel();
    if (::system("command -v qemu-system-x86_64 >/dev/null") != 0) rig.skip = "qemu-system-x86_64 not installed";
    else if (kernel.empty() || !exists(kernel)) rig.skip = "no readable /boot/vmlinuz-* (linux-image-amd64)";
    else if (!exists("/bin/busybox")) rig.skip = "/bin/busybox missing (busybox-static)";
    if (!rig.skip.empty()) return rig;
    char dir[] = "/tmp/cpumodel-rig-XXXXXX";
    if (!::mkdtemp(dir)) return rig;
    std::string commands = std::string(dir) + "/commands";
    {
      std::ofstream out(commands);
      out << kHaswell << "\n";
      for (const auto& m : kModels) out << "verify --cpu " << m << "\n";
      out << "verify --cpu qemu64 --smp 2 --json\n";
      out << "verify --cpu qemu32\n";
    }
    std::string cmd = std::string(CPUMODEL_RIG_DIR) + "/run_rig.sh " CPUMODEL_BINARY " " CPUMODEL_SOURCE_DATA_DIR " " +
                      commands + " 600 2>&1";
    FILE* p = ::popen(cmd.c_str(), "r");
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) rig.console.append(buf, n);
    ::pclose(p);
    std::remove(commands.c_str());
    ::rmdir(dir);
    parse(rig);
    return rig;
  }();
  return r;
}

#define REQUIRE_RIG()                               \
  const Rig& r = rig();                             \
  if (!r.skip.empty()) GTEST_SKIP() << r.skip;      \
  ASSERT_NE(r.console.find("@@RIG kvm ready"), std::string::npos) << "kvm-amd did not load:\n" << r.console

void expect_identical(const Rig& r, const std::string& args) {
  auto it = r.commands.find(args);
  ASSERT_NE(it, r.commands.end()) << args << " did not run:\n" << r.console;
  EXPECT_EQ(it->second.exit_code, 0) << args << "\n" << it->second.output;
  EXPECT_NE(it->second.output.find("on kvm_amd"), std::string::npos) << it->second.output;
  EXPECT_NE(it->second.output.find("IDENTICAL"), std::string::npos) << it->second.output;
}

TEST(NestedSvmRig, HaswellWithEditsIsIdenticalOnEveryVcpu) {
  REQUIRE_RIG();
  expect_identical(r, kHaswell);
  const std::string& out = r.commands.at(kHaswell).output;
  EXPECT_NE(out.find("4 vCPUs"), std::string::npos) << out;
  // The topology the guest was given: socket/die/core/thread of vCPU 3 is 1/0/1/0.
  EXPECT_NE(out.find("1/0/1/0"), std::string::npos) << out;
}

TEST(NestedSvmRig, CatalogModelsAreIdentical) {
  REQUIRE_RIG();
  for (const auto& m : kModels) expect_identical(r, "verify --cpu " + m);
}

TEST(NestedSvmRig, JsonNamesTheBackend) {
  REQUIRE_RIG();
  const std::string args = "verify --cpu qemu64 --smp 2 --json";
  ASSERT_TRUE(r.commands.count(args)) << r.console;
  const Command& c = r.commands.at(args);
  EXPECT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("\"backend\": \"kvm_amd\""), std::string::npos) << c.output;
  EXPECT_NE(c.output.find("\"identical\": true"), std::string::npos) << c.output;
}

TEST(NestedSvmRig, ModelWithoutLongModeRunsTheProtectedModeProbe) {
  REQUIRE_RIG();
  expect_identical(r, "verify --cpu qemu32");
  EXPECT_NE(r.commands.at("verify --cpu qemu32").output.find("32-bit protected mode"), std::string::npos);
}

}  // namespace
