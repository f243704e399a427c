// The real host probe: the cpuid instruction (pinned to one CPU), /dev/kvm, sysfs, procfs, uname.
// cpu_features is used here only (microarchitecture name), PRIVATE to the library.
#include "cpumodel/cpuid/host_probe.h"
#include "cpumodel/cpuid/guest_cpuid.h"

#include <cpu_features/cpuinfo_x86.h>
#include <cpuid.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <tuple>
#include <vector>

namespace cpumodel {

CpuidRegs HostCpuidSource::query(uint32_t leaf, uint32_t subleaf) const {
  unsigned a = 0, b = 0, c = 0, d = 0;
  __cpuid_count(leaf, subleaf, a, b, c, d);
  return CpuidRegs{a, b, c, d};
}

// ---- enumeration ----
namespace {

enum class SubRule : uint8_t {
  kMaxInEax,     // subleaf 0 EAX = highest subleaf
  kUntilZero,    // until (reg & mask) == 0, that subleaf included; `always` first subleaves unconditional
  kBitmap,       // subleaf 0, then i where bit i of subleaf 0's `reg` is set
  kXsave,        // 0, 1, then i in 2..63 set in XCR0 (0.EDX:EAX) | XSS (1.EDX:ECX)
  kFirstOnly,
};

struct LeafRule {
  uint32_t leaf;
  SubRule rule;
  Reg reg;
  uint32_t mask;
  uint32_t always;
};

// Intel SDM vol. 2A CPUID and AMD APM vol. 3 appendix E, leaf by leaf.
constexpr LeafRule kLeafRules[] = {
    {0x4, SubRule::kUntilZero, Reg::kEax, 0x1f, 0},      // deterministic cache parameters
    {0x7, SubRule::kMaxInEax, Reg::kEax, 0, 0},          // structured extended features
    {0xb, SubRule::kUntilZero, Reg::kEcx, 0xff00, 0},    // x2APIC topology
    {0xd, SubRule::kXsave, Reg::kEax, 0, 0},             // XSAVE state components
    {0xf, SubRule::kBitmap, Reg::kEdx, 0, 0},            // RDT monitoring
    {0x10, SubRule::kBitmap, Reg::kEbx, 0, 0},           // RDT allocation
    {0x12, SubRule::kUntilZero, Reg::kEax, 0xf, 2},      // SGX: 0, 1, then EPC sections
    {0x14, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // processor trace
    {0x17, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // SoC vendor attributes
    {0x18, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // TLB parameters
    {0x1a, SubRule::kFirstOnly, Reg::kEax, 0, 0},        // hybrid core type
    {0x1b, SubRule::kUntilZero, Reg::kEax, 0xfff, 0},    // PCONFIG
    {0x1d, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // AMX tile palettes
    {0x1e, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // AMX TMUL
    {0x1f, SubRule::kUntilZero, Reg::kEcx, 0xff00, 0},   // V2 extended topology
    {0x20, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // processor history reset
    {0x23, SubRule::kBitmap, Reg::kEax, 0, 0},           // architectural PMU extensions: valid subleaves in EAX
    {0x24, SubRule::kMaxInEax, Reg::kEax, 0, 0},         // AVX10
    {0x8000001d, SubRule::kUntilZero, Reg::kEax, 0x1f, 0},  // AMD cache topology
    {0x80000020, SubRule::kBitmap, Reg::kEbx, 0, 0},        // AMD platform QoS
    {0x80000026, SubRule::kUntilZero, Reg::kEcx, 0xff00, 0},  // AMD extended CPU topology
};

constexpr uint32_t kMaxSubleaves = 64;
constexpr uint32_t kMaxRangeLeaves = 0x100;

void enumerate_leaf(const CpuidSource& src, uint32_t leaf, CpuidTable& out) {
  const LeafRule* rule = nullptr;
  for (const auto& r : kLeafRules)
    if (r.leaf == leaf) rule = &r;
  CpuidRegs first = src.query(leaf, 0);
  out.set(leaf, 0, first);
  if (!rule || !is_indexed_leaf(leaf)) return;
  auto add = [&](uint32_t sub) {
    CpuidRegs r = src.query(leaf, sub);
    out.set(leaf, sub, r);
    return r;
  };
  switch (rule->rule) {
    case SubRule::kMaxInEax:
      for (uint32_t s = 1; s <= std::min(first.eax, kMaxSubleaves); ++s) add(s);
      break;
    case SubRule::kUntilZero:
      if (rule->always == 0 && (first.get(rule->reg) & rule->mask) == 0) break;
      for (uint32_t s = 1; s < kMaxSubleaves; ++s)
        if ((add(s).get(rule->reg) & rule->mask) == 0 && s >= rule->always) break;
      break;
    case SubRule::kBitmap:
      for (uint32_t s = 1; s < 32; ++s)
        if ((first.get(rule->reg) >> s) & 1) add(s);
      break;
    case SubRule::kXsave: {
      CpuidRegs one = add(1);
      uint64_t mask = (uint64_t{first.edx} << 32 | first.eax) | (uint64_t{one.edx} << 32 | one.ecx);
      for (uint32_t s = 2; s < 64; ++s)
        if ((mask >> s) & 1) add(s);
      break;
    }
    case SubRule::kFirstOnly:
      break;
  }
}

void enumerate_range(const CpuidSource& src, uint32_t base, uint32_t max, CpuidTable& out) {
  if (max < base) return;
  max = std::min(max, base + kMaxRangeLeaves - 1);
  for (uint32_t leaf = base; leaf <= max; ++leaf) enumerate_leaf(src, leaf, out);
}

}  // namespace

CpuidTable enumerate_cpuid(const CpuidSource& src) {
  CpuidTable out;
  enumerate_range(src, 0, src.query(0, 0).eax, out);
  if ((src.query(1, 0).ecx >> 31) & 1) {
    // A hypervisor: 0x40000000 (EAX 0 means 0x40000001, as KVM once did), then other ranges
    // spaced by 0x100 that answer with a maximum inside themselves (KVM behind Hyper-V's leaves).
    uint32_t max = src.query(0x40000000, 0).eax;
    enumerate_range(src, 0x40000000, max < 0x40000000 ? 0x40000001 : max, out);
    for (uint32_t base = 0x40000100; base <= 0x40000f00; base += 0x100) {
      uint32_t m = src.query(base, 0).eax;
      if (m >= base && m <= base + 0xff) enumerate_range(src, base, m, out);
    }
  }
  enumerate_range(src, 0x80000000, src.query(0x80000000, 0).eax, out);
  std::string vendor = out.vendor();
  if (vendor == "CentaurHauls" || vendor == "  Shanghai  ") {
    uint32_t max = src.query(0xc0000000, 0).eax;
    if (max >= 0xc0000000 && max <= 0xc00000ff) enumerate_range(src, 0xc0000000, max, out);
  }
  return out;
}

// ---- sysfs / procfs ----

std::vector<unsigned> parse_cpu_list(std::string_view text) {
  std::vector<unsigned> out;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view part = text.substr(pos, end - pos);
    size_t dash = part.find('-');
    auto num = [](std::string_view s, unsigned& v) {
      if (s.empty() || s.size() > 7) return false;
      v = 0;
      for (char c : s) {
        if (c < '0' || c > '9') return false;
        v = v * 10 + static_cast<unsigned>(c - '0');
      }
      return true;
    };
    unsigned lo = 0, hi = 0;
    if (!num(part.substr(0, dash), lo)) return {};
    hi = lo;
    if (dash != std::string_view::npos && !num(part.substr(dash + 1), hi)) return {};
    if (hi < lo) return {};
    for (unsigned c = lo; c <= hi; ++c) out.push_back(c);
    pos = end + 1;
  }
  return out;
}

namespace {

std::string read_small(const std::string& path) {
  auto r = read_file(path, 1 << 20);
  if (!r) return "";
  std::string s = std::move(*r);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

int read_int(const std::string& path, int fallback) {
  std::string s = read_small(path);
  if (s.empty()) return fallback;
  char* end = nullptr;
  long v = std::strtol(s.c_str(), &end, 10);
  return (end && *end == 0) ? static_cast<int>(v) : fallback;
}

}  // namespace

HostTopology read_topology(const std::string& sysfs) {
  HostTopology t;
  std::vector<unsigned> cpus = parse_cpu_list(read_small(sysfs + "/devices/system/cpu/online"));
  if (cpus.empty()) return t;
  using Die = std::tuple<int, int>;
  using Core = std::tuple<int, int, int>;
  std::map<int, std::set<int>> dies_of;
  std::map<Die, std::set<int>> cores_of;
  std::map<Core, unsigned> threads_of;
  for (unsigned c : cpus) {
    std::string dir = sysfs + "/devices/system/cpu/cpu" + std::to_string(c) + "/topology/";
    int pkg = read_int(dir + "physical_package_id", 0);
    int die = read_int(dir + "die_id", 0);
    int core = read_int(dir + "core_id", static_cast<int>(c));
    dies_of[pkg].insert(die);
    cores_of[{pkg, die}].insert(core);
    ++threads_of[{pkg, die, core}];
  }
  t.online_cpus = static_cast<unsigned>(cpus.size());
  t.packages = static_cast<unsigned>(dies_of.size());
  for (const auto& [k, v] : dies_of) t.dies = std::max(t.dies, static_cast<unsigned>(v.size()));
  for (const auto& [k, v] : cores_of) t.cores = std::max(t.cores, static_cast<unsigned>(v.size()));
  for (const auto& [k, v] : threads_of) t.threads = std::max(t.threads, v);
  size_t nodes = parse_cpu_list(read_small(sysfs + "/devices/system/node/online")).size();
  t.numa_nodes = nodes ? static_cast<unsigned>(nodes) : 1;
  return t;
}

namespace {

// "key : value" of the first processor block of /proc/cpuinfo.
std::string cpuinfo_field(const std::string& cpuinfo, const std::string& key) {
  size_t pos = 0;
  while (pos < cpuinfo.size()) {
    size_t end = cpuinfo.find('\n', pos);
    if (end == std::string::npos) end = cpuinfo.size();
    std::string_view line(cpuinfo.data() + pos, end - pos);
    if (line.empty()) break;  // end of the first processor
    size_t colon = line.find(':');
    if (colon != std::string_view::npos) {
      std::string_view k = line.substr(0, colon);
      while (!k.empty() && (k.back() == ' ' || k.back() == '\t')) k.remove_suffix(1);
      if (k == key) {
        std::string_view v = line.substr(colon + 1);
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        return std::string(v);
      }
    }
    pos = end + 1;
  }
  return "";
}

// Runs `fn` with the calling thread pinned to the first CPU it may use; returns that CPU.
template <class F>
int on_first_cpu(F&& fn) {
  cpu_set_t old_set;
  CPU_ZERO(&old_set);
  if (sched_getaffinity(0, sizeof old_set, &old_set) != 0) {
    fn();
    return -1;
  }
  int cpu = -1;
  for (int c = 0; c < CPU_SETSIZE && cpu < 0; ++c)
    if (CPU_ISSET(c, &old_set)) cpu = c;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  bool pinned = cpu >= 0 && sched_setaffinity(0, sizeof one, &one) == 0;
  fn();
  if (pinned) sched_setaffinity(0, sizeof old_set, &old_set);
  return pinned ? cpu : -1;
}

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

// The uapi structs end in __DECLARE_FLEX_ARRAY, which in C++ adds a 1-byte empty struct: sizeof and
// the offset of the array differ from the kernel's, and so would the ioctl numbers built from them.
// So the ioctls are spelled with the kernel's header sizes and buffers are laid out by hand.
struct KvmCountHeader {  // kvm_cpuid2, kvm_msrs: u32 count, u32 padding, then the entries
  uint32_t count, padding;
};
struct KvmMsrListHeader {  // kvm_msr_list: u32 count, then u32 indices
  uint32_t count;
};
constexpr unsigned long kGetSupportedCpuid = _IOWR(KVMIO, 0x05, KvmCountHeader);
constexpr unsigned long kGetMsrFeatureIndexList = _IOWR(KVMIO, 0x0a, KvmMsrListHeader);
constexpr unsigned long kGetMsrs = _IOWR(KVMIO, 0x88, KvmCountHeader);
static_assert(sizeof(kvm_cpuid_entry2) == 40 && sizeof(kvm_msr_entry) == 16);

// KVM_GET_SUPPORTED_CPUID; errno of the failure, or 0.
int kvm_supported_cpuid(int kvm, CpuidTable& t) {
  int err = E2BIG;
  for (uint32_t nent = 128; nent <= 4096 && err == E2BIG; nent *= 2) {
    std::vector<uint8_t> buf(sizeof(KvmCountHeader) + nent * sizeof(kvm_cpuid_entry2), 0);
    KvmCountHeader h{nent, 0};
    std::memcpy(buf.data(), &h, sizeof h);
    if (::ioctl(kvm, kGetSupportedCpuid, buf.data()) < 0) {
      err = errno;
      continue;
    }
    t = from_kvm_cpuid2(buf.data(), buf.size());  // nent was written back by KVM
    return 0;
  }
  return err;
}

MsrMap kvm_feature_msrs(int kvm) {
  MsrMap out;
  if (::ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES) <= 0) return out;
  KvmMsrListHeader probe{0};
  if (::ioctl(kvm, kGetMsrFeatureIndexList, &probe) < 0 && errno != E2BIG) return out;
  uint32_t n = probe.count;
  if (n == 0 || n > 4096) return out;
  std::vector<uint32_t> list(n + 1, 0);
  list[0] = n;
  if (::ioctl(kvm, kGetMsrFeatureIndexList, list.data()) < 0) return out;
  n = std::min(n, list[0]);
  std::vector<uint8_t> buf(sizeof(KvmCountHeader) + n * sizeof(kvm_msr_entry), 0);
  KvmCountHeader h{n, 0};
  std::memcpy(buf.data(), &h, sizeof h);
  for (uint32_t i = 0; i < n; ++i) {
    kvm_msr_entry e{};
    e.index = list[i + 1];
    std::memcpy(buf.data() + sizeof h + i * sizeof e, &e, sizeof e);
  }
  int got = ::ioctl(kvm, kGetMsrs, buf.data());
  for (int i = 0; i < got && static_cast<uint32_t>(i) < n; ++i) {
    kvm_msr_entry e{};
    std::memcpy(&e, buf.data() + sizeof h + i * sizeof e, sizeof e);
    out[e.index] = e.data;
  }
  return out;
}

// KVM_GET_TSC_KHZ on a throw-away vCPU.
std::optional<double> kvm_tsc_khz(int kvm) {
  if (::ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) <= 0) return std::nullopt;
  Fd vm(::ioctl(kvm, KVM_CREATE_VM, 0));
  if (vm.fd < 0) return std::nullopt;
  Fd vcpu(::ioctl(vm.fd, KVM_CREATE_VCPU, 0));
  if (vcpu.fd < 0) return std::nullopt;
  int khz = ::ioctl(vcpu.fd, KVM_GET_TSC_KHZ, 0);
  if (khz <= 0) return std::nullopt;
  return static_cast<double>(khz);
}

void probe_kvm(const ProbeOptions& o, HostProfile& p) {
  Fd kvm(::open(o.kvm_device.c_str(), O_RDWR | O_CLOEXEC));
  if (kvm.fd < 0) {
    int e = errno;
    p.facts["kvm_device"] = e == ENOENT ? "absent"
                            : (e == EACCES || e == EPERM)
                                ? "permission denied (add the user to group kvm)"
                                : std::string("cannot open: ") + std::strerror(e);
    return;
  }
  p.facts["kvm_device"] = "accessible";
  int api = ::ioctl(kvm.fd, KVM_GET_API_VERSION, 0);
  p.facts["kvm_api_version"] = api < 0 ? std::string("error: ") + std::strerror(errno) : std::to_string(api);
  if (api != KVM_API_VERSION) return;
  CpuidTable supported;
  if (int e = kvm_supported_cpuid(kvm.fd, supported))
    p.facts["kvm_supported_cpuid"] = std::string("KVM_GET_SUPPORTED_CPUID failed: ") + std::strerror(e);
  else
    p.kvm_cpuid = std::move(supported);
  MsrMap msrs = kvm_feature_msrs(kvm.fd);
  if (!msrs.empty()) p.kvm_msrs = std::move(msrs);
  if (!p.tsc_khz) {
    p.tsc_khz = kvm_tsc_khz(kvm.fd);
    if (p.tsc_khz) p.facts["tsc_khz_source"] = "KVM_GET_TSC_KHZ";
  }
}

void probe_backend(const ProbeOptions& o, HostProfile& p) {
  std::string backends, nested;
  for (const char* m : {"kvm_intel", "kvm_amd", "kvm_pvm"}) {
    std::string dir = o.sysfs_root + "/module/" + m;
    if (::access(dir.c_str(), F_OK) != 0) continue;
    backends += (backends.empty() ? "" : ",") + std::string(m);
    std::string n = read_small(dir + "/parameters/nested");
    if (!n.empty() && nested.empty()) nested = (n == "Y" || n == "1") ? "on" : "off";
  }
  p.facts["kvm_backend"] = backends.empty() ? "none" : backends;
  p.facts["kvm_nested"] = nested.empty() ? "unknown" : nested;
}

// Host feature MSRs the CPU enumerates (ARCH_CAPABILITIES, CORE_CAPABILITIES), via the msr driver;
// best effort (needs root and the msr module).
void probe_host_msrs(int cpu, HostProfile& p) {
  if (cpu < 0) return;
  Fd fd(::open(("/dev/cpu/" + std::to_string(cpu) + "/msr").c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.fd < 0) return;
  const std::pair<uint32_t, unsigned> kMsrs[] = {{0x10a, 29}, {0xcf, 30}};  // CPUID.07H:EDX bit
  for (auto [index, bit] : kMsrs) {
    uint64_t v = 0;
    if (p.cpuid.bit(7, 0, Reg::kEdx, bit) && ::pread(fd.fd, &v, sizeof v, index) == sizeof v) p.msrs[index] = v;
  }
}

void probe_facts(const ProbeOptions& o, HostProfile& p) {
  utsname u{};
  if (::uname(&u) == 0) {
    p.name = u.nodename;
    p.facts["hostname"] = u.nodename;
    p.facts["kernel"] = std::string(u.sysname) + " " + u.release + " " + u.machine;
    p.facts["kernel_build"] = u.version;
  }
  std::string cpuinfo = read_small(o.procfs_root + "/cpuinfo");
  std::string mc = cpuinfo_field(cpuinfo, "microcode");
  p.facts["microcode"] = mc.empty() ? "unknown" : mc;
  std::string flags = " " + cpuinfo_field(cpuinfo, "flags") + " ";
  bool vmx = flags.find(" vmx ") != std::string::npos, svm = flags.find(" svm ") != std::string::npos;
  p.facts["virt_flags"] = vmx && svm ? "vmx svm" : vmx ? "vmx" : svm ? "svm" : "none";
  std::string khz = read_small(o.sysfs_root + "/devices/system/cpu/cpu0/tsc_freq_khz");
  if (!khz.empty() && std::strtod(khz.c_str(), nullptr) > 0) {
    p.tsc_khz = std::strtod(khz.c_str(), nullptr);
    p.facts["tsc_khz_source"] = "sysfs tsc_freq_khz";
  }
}

}  // namespace

Result<HostProfile> probe_host(const ProbeOptions& o) {
  HostProfile p;
  p.format = "probe";
  p.source = "this host";
  int cpu = -1;
  if (o.cpuid) {
    p.cpuid = enumerate_cpuid(*o.cpuid);
  } else {
    HostCpuidSource real;
    cpu = on_first_cpu([&] { p.cpuid = enumerate_cpuid(real); });
    cpu_features::X86Info info = cpu_features::GetX86Info();
    p.facts["microarchitecture"] =
        cpu_features::GetX86MicroarchitectureName(cpu_features::GetX86Microarchitecture(&info));
    probe_host_msrs(cpu, p);
  }
  if (!p.cpuid.has(0)) return host_error("this host answered no CPUID leaf 0");
  p.facts["cpuid_cpu"] = cpu >= 0 ? std::to_string(cpu) : "unpinned";
  probe_facts(o, p);
  p.topology = read_topology(o.sysfs_root);
  probe_backend(o, p);
  if (o.query_kvm) probe_kvm(o, p);
  if (p.name.empty()) p.name = "host";
  return p;
}

}  // namespace cpumodel
