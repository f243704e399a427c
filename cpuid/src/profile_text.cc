// Text dumps: Debian's `cpuid -r` / `cpuid -1 -r` (first CPU) and the AIDA64 dumps InstLatx64
// publishes (first logical CPU), plus the writer of `cpuid -1 -r` text.
#include <cstdio>
#include <cstring>

#include "profile_internal.h"

namespace cpumodel {
namespace profile_detail {
namespace {

bool is_cpu_header(std::string_view line) {  // "CPU:" or "CPU 3:"
  line = trim(line);
  if (line.substr(0, 3) != "CPU" || line.back() != ':') return false;
  std::string_view mid = trim(line.substr(3, line.size() - 4));
  for (char c : mid)
    if (c < '0' || c > '9') return false;
  return true;
}

bool is_cpuid_r_entry(std::string_view line) {
  line = trim(line);
  return line.substr(0, 2) == "0x" && line.find("eax=") != std::string_view::npos;
}

std::vector<std::string_view> split_ws(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != '\t') ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

const char* const kCpuidRShape = "expected '0xLEAF 0xSUB: eax=0x... ebx=0x... ecx=0x... edx=0x...'";

// One `cpuid -r` entry line: "0x00000007 0x00: eax=0x... ebx=0x... ecx=0x... edx=0x...".
std::optional<Error> parse_cpuid_r_line(std::string_view line, size_t n, const Source& src, EntryCollector& c) {
  std::vector<std::string_view> tok = split_ws(line);
  // Old cpuid versions print "0x00000000: eax=..." without a subleaf.
  bool has_sub = tok.size() >= 2 && tok[1].substr(0, 4) != "eax=";
  size_t first_reg = has_sub ? 2 : 1;
  if (tok.size() < first_reg + 4) return src.at(n, std::string("truncated line: ") + kCpuidRShape);
  if (tok.size() > first_reg + 4) return src.at(n, std::string("unexpected text after edx: ") + kCpuidRShape);
  std::string_view leaf_tok = tok[0], sub_tok = has_sub ? tok[1] : std::string_view("0x0");
  std::string_view& colon_tok = has_sub ? sub_tok : leaf_tok;
  if (colon_tok.empty() || colon_tok.back() != ':') return src.at(n, std::string("missing ':' - ") + kCpuidRShape);
  colon_tok.remove_suffix(1);
  auto leaf = parse_hex(leaf_tok, true, 8);
  auto sub = parse_hex(sub_tok, true, 8);
  if (!leaf) return src.at(n, "leaf '" + std::string(leaf_tok) + "' is not a hex number (0x...)");
  if (!sub) return src.at(n, "subleaf '" + std::string(sub_tok) + "' is not a hex number (0x...)");
  static const char* const kRegs[] = {"eax=", "ebx=", "ecx=", "edx="};
  uint32_t v[4];
  for (int i = 0; i < 4; ++i) {
    std::string_view t = tok[first_reg + static_cast<size_t>(i)];
    if (t.substr(0, 4) != kRegs[i]) return src.at(n, "expected '" + std::string(kRegs[i]) + "0x...', got '" + std::string(t) + "'");
    auto x = parse_hex(t.substr(4), true, 8);
    if (!x) return src.at(n, "register value '" + std::string(t) + "' is not a hex number (0x + up to 8 digits)");
    v[i] = static_cast<uint32_t>(*x);
  }
  return c.add(static_cast<uint32_t>(*leaf), static_cast<uint32_t>(*sub), CpuidRegs{v[0], v[1], v[2], v[3]}, n);
}

std::string hex8(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// A dump whose tool prints every leaf up to the maxima must reach them; if not, the text was cut.
std::optional<Error> check_complete(const CpuidTable& t, size_t last_line, const Source& src, const char* what) {
  auto check = [&](uint32_t base) -> std::optional<Error> {
    uint32_t max = t.get(base).eax;
    if (max < base || max - base > 0xff) return std::nullopt;  // no such range, or a bogus maximum
    if (!t.subleaves(max).empty()) return std::nullopt;
    uint32_t last = base;
    for (const auto& [k, r] : t.entries())
      if (k.leaf >= base && k.leaf <= max) last = k.leaf;
    return src.at(last_line, std::string("truncated ") + what + ": leaf " + hex8(base) + " reports leaves up to " +
                                 hex8(max) + " but the dump stops at " + hex8(last));
  };
  if (auto e = check(0)) return e;
  if (t.has(0x80000000)) return check(0x80000000);
  return std::nullopt;
}

}  // namespace

bool looks_like_cpuid_r(std::string_view text) {
  for (std::string_view line : split_lines(text)) {
    if (trim(line).empty()) continue;
    return is_cpu_header(line) || is_cpuid_r_entry(line);
  }
  return false;
}

Result<HostProfile> parse_cpuid_r(std::string_view text, const Source& src) {
  EntryCollector c(src);
  std::vector<std::string_view> lines = split_lines(text);
  bool in_block = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t n = i + 1;
    if (trim(line).empty()) continue;
    if (is_cpu_header(line)) {
      if (in_block && !c.table().empty()) break;  // the next CPU: only the first is used
      in_block = true;
      continue;
    }
    if (!is_cpuid_r_entry(line)) return src.at(n, "unexpected line in cpuid -r text: '" + std::string(trim(line)).substr(0, 40) + "'");
    in_block = true;
    if (auto e = parse_cpuid_r_line(trim(line), n, src, c)) return *e;
  }
  if (c.table().empty()) return src.at(lines.size(), "truncated cpuid -r text: no CPUID entries");
  if (!c.table().has(0)) return src.at(1, "cpuid -r text lacks leaf 0x00000000");
  if (auto e = check_complete(c.table(), c.last_line(), src, "cpuid -r text")) return *e;
  if (!c.table().has(0x80000000))
    return src.at(c.last_line(), "truncated cpuid -r text: no extended leaves (0x80000000)");
  HostProfile p;
  p.cpuid = std::move(c.table());
  return p;
}

// ---- AIDA64 / InstLatx64 ----
namespace {

bool is_section(std::string_view line) { return line.substr(0, 7) == "------["; }

bool is_aida_cpuid_line(std::string_view line) {
  if (line.size() < 15 || line.substr(0, 6) != "CPUID ") return false;
  return parse_hex(line.substr(6, 8), false, 8) && line[14] == ':';
}

// "CPUID 00000007: 00000001-F1BF97AB-19415FCE-10000110 [SL 00] [comment]"
std::optional<Error> parse_aida_cpuid(std::string_view line, size_t n, const Source& src, EntryCollector& c) {
  if (!is_aida_cpuid_line(line)) return src.at(n, "malformed CPUID line: expected 'CPUID LLLLLLLL: EAX-EBX-ECX-EDX'");
  uint32_t leaf = static_cast<uint32_t>(*parse_hex(line.substr(6, 8), false, 8));
  std::string_view rest = trim(line.substr(15));
  std::string_view regs_text = rest.substr(0, rest.find(' '));
  if (regs_text.size() < 35) return src.at(n, "truncated CPUID line: expected 4 registers EAX-EBX-ECX-EDX");
  uint32_t v[4];
  for (size_t i = 0; i < 4; ++i) {
    std::string_view r = regs_text.substr(i * 9, 8);
    auto x = parse_hex(r, false, 8);
    if (!x || (i < 3 && regs_text[i * 9 + 8] != '-'))
      return src.at(n, "register '" + std::string(r) + "' is not 8 hex digits (EAX-EBX-ECX-EDX)");
    v[i] = static_cast<uint32_t>(*x);
  }
  if (regs_text.size() != 35) return src.at(n, "malformed CPUID line: unexpected text after EDX");
  uint32_t sub = 0;
  size_t sl = rest.find("[SL ");
  if (sl != std::string_view::npos) {
    size_t end = rest.find(']', sl);
    auto x = end == std::string_view::npos ? std::nullopt : parse_hex(rest.substr(sl + 4, end - sl - 4), false, 8);
    if (!x) return src.at(n, "malformed subleaf '[SL nn]'");
    sub = static_cast<uint32_t>(*x);
  }
  return c.add(leaf, sub, CpuidRegs{v[0], v[1], v[2], v[3]}, n);
}

// "MSR 0000010A: 0000-0000-0000-006B" (or "< FAILED >", skipped).
std::optional<Error> parse_aida_msr(std::string_view line, size_t n, const Source& src, EntryCollector& c) {
  if (line.size() < 13 || line[12] != ':') return src.at(n, "malformed MSR line: expected 'MSR XXXXXXXX: hhhh-hhhh-hhhh-hhhh'");
  auto index = parse_hex(line.substr(4, 8), false, 8);
  if (!index) return src.at(n, "MSR index '" + std::string(line.substr(4, 8)) + "' is not hex");
  std::string_view v = trim(line.substr(13));
  if (v.find("FAILED") != std::string_view::npos) return std::nullopt;
  // AIDA64 samples some MSRs more than once (status registers, "[S200]" annotations): keep the first.
  if (c.msrs().count(static_cast<uint32_t>(*index))) return std::nullopt;
  if (v.size() > 19 && v[19] == ' ' && v.back() == ']') v = v.substr(0, 19);
  if (v.size() != 19) return src.at(n, "truncated MSR line: expected hhhh-hhhh-hhhh-hhhh");
  uint64_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    auto x = parse_hex(v.substr(i * 5, 4), false, 4);
    if (!x || (i < 3 && v[i * 5 + 4] != '-')) return src.at(n, "MSR value '" + std::string(v) + "' is not hex");
    value = (value << 16) | *x;
  }
  return c.add_msr(static_cast<uint32_t>(*index), value, n);
}

}  // namespace

bool looks_like_aida64(std::string_view text) {
  for (std::string_view line : split_lines(text.substr(0, 1 << 20)))
    if (line.substr(0, 23) == "------[ CPUID Registers" || is_aida_cpuid_line(line)) return true;
  return false;
}

Result<HostProfile> parse_aida64(std::string_view text, const Source& src) {
  EntryCollector c(src);
  std::vector<std::string_view> lines = split_lines(text);
  enum { kNone, kCpuid, kMsr, kDone } state = kNone;
  bool cpuid_seen = false, msr_seen = false;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    size_t n = i + 1;
    if (is_section(line)) {
      bool cpuid_sec = line.find("CPUID Registers") != std::string_view::npos;
      bool msr_sec = line.find("MSR Registers") != std::string_view::npos;
      if (cpuid_sec && !cpuid_seen) state = kCpuid, cpuid_seen = true;
      else if (msr_sec && !msr_seen && cpuid_seen) state = kMsr, msr_seen = true;
      else state = cpuid_seen && msr_seen ? kDone : kNone;
      if (state == kDone) break;
      continue;
    }
    if (state == kNone && !cpuid_seen && is_aida_cpuid_line(line)) state = kCpuid, cpuid_seen = true;
    if (state == kCpuid && line.substr(0, 6) == "CPUID ") {
      if (auto e = parse_aida_cpuid(line, n, src, c)) return *e;
    } else if (state == kMsr && line.substr(0, 4) == "MSR ") {
      if (auto e = parse_aida_msr(line, n, src, c)) return *e;
    }
  }
  if (c.table().empty()) return src.at(lines.size(), "truncated AIDA64 text: no CPUID lines");
  if (!c.table().has(0)) return src.at(1, "AIDA64 text lacks leaf 00000000");
  if (auto e = check_complete(c.table(), c.last_line(), src, "AIDA64 text")) return *e;
  HostProfile p;
  p.cpuid = std::move(c.table());
  p.msrs = std::move(c.msrs());
  return p;
}

}  // namespace profile_detail

std::string table_to_cpuid_r(const CpuidTable& table) {
  std::string out = "CPU:\n";
  char buf[128];
  for (const auto& [k, r] : table.entries()) {
    std::snprintf(buf, sizeof buf, "   0x%08x 0x%02x: eax=0x%08x ebx=0x%08x ecx=0x%08x edx=0x%08x\n", k.leaf,
                  k.subleaf, r.eax, r.ebx, r.ecx, r.edx);
    out += buf;
  }
  return out;
}

}  // namespace cpumodel
