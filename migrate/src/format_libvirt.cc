// --format libvirt: <cpu mode='custom' match='exact'> with libvirt's model and feature names.
#include <algorithm>
#include <map>

#include "baseline_internal.h"
#include "cpumodel/migrate/format.h"

namespace cpumodel {
namespace {

// Every x86 feature name of libvirt 9.0 (Debian 12: /usr/share/libvirt/cpu_map/x86_features.xml).
// Our dictionary resolves each one (libvirt spellings are aliases there); a feature whose libvirt
// name is missing here is one libvirt 9.0 does not know and cannot be put in its XML.
constexpr const char* kLibvirtFeatures[] = {
    "fpu", "vme", "de", "pse", "tsc", "msr", "pae", "mce", "cx8", "apic", "sep", "mtrr", "pge",
    "mca", "cmov", "pat", "pse36", "pn", "clflush", "ds", "acpi", "mmx", "fxsr", "sse", "sse2", "ss",
    "ht", "tm", "ia64", "pbe", "pni", "pclmuldq", "dtes64", "monitor", "ds_cpl", "vmx", "smx", "est",
    "tm2", "ssse3", "cid", "fma", "cx16", "xtpr", "pdcm", "pcid", "dca", "sse4.1", "sse4.2",
    "x2apic", "movbe", "popcnt", "tsc-deadline", "aes", "xsave", "osxsave", "avx", "f16c", "rdrand",
    "hypervisor", "arat", "fsgsbase", "tsc_adjust", "sgx", "bmi1", "hle", "avx2", "smep", "bmi2",
    "erms", "invpcid", "rtm", "cmt", "mpx", "avx512f", "avx512dq", "rdseed", "adx", "smap",
    "avx512ifma", "pcommit", "clflushopt", "clwb", "intel-pt", "avx512pf", "avx512er", "avx512cd",
    "sha-ni", "avx512bw", "avx512vl", "avx512vbmi", "umip", "pku", "ospke", "waitpkg", "avx512vbmi2",
    "gfni", "vaes", "vpclmulqdq", "avx512vnni", "avx512bitalg", "avx512-vpopcntdq", "la57", "rdpid",
    "bus-lock-detect", "cldemote", "movdiri", "movdir64b", "sgxlc", "pks", "avx512-4vnniw",
    "avx512-4fmaps", "fsrm", "avx512-vp2intersect", "md-clear", "serialize", "tsx-ldtrk", "pconfig",
    "arch-lbr", "amx-bf16", "avx512-fp16", "amx-tile", "amx-int8", "spec-ctrl", "stibp",
    "arch-capabilities", "core-capability", "ssbd", "avx-vnni", "avx512-bf16", "xsaveopt", "xsavec",
    "xgetbv1", "xsaves", "xfd", "mbm_total", "mbm_local", "sgx1", "sgx2", "sgx-exinfo", "sgx-debug",
    "sgx-mode64", "sgx-provisionkey", "sgx-tokenkey", "sgx-kss", "intel-pt-lip", "syscall", "nx",
    "mmxext", "fxsr_opt", "pdpe1gb", "rdtscp", "lm", "3dnowext", "3dnow", "lahf_lm", "cmp_legacy",
    "svm", "extapic", "cr8legacy", "abm", "sse4a", "misalignsse", "3dnowprefetch", "osvw", "ibs",
    "xop", "skinit", "wdt", "lwp", "fma4", "tce", "cvt16", "nodeid_msr", "tbm", "topoext",
    "perfctr_core", "perfctr_nb", "invtsc", "clzero", "xsaveerptr", "wbnoinvd", "ibpb", "ibrs",
    "amd-stibp", "amd-ssbd", "virt-ssbd", "amd-no-ssb", "npt", "lbrv", "svm-lock", "nrip-save",
    "tsc-scale", "vmcb-clean", "flushbyasid", "decodeassists", "pause-filter", "pfthreshold", "avic",
    "v-vmsave-vmload", "vgif", "svme-addr-chk", "rdctl-no", "ibrs-all", "rsba", "skip-l1dfl-vmentry",
    "ssb-no", "mds-no", "pschange-mc-no", "tsx-ctrl", "taa-no", "split-lock-detect",
};

// libvirt 9.0's x86 CPU models (/usr/share/libvirt/cpu_map/x86_*.xml).
constexpr const char* kLibvirtModels[] = {
    "486", "Broadwell-IBRS", "Broadwell-noTSX-IBRS", "Broadwell-noTSX", "Broadwell",
    "Cascadelake-Server-noTSX", "Cascadelake-Server", "Conroe", "Cooperlake", "Dhyana", "EPYC-IBPB",
    "EPYC-Milan", "EPYC-Rome", "EPYC", "Haswell-IBRS", "Haswell-noTSX-IBRS", "Haswell-noTSX",
    "Haswell", "Icelake-Client-noTSX", "Icelake-Client", "Icelake-Server-noTSX", "Icelake-Server",
    "IvyBridge-IBRS", "IvyBridge", "Nehalem-IBRS", "Nehalem", "Opteron_G1", "Opteron_G2",
    "Opteron_G3", "Opteron_G4", "Opteron_G5", "Penryn", "SandyBridge-IBRS", "SandyBridge",
    "Skylake-Client-IBRS", "Skylake-Client-noTSX-IBRS", "Skylake-Client", "Skylake-Server-IBRS",
    "Skylake-Server-noTSX-IBRS", "Skylake-Server", "Snowridge", "Westmere-IBRS", "Westmere",
    "athlon", "core2duo", "coreduo", "cpu64-rhel5", "cpu64-rhel6", "kvm32", "kvm64", "n270",
    "pentium", "pentium2", "pentium3", "pentiumpro", "phenom", "qemu32", "qemu64",
};

const std::map<FeatureId, std::string>& libvirt_names() {
  static const std::map<FeatureId, std::string> m = [] {
    std::map<FeatureId, std::string> out;
    for (const char* n : kLibvirtFeatures)
      if (auto id = find_feature(n)) out.emplace(*id, n);
    return out;
  }();
  return m;
}

}  // namespace

std::string libvirt_feature_name(FeatureId id) {
  auto it = libvirt_names().find(id);
  return it == libvirt_names().end() ? std::string() : it->second;
}

bool libvirt_knows_model(std::string_view name) {
  return std::any_of(std::begin(kLibvirtModels), std::end(kLibvirtModels), [&](const char* m) { return name == m; });
}

std::string libvirt_vendor_name(std::string_view v) {
  if (v == "GenuineIntel") return "Intel";
  if (v == "AuthenticAMD") return "AMD";
  if (v == "HygonGenuine") return "Hygon";
  return "";
}

namespace {

// libvirt names models as QEMU's v1 or by a version's alias ("Haswell-noTSX-IBRS").
std::string libvirt_model_of(const ModelEntry& m) {
  if (!m.alias.empty() && libvirt_knows_model(m.alias)) return m.alias;
  if (m.version == 1 && libvirt_knows_model(m.base_name)) return m.base_name;
  return "";
}

// The libvirt model to write: the chosen one when libvirt knows it, else the best-ranked runnable
// model libvirt knows, else qemu64/kvm64; with the catalog entry it stands for.
std::pair<std::string, const ModelEntry*> pick_libvirt_model(const Baseline& b, const Catalog* catalog) {
  if (b.model && !libvirt_model_of(*b.model).empty()) return {libvirt_model_of(*b.model), b.model};
  for (const auto& c : b.candidates)
    if (c.runnable && !libvirt_model_of(*c.model).empty()) return {libvirt_model_of(*c.model), c.model};
  const char* fallback = b.vendor == "AuthenticAMD" ? "qemu64" : "kvm64";
  return {fallback, catalog ? catalog->find(fallback) : nullptr};
}

}  // namespace

std::string baseline_libvirt(const Baseline& b, const Catalog* catalog) {
  auto [name, entry] = pick_libvirt_model(b, catalog);
  // libvirt's cpu_map models are not always QEMU's (libvirt 9.0's Haswell-noTSX has no f16c,
  // rdrand, vme...): every feature is required explicitly, as `virsh cpu-baseline --features`
  // does, and what the model (as QEMU defines it) has beyond the result is disabled.
  FeatureSet base = entry ? entry->definition.features : FeatureSet{};
  FeatureSet require = b.features;
  FeatureSet disable = base - b.features;
  std::string out = "<!-- cpumodel baseline of " + std::to_string(b.hosts.size()) + " hosts: -cpu " + b.cpu_string() +
                    " -->\n<cpu mode='custom' match='exact'>\n  <model fallback='forbid'>" + name + "</model>\n";
  std::string vendor = libvirt_vendor_name(b.vendor);
  if (!vendor.empty()) out += "  <vendor>" + vendor + "</vendor>\n";
  std::vector<std::string> unknown;
  std::vector<std::pair<std::string, const char*>> lines;
  for (FeatureId id : require.ids()) {
    std::string n = libvirt_feature_name(id);
    if (n.empty()) unknown.emplace_back(feature(id).name);
    else lines.push_back({n, "require"});
  }
  for (FeatureId id : disable.ids()) {
    std::string n = libvirt_feature_name(id);
    if (!n.empty()) lines.push_back({n, "disable"});
  }
  std::sort(lines.begin(), lines.end());
  for (const auto& [n, policy] : lines) out += "  <feature policy='" + std::string(policy) + "' name='" + n + "'/>\n";
  if (!unknown.empty())
    out += "  <!-- not known to libvirt 9.0, left out: " + internal::join(unknown) + " -->\n";
  return out + "</cpu>\n";
}

std::string libvirt_host_xml(const std::string& cpuid_vendor, const FeatureSet& features) {
  std::string out = "<cpu>\n  <arch>x86_64</arch>\n  <model>486</model>\n";
  std::string vendor = libvirt_vendor_name(cpuid_vendor);
  if (!vendor.empty()) out += "  <vendor>" + vendor + "</vendor>\n";
  std::vector<std::string> names;
  for (FeatureId id : features.ids())
    if (std::string n = libvirt_feature_name(id); !n.empty()) names.push_back(n);
  std::sort(names.begin(), names.end());
  for (const auto& n : names) out += "  <feature policy='require' name='" + n + "'/>\n";
  for (const char* n : {"fpu", "pse", "vme"})  // model 486's own features
    if (auto id = find_feature(n); id && !features.has(*id)) out += "  <feature policy='disable' name='" + std::string(n) + "'/>\n";
  return out + "</cpu>\n";
}

}  // namespace cpumodel
