// Profile loading: format sniffing (by content, never by extension), the helpers the importers
// share, and `import_profile` (any format in, our YAML out).
#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>

#include "profile_internal.h"

namespace cpumodel {
namespace profile_detail {

std::optional<uint64_t> parse_hex(std::string_view s, bool need_prefix, size_t max_digits) {
  if (s.size() >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    s.remove_prefix(2);
  } else if (need_prefix) {
    return std::nullopt;
  }
  if (s.empty() || s.size() > max_digits) return std::nullopt;
  // Digit values through a table (16 = not a hex digit).
  static constexpr auto kDigit = [] {
    std::array<uint8_t, 256> t{};
    t.fill(16);
    for (int c = 0; c < 10; ++c) t[static_cast<size_t>('0' + c)] = static_cast<uint8_t>(c);
    for (int c = 0; c < 6; ++c) {
      t[static_cast<size_t>('a' + c)] = static_cast<uint8_t>(10 + c);
      t[static_cast<size_t>('A' + c)] = static_cast<uint8_t>(10 + c);
    }
    return t;
  }();
  uint64_t v = 0;
  for (char c : s) {
    uint8_t d = kDigit[static_cast<unsigned char>(c)];
    if (d > 15) return std::nullopt;
    v = (v << 4) | d;
  }
  return v;
}

namespace {
std::string hex(uint32_t v, int width) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%0*x", width, v);
  return buf;
}
}  // namespace

std::optional<Error> EntryCollector::add(uint32_t leaf, uint32_t subleaf, const CpuidRegs& regs, size_t line) {
  last_line_ = std::max(last_line_, line);
  CpuidKey k{leaf, subleaf};
  if (!seen_.empty() || (!order_.empty() && !(order_.back().first < k))) {
    if (seen_.empty()) seen_.insert(order_.begin(), order_.end());
    auto [it, fresh] = seen_.emplace(k, line);
    if (!fresh)
      return src_.at(line, "duplicate CPUID leaf " + hex(leaf, 8) + " subleaf " + hex(subleaf, 2) +
                               " (first given at line " + std::to_string(it->second) + ")");
  }
  order_.emplace_back(k, line);
  if (!is_indexed_leaf(leaf) && subleaf != 0) return std::nullopt;  // the CPU ignores ECX here
  table_.set(leaf, subleaf, regs);
  return std::nullopt;
}

std::optional<Error> EntryCollector::add_msr(uint32_t index, uint64_t value, size_t line) {
  last_line_ = std::max(last_line_, line);
  auto [it, fresh] = msr_lines_.emplace(index, line);
  if (!fresh)
    return src_.at(line, "duplicate MSR " + hex(index, 1) + " (first given at line " +
                             std::to_string(it->second) + ")");
  msrs_[index] = value;
  return std::nullopt;
}

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    out.push_back(line);
    pos = end + 1;
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace profile_detail

namespace {

using profile_detail::Source;

bool is_binary(std::string_view text) {
  std::string_view head = text.substr(0, 65536);
  if (head.find('\0') != std::string_view::npos) return true;
  // Control characters other than the whitespace text files have, counted through a table.
  static constexpr auto kControl = [] {
    std::array<uint8_t, 256> t{};
    for (int c = 0; c < 0x20; ++c) t[static_cast<size_t>(c)] = c != '\n' && c != '\r' && c != '\t' && c != '\f';
    return t;
  }();
  // The first KiB tells: binary formats (ELF, Protobuf, images) show control bytes at once.
  size_t control = 0;
  for (unsigned char c : head.substr(0, 1024)) control += kControl[c];
  return control * 20 > std::min<size_t>(head.size(), 1024);
}

std::string_view skip_bom_and_space(std::string_view t) {
  if (t.substr(0, 3) == "\xEF\xBB\xBF") t.remove_prefix(3);
  return profile_detail::trim(t);
}

std::string base_name(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

}  // namespace

std::string profile_name_from_path(const std::string& path) {
  std::string stem = base_name(path);
  size_t dot = stem.find_last_of('.');
  if (dot != std::string::npos && dot > 0) stem.resize(dot);
  // libvirt's test data calls every dump x86_64-cpuid-<CPU>.xml: the CPU is the name.
  static constexpr std::string_view kLibvirtPrefix = "x86_64-cpuid-";
  if (stem.size() > kLibvirtPrefix.size() && stem.compare(0, kLibvirtPrefix.size(), kLibvirtPrefix) == 0)
    stem.erase(0, kLibvirtPrefix.size());
  return stem;
}

std::string sniff_profile_format(std::string_view text) {
  std::string_view t = skip_bom_and_space(text);
  if (t.empty()) return "empty";
  if (is_binary(text)) return "binary";
  if (t.front() == '<') return "libvirt-xml";
  if (profile_detail::looks_like_aida64(text)) return "aida64";
  if (profile_detail::looks_like_cpuid_r(text)) return "cpuid-r";
  return "yaml";
}

Result<HostProfile> parse_profile(std::string_view text, const std::string& name) {
  Source src{name};
  std::string format = sniff_profile_format(text);
  if (format == "empty") return src.at(1, "empty file, not a profile");
  if (format == "binary")
    return src.at(1, "binary data, not a profile (expected our YAML, libvirt <cpudata> XML, "
                     "cpuid -r text or AIDA64 text)");
  Result<HostProfile> r = format == "libvirt-xml" ? profile_detail::parse_libvirt_xml(text, src)
                          : format == "aida64"    ? profile_detail::parse_aida64(text, src)
                          : format == "cpuid-r"   ? profile_detail::parse_cpuid_r(text, src)
                                                  : profile_detail::parse_yaml_profile(text, src);
  if (!r) return r;
  HostProfile& p = *r;
  p.source = name;
  p.format = format;
  if (p.name.empty()) p.name = profile_name_from_path(name);
  if (!p.cpuid.has(0))
    return src.at(1, "no CPUID leaf 0x00000000 (vendor and maximum leaf): not a CPUID dump");
  return r;
}

Result<HostProfile> load_profile(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse_profile(*text, path);
}

Result<std::string> import_profile(const std::string& path, const std::string& out_dir) {
  auto p = load_profile(path);
  if (!p) return p.error();
  if (p->format != "yaml") {
    p->facts.emplace("source_file", base_name(path));
    p->facts.emplace("source_format", p->format);
  }
  std::string file = p->name;
  for (char& c : file)
    if (c == '/' || c == '\0' || std::isspace(static_cast<unsigned char>(c))) c = '_';
  if (file.empty() || file == "." || file == "..") file = "host";
  std::string out = out_dir + "/" + file + ".yaml";
  Status s = write_file_atomic(out, profile_to_yaml(*p));
  if (!s) return s.error();
  return out;
}

}  // namespace cpumodel
