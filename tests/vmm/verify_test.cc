// The seen-vs-intended comparison as pure functions over tables (no /dev/kvm), following KVM's
// CPUID semantics (arch/x86/kvm/cpuid.c: kvm_cpuid, get_out_of_range_cpuid_entry,
// kvm_update_cpuid_runtime) and the Intel SDM's XSAVE layout.
#include <gtest/gtest.h>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/vmm/verify.h"

namespace cpumodel::vmm {
namespace {

// Leaf 0 for a vendor: EAX max leaf, then the 12 characters in EBX, EDX, ECX.
CpuidRegs vendor_leaf(uint32_t max, const char* v) {
  CpuidRegs r{max, 0, 0, 0};
  std::memcpy(&r.ebx, v, 4);
  std::memcpy(&r.edx, v + 4, 4);
  std::memcpy(&r.ecx, v + 8, 4);
  return r;
}

CpuidTable intel_table() {
  CpuidTable t;
  t.set(0, 0, vendor_leaf(0xd, "GenuineIntel"));
  t.set(1, 0, {0x306c3, 0x00010800, 0x04000000 | (1u << 27), 1u << 9});
  t.set(7, 0, {0, 1u << 5, 0, 0});
  t.set(0xb, 0, {1, 1, 0x100, 0});
  t.set(0xb, 1, {4, 4, 0x201, 0});
  t.set(0xd, 0, {7, 0x340, 0, 0});
  t.set(0xd, 1, {1, 0, 0, 0});
  t.set(0xd, 2, {256, 576, 0, 0});
  t.set(0x80000000, 0, {0x80000008, 0, 0, 0});
  return t;
}

TEST(ExpectedCpuid, AbsentLeafInRangeReadsZero) {
  CpuidTable t = intel_table();
  VcpuCpuidState s;
  EXPECT_TRUE(expected_cpuid(t, 6, 0, s).zero());
  EXPECT_TRUE(expected_cpuid(t, 0x80000004, 0, s).zero());
}

TEST(ExpectedCpuid, OutOfRangeReadsTheMaxBasicLeafOnIntelZeroOnAmd) {
  CpuidTable t = intel_table();
  VcpuCpuidState s;
  // 0x20 > max basic 0xd: the 0DH entry with the subleaf asked (0DH.0 with runtime EBX).
  CpuidRegs r = expected_cpuid(t, 0x20, 0, s);
  EXPECT_EQ(r.eax, 7u);
  EXPECT_EQ(r.ebx, 576u);  // XCR0 = x87 only
  // No hypervisor leaves in the table: 0x40000000 is out of range as well.
  EXPECT_EQ(expected_cpuid(t, 0x40000000, 0, s).eax, 7u);
  t.set(0, 0, vendor_leaf(0xd, "AuthenticAMD"));
  EXPECT_TRUE(expected_cpuid(t, 0x20, 0, s).zero());
  EXPECT_TRUE(expected_cpuid(t, 0x40000000, 0, s).zero());
}

TEST(ExpectedCpuid, TopologyLeafKeepsClAndX2apicIdBeyondTheTable) {
  CpuidTable t = intel_table();
  VcpuCpuidState s;
  s.apic_id = 5;
  CpuidRegs r = expected_cpuid(t, 0xb, 7, s);
  EXPECT_EQ(r.eax, 0u);
  EXPECT_EQ(r.ecx, 7u);
  EXPECT_EQ(r.edx, 5u);
  EXPECT_EQ(expected_cpuid(t, 0xb, 1, s).edx, 5u);  // each vCPU: its own x2APIC ID
  EXPECT_EQ(expected_cpuid(t, 1, 0, s).ebx >> 24, 5u);
}

TEST(ExpectedCpuid, BitsThatFollowVcpuState) {
  CpuidTable t = intel_table();
  VcpuCpuidState s;
  s.cr4 = 0;
  s.apic_base = 0xfee00900;
  CpuidRegs r = expected_cpuid(t, 1, 0, s);
  EXPECT_EQ(r.ecx >> 27 & 1, 0u);  // OSXSAVE follows CR4.OSXSAVE, not the table
  EXPECT_EQ(r.edx >> 9 & 1, 1u);   // APIC follows the APIC base enable bit
  s.cr4 = 1u << 18;
  s.apic_base = 0xfee00000;
  r = expected_cpuid(t, 1, 0, s);
  EXPECT_EQ(r.ecx >> 27 & 1, 1u);
  EXPECT_EQ(r.edx >> 9 & 1, 0u);
  t.set_bit(7, 0, Reg::kEcx, 4, true);
  EXPECT_EQ(expected_cpuid(t, 7, 0, s).ecx >> 4 & 1, 0u);  // OSPKE follows CR4.PKE
  s.host_has_pku = false;
  EXPECT_EQ(expected_cpuid(t, 7, 0, s).ecx >> 4 & 1, 1u);  // ... only when the host has PKU
}

// Intel SDM vol. 1 13.4/13.5: legacy area 512 + header 64; AVX state (component 2) is 256 bytes at
// offset 576 in the standard form.
TEST(XsaveSize, FollowsXcr0) {
  CpuidTable t = intel_table();
  EXPECT_EQ(xsave_size(t, 1, false), 576u);
  EXPECT_EQ(xsave_size(t, 7, false), 832u);
  EXPECT_EQ(xsave_size(t, 7, true), 832u);
  VcpuCpuidState s;
  s.xcr0 = 7;
  EXPECT_EQ(expected_cpuid(t, 0xd, 0, s).ebx, 832u);
  EXPECT_EQ(expected_cpuid(t, 0xd, 1, s).ebx, 0u);  // no XSAVEC/XSAVES: left as set
  t.set(0xd, 1, {1u | (1u << 1), 0, 0, 0});
  EXPECT_EQ(expected_cpuid(t, 0xd, 1, s).ebx, 832u);
}

TEST(CompareProbe, NamesEveryDifferingBit) {
  CpuidTable t = intel_table();
  VcpuCpuidState s;
  s.apic_base = 0xfee00900;
  std::vector<ProbeRecord> seen;
  for (const auto& [key, regs] : t.entries()) {
    CpuidRegs r = expected_cpuid(t, key.leaf, key.subleaf, s);
    seen.push_back({key.leaf, key.subleaf, r.eax, r.ebx, r.ecx, r.edx});
  }
  EXPECT_TRUE(compare_probe(t, seen, s, Backend::kPvm).empty());
  // The guest saw avx2 cleared and bit 22 of 07H:ECX set; the host has bit 22 set.
  for (auto& r : seen)
    if (r.leaf == 7) {
      r.ebx &= ~(1u << 5);
      r.ecx |= 1u << 22;
    }
  seen.push_back(seen.front());  // a duplicate record (a range walk) is reported once
  CpuidTable host;
  host.set(7, 0, {0, 1u << 5, 1u << 22, 0});  // the host has avx2: the guest not seeing it is a change
  auto d = compare_probe(t, seen, s, Backend::kPvm, &host);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0].where, "CPUID.07H:EBX.avx2 [bit 5]");
  EXPECT_EQ(d[0].feature, "avx2");
  EXPECT_TRUE(d[0].intended);
  EXPECT_FALSE(d[0].seen);
  EXPECT_EQ(d[0].cause, "changed by kvm_pvm");
  EXPECT_EQ(d[1].reg, Reg::kEcx);
  EXPECT_EQ(d[1].bit, 22u);
  EXPECT_EQ(d[1].cause, "forced by kvm_pvm");
  auto id = feature_at(FeatureWord::k7_0Ecx, 22);
  EXPECT_EQ(d[1].feature, id ? feature(*id).name : "");
}

