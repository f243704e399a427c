// Output formats of `cpumodel cpuid`: JSON (../shared/CLI.md) and a decoded view for people.
#include <cstdio>
#include <cstring>
#include <string>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/json.h"

namespace cpumodel {
namespace {

std::string hex(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%x", v);
  return buf;
}

std::string regs_text(const CpuidTable& t, uint32_t leaf, uint32_t first, uint32_t count) {
  std::string s;
  for (uint32_t i = 0; i < count; ++i) {
    CpuidRegs r = t.get(leaf + i, first);
    for (uint32_t v : {r.eax, r.ebx, r.ecx, r.edx})
      for (int b = 0; b < 4; ++b) {
        char c = static_cast<char>(v >> (8 * b));
        if (c) s += c;
      }
  }
  return s;
}

void line(std::string& out, const char* label, const std::string& text) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "  %-12s", label);
  out += buf;
  out += text;
  out += '\n';
}

// One deterministic-cache subleaf (leaf 4 or 0x8000001D): "L1d  32 KiB, 8-way, 64-byte lines, 64 sets; shared by 1".
std::string cache_text(const CpuidRegs& r) {
  static const char* const kTypes[] = {"?", "d", "i", ""};
  unsigned type = r.eax & 0x1f, level = (r.eax >> 5) & 7;
  unsigned ways = (r.ebx >> 22) + 1, parts = ((r.ebx >> 12) & 0x3ff) + 1, line_size = (r.ebx & 0xfff) + 1;
  uint64_t sets = uint64_t{r.ecx} + 1;
  uint64_t bytes = uint64_t{ways} * parts * line_size * sets;
  char buf[200];
  std::snprintf(buf, sizeof buf, "L%u%s %6llu KiB, %2u-way, %u-byte lines, %llu sets; shared by %u APIC IDs%s%s",
                level, type < 4 ? kTypes[type] : "?", static_cast<unsigned long long>(bytes / 1024), ways,
                line_size, static_cast<unsigned long long>(sets), ((r.eax >> 14) & 0xfff) + 1,
                (r.edx & 2) ? ", inclusive" : "", (r.edx & 4) ? ", complex indexing" : "");
  return buf;
}

void describe_caches(std::string& out, const CpuidTable& t) {
  for (uint32_t leaf : {0x4u, 0x8000001du}) {
    for (uint32_t s : t.subleaves(leaf)) {
      CpuidRegs r = t.get(leaf, s);
      if ((r.eax & 0x1f) == 0) break;
      line(out, leaf == 4 ? "cache (4)" : "cache (1D)", cache_text(r));
    }
  }
  if (t.has(0x80000005)) {
    CpuidRegs r = t.get(0x80000005);
    char buf[160];
    std::snprintf(buf, sizeof buf, "L1d %u KiB %u-way, L1i %u KiB %u-way", r.ecx >> 24, (r.ecx >> 16) & 0xff,
                  r.edx >> 24, (r.edx >> 16) & 0xff);
    line(out, "amd L1", buf);
  }
  if (t.has(0x80000006)) {
    CpuidRegs r = t.get(0x80000006);
    char buf[160];
    std::snprintf(buf, sizeof buf, "L2 %u KiB, L3 %u KiB", r.ecx >> 16, (r.edx >> 18) * 512);
    line(out, "amd L2/L3", buf);
  }
}

void describe_topology(std::string& out, const CpuidTable& t, const VcpuPlace& p, const SmpConfig& smp) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "vCPU %u of %u (maxcpus %u): socket %u, die %u, core %u, thread %u; APIC ID %u",
                p.index, smp.cpus, smp.maxcpus, p.socket, p.die, p.core, p.thread, p.apic_id);
  line(out, "place", buf);
  std::snprintf(buf, sizeof buf, "%u sockets x %u dies x %u cores x %u threads", smp.sockets, smp.dies, smp.cores,
                smp.threads);
  line(out, "topology", buf);
  for (uint32_t leaf : {0xbu, 0x1fu}) {
    std::string levels;
    static const char* const kNames[] = {"invalid", "SMT", "core", "module", "tile", "die"};
    for (uint32_t s : t.subleaves(leaf)) {
      CpuidRegs r = t.get(leaf, s);
      unsigned type = (r.ecx >> 8) & 0xff;
      if (!type) break;
      std::snprintf(buf, sizeof buf, "%s%s: shift %u, %u logical", levels.empty() ? "" : "; ",
                    type < 6 ? kNames[type] : "?", r.eax & 0x1f, r.ebx & 0xffff);
      levels += buf;
    }
    if (!levels.empty()) line(out, leaf == 0xb ? "x2apic (0B)" : "x2apic (1F)", levels);
  }
  CpuidRegs l1 = t.get(1);
  std::snprintf(buf, sizeof buf, "initial APIC ID %u, %u logical per package, HTT %s", l1.ebx >> 24,
                (l1.ebx >> 16) & 0xff, (l1.edx >> 28 & 1) ? "on" : "off");
  line(out, "leaf 1", buf);
}

