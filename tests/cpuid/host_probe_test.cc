// The host probe behind CpuidSource: enumeration rules over real dumps, the real instruction
// against Debian's `cpuid -r`, topology from a fake sysfs, probe_host with fake roots.
#include <dirent.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "cpumodel/cpuid/host_probe.h"

namespace cpumodel {
namespace {

const std::string kDumps = std::string(CPUMODEL_SHARED_DIR) + "/data/cpuid-dumps";

std::vector<std::string> dump_files() {
  std::vector<std::string> out;
  for (const std::string& dir : {kDumps, kDumps + "/instlatx64"}) {
    DIR* d = ::opendir(dir.c_str());
    if (!d) continue;
    while (dirent* e = ::readdir(d)) {
      std::string n = e->d_name;
      if (n.ends_with(".xml") || n.ends_with(".txt")) out.push_back(dir + "/" + n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool in_enumerated_range(const CpuidTable& t, uint32_t leaf) {
  return leaf <= t.max_basic() || (leaf >= 0x80000000 && leaf <= t.max_extended());
}

// Enumerating a dump through TableCpuidSource finds exactly its data: every entry we produce has
// the dump's value, and every nonzero entry the collector saw in the basic and extended ranges is
// reached by the per-leaf subleaf rules.
TEST(Enumerate, FindsEveryNonzeroEntryOfEveryDump) {
  auto files = dump_files();
  if (files.empty()) GTEST_SKIP() << kDumps << " is not here";
  for (const auto& f : files) {
    SCOPED_TRACE(f);
    auto p = load_profile(f);
    ASSERT_TRUE(p.ok()) << p.error().message;
    CpuidTable e = enumerate_cpuid(TableCpuidSource(*p));
    for (const auto& [k, r] : e.entries())
      EXPECT_TRUE(r == p->cpuid.get(k.leaf, k.subleaf)) << std::hex << k.leaf << "." << k.subleaf;
    for (const auto& [k, r] : p->cpuid.entries()) {
      if (!r.zero() && in_enumerated_range(p->cpuid, k.leaf)) {
        EXPECT_TRUE(e.has(k.leaf, k.subleaf)) << "missed " << std::hex << k.leaf << "." << k.subleaf;
      }
    }
  }
}

TEST(Enumerate, SubleafRulesOnASyntheticCpu) {
  CpuidTable t;
  t.set(0, 0, {0xd, 0x756e6547, 0x6c65746e, 0x49656e69});
  t.set(1, 0, {0x000306f2, 0, 1u << 31, 0});
  t.set(4, 0, {0x121, 0, 0, 0});
  t.set(4, 1, {0x122, 0, 0, 0});  // then type 0 at subleaf 2: included as the terminator
  t.set(7, 0, {1, 0, 0, 0});
  t.set(7, 1, {0x10, 0, 0, 0});
  t.set(7, 2, {0, 0, 0, 0x17});   // beyond 7.0 EAX: not enumerated
  t.set(0xb, 0, {1, 2, 0x100, 0});
  t.set(0xb, 1, {4, 8, 0x201, 0});
  t.set(0xd, 0, {0x207, 0, 0, 0});   // x87, SSE, AVX, PKRU (bit 9)
  t.set(0xd, 1, {0xf, 0, 0x100, 0}); // XSS: PT (bit 8)
  t.set(0x40000000, 0, {0, 0x4b4d564b, 0x564b4d56, 0x4d});  // EAX 0 means 0x40000001
  t.set(0x80000000, 0, {0x80000001, 0, 0, 0});
  CpuidTable e = enumerate_cpuid(TableCpuidSource(t));
  EXPECT_EQ(e.subleaves(4), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(e.subleaves(7), (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(e.subleaves(0xb), (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_EQ(e.subleaves(0xd), (std::vector<uint32_t>{0, 1, 2, 8, 9}));
  EXPECT_TRUE(e.has(0x40000001));
  EXPECT_FALSE(e.has(0x40000002));
  EXPECT_TRUE(e.has(0x80000001));
  for (uint32_t leaf = 0; leaf <= 0xd; ++leaf) EXPECT_TRUE(e.has(leaf)) << leaf;
}

// The real instruction against Debian's cpuid on CPU 0: same values wherever both looked.
TEST(Enumerate, RealCpuAgreesWithDebianCpuid) {
  FILE* f = ::popen("cpuid -r 2>/dev/null", "r");
  std::string text;
  char buf[4096];
  for (size_t n; f && (n = std::fread(buf, 1, sizeof buf, f)) > 0;) text.append(buf, n);
  if (!f || ::pclose(f) != 0 || text.empty()) GTEST_SKIP() << "Debian's cpuid tool is not installed";
  auto theirs = parse_profile(text, "cpuid -r");
  ASSERT_TRUE(theirs.ok()) << theirs.error().message;
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(0, &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) GTEST_SKIP() << "cannot run on CPU 0";
  CpuidTable ours = enumerate_cpuid(HostCpuidSource());
  size_t compared = 0;
  for (const auto& [k, r] : ours.entries()) {
    if (!theirs->cpuid.has(k.leaf, k.subleaf)) continue;
    ++compared;
    EXPECT_TRUE(r == theirs->cpuid.get(k.leaf, k.subleaf)) << std::hex << k.leaf << "." << k.subleaf;
  }
  for (const auto& [k, r] : theirs->cpuid.entries()) {
    if (!r.zero() && in_enumerated_range(theirs->cpuid, k.leaf)) {
      EXPECT_TRUE(ours.has(k.leaf, k.subleaf)) << "missed " << std::hex << k.leaf << "." << k.subleaf;
    }
  }
  EXPECT_GT(compared, 20u);
}

TEST(HostTopology, CpuLists) {
  EXPECT_EQ(parse_cpu_list("0-3,8,10-11\n"), (std::vector<unsigned>{0, 1, 2, 3, 8, 10, 11}));
  EXPECT_EQ(parse_cpu_list("0"), (std::vector<unsigned>{0}));
  EXPECT_TRUE(parse_cpu_list("3-1").empty());
  EXPECT_TRUE(parse_cpu_list("a-b").empty());
  EXPECT_TRUE(parse_cpu_list("").empty());
}

struct FakeTree {
  std::string root;
  FakeTree() {
    char tmpl[] = "/tmp/cpumodel-sysfs-XXXXXX";
    root = ::mkdtemp(tmpl);
  }
  ~FakeTree() { std::system(("rm -rf '" + root + "'").c_str()); }
  void put(const std::string& rel, const std::string& content) {
    std::string path = root + "/" + rel;
    std::system(("mkdir -p '" + path.substr(0, path.find_last_of('/')) + "'").c_str());
    std::ofstream(path) << content;
  }
};

// 2 packages x 2 cores x 2 threads, CPUs numbered like Linux does on Intel (threads last).
void fake_two_socket(FakeTree& t) {
  t.put("devices/system/cpu/online", "0-7\n");
  t.put("devices/system/node/online", "0-1\n");
  for (int c = 0; c < 8; ++c) {
    std::string d = "devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    t.put(d + "physical_package_id", std::to_string((c / 2) % 2) + "\n");
    t.put(d + "die_id", "0\n");
    t.put(d + "core_id", std::to_string(c % 2) + "\n");
  }
}

TEST(HostTopology, FromFakeSysfs) {
  FakeTree t;
  fake_two_socket(t);
  HostTopology topo = read_topology(t.root);
  EXPECT_EQ(topo, (HostTopology{2, 1, 2, 2, 2, 8}));
  FakeTree empty;
  EXPECT_FALSE(read_topology(empty.root).known());
}

TEST(Probe, WithFakeRootsAndNoKvm) {
  std::string dump = kDumps + "/x86_64-cpuid-Xeon-E5-2650-v3.xml";
  auto p = load_profile(dump);
  if (!p.ok()) GTEST_SKIP() << dump << " is not here";
  FakeTree sys, proc;
  fake_two_socket(sys);
  sys.put("module/kvm_intel/parameters/nested", "Y\n");
  sys.put("devices/system/cpu/cpu0/tsc_freq_khz", "2294686\n");
  proc.put("cpuinfo", "processor\t: 0\nflags\t\t: fpu vme vmx sse\nmicrocode\t: 0x49\n\nprocessor\t: 1\nmicrocode\t: 0x50\n");
  TableCpuidSource src(*p);
  ProbeOptions o;
  o.sysfs_root = sys.root;
  o.procfs_root = proc.root;
  o.kvm_device = sys.root + "/no-such-kvm";
  o.cpuid = &src;
  auto h = probe_host(o);
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_EQ(h->format, "probe");
  EXPECT_EQ(h->cpuid.vendor(), "GenuineIntel");
  EXPECT_TRUE(h->cpuid.get(7, 0) == p->cpuid.get(7, 0));
  EXPECT_EQ(h->facts["kvm_device"], "absent");
  EXPECT_EQ(h->facts["kvm_backend"], "kvm_intel");
  EXPECT_EQ(h->facts["kvm_nested"], "on");
  EXPECT_EQ(h->facts["microcode"], "0x49");
  EXPECT_EQ(h->facts["virt_flags"], "vmx");
  EXPECT_EQ(h->topology, (HostTopology{2, 1, 2, 2, 2, 8}));
  ASSERT_TRUE(h->tsc_khz.has_value());
  EXPECT_EQ(*h->tsc_khz, 2294686.0);
  EXPECT_FALSE(h->kvm_cpuid.has_value());
  std::string summary = host_summary(*h);
  EXPECT_NE(summary.find("/dev/kvm absent"), std::string::npos) << summary;
  EXPECT_NE(summary.find("2 packages x 1 die x 2 cores x 2 threads, 8 online CPUs, 2 NUMA nodes"), std::string::npos)
      << summary;
  auto back = parse_profile(profile_to_yaml(*h), "h.yaml");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->topology, h->topology);
  EXPECT_EQ(back->facts, h->facts);
}

TEST(Probe, ThisHost) {
  auto h = probe_host();
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_TRUE(h->cpuid.has(0));
  EXPECT_FALSE(h->cpuid.vendor().empty());
  EXPECT_TRUE(h->topology.known());
  EXPECT_TRUE(h->facts.count("kvm_device"));
  EXPECT_TRUE(h->facts.count("microarchitecture"));
  if (::access("/dev/kvm", R_OK | W_OK) != 0) {
    EXPECT_NE(h->facts["kvm_device"], "accessible");
  } else {
    // KVM_GET_SUPPORTED_CPUID reports the host's vendor and both ranges' maximum leaves.
    EXPECT_EQ(h->facts["kvm_device"], "accessible");
    ASSERT_TRUE(h->kvm_cpuid.has_value()) << h->facts["kvm_supported_cpuid"];
    EXPECT_EQ(h->kvm_cpuid->vendor(), h->cpuid.vendor());
    EXPECT_TRUE(h->kvm_cpuid->has(1));
    EXPECT_TRUE(h->kvm_cpuid->has(0x80000000));
    auto back = parse_profile(profile_to_yaml(*h), "host.yaml");
    ASSERT_TRUE(back.ok()) << back.error().message;
    EXPECT_TRUE(*back->kvm_cpuid == *h->kvm_cpuid);
    EXPECT_EQ(back->kvm_msrs, h->kvm_msrs);
  }
  JsonWriter w;
  profile_to_json(*h, w);
  EXPECT_NE(w.str().find("\"cpuid\": ["), std::string::npos);
}

}  // namespace
}  // namespace cpumodel
