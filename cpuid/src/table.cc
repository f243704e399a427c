#include "cpumodel/cpuid/table.h"

#include <cstdio>
#include <cstring>

namespace cpumodel {

const char* reg_name(Reg r) {
  static const char* const kNames[] = {"EAX", "EBX", "ECX", "EDX"};
  return kNames[static_cast<int>(r)];
}

uint32_t CpuidRegs::get(Reg r) const {
  switch (r) {
    case Reg::kEax: return eax;
    case Reg::kEbx: return ebx;
    case Reg::kEcx: return ecx;
    case Reg::kEdx: return edx;
  }
  return 0;
}

uint32_t& CpuidRegs::at(Reg r) {
  switch (r) {
    case Reg::kEax: return eax;
    case Reg::kEbx: return ebx;
    case Reg::kEcx: return ecx;
    case Reg::kEdx: break;
  }
  return edx;
}

bool is_indexed_leaf(uint32_t leaf) {
  switch (leaf) {
    case 0x4: case 0x7: case 0xb: case 0xd: case 0xf: case 0x10: case 0x12: case 0x14:
    case 0x17: case 0x18: case 0x1a: case 0x1b: case 0x1d: case 0x1e: case 0x1f: case 0x20:
    case 0x23: case 0x24: case 0x8000001d: case 0x80000020: case 0x80000026:
      return true;
    default:
      return false;
  }
}

std::string leaf_label(uint32_t leaf) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%02XH", leaf);
  return buf;
}

CpuidKey CpuidTable::key(uint32_t leaf, uint32_t subleaf) {
  return CpuidKey{leaf, is_indexed_leaf(leaf) ? subleaf : 0};
}

CpuidRegs CpuidTable::get(uint32_t leaf, uint32_t subleaf) const {
  auto it = map_.find(key(leaf, subleaf));
  return it == map_.end() ? CpuidRegs{} : it->second;
}

bool CpuidTable::has(uint32_t leaf, uint32_t subleaf) const {
  return map_.count(key(leaf, subleaf)) != 0;
}

void CpuidTable::set(uint32_t leaf, uint32_t subleaf, const CpuidRegs& regs) {
  map_[key(leaf, subleaf)] = regs;
}

void CpuidTable::erase(uint32_t leaf, uint32_t subleaf) { map_.erase(key(leaf, subleaf)); }

void CpuidTable::erase_leaf(uint32_t leaf) {
  map_.erase(map_.lower_bound(CpuidKey{leaf, 0}), map_.upper_bound(CpuidKey{leaf, UINT32_MAX}));
}

uint32_t& CpuidTable::reg(uint32_t leaf, uint32_t subleaf, Reg r) {
  return map_[key(leaf, subleaf)].at(r);
}

bool CpuidTable::bit(uint32_t leaf, uint32_t subleaf, Reg r, unsigned b) const {
  return (get(leaf, subleaf).get(r) >> b) & 1u;
}

void CpuidTable::set_bit(uint32_t leaf, uint32_t subleaf, Reg r, unsigned b, bool on) {
  uint32_t& v = reg(leaf, subleaf, r);
  v = on ? (v | (1u << b)) : (v & ~(1u << b));
}

std::string CpuidTable::vendor() const {
  if (!has(0)) return "";
  CpuidRegs r = get(0);
  char buf[13];
  std::memcpy(buf, &r.ebx, 4);
  std::memcpy(buf + 4, &r.edx, 4);
  std::memcpy(buf + 8, &r.ecx, 4);
  buf[12] = 0;
  return std::string(buf, strnlen(buf, 12));
}

std::vector<uint32_t> CpuidTable::subleaves(uint32_t leaf) const {
  std::vector<uint32_t> out;
  for (auto it = map_.lower_bound(CpuidKey{leaf, 0}); it != map_.end() && it->first.leaf == leaf; ++it)
    out.push_back(it->first.subleaf);
  return out;
}

std::vector<CpuidDiff> CpuidTable::diff(const CpuidTable& other) const {
  std::vector<CpuidDiff> out;
  auto emit = [&](const CpuidKey& k, const CpuidRegs& a, const CpuidRegs& b) {
    for (Reg r : {Reg::kEax, Reg::kEbx, Reg::kEcx, Reg::kEdx})
      if (a.get(r) != b.get(r)) out.push_back({k, r, a.get(r), b.get(r)});
  };
  auto a = map_.begin();
  auto b = other.map_.begin();
  while (a != map_.end() || b != other.map_.end()) {
    if (b == other.map_.end() || (a != map_.end() && a->first < b->first)) {
      emit(a->first, a->second, CpuidRegs{});
      ++a;
    } else if (a == map_.end() || b->first < a->first) {
      emit(b->first, CpuidRegs{}, b->second);
      ++b;
    } else {
      emit(a->first, a->second, b->second);
      ++a;
      ++b;
    }
  }
  return out;
}

CpuidTable CpuidTable::masked(const CpuidTable& mask) const {
  CpuidTable out;
  for (const auto& [k, r] : map_) {
    CpuidRegs m = mask.get(k.leaf, k.subleaf);
    out.map_[k] = CpuidRegs{r.eax & m.eax, r.ebx & m.ebx, r.ecx & m.ecx, r.edx & m.edx};
  }
  return out;
}

}  // namespace cpumodel
