#include "cpumodel/cpuid/decode.h"

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace cpumodel {
namespace {

std::string regs_text(const CpuidRegs& r, bool with_eax) {
  char buf[17];
  size_t n = 0;
  if (with_eax) std::memcpy(buf + n, &r.eax, 4), n += 4;
  std::memcpy(buf + n, &r.ebx, 4), n += 4;
  std::memcpy(buf + n, &r.ecx, 4), n += 4;
  std::memcpy(buf + n, &r.edx, 4), n += 4;
  buf[n] = 0;
  return std::string(buf, strnlen(buf, n));
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(' ');
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(' ');
  return s.substr(b, e - b + 1);
}

uint32_t word_value(const FeatureWordInfo& wi, const CpuidTable& t, const MsrMap& msrs) {
  if (!wi.is_msr) return t.reg_value(wi.leaf_or_msr, wi.subleaf, wi.reg);
  auto it = msrs.find(wi.leaf_or_msr);
  if (it == msrs.end()) return 0;
  return static_cast<uint32_t>(wi.reg == Reg::kEdx ? it->second >> 32 : it->second);
}

// "CPUID.07H:EBX", "CPUID.07H.1:EAX", "MSR(10AH)[63:32]".
std::string word_label(const FeatureWordInfo& wi) {
  char buf[48];
  if (wi.is_msr) {
    std::snprintf(buf, sizeof buf, "MSR(%XH)%s", wi.leaf_or_msr, wi.reg == Reg::kEdx ? "[63:32]" : "");
    return buf;
  }
  std::string leaf = leaf_label(wi.leaf_or_msr);
  if (is_indexed_leaf(wi.leaf_or_msr)) leaf += "." + std::to_string(wi.subleaf);
  return "CPUID." + leaf + ":" + reg_name(wi.reg);
}

// Set bits that are not unknown even though the dictionary gives them no name of their own: AMD
// mirrors CPUID.01H:EDX bits 0-9, 12-17, 23, 24 in CPUID.80000001H:EDX (AMD APM vol. 3, CPUID
// Fn8000_0001_EDX; QEMU's CPUID_EXT2_AMD_ALIASES = 0x0183F3FF).
uint32_t known_unnamed(const FeatureWordInfo& wi) {
  return (!wi.is_msr && wi.leaf_or_msr == 0x80000001 && wi.reg == Reg::kEdx) ? 0x0183F3FFu : 0u;
}

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Appends "label  word word word" wrapped at `width` columns, continuation lines indented.
void append_wrapped(std::string& out, const std::string& label, size_t indent,
                    const std::vector<std::string>& words, size_t width = 100) {
  std::string line = "  " + label;
  line.resize(std::max(line.size() + 1, indent), ' ');
  bool first = true;
  for (const auto& w : words) {
    if (!first && line.size() + 1 + w.size() > width) {
      out += line + "\n";
      line = std::string(indent, ' ');
      first = true;
    }
    if (!first) line += ' ';
    line += w;
    first = false;
  }
  out += line + "\n";
}

}  // namespace

CpuSignature decode_signature(uint32_t eax) {
  CpuSignature s;
  s.raw = eax;
  s.stepping = eax & 0xf;
  s.base_model = (eax >> 4) & 0xf;
  s.base_family = (eax >> 8) & 0xf;
  s.ext_model = (eax >> 16) & 0xf;
  s.ext_family = (eax >> 20) & 0xff;
  s.family = s.base_family == 0xf ? s.base_family + s.ext_family : s.base_family;
  s.model = s.family >= 6 ? (s.ext_model << 4) | s.base_model : s.base_model;
  return s;
}

std::string brand_string(const CpuidTable& t) {
  if (t.max_extended() < 0x80000004) return "";
  std::string s;
  for (uint32_t leaf = 0x80000002; leaf <= 0x80000004; ++leaf) s += regs_text(t.get(leaf), true);
  return trim(s);
}

DecodedCpu decode_cpu(const CpuidTable& t, const MsrMap& msrs) {
  DecodedCpu d;
  d.vendor = t.vendor();
  d.signature = decode_signature(t.get(1).eax);
  d.brand = brand_string(t);
  d.max_basic = t.max_basic();
  d.max_extended = t.max_extended();
  d.features = features_of(t, msrs);
  for (const FeatureWordInfo& wi : feature_words())
    for (uint32_t v = word_value(wi, t, msrs) & ~known_unnamed(wi); v; v &= v - 1) {
      unsigned bit = static_cast<unsigned>(__builtin_ctz(v));
      if (!feature_at(wi.word, bit)) d.unknown_bits.push_back({wi.word, bit, describe_bit(wi.word, bit)});
    }
  d.hypervisor.flag = t.bit(1, 0, Reg::kEcx, 31);
  if (t.has(0x40000000)) {
    CpuidRegs h = t.get(0x40000000);
    d.hypervisor.signature = regs_text(h, false);
    d.hypervisor.max_leaf = h.eax;
  }
  return d;
}

std::string decode_to_text(const DecodedCpu& d, const std::string& title) {
  std::string out;
  if (!title.empty()) out += title + "\n";
  auto row = [&](const char* k, const std::string& v) {
    std::string line = "  ";
    line += k;
    line.resize(14, ' ');
    out += line + v + "\n";
  };
  const CpuSignature& s = d.signature;
  char sig[128];
  std::snprintf(sig, sizeof sig, "%s  family %u (0x%x), model %u (0x%x), stepping %u", hex(s.raw).c_str(), s.family,
                s.family, s.model, s.model, s.stepping);
  row("vendor", d.vendor.empty() ? "(none)" : d.vendor);
  row("brand", d.brand.empty() ? "(none)" : d.brand);
  row("signature", sig);
  row("max leaves", hex(d.max_basic) + " basic, " + hex(d.max_extended) + " extended");
  std::string hv = d.hypervisor.flag ? "flag set" : "flag clear";
  if (!d.hypervisor.signature.empty())
    hv += ", '" + d.hypervisor.signature + "' leaves up to " + hex(d.hypervisor.max_leaf);
  row("hypervisor", hv);
  row("features", std::to_string(d.features.count()) + " named, " + std::to_string(d.unknown_bits.size()) +
                      " unnamed set bits");
  for (const FeatureWordInfo& wi : feature_words()) {
    std::vector<std::string> names;
    for (unsigned bit = 0; bit < 32; ++bit) {
      auto id = feature_at(wi.word, bit);
      if (id && d.features.has(*id)) names.emplace_back(feature(*id).name);
    }
    if (!names.empty()) append_wrapped(out, word_label(wi), 22, names);
  }
  if (!d.unknown_bits.empty()) {
    std::vector<std::string> texts;
    for (const auto& u : d.unknown_bits) texts.push_back(u.text);
    append_wrapped(out, "unnamed", 22, texts);
  }
  return out;
}

void decode_to_json(const DecodedCpu& d, JsonWriter& w) {
  w.begin_object();
  w.field("vendor", d.vendor);
  w.field("family", d.signature.family);
  w.field("model_number", d.signature.model);
  w.field("stepping", d.signature.stepping);
  w.field("signature", static_cast<uint64_t>(d.signature.raw));
  w.field("brand", d.brand);
  w.field("max_basic_leaf", static_cast<uint64_t>(d.max_basic));
  w.field("max_extended_leaf", static_cast<uint64_t>(d.max_extended));
  w.key("features").strings(d.features.names());
  std::vector<std::string> unknown;
  for (const auto& u : d.unknown_bits) unknown.push_back(u.text);
  w.key("unknown_bits").strings(unknown);
  w.key("hypervisor").begin_object();
  w.field("flag", d.hypervisor.flag);
  w.field("signature", d.hypervisor.signature);
  w.field("max_leaf", static_cast<uint64_t>(d.hypervisor.max_leaf));
  w.end_object();
  w.end_object();
}

}  // namespace cpumodel
