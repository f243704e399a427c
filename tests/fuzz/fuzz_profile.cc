// Host profiles (PROFILE arguments, `import`, `decode`): parse_profile sniffs the format and must
// reject or accept any bytes without crashing. For an accepted profile:
//  - our YAML round-trips it: parse(profile_to_yaml(p)) has p's tables, MSRs, name, topology, facts;
//  - `cpuid -r` input round-trips its raw table: parse(table_to_cpuid_r(p.cpuid)).cpuid == p.cpuid;
//  - decode_cpu and the feature view run on it.
// Built once per format (CPUMODEL_FUZZ_FORMAT): inputs sniffed as another format are rejected
// from the corpus (return -1) so each target stays in its grammar.
#include <cstdint>

#include "cpumodel/cpuid/decode.h"
#include "cpumodel/cpuid/profile.h"
#include "fuzz_check.h"

namespace cpumodel::fuzz {
namespace {

std::string describe_diff(const CpuidTable& a, const CpuidTable& b) {
  std::string out;
  for (const auto& d : a.diff(b)) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "leaf %08x.%u reg %d: %08x vs %08x\n", d.key.leaf, d.key.subleaf,
                  static_cast<int>(d.reg), d.left, d.right);
    out += buf;
  }
  out += "entries " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
  return out;
}

void check_yaml_round_trip(const HostProfile& p) {
  std::string yaml = profile_to_yaml(p);
  auto q = parse_profile(yaml, "roundtrip.yaml");
  check(q.ok(), "profile_to_yaml output parses", yaml + "\n" + (q ? "" : q.error().message));
  check(q->cpuid == p.cpuid, "YAML round trip keeps the CPUID table", describe_diff(p.cpuid, q->cpuid));
  check(q->msrs == p.msrs, "YAML round trip keeps the MSRs", yaml);
  check(q->kvm_cpuid == p.kvm_cpuid, "YAML round trip keeps the KVM CPUID table", yaml);
  check(q->kvm_msrs == p.kvm_msrs, "YAML round trip keeps the KVM MSRs", yaml);
  check(q->name == p.name, "YAML round trip keeps the name", p.name + " vs " + q->name);
  check(q->topology == p.topology, "YAML round trip keeps the topology", yaml);
  check(q->facts == p.facts, "YAML round trip keeps the facts", yaml);
  check(q->tsc_khz == p.tsc_khz, "YAML round trip keeps tsc_khz", yaml);
}

void check_cpuid_r_round_trip(const HostProfile& p) {
  std::string text = table_to_cpuid_r(p.cpuid);
  auto q = parse_profile(text, "roundtrip.txt");
  check(q.ok(), "table_to_cpuid_r output parses", text + "\n" + (q ? "" : q.error().message));
  check(q->cpuid == p.cpuid, "cpuid -r round trip keeps the table", describe_diff(p.cpuid, q->cpuid));
}

}  // namespace
}  // namespace cpumodel::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  std::string_view text = as_text(data, size);
  if (sniff_profile_format(text) != CPUMODEL_FUZZ_FORMAT) return -1;
  auto p = parse_profile(text, "fuzz-input");
  if (!p) {
    check_one_line(p.error().message);
    return 0;
  }
  check(p->cpuid.has(0), "an accepted profile has leaf 0");
  DecodedCpu d = decode_cpu(p->cpuid, p->msrs);
  (void)decode_to_text(d, p->name);
  (void)p->guest_features();
  check_yaml_round_trip(*p);
  // Only for cpuid -r input: the other formats accept tables (no extended leaves, say) that the
  // cpuid -r reader's truncation checks rightly refuse.
  if (p->format == "cpuid-r") check_cpuid_r_round_trip(*p);
  return 0;
}
