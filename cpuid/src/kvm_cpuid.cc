// CpuidTable <-> struct kvm_cpuid2 (the KVM_SET_CPUID2 buffer): a conversion at the edge.
#include <linux/kvm.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

#include "cpumodel/cpuid/guest_cpuid.h"

namespace cpumodel {

// The ABI header before the entries: u32 nent, u32 padding. Not offsetof(kvm_cpuid2, entries): in
// C++ Debian 12's uapi __DECLARE_FLEX_ARRAY puts an empty struct (1 byte in C++) before the
// entries, which moves them to offset 12; the kernel reads them at 8.
constexpr size_t kHeader = 8;
static_assert(offsetof(kvm_cpuid2, nent) == 0 && offsetof(kvm_cpuid2, padding) == 4);
static_assert(sizeof(kvm_cpuid_entry2) == 40, "kvm_cpuid_entry2: 7 words + 3 padding");

uint32_t kvm_cpuid_flags(uint32_t leaf) {
  // QEMU also marks leaf 2 KVM_CPUID_FLAG_STATEFUL_FUNC; Linux ignores that flag since 5.7 and
  // leaf 2 reports one descriptor set (EAX[7:0] = 1), so it is not set here.
  return is_indexed_leaf(leaf) ? KVM_CPUID_FLAG_SIGNIFCANT_INDEX : 0;
}

std::vector<uint8_t> to_kvm_cpuid2(const CpuidTable& table) {
  std::vector<uint8_t> out(kHeader + table.size() * sizeof(kvm_cpuid_entry2), 0);
  uint32_t nent = static_cast<uint32_t>(table.size());
  std::memcpy(out.data() + offsetof(kvm_cpuid2, nent), &nent, sizeof nent);
  size_t at = kHeader;
  for (const auto& [k, r] : table.entries()) {
    kvm_cpuid_entry2 e{};
    e.function = k.leaf;
    e.index = k.subleaf;
    e.flags = kvm_cpuid_flags(k.leaf);
    e.eax = r.eax;
    e.ebx = r.ebx;
    e.ecx = r.ecx;
    e.edx = r.edx;
    std::memcpy(out.data() + at, &e, sizeof e);
    at += sizeof e;
  }
  return out;
}

CpuidTable from_kvm_cpuid2(const uint8_t* data, size_t size) {
  CpuidTable t;
  if (!data || size < kHeader) return t;
  uint32_t nent = 0;
  std::memcpy(&nent, data + offsetof(kvm_cpuid2, nent), sizeof nent);
  size_t room = (size - kHeader) / sizeof(kvm_cpuid_entry2);
  size_t n = nent < room ? nent : room;
  for (size_t i = 0; i < n; ++i) {
    kvm_cpuid_entry2 e{};
    std::memcpy(&e, data + kHeader + i * sizeof e, sizeof e);
    uint32_t subleaf = (e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ? e.index : 0;
    t.set(e.function, subleaf, {e.eax, e.ebx, e.ecx, e.edx});
  }
  return t;
}

std::string kvm_cpuid2_dump(const CpuidTable& table) {
  std::vector<uint8_t> bytes = to_kvm_cpuid2(table);
  char buf[160];
  std::snprintf(buf, sizeof buf, "struct kvm_cpuid2: nent=%zu, %zu bytes (8 + %zu x 40)\n", table.size(),
                bytes.size(), table.size());
  std::string out = buf;
  out += "  function  index  flags  eax        ebx        ecx        edx\n";
  for (const auto& [k, r] : table.entries()) {
    std::snprintf(buf, sizeof buf, "  %08x  %5x  %5x  %08x   %08x   %08x   %08x\n", k.leaf, k.subleaf,
                  kvm_cpuid_flags(k.leaf), r.eax, r.ebx, r.ecx, r.edx);
    out += buf;
  }
  out += "bytes:\n";
  for (size_t i = 0; i < bytes.size(); i += 16) {
    std::snprintf(buf, sizeof buf, "  %04zx:", i);
    out += buf;
    for (size_t j = i; j < i + 16 && j < bytes.size(); ++j) {
      std::snprintf(buf, sizeof buf, " %02x", bytes[j]);
      out += buf;
    }
    out += '\n';
  }
  return out;
}

}  // namespace cpumodel
