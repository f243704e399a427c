// migrate-check --cpu SPEC --path A,B,...: hop by hop, with the exact reasons.
#include "cpumodel/migrate/migrate_check.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "cpumodel/cpuid/guest_cpuid.h"
#include "cpumodel/cpuid/json.h"
#include "baseline_internal.h"
#include "cpumodel/migrate/baseline.h"

namespace cpumodel {
namespace {

const char* xsave_component_name(unsigned c) {
  static const char* const kNames[] = {"x87", "sse", "avx", "bndregs", "bndcsr", "opmask", "zmm_hi256",
                                       "hi16_zmm", "pt", "pkru", "pasid", "cet_u", "cet_s", "hdc",
                                       "uintr", "lbr", "hwp", "xtilecfg", "xtiledata", "apx"};
  return c < std::size(kNames) ? kNames[c] : "component";
}

std::string num(uint64_t v) { return std::to_string(v); }

void xsave_reasons(const GuestImage& g, const HostSummary& to, const HostProfile& to_profile,
                   std::vector<std::string>& out) {
  uint64_t lacking = g.xcr0 & ~to.xcr0;
  for (unsigned c = 0; c < 64; ++c)
    if (lacking >> c & 1)
      out.push_back("XSAVE: " + to.name + " lacks state component " + num(c) + " (" + xsave_component_name(c) + ")");
  if (to.xsave_size < g.xsave_size)
    out.push_back("XSAVE: the guest's save area is " + num(g.xsave_size) + " bytes (CPUID.0DH.0:ECX), " + to.name +
                  " holds at most " + num(to.xsave_size));
  for (const auto& c : g.xsave_layout) {
    if (lacking >> c.index & 1) continue;
    CpuidRegs r = to_profile.guest_cpuid().get(0xd, c.index);
    if (r.eax != c.size || r.ebx != c.offset)
      out.push_back("XSAVE: component " + num(c.index) + " (" + xsave_component_name(c.index) + ") is " + num(c.size) +
                    " bytes at offset " + num(c.offset) + " in the guest, " + num(r.eax) + " at " + num(r.ebx) + " on " +
                    to.name);
  }
}

void tsc_reasons(const GuestImage& g, const HostSummary& to, std::vector<std::string>& out) {
  if (!g.invtsc) return;
  if (!g.tsc_khz) {
    out.push_back("TSC: the guest has invtsc and no pinned tsc-frequency: QEMU refuses to migrate it (pin "
                  "tsc-frequency=KHZ or use -invtsc)");
    return;
  }
  if (to.tsc_khz && std::fabs(*to.tsc_khz - static_cast<double>(*g.tsc_khz)) / static_cast<double>(*g.tsc_khz) * 1e6 >
                        kTscTolerancePpm)
    out.push_back("TSC: " + to.name + " runs its TSC at " + num(static_cast<uint64_t>(std::llround(*to.tsc_khz))) +
                  " kHz, the guest's is pinned at " + num(*g.tsc_khz) +
                  " kHz (more than 250 ppm apart: needs TSC scaling there)");
}

}  // namespace

Result<GuestImage> start_guest(const Catalog& catalog, std::string_view spec, const HostProfile& host) {
  auto e = catalog.expand(spec, &host, /*filter_by_host=*/true);
  if (!e) return e.error();
  auto built = build_guest_cpuid(e->cpu, SmpConfig{}, &host);
  if (!built) return built.error();
  if (built->tables.empty()) return input_error("migrate-check: the guest CPUID builder produced no vCPU table");
  const CpuidTable& t = built->tables[0];
  GuestImage g;
  g.model = e->cpu.model;
  g.started_on = host.name;
  g.host_vendor = host.cpuid.vendor();
  g.features = e->cpu.features;
  if (t.max_extended() >= 0x80000008) g.phys_bits = t.get(0x80000008).eax & 0xff;
  CpuidRegs d0 = t.get(0xd, 0);
  g.xcr0 = (uint64_t{d0.edx} << 32) | d0.eax;
  g.xsave_size = d0.ecx;
  for (unsigned c = 2; c < 64; ++c)
    if (g.xcr0 >> c & 1) g.xsave_layout.push_back({c, t.get(0xd, c).eax, t.get(0xd, c).ebx});
  auto invtsc = find_feature("invtsc");
  g.invtsc = invtsc && g.features.has(*invtsc);
  g.tsc_khz = e->cpu.tsc_khz;
  if (!e->filtered_by_host.empty())
    g.notes.push_back(host.name + " filtered " + std::to_string(e->filtered_by_host.count()) +
                      " features at start (the guest never had them): " + internal::join(e->filtered_by_host.names()));
  for (const auto& w : built->warnings) g.notes.push_back(w);
  return g;
}

namespace {

// The reasons against `to`, whose summary the caller has already made.
std::vector<std::string> reasons_against(const GuestImage& g, const HostProfile& to, const HostSummary& dst) {
  std::vector<std::string> out;
  if (dst.vendor != g.host_vendor)
    out.push_back("vendor: the guest started on a " + g.host_vendor + " host, " + to.name + " is " + dst.vendor);
  for (FeatureId id : (g.features - dst.features).ids()) out.push_back(to.name + " lacks " + describe_feature(id));
  if (dst.phys_bits < g.phys_bits)
    out.push_back("phys-bits: the guest has " + num(g.phys_bits) + " (CPUID.80000008H:EAX[7:0]), " + to.name +
                  " has " + num(dst.phys_bits));
  xsave_reasons(g, dst, to, out);
  tsc_reasons(g, dst, out);
  return out;
}

}  // namespace

std::vector<std::string> hop_reasons(const GuestImage& g, const HostProfile& from, const HostProfile& to) {
  (void)from;
  return reasons_against(g, to, summarize_host(to));
}

Result<MigrateCheck> migrate_check(const Catalog& catalog, std::string_view spec, const std::vector<HostProfile>& path) {
  if (path.size() < 2) return input_error("migrate-check: --path needs at least two hosts (A,B)");
  auto g = start_guest(catalog, spec, path[0]);
  if (!g) return g.error();
  MigrateCheck m;
  m.guest = std::move(*g);
  auto hop = [&](const HostProfile& a, const HostProfile& b, bool is_return) {
    HostSummary dst = summarize_host(b);
    MigrateHop h{a.name, b.name, true, is_return, reasons_against(m.guest, b, dst), m.guest.features - dst.features};
    h.ok = h.reasons.empty();
    m.ok = m.ok && h.ok;
    m.hops.push_back(std::move(h));
  };
  for (size_t i = 1; i < path.size(); ++i) hop(path[i - 1], path[i], i + 1 == path.size() && path[i].name == path[0].name);
  if (path.back().name != path[0].name) hop(path.back(), path[0], true);
  return m;
}

std::string migrate_check_json(const MigrateCheck& m) {
  JsonWriter j;
  j.begin_object();
  j.field("ok", m.ok);
  j.field("model", m.guest.model);
  j.field("started_on", m.guest.started_on);
  j.key("hops").begin_array();
  for (const auto& h : m.hops) {
    j.begin_object();
    j.field("from", h.from).field("to", h.to).field("ok", h.ok).field("return", h.is_return);
    j.key("reasons").strings(h.reasons);
    j.end_object();
  }
  j.end_array();
  j.key("notes").strings(m.guest.notes);
  j.end_object();
  return j.str() + "\n";
}

namespace internal {

std::string feature_groups_text(const FeatureSet& features, const std::string& indent, size_t width) {
  std::map<FeatureWord, std::vector<std::string>> by_word;
  for (FeatureId id : features.ids()) by_word[feature(id).word].push_back(feature(id).name);
  // An MSR's two words (bits 0-31, 32-63) share one label and one line.
  std::vector<std::pair<std::string, std::vector<std::string>>> lines;
  for (const auto& [w, names] : by_word) {
    std::string label = feature_word_label(w);
    if (lines.empty() || lines.back().first != label) lines.push_back({label, {}});
    lines.back().second.insert(lines.back().second.end(), names.begin(), names.end());
  }
  size_t label_width = 0;
  for (const auto& [label, names] : lines) label_width = std::max(label_width, label.size());
  std::string out;
  for (const auto& [label, names] : lines) {
    std::string line = indent + label;
    line.resize(indent.size() + label_width, ' ');
    size_t start = line.size();
    for (const auto& n : names) {
      if (line.size() > start && line.size() + 1 + n.size() > width) {
        out += line + "\n";
        line = std::string(start, ' ');
      }
      line += " " + n;
    }
    out += line + "\n";
  }
  return out;
}

std::string reason_lines(const std::vector<std::string>& reasons, const std::string& indent, const std::string& lacks,
                         const std::string& group) {
  std::string out;
  bool grouped = false;
  for (const auto& r : reasons) {
    if (group.empty() || r.rfind(lacks, 0) != 0) {
      out += indent + r + "\n";
    } else if (!grouped) {
      out += group;
      grouped = true;
    }
  }
  return out;
}

}  // namespace internal

std::string migrate_check_text(const MigrateCheck& m) {
  std::string out = "guest " + m.guest.model + " started on " + m.guest.started_on + ": " +
                    num(m.guest.features.count()) + " features, phys-bits " + num(m.guest.phys_bits) +
                    ", XSAVE area " + num(m.guest.xsave_size) + " bytes\n";
  for (const auto& n : m.guest.notes) out += "  note: " + n + "\n";
  size_t width = 0;
  for (const auto& h : m.hops) width = std::max(width, h.from.size() + h.to.size() + 4);
  for (const auto& h : m.hops) {
    std::string label = h.from + " -> " + h.to;
    label.resize(width, ' ');
    out += "  " + label + "  " + (h.ok ? "ok" : "cannot migrate") + (h.is_return ? "  (return)" : "") + "\n";
    // Reasons under the hop. Up to 4 missing features one per line, as the reasons say; more are
    // grouped by CPUID word ("CPUID.07H:EBX  avx512f avx512dq ..."), wrapped at 100 columns.
    const std::string indent = "      ";
    std::string group;
    if (h.missing.count() > 4)
      group = indent + h.to + " lacks " + num(h.missing.count()) + " of the guest's features:\n" +
              internal::feature_groups_text(h.missing, indent + "  ");
    out += internal::reason_lines(h.reasons, indent, h.to + " lacks ", group);
  }
  out += m.ok ? "result: the guest can go along the path and back\n" : "result: cannot migrate\n";
  return out;
}

}  // namespace cpumodel
