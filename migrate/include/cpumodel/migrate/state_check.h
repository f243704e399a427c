// migrate-check --state SNAPSHOT --to PROFILE: can this saved guest resume on that host? Everything
// that can break a resume is checked before the resume:
//   - vendor: the destination's CPU vendor is the source host's;
//   - CPUID: every named feature of every vCPU's CPUID in force (and of its saved feature MSRs) is
//     one the destination's KVM can give (KVM_GET_SUPPORTED_CPUID when the profile has it, else the
//     raw CPUID plus what KVM synthesises); guest phys-bits within the destination's;
//   - XSAVE: every component in use (saved XCR0, and IA32_XSS) supported there, at the same size and
//     offset (the saved area follows the source host's CPUID.0DH layout), and the area fits;
//   - MSRs: every saved MSR restorable there (the feature that makes KVM accept it present; in the
//     destination's KVM_GET_MSR_INDEX_LIST when the profile has one: facts["kvm_msr_index_list"]);
//   - TSC: the destination's TSC within 250 ppm of the guest's, or TSC scaling there.
#pragma once

#include <string>
#include <vector>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/migrate/snapshot.h"

namespace cpumodel {

struct StateCheck {
  bool ok = true;
  std::string snapshot;               // what was checked (path or name)
  std::string source;                 // the source host ("hostname (kvm_pvm)")
  std::string destination;            // profile name
  std::vector<std::string> reasons;   // each failure, named: "B lacks CPUID.07H:EBX.avx2 [bit 5]"
  std::vector<std::string> notes;     // what could not be judged, and why
  // The CPUID features among those reasons, by the vCPUs whose CPUID has them ("vCPUs 0-1").
  std::vector<std::pair<std::string, FeatureSet>> missing;
};

StateCheck check_state(const Snapshot& snapshot, const std::string& snapshot_name, const HostProfile& to);

// The destination's TSC frequency in kHz and where it came from ("profile", "CPUID.15H",
// "CPUID.16H", "brand string"), or 0 and "" when nothing says.
std::pair<double, std::string> destination_tsc_khz(const HostProfile& to);

// JSON in migrate-check's schema (CLI.md): ok, hops[] of from, to, ok, reasons[] (one hop), plus
// snapshot and notes. Text for people.
std::string state_check_json(const StateCheck& c);
std::string state_check_text(const StateCheck& c);

}  // namespace cpumodel
