// Bundles: round trip, sniffing, truncated/corrupt input, and the summary fast path agreeing with
// the HostProfile path.
#include <fstream>

#include "cpumodel/migrate/bundle.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using test::load_dump;
using test::TempDir;

std::vector<HostProfile> some_hosts() {
  std::vector<HostProfile> v = {load_dump("Xeon-E5-2650-v3"), load_dump("EPYC-7601-32-Core"),
                                load_dump("Core-i7-8700")};
  // A profile with KVM data, MSRs, topology, facts and TSC: every field goes through the bundle.
  HostProfile k = v[0];
  k.name = "with-kvm";
  k.kvm_cpuid = k.cpuid;
  k.kvm_cpuid->set(7, 0, CpuidRegs{0, 0x1, 0, 0});
  k.kvm_msrs = MsrMap{{0x10a, 0x2b}};
  k.msrs = MsrMap{{0x10a, 0xeb}, {0xcf, 0x20}};
  k.topology = HostTopology{2, 1, 8, 2, 2, 32};
  k.tsc_khz = 2294688.0;
  k.facts["kernel"] = "6.1.0";
  v.push_back(k);
  return v;
}

TEST(Bundle, RoundTripKeepsEveryField) {
  auto hosts = some_hosts();
  std::string bytes = encode_bundle(hosts);
  ASSERT_TRUE(is_bundle(bytes));
  auto back = decode_bundle(bytes, "mem.pb");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->size(), hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    const HostProfile& a = hosts[i];
    const HostProfile& b = (*back)[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.cpuid, b.cpuid) << a.name;
    EXPECT_EQ(a.msrs, b.msrs);
    EXPECT_EQ(a.kvm_cpuid, b.kvm_cpuid);
    EXPECT_EQ(a.kvm_msrs, b.kvm_msrs);
    EXPECT_EQ(a.topology, b.topology);
    EXPECT_EQ(a.tsc_khz, b.tsc_khz);
    for (const auto& [k, v] : a.facts) EXPECT_EQ(b.facts.count(k) ? b.facts.at(k) : "(missing)", v) << k;
    EXPECT_EQ(b.source, "mem.pb#" + a.name);
  }
}

TEST(Bundle, StartsWithMagicField) {
  std::string bytes = encode_bundle(some_hosts());
  // Field 1, wire type 5 (fixed32), then "CMBL": what load_profiles sniffs.
  EXPECT_EQ(bytes.substr(0, 5), std::string("\x0d" "CMBL"));
  EXPECT_FALSE(is_bundle("<cpudata arch='x86'>"));
  EXPECT_FALSE(is_bundle(""));
  EXPECT_FALSE(is_bundle("\x0d" "CMB"));
}

TEST(Bundle, TruncatedAnywhereIsRefused) {
  auto hosts = some_hosts();
  std::string bytes = encode_bundle(hosts);
  // Every cut, including those exactly at a host boundary (which would still parse).
  size_t step = std::max<size_t>(1, bytes.size() / 257);
  for (size_t cut = 5; cut < bytes.size(); cut += step) {
    auto r = decode_bundle(std::string_view(bytes).substr(0, cut), "cut.pb");
    ASSERT_FALSE(r.ok()) << "cut at " << cut << " of " << bytes.size();
    EXPECT_NE(r.error().message.find("cut.pb: truncated"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().exit_code, kExitUsage);
  }
  // Exactly at the end of each host: the trailing host count is what catches these.
  std::vector<HostProfile> one(hosts.begin(), hosts.begin() + 1);
  std::string first = encode_bundle(one);
  ASSERT_GT(first.size(), 2u);
  std::string two = encode_bundle(std::vector<HostProfile>(hosts.begin(), hosts.begin() + 2));
  size_t host_end = first.size() - 2;  // host_count (tag + 1-byte varint) is the last 2 bytes
  auto r = decode_bundle(std::string_view(two).substr(0, host_end), "cut.pb");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("truncated"), std::string::npos) << r.error().message;
}

TEST(Bundle, CorruptAndForeignInput) {
  std::string bytes = encode_bundle(some_hosts());
  std::string bad = bytes;
  bad[7] = '\xff';  // inside the version varint / next tag
  bad[8] = '\xff';
  auto r = decode_bundle(bad, "bad.pb");
  EXPECT_FALSE(r.ok());
  auto notb = decode_bundle("hello world", "x.pb");
  ASSERT_FALSE(notb.ok());
  EXPECT_NE(notb.error().message.find("not a cpumodel bundle"), std::string::npos);
}