void describe_features(std::string& out, const CpuidTable& t) {
  for (const auto& wi : feature_words()) {
    if (wi.is_msr) continue;
    uint32_t v = t.reg_value(wi.leaf_or_msr, wi.subleaf, wi.reg);
    if (!v) continue;
    std::string names;
    for (unsigned bit = 0; bit < 32; ++bit) {
      if (!(v >> bit & 1)) continue;
      auto id = feature_at(wi.word, bit);
      names += names.empty() ? "" : " ";
      names += id ? std::string(feature(*id).name) : "bit" + std::to_string(bit);
    }
    std::string label = describe_bit(wi.word, 0);
    label = label.substr(0, label.find('['));
    if (auto dot = label.rfind('.'); dot != std::string::npos && dot > label.find(':')) label.resize(dot);
    out += "  " + label + ": " + names + "\n";
  }
}

}  // namespace

std::string describe_guest_cpuid(const CpuidTable& t, const VcpuPlace& p, const SmpConfig& smp) {
  std::string out;
  CpuidRegs l1 = t.get(1);
  unsigned family = (l1.eax >> 8) & 0xf, model = (l1.eax >> 4) & 0xf;
  if (family == 0xf) family += (l1.eax >> 20) & 0xff;
  if (family >= 6) model |= ((l1.eax >> 16) & 0xf) << 4;
  char buf[200];
  line(out, "vendor", t.vendor());
  std::snprintf(buf, sizeof buf, "family %u, model %u, stepping %u (%s)", family, model, l1.eax & 0xf,
                hex(l1.eax).c_str());
  line(out, "signature", buf);
  line(out, "brand", regs_text(t, 0x80000002, 0, 3));
  std::snprintf(buf, sizeof buf, "basic %s, extended %s", hex(t.max_basic()).c_str(), hex(t.max_extended()).c_str());
  line(out, "max leaves", buf);
  describe_topology(out, t, p, smp);
  describe_caches(out, t);
  CpuidRegs a = t.get(0x80000008);
  std::snprintf(buf, sizeof buf, "%u-bit physical, %u-bit virtual", a.eax & 0xff, (a.eax >> 8) & 0xff);
  line(out, "addresses", buf);
  if (t.has(0xd, 0)) {
    CpuidRegs d0 = t.get(0xd, 0), d1 = t.get(0xd, 1);
    std::snprintf(buf, sizeof buf, "XCR0 mask %s, %u bytes standard, %u bytes compacted", hex(d0.eax).c_str(),
                  d0.ecx, d1.ebx);
    line(out, "xsave", buf);
  }
  CpuidRegs kvm = t.get(0x40000000);
  if (kvm.eax) {
    char sig[13] = {};
    std::memcpy(sig, &kvm.ebx, 4);
    std::memcpy(sig + 4, &kvm.ecx, 4);
    std::memcpy(sig + 8, &kvm.edx, 4);
    line(out, "hypervisor", std::string(sig) + ", leaves to " + hex(kvm.eax) + ", features " +
                                hex(t.get(0x40000001).eax));
  }
  out += "features:\n";
  describe_features(out, t);
  out += "leaves:\n";
  for (const auto& [k, r] : t.entries()) {
    std::snprintf(buf, sizeof buf, "   0x%08x 0x%02x: eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", k.leaf, k.subleaf,
                  r.eax, r.ebx, r.ecx, r.edx);
    out += buf;
  }
  return out;
}

std::string guest_cpuid_json(const GuestCpuid& g, const std::string& model, const std::vector<size_t>& which) {
  JsonWriter w;
  w.begin_object();
  w.field("model", model);
  w.field("smp", format_smp(g.smp));
  w.key("warnings").strings(g.warnings);
  w.key("dropped").strings(g.dropped.names());
  w.key("vcpus").begin_array();
  for (size_t i : which) {
    if (i >= g.tables.size()) continue;
    const VcpuPlace& p = g.vcpus[i];
    w.begin_object();
    w.field("index", p.index).field("apic_id", p.apic_id).field("socket", p.socket);
    w.field("die", p.die).field("core", p.core).field("thread", p.thread);
    w.key("leaves").begin_array();
    for (const auto& [k, r] : g.tables[i].entries()) {
      w.begin_object();
      w.field("leaf", k.leaf).field("subleaf", k.subleaf);
      w.field("eax", r.eax).field("ebx", r.ebx).field("ecx", r.ecx).field("edx", r.edx);
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.str() + "\n";
}

}  // namespace cpumodel
