// migrate-check on real dumps: the newer->older trap, same-model hops, and the non-feature
// reasons (phys-bits, XSAVE, vendor, TSC) on hosts edited from real dumps.
#include "cpumodel/migrate/migrate_check.h"
#include "test_util.h"

namespace cpumodel {
namespace {

using test::catalog;
using test::load_dump;

std::string all_reasons(const MigrateCheck& m) {
  std::string s;
  for (const auto& h : m.hops)
    for (const auto& r : h.reasons) s += h.from + "->" + h.to + ": " + r + "\n";
  return s;
}

MigrateCheck check(const std::string& spec, const std::vector<HostProfile>& path) {
  auto m = migrate_check(catalog(), spec, path);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().message);
  return m ? *m : MigrateCheck{};
}

TEST(MigrateCheck, GuestStartedOnNewerHostCannotGoToOlder) {
  HostProfile haswell = load_dump("Xeon-E5-2650-v3"), broadwell = load_dump("Xeon-E5-2650-v4");
  // `host` on Broadwell sees adx, rdseed, smap...; the Haswell host has none of them.
  MigrateCheck m = check("host", {broadwell, haswell});
  EXPECT_FALSE(m.ok);
  ASSERT_EQ(m.hops.size(), 2u);  // there, and back
  EXPECT_FALSE(m.hops[0].ok);
  EXPECT_EQ(m.hops[0].from, broadwell.name);
  std::string r = all_reasons(m);
  EXPECT_NE(r.find("Xeon-E5-2650-v3 lacks CPUID.07H:EBX.adx [bit 19]"), std::string::npos) << r;
  EXPECT_NE(r.find("rdseed"), std::string::npos) << r;
  EXPECT_TRUE(m.hops[1].is_return);
  EXPECT_TRUE(m.hops[1].ok) << "back to where it started";
  // For people, more than 4 missing features are grouped by CPUID word, each name once.
  std::string text = migrate_check_text(m);
  EXPECT_NE(text.find("Xeon-E5-2650-v3 lacks " + std::to_string(m.hops[0].missing.count()) + " of the guest's features:"),
            std::string::npos) << text;
  EXPECT_GT(m.hops[0].missing.count(), 4u);
  EXPECT_NE(text.find("        CPUID.07H:EBX "), std::string::npos) << text;
  EXPECT_EQ(text.find("lacks CPUID.07H:EBX.adx"), std::string::npos) << "grouped, not one line per bit:\n" << text;
  size_t adx = text.find(" adx");
  EXPECT_NE(adx, std::string::npos) << text;
  EXPECT_EQ(text.find(" adx", adx + 1), std::string::npos) << text;
  // Started on the older host, the same guest spec goes there and back.
  MigrateCheck up = check("host", {haswell, broadwell});
  EXPECT_TRUE(up.ok) << all_reasons(up);
}

TEST(MigrateCheck, SameModelHopsAreOk) {
  HostProfile a = load_dump("Xeon-E5-2650-v3"), b = load_dump("Xeon-E5-2650-v4"), c = load_dump("Xeon-E5-2630-v3");
  MigrateCheck m = check("Haswell-noTSX", {a, b, c});
  EXPECT_TRUE(m.ok) << all_reasons(m);
  ASSERT_EQ(m.hops.size(), 3u);  // a->b, b->c, c->a (return)
  EXPECT_TRUE(m.hops[2].is_return);
  EXPECT_EQ(m.hops[2].to, a.name);
  // A path that ends where it started has no extra return hop.
  MigrateCheck loop = check("Haswell-noTSX", {a, b, a});
  EXPECT_EQ(loop.hops.size(), 2u);
  EXPECT_TRUE(loop.hops[1].is_return);
}

TEST(MigrateCheck, PhysBitsReason) {
  HostProfile a = load_dump("Xeon-E5-2650-v3");
  HostProfile small = a;
  small.name = "small";
  // 36 physical address bits, as an old desktop part reports in CPUID.80000008H:EAX[7:0].
  small.cpuid.reg(0x80000008, 0, Reg::kEax) = (small.cpuid.reg_value(0x80000008, 0, Reg::kEax) & ~0xffu) | 36;
  MigrateCheck m = check("host", {a, small});
  EXPECT_FALSE(m.ok);
  std::string r = all_reasons(m);
  // The guest's width is whatever the model gave it on the start host (QEMU's default 40, or the
  // host's 46 with host-phys-bits); either is more than 36.
  EXPECT_NE(r.find("phys-bits: the guest has " + std::to_string(m.guest.phys_bits)), std::string::npos) << r;
  EXPECT_GT(m.guest.phys_bits, 36u);
  EXPECT_NE(r.find("small has 36"), std::string::npos) << r;
}

TEST(MigrateCheck, XsaveSizeReason) {
  HostProfile a = load_dump("Xeon-Gold-6148");  // AVX-512: XSAVE area 0xa88 bytes
  HostProfile b = a;
  b.name = "b";
  b.cpuid.reg(0xd, 0, Reg::kEcx) = 0x340;  // a host whose area only holds x87/SSE/AVX
  MigrateCheck m = check("host", {a, b});
  EXPECT_FALSE(m.ok);
  std::string r = all_reasons(m);
  EXPECT_NE(r.find("XSAVE: the guest's save area is"), std::string::npos) << r;
  EXPECT_NE(r.find("b holds at most 832"), std::string::npos) << r;
  // A component at another offset is a reason too.
  HostProfile c = a;
  c.name = "c";
  c.cpuid.reg(0xd, 5, Reg::kEbx) += 64;
  r = all_reasons(check("host", {a, c}));
  EXPECT_NE(r.find("component 5 (opmask)"), std::string::npos) << r;
}

TEST(MigrateCheck, VendorReason) {
  HostProfile intel = load_dump("Xeon-E5-2650-v3"), amd = load_dump("EPYC-7601-32-Core");
  MigrateCheck m = check("kvm64", {intel, amd});
  EXPECT_FALSE(m.ok);
  EXPECT_NE(all_reasons(m).find("vendor: the guest started on a GenuineIntel host"), std::string::npos)
      << all_reasons(m);
}

TEST(MigrateCheck, InvtscWithoutPinnedFrequencyCannotMove) {
  HostProfile a = load_dump("Xeon-E5-2650-v4");
  HostProfile b = a;
  b.name = "twin";
  MigrateCheck m = check("Broadwell-noTSX,+invtsc", {a, b});
  EXPECT_FALSE(m.ok);
  EXPECT_NE(all_reasons(m).find("TSC: the guest has invtsc"), std::string::npos) << all_reasons(m);
  MigrateCheck plain = check("Broadwell-noTSX", {a, b});
  EXPECT_TRUE(plain.ok) << all_reasons(plain);
}

TEST(MigrateCheck, BadInput) {
  HostProfile a = load_dump("Xeon-E5-2650-v3");
  auto one = migrate_check(catalog(), "Haswell", {a});
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().exit_code, kExitUsage);
  auto unknown = migrate_check(catalog(), "Haswel", {a, a});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().exit_code, kExitUsage);
}

TEST(MigrateCheck, JsonHasTheContractFields) {
  HostProfile haswell = load_dump("Xeon-E5-2650-v3"), broadwell = load_dump("Xeon-E5-2650-v4");
  std::string j = migrate_check_json(check("host", {broadwell, haswell}));
  for (const char* k : {"\"ok\": false", "\"hops\"", "\"from\"", "\"to\"", "\"reasons\""})
    EXPECT_NE(j.find(k), std::string::npos) << k << "\n" << j;
}

}  // namespace
}  // namespace cpumodel