TEST(Bundle, LoadProfilesAcceptsBundlesAndSingleProfiles) {
  TempDir dir;
  auto hosts = some_hosts();
  ASSERT_TRUE(write_file_atomic(dir.file("c.pb"), encode_bundle(hosts)).ok());
  auto all = load_profiles(std::vector<std::string>{dir.file("c.pb"), test::dump("Xeon-Gold-6148")});
  ASSERT_TRUE(all.ok()) << all.error().message;
  EXPECT_EQ(all->size(), hosts.size() + 1);
  EXPECT_EQ(all->back().cpuid, load_dump("Xeon-Gold-6148").cpuid);
  ASSERT_TRUE(write_file_atomic(dir.file("empty"), "").ok());
  auto e = load_profiles(dir.file("empty"));
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("empty"), std::string::npos);
}

TEST(Bundle, ImportMakesNamesUnique) {
  TempDir dir;
  std::string a = test::dump("Xeon-E5-2650-v3");
  auto n = import_bundle({a, a, test::dump("EPYC-7601-32-Core")}, dir.file("c.pb"));
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 3u);
  auto back = load_profiles(dir.file("c.pb"));
  ASSERT_TRUE(back.ok());
  EXPECT_NE((*back)[0].name, (*back)[1].name);
  EXPECT_EQ((*back)[0].cpuid, (*back)[1].cpuid);
}

// load_host_summaries reads bundles without building HostProfiles: it must agree with the
// HostProfile path, field by field, on every real dump.
TEST(Bundle, SummaryFastPathMatchesProfilePath) {
  TempDir dir;
  std::vector<HostProfile> hosts;
  for (const auto& e : std::filesystem::directory_iterator(test::dumps_dir()))
    if (e.path().extension() == ".xml") {
      auto p = load_profile(e.path().string());
      ASSERT_TRUE(p.ok()) << p.error().message;
      hosts.push_back(*p);
    }
  hosts.push_back(some_hosts().back());
  ASSERT_TRUE(write_file_atomic(dir.file("all.pb"), encode_bundle(hosts)).ok());
  auto fast = load_host_summaries({dir.file("all.pb")});
  ASSERT_TRUE(fast.ok()) << fast.error().message;
  ASSERT_EQ(fast->size(), hosts.size());
  for (size_t i = 0; i < hosts.size(); ++i) {
    HostSummary slow = summarize_host(hosts[i]);
    const HostSummary& f = (*fast)[i];
    EXPECT_EQ(f.features, slow.features) << hosts[i].name;
    EXPECT_EQ(f.features, host_guest_features(hosts[i])) << hosts[i].name << ": differs from models' rule";
    EXPECT_EQ(f.vendor, slow.vendor);
    EXPECT_EQ(f.family, slow.family);
    EXPECT_EQ(f.model, slow.model);
    EXPECT_EQ(f.phys_bits, slow.phys_bits);
    EXPECT_EQ(f.xcr0, slow.xcr0);
    EXPECT_EQ(f.xsave_size, slow.xsave_size);
    EXPECT_EQ(f.xsave_end, slow.xsave_end);
    EXPECT_EQ(f.level, slow.level);
    EXPECT_EQ(f.xlevel, slow.xlevel);
    EXPECT_EQ(f.tsc_khz, slow.tsc_khz);
    EXPECT_EQ(f.from_kvm, slow.from_kvm);
  }
}

TEST(Bundle, SummaryOfAKnownDump) {
  // Intel Xeon E5-2650 v3 (Haswell-EP): CPUID.80000008H:EAX = 0x302e (46 physical bits), XCR0
  // components x87|sse|avx (0xD.0 EAX = 7), area 0x340 bytes (0xD.0 ECX): values from the dump.
  HostSummary s = summarize_host(load_dump("Xeon-E5-2650-v3"));
  EXPECT_EQ(s.vendor, "GenuineIntel");
  EXPECT_EQ(s.family, 6u);
  EXPECT_EQ(s.model, 0x3fu);
  EXPECT_EQ(s.phys_bits, 46u);
  EXPECT_EQ(s.xcr0, 7u);
  EXPECT_EQ(s.xsave_size, 0x340u);
  EXPECT_EQ(s.xsave_end[2], 0x240u + 0x100u);
  EXPECT_EQ(s.level, 0xfu);
  EXPECT_FALSE(s.from_kvm);
  EXPECT_TRUE(s.features.has("avx2"));
  EXPECT_TRUE(s.features.has("hypervisor")) << "KVM synthesises it";
}

}  // namespace
}  // namespace cpumodel