TEST(CompareProbe, UnnamedRegistersUseCpuidCoordinates) {
  CpuidTable t = intel_table();
  VcpuCpuidState s;
  std::vector<ProbeRecord> seen = {{0xd, 2, 256, 577, 0, 0}};
  auto d = compare_probe(t, seen, s, Backend::kAmd);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].where, "CPUID.0DH.2:EBX[bit 0]");
  EXPECT_EQ(d[0].feature, "");
  EXPECT_EQ(d[0].cause, "changed by kvm_amd");
}

TEST(VerifyFormat, TextGroupsVcpusAndJsonHasTheContractFields) {
  VerifyReport r;
  r.backend = Backend::kPvm;
  r.identical = false;
  for (unsigned i = 0; i < 3; ++i) {
    VcpuVerify v;
    v.place.index = i;
    v.place.apic_id = i;
    v.tid = 100 + static_cast<pid_t>(i);
    v.host_cpu = 1;
    BitDifference d;
    d.leaf = 7;
    d.reg = Reg::kEbx;
    d.bit = 5;
    d.feature = "avx2";
    d.where = "CPUID.07H:EBX.avx2 [bit 5]";
    d.seen = true;
    d.cause = "forced by kvm_pvm";
    if (i < 2) v.differences.push_back(d);
    r.vcpus.push_back(v);
  }
  std::string text = format_verify(r, "Haswell-v1");
  EXPECT_NE(text.find("vCPU 0-1:\n  CPUID.07H:EBX.avx2 [bit 5]: intended 0, guest saw 1 (forced by kvm_pvm)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("DIFFERENT: 2 bit(s)"), std::string::npos) << text;
  std::string json = verify_json(r, "Haswell-v1");
  for (const char* field : {"\"backend\": \"kvm_pvm\"", "\"identical\": false", "\"vcpus\"", "\"tid\": 101",
                            "\"host_cpu\": 1", "\"apic_id\": 2", "\"leaf\": 7", "\"subleaf\": 0",
                            "\"register\": \"EBX\"", "\"bit\": 5", "\"feature\": \"avx2\"", "\"intended\": 0",
                            "\"seen\": 1"})
    EXPECT_NE(json.find(field), std::string::npos) << field << "\n" << json;
}

}  // namespace
}  // namespace cpumodel::vmm
