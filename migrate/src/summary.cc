// HostProfile -> HostSummary, and the fast path from bundles straight to summaries.
#include <google/protobuf/arena.h>

#include <algorithm>

#include "bundle.pb.h"
#include "bundle_internal.h"
#include "cpumodel/migrate/baseline.h"
#include "cpumodel/migrate/bundle.h"

namespace cpumodel {
namespace {

struct Signature3 {
  unsigned family, model, stepping;
};

Signature3 signature_of(const CpuidTable& raw) {
  uint32_t eax = raw.get(1).eax;
  unsigned base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
  unsigned family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
  unsigned model = (base_family == 6 || base_family == 0xf) ? base_model | (((eax >> 16) & 0xf) << 4) : base_model;
  return {family, model, eax & 0xf};
}

// CPUID.15H: TSC = crystal Hz * EBX / EAX, when the CPU reports all three.
std::optional<double> tsc_from_cpuid(const CpuidTable& raw) {
  if (raw.max_basic() < 0x15) return std::nullopt;
  CpuidRegs r = raw.get(0x15);
  if (r.eax == 0 || r.ebx == 0 || r.ecx == 0) return std::nullopt;
  return static_cast<double>(r.ecx) * r.ebx / r.eax / 1000.0;
}

void fill_xsave(const CpuidTable& guest, HostSummary& s) {
  if (guest.max_basic() < 0xd) return;
  CpuidRegs d0 = guest.get(0xd, 0), d1 = guest.get(0xd, 1);
  s.xcr0 = (uint64_t{d0.edx} << 32) | d0.eax;
  s.xss = (uint64_t{d1.edx} << 32) | d1.ecx;
  s.xsave_size = d0.ecx;
  for (unsigned i = 2; i < s.xsave_end.size(); ++i)
    if (s.xcr0 >> i & 1) {
      CpuidRegs c = guest.get(0xd, i);
      s.xsave_end[i] = c.eax + c.ebx;
    }
}

HostSummary summarize(const std::string& name, const CpuidTable& raw, const CpuidTable& guest,
                      const MsrMap& guest_msrs, bool from_kvm, std::optional<double> tsc_khz) {
  HostSummary s;
  s.name = name;
  s.vendor = raw.vendor();
  auto sig = signature_of(raw);
  s.family = sig.family;
  s.model = sig.model;
  s.stepping = sig.stepping;
  s.features = features_of(guest, guest_msrs);
  if (!from_kvm) s.features |= kvm_synthesised_features();
  s.from_kvm = from_kvm;
  s.level = guest.max_basic();
  s.xlevel = guest.max_extended();
  if (s.xlevel >= 0x80000008) s.phys_bits = guest.get(0x80000008).eax & 0xff;
  if (s.phys_bits == 0) s.phys_bits = s.features.has("pae") ? 36 : 32;  // what the SDM says to assume
  fill_xsave(guest, s);
  s.tsc_khz = tsc_khz ? tsc_khz : tsc_from_cpuid(raw);
  return s;
}

// Leaves a summary reads; a bundle host's other leaves are skipped (100,000 hosts add up).
bool summary_needs(uint32_t leaf) {
  static const std::vector<uint32_t> leaves = [] {
    std::vector<uint32_t> v = {0x0, 0x1, 0xd, 0x15, 0x80000000, 0x80000008};
    for (const auto& w : feature_words())
      if (!w.is_msr) v.push_back(w.leaf_or_msr);
    std::sort(v.begin(), v.end());
    v.erase(std::unique(v.begin(), v.end()), v.end());
    return v;
  }();
  return std::binary_search(leaves.begin(), leaves.end(), leaf);
}

CpuidTable unpack_needed(const google::protobuf::RepeatedField<uint32_t>& words) {
  CpuidTable t;
  for (int i = 0; i + 5 < words.size(); i += 6)
    if (summary_needs(words[i]))
      t.set(words[i], words[i + 1], CpuidRegs{words[i + 2], words[i + 3], words[i + 4], words[i + 5]});
  return t;
}

MsrMap unpack_msrs(const google::protobuf::RepeatedField<uint64_t>& words) {
  MsrMap m;
  for (int i = 0; i + 1 < words.size(); i += 2) m[static_cast<uint32_t>(words[i])] = words[i + 1];
  return m;
}

Status summarize_bundle(std::string_view data, const std::string& path, std::vector<HostSummary>& out) {
  google::protobuf::Arena arena;
  auto* b = google::protobuf::Arena::CreateMessage<pb::Bundle>(&arena);
  auto st = internal::parse_bundle(*b, data, path);
  if (!st) return st;
  out.reserve(out.size() + static_cast<size_t>(b->hosts_size()));
  for (const auto& h : b->hosts()) {
    if (h.cpuid_size() % 6 != 0 || h.kvm_cpuid_size() % 6 != 0 || h.msrs_size() % 2 || h.kvm_msrs_size() % 2)
      return input_error(path + "#" + h.name() + ": corrupt bundle: malformed CPUID or MSR list");
    CpuidTable raw = unpack_needed(h.cpuid());
    std::optional<double> tsc;
    if (h.has_tsc_khz()) tsc = h.tsc_khz();
    if (h.has_kvm_cpuid()) {
      MsrMap msrs = h.has_kvm_msrs() ? unpack_msrs(h.kvm_msrs()) : unpack_msrs(h.msrs());
      out.push_back(summarize(h.name(), raw, unpack_needed(h.kvm_cpuid()), msrs, true, tsc));
    } else {
      out.push_back(summarize(h.name(), raw, raw, unpack_msrs(h.msrs()), false, tsc));
    }
  }
  return ok_status();
}

}  // namespace

HostSummary summarize_host(const HostProfile& p) {
  return summarize(p.name, p.cpuid, p.guest_cpuid(), p.guest_msrs(), p.kvm_cpuid.has_value(), p.tsc_khz);
}

Result<std::vector<HostSummary>> load_host_summaries(const std::vector<std::string>& paths) {
  std::vector<HostSummary> out;
  for (const auto& path : paths) {
    auto data = read_file(path, size_t{2} << 30);
    if (!data) return data.error();
    if (is_bundle(*data)) {
      auto st = summarize_bundle(*data, path, out);
      if (!st) return st.error();
      continue;
    }
    if (data->empty()) return input_error(path + ": empty file, expected a host profile or a bundle");
    auto p = parse_profile(*data, path);
    if (!p) return p.error();
    out.push_back(summarize_host(*p));
  }
  return out;
}

}  // namespace cpumodel
