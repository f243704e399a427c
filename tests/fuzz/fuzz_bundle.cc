// Protobuf profile bundles (`import --bundle`, PROFILE arguments of baseline/migrate-check). Any
// bytes go through both readers: decode_bundle (full profiles) and load_host_summaries (the fast
// path `baseline` uses, which skips building profiles). Properties:
//  - both readers accept the same inputs, and give the same summaries (differential);
//  - an accepted bundle re-encodes to one that decodes to the same hosts (parse(print(x)) == x).
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "cpumodel/migrate/baseline.h"
#include "cpumodel/migrate/bundle.h"
#include "fuzz_check.h"

namespace cpumodel::fuzz {
namespace {

bool same_double(const std::optional<double>& a, const std::optional<double>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return (std::isnan(*a) && std::isnan(*b)) || *a == *b;
}

std::string summary_diff(const HostSummary& a, const HostSummary& b) {
  std::string out;
  auto field = [&](const char* name, bool same) {
    if (!same) out += std::string(name) + " ";
  };
  field("name", a.name == b.name);
  field("vendor", a.vendor == b.vendor);
  field("signature", a.family == b.family && a.model == b.model && a.stepping == b.stepping);
  field("features", a.features == b.features);
  field("from_kvm", a.from_kvm == b.from_kvm);
  field("phys_bits", a.phys_bits == b.phys_bits);
  field("xsave", a.xcr0 == b.xcr0 && a.xss == b.xss && a.xsave_size == b.xsave_size && a.xsave_end == b.xsave_end);
  field("level", a.level == b.level && a.xlevel == b.xlevel);
  field("tsc_khz", same_double(a.tsc_khz, b.tsc_khz));
  return out;
}

void check_same_hosts(const std::vector<HostProfile>& a, const std::vector<HostProfile>& b) {
  check(a.size() == b.size(), "re-encoded bundle keeps the host count");
  for (size_t i = 0; i < a.size(); ++i) {
    check(a[i].name == b[i].name, "re-encoded bundle keeps names", a[i].name);
    check(a[i].cpuid == b[i].cpuid && a[i].kvm_cpuid == b[i].kvm_cpuid, "re-encoded bundle keeps tables", a[i].name);
    check(a[i].msrs == b[i].msrs && a[i].kvm_msrs == b[i].kvm_msrs, "re-encoded bundle keeps MSRs", a[i].name);
    check(a[i].topology == b[i].topology, "re-encoded bundle keeps topology", a[i].name);
    check(same_double(a[i].tsc_khz, b[i].tsc_khz), "re-encoded bundle keeps tsc_khz", a[i].name);
  }
}

}  // namespace
}  // namespace cpumodel::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  std::string_view bytes = as_text(data, size);
  if (!is_bundle(bytes)) return -1;  // other formats are the profile targets' business
  auto hosts = decode_bundle(bytes, "fuzz.pb");
  FILE* f = std::fopen(scratch_file("fuzz.pb"), "wb");
  if (!f) std::abort();
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  auto summaries = load_host_summaries({scratch_file("fuzz.pb")});
  if (hosts.ok() != summaries.ok())
    check(false, "decode_bundle and load_host_summaries agree on acceptance",
          hosts ? summaries.error().message : hosts.error().message);
  if (!hosts) return 0;
  check(summaries->size() == hosts->size(), "one summary per host");
  for (size_t i = 0; i < hosts->size(); ++i) {
    std::string diff = summary_diff(summarize_host((*hosts)[i]), (*summaries)[i]);
    check(diff.empty(), "bundle fast path summary == summarize_host(decoded profile)", diff);
  }
  auto again = decode_bundle(encode_bundle(*hosts), "again.pb");
  check(again.ok(), "a re-encoded bundle decodes", again ? "" : again.error().message);
  check_same_hosts(*hosts, *again);
  return 0;
}
