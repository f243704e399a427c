// CpuidTable: a plain value {leaf, subleaf} -> eax, ebx, ecx, edx. Absent entries read as zero.
// Leaves whose output depends on ECX ("indexed" leaves) keep their subleaf; every other leaf is
// stored at subleaf 0 whatever subleaf is asked, as the processor ignores ECX for them.
#pragma once

#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace cpumodel {

enum class Reg : uint8_t { kEax = 0, kEbx = 1, kEcx = 2, kEdx = 3 };
const char* reg_name(Reg r);  // "EAX", ...

struct CpuidKey {
  uint32_t leaf = 0;
  uint32_t subleaf = 0;
  auto operator<=>(const CpuidKey&) const = default;
};

struct CpuidRegs {
  uint32_t eax = 0, ebx = 0, ecx = 0, edx = 0;
  uint32_t get(Reg r) const;
  uint32_t& at(Reg r);
  bool operator==(const CpuidRegs&) const = default;
  bool zero() const { return (eax | ebx | ecx | edx) == 0; }
};

// True for leaves whose result depends on the subleaf (KVM_CPUID_FLAG_SIGNIFCANT_INDEX).
bool is_indexed_leaf(uint32_t leaf);

// "07H", "0DH", "80000001H": the leaf as QEMU's messages write it.
std::string leaf_label(uint32_t leaf);

struct CpuidDiff {
  CpuidKey key;
  Reg reg;
  uint32_t left;
  uint32_t right;
};

class CpuidTable {
 public:
  using Map = std::map<CpuidKey, CpuidRegs>;

  // Absent means zero.
  CpuidRegs get(uint32_t leaf, uint32_t subleaf = 0) const;
  bool has(uint32_t leaf, uint32_t subleaf = 0) const;
  void set(uint32_t leaf, uint32_t subleaf, const CpuidRegs& regs);
  void erase(uint32_t leaf, uint32_t subleaf = 0);
  void erase_leaf(uint32_t leaf);  // every subleaf
  // Reference to one register, creating the entry (zeroed) if absent.
  uint32_t& reg(uint32_t leaf, uint32_t subleaf, Reg r);
  uint32_t reg_value(uint32_t leaf, uint32_t subleaf, Reg r) const { return get(leaf, subleaf).get(r); }
  bool bit(uint32_t leaf, uint32_t subleaf, Reg r, unsigned bit) const;
  void set_bit(uint32_t leaf, uint32_t subleaf, Reg r, unsigned bit, bool on);

  // Max basic leaf (0.EAX) and max extended leaf (0x80000000.EAX) as the table says.
  uint32_t max_basic() const { return get(0).eax; }
  uint32_t max_extended() const { return get(0x80000000).eax; }
  std::string vendor() const;  // 12 chars of leaf 0 EBX,EDX,ECX ("" if no leaf 0)

  // Every subleaf present for a leaf, in order.
  std::vector<uint32_t> subleaves(uint32_t leaf) const;

  // Register-level differences (entries absent on one side compare as zero).
  std::vector<CpuidDiff> diff(const CpuidTable& other) const;
  // Bitwise AND of every register of both tables (absent = 0), e.g. a mask.
  CpuidTable masked(const CpuidTable& mask) const;

  const Map& entries() const { return map_; }
  size_t size() const { return map_.size(); }
  bool empty() const { return map_.empty(); }
  bool operator==(const CpuidTable&) const = default;

 private:
  static CpuidKey key(uint32_t leaf, uint32_t subleaf);
  Map map_;
};

}  // namespace cpumodel
