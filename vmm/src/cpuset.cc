#include "cpumodel/vmm/cpuset.h"

#include <sched.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <sstream>

#include "cpumodel/cpuid/profile.h"

namespace cpumodel::vmm {
namespace {

// A decimal number at text[pos...], advancing pos.
bool parse_number(std::string_view text, size_t& pos, unsigned& out) {
  const char* begin = text.data() + pos;
  auto [p, ec] = std::from_chars(begin, text.data() + text.size(), out);
  if (ec != std::errc() || p == begin) return false;
  pos += static_cast<size_t>(p - begin);
  return true;
}

Error bad_token(std::string_view what, std::string_view text, size_t column, const std::string& why) {
  return input_error(std::string(what) + " '" + std::string(text) + "': " + why + " at column " +
                     std::to_string(column + 1));
}

// One "N" or "N-M" item of a cpulist, at text[pos...].
Status parse_range(std::string_view text, size_t& pos, std::string_view what, CpuSet& out) {
  size_t start = pos;
  unsigned lo = 0, hi = 0;
  if (!parse_number(text, pos, lo)) return bad_token(what, text, start, "expected a CPU number");
  hi = lo;
  if (pos < text.size() && text[pos] == '-') {
    ++pos;
    size_t hi_at = pos;
    if (!parse_number(text, pos, hi)) return bad_token(what, text, hi_at, "expected a CPU number");
    if (hi < lo) return bad_token(what, text, start, "range " + std::to_string(lo) + "-" + std::to_string(hi) + " is empty");
  }
  if (hi >= CpuSet::kMax)
    return bad_token(what, text, start, "CPU " + std::to_string(hi) + " is beyond " + std::to_string(CpuSet::kMax - 1));
  for (unsigned c = lo; c <= hi; ++c) out.add(c);
  return ok_status();
}

}  // namespace

Result<CpuSet> CpuSet::parse(std::string_view text, std::string_view what) {
  CpuSet set;
  size_t pos = 0;
  if (text.empty()) return input_error(std::string(what) + ": empty CPU list");
  while (pos <= text.size()) {
    if (auto st = parse_range(text, pos, what, set); !st) return st.error();
    if (pos == text.size()) break;
    if (text[pos] != ',') return bad_token(what, text, pos, std::string("unexpected '") + text[pos] + "'");
    ++pos;
  }
  return set;
}

std::vector<unsigned> CpuSet::cpus() const {
  std::vector<unsigned> out;
  for (unsigned c = 0; c < kMax; ++c)
    if (bits_.test(c)) out.push_back(c);
  return out;
}

std::string CpuSet::format() const {
  std::string out;
  auto list = cpus();
  for (size_t i = 0; i < list.size();) {
    size_t j = i;
    while (j + 1 < list.size() && list[j + 1] == list[j] + 1) ++j;
    if (!out.empty()) out += ',';
    out += std::to_string(list[i]);
    if (j > i) out += "-" + std::to_string(list[j]);
    i = j + 1;
  }
  return out;
}

Result<PinMap> parse_pin_map(std::string_view text) {
  PinMap pins;
  size_t pos = 0;
  if (text.empty()) return input_error("--pin: empty (expected VCPU:CPUS,... e.g. 0:2,1:3)");
  while (pos < text.size()) {
    size_t start = pos;
    unsigned vcpu = 0;
    if (!parse_number(text, pos, vcpu)) return bad_token("--pin", text, start, "expected a vCPU number");
    if (pos >= text.size() || text[pos] != ':')
      return bad_token("--pin", text, pos, "expected ':' (VCPU:CPUS, e.g. 0:2)");
    ++pos;
    if (auto st = parse_range(text, pos, "--pin", pins[vcpu]); !st) return st.error();
    if (pos < text.size()) {
      if (text[pos] != ',') return bad_token("--pin", text, pos, std::string("unexpected '") + text[pos] + "'");
      if (++pos == text.size()) return bad_token("--pin", text, pos, "expected VCPU:CPUS after ','");
    }
  }
  return pins;
}

CpuSet current_affinity() {
  CpuSet set;
  cpu_set_t native;
  CPU_ZERO(&native);
  if (::sched_getaffinity(0, sizeof native, &native) != 0) return set;
  for (unsigned c = 0; c < CpuSet::kMax; ++c)
    if (CPU_ISSET(c, &native)) set.add(c);
  return set;
}

CpuSet online_cpus(const std::string& sysfs_online) {
  auto text = read_file(sysfs_online, 4096);
  if (text) {
    std::string t = *text;
    while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
    if (auto set = CpuSet::parse(t); set) return *set;
  }
  CpuSet set;
  long n = ::sysconf(_SC_NPROCESSORS_CONF);
  for (long c = 0; c < n; ++c) set.add(static_cast<unsigned>(c));
  return set;
}

Status check_cpus(const CpuSet& cpus, std::string_view what) {
  CpuSet online = online_cpus();
  CpuSet allowed = current_affinity();
  for (unsigned c : cpus.cpus()) {
    if (!online.has(c))
      return input_error(std::string(what) + ": CPU " + std::to_string(c) + " does not exist (this host has CPUs " +
                         online.format() + ")");
    if (!allowed.has(c))
      return input_error(std::string(what) + ": CPU " + std::to_string(c) +
                         " is outside the CPUs this process may use (" + allowed.format() +
                         "; see taskset -p and the cgroup cpuset)");
  }
  return ok_status();
}

Status check_pin_map(const PinMap& pins, unsigned vcpu_count) {
  for (const auto& [vcpu, cpus] : pins) {
    std::string what = "--pin " + std::to_string(vcpu) + ":" + cpus.format();
    if (vcpu >= vcpu_count)
      return input_error(what + ": no vCPU " + std::to_string(vcpu) + " (the guest has " +
                         std::to_string(vcpu_count) + ": 0-" + std::to_string(vcpu_count - 1) + ")");
    if (auto st = check_cpus(cpus, what); !st) return st;
  }
  return ok_status();
}

Status pin_current_thread(const CpuSet& cpus) {
  cpu_set_t native;
  CPU_ZERO(&native);
  for (unsigned c : cpus.cpus()) CPU_SET(c, &native);
  if (::sched_setaffinity(0, sizeof native, &native) != 0)
    return input_error("sched_setaffinity(" + cpus.format() + "): " + std::strerror(errno));
  return ok_status();
}

Status apply_affinity(const CpuSet& cpus) {
  if (auto st = check_cpus(cpus, "--affinity " + cpus.format()); !st) return st;
  return pin_current_thread(cpus);
}

std::string proc_stat_field(const std::string& path, int n) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return "";
  size_t close = line.rfind(')');
  if (close == std::string::npos || close + 2 > line.size()) return "";
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  for (int i = 3; rest >> field; ++i)
    if (i == n) return field;
  return "";
}

int last_cpu_of(int tid) {
  std::string f = proc_stat_field("/proc/self/task/" + std::to_string(tid) + "/stat", 39);
  return f.empty() ? -1 : std::atoi(f.c_str());
}

}  // namespace cpumodel::vmm
