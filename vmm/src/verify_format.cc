// How a verify report is shown: a table and grouped differences for people, JSON per CLI.md.
#include <cstdio>

#include "cpumodel/cpuid/json.h"
#include "cpumodel/vmm/verify.h"

namespace cpumodel::vmm {
namespace {

std::string pad(std::string s, size_t width) {
  if (s.size() < width) s.resize(width, ' ');
  return s;
}

std::string difference_line(const BitDifference& d) {
  return d.where + ": intended " + (d.intended ? "1" : "0") + ", guest saw " + (d.seen ? "1" : "0") + " (" +
         d.cause + ")";
}

bool same_differences(const std::vector<BitDifference>& a, const std::vector<BitDifference>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (difference_line(a[i]) != difference_line(b[i])) return false;
  return true;
}

}  // namespace

std::string format_vcpu_map(const VerifyReport& report) {
  std::string out = "vCPU  TID      APIC ID  socket/die/core/thread  pinned   last CPU\n";
  for (const auto& v : report.vcpus) {
    const VcpuPlace& p = v.place;
    std::string place = std::to_string(p.socket) + "/" + std::to_string(p.die) + "/" + std::to_string(p.core) +
                        "/" + std::to_string(p.thread);
    out += pad(std::to_string(p.index), 6) + pad(std::to_string(v.tid), 9) + pad(std::to_string(p.apic_id), 9) +
           pad(place, 24) + pad(v.pinned ? v.allowed.format() : "-", 9) +
           (v.host_cpu >= 0 ? std::to_string(v.host_cpu) : "?") + "\n";
  }
  return out;
}

std::string format_verify(const VerifyReport& report, const std::string& title) {
  size_t probed = report.vcpus.empty() ? 0 : report.vcpus[0].leaves_probed;
  char head[256];
  std::snprintf(head, sizeof head, "verify %s on %s: %zu vCPU%s, %s, %zu leaves probed per vCPU\n\n",
                title.c_str(), backend_name(report.backend), report.vcpus.size(),
                report.vcpus.size() == 1 ? "" : "s", cpu_mode_name(report.mode), probed);
  std::string out = head + format_vcpu_map(report) + "\n";
  if (report.identical) return out + "IDENTICAL: every vCPU saw exactly the intended CPUID\n";
  size_t total = 0;
  for (const auto& v : report.vcpus) total += v.differences.size();
  out += "DIFFERENT: " + std::to_string(total) + " bit(s) differ from what was intended\n";
  std::vector<bool> done(report.vcpus.size(), false);
  for (size_t i = 0; i < report.vcpus.size(); ++i) {
    if (done[i] || report.vcpus[i].differences.empty()) continue;
    CpuSet group;
    for (size_t j = i; j < report.vcpus.size(); ++j)
      if (!done[j] && same_differences(report.vcpus[i].differences, report.vcpus[j].differences)) {
        group.add(static_cast<unsigned>(j));
        done[j] = true;
      }
    out += "\nvCPU " + group.format() + ":\n";
    for (const auto& d : report.vcpus[i].differences) out += "  " + difference_line(d) + "\n";
  }
  return out;
}

std::string verify_json(const VerifyReport& report, const std::string& model) {
  JsonWriter w;
  w.begin_object();
  w.field("model", model);
  w.field("backend", backend_name(report.backend));
  w.field("mode", report.mode == CpuMode::kLong64 ? "long64" : "protected32");
  w.field("identical", report.identical);
  w.key("vcpus").begin_array();
  for (const auto& v : report.vcpus) {
    w.begin_object();
    w.field("index", v.place.index);
    w.field("tid", static_cast<int64_t>(v.tid));
    w.field("host_cpu", v.host_cpu);
    w.field("apic_id", static_cast<uint64_t>(v.place.apic_id));
    w.field("socket", v.place.socket).field("die", v.place.die).field("core", v.place.core);
    w.field("thread", v.place.thread);
    w.key("pinned");
    if (v.pinned) w.value(v.allowed.format()); else w.null();
    w.field("leaves_probed", static_cast<uint64_t>(v.leaves_probed));
    w.key("differences").begin_array();
    for (const auto& d : v.differences) {
      w.begin_object();
      w.field("leaf", static_cast<uint64_t>(d.leaf)).field("subleaf", static_cast<uint64_t>(d.subleaf));
      w.field("register", reg_name(d.reg)).field("bit", d.bit);
      w.key("feature");
      if (d.feature.empty()) w.null(); else w.value(d.feature);
      w.field("intended", d.intended ? 1 : 0).field("seen", d.seen ? 1 : 0);
      w.field("cause", d.cause);
      w.end_object();
    }
    w.end_array();
    w.end_object();
  }
  w.end_array();
  w.end_object();
  return w.str() + "\n";
}

}  // namespace cpumodel::vmm
