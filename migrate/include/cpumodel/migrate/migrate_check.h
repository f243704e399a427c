// migrate-check: a guest started on the first host of a path with a SPEC (its CPUID is what it
// saw there: the spec filtered by that host's guest features, `host` and `max` included) is moved
// along the path and back to where it started. Each hop is ok or says exactly why not.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/features.h"
#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/result.h"
#include "cpumodel/models/catalog.h"

namespace cpumodel {

// What a running guest depends on, as fixed at start.
struct GuestImage {
  std::string model;          // resolved model ("Haswell-v4", "host")
  std::string started_on;     // host name
  std::string host_vendor;    // vendor of the host it started on
  FeatureSet features;        // effective features (CPUID and feature MSRs)
  unsigned phys_bits = 0;
  uint64_t xcr0 = 0;          // XSAVE components the guest can enable
  uint32_t xsave_size = 0;    // CPUID.0DH.0:ECX the guest saw
  struct XsaveComponent {
    unsigned index;         // XCR0 bit (>= 2)
    uint32_t size, offset;  // CPUID.0DH.index:EAX, EBX as the guest saw them
  };
  std::vector<XsaveComponent> xsave_layout;
  bool invtsc = false;
  std::optional<uint64_t> tsc_khz;  // pinned tsc-frequency
  std::vector<std::string> notes;   // what the start host filtered
};

struct MigrateHop {
  std::string from, to;
  bool ok = true;
  bool is_return = false;           // the hop back to the start host
  std::vector<std::string> reasons; // "B lacks CPUID.07H:EBX.avx2 [bit 5]", "phys-bits: ..."
  FeatureSet missing;               // the features among those reasons, for grouped text
};

struct MigrateCheck {
  bool ok = true;
  GuestImage guest;
  std::vector<MigrateHop> hops;
};

// The guest as started on `host` with `spec`.
Result<GuestImage> start_guest(const Catalog& catalog, std::string_view spec, const HostProfile& host);
// Reasons a guest cannot move from `from` to `to` (empty: it can).
std::vector<std::string> hop_reasons(const GuestImage& guest, const HostProfile& from, const HostProfile& to);
// The whole path (at least 2 hosts), plus the return hop when the path does not end where it began.
Result<MigrateCheck> migrate_check(const Catalog& catalog, std::string_view spec, const std::vector<HostProfile>& path);

// The JSON of CLI.md: ok, hops[] of from, to, ok, reasons[] (plus return, model, started_on).
std::string migrate_check_json(const MigrateCheck& m);
// Aligned text for people.
std::string migrate_check_text(const MigrateCheck& m);

}  // namespace cpumodel
