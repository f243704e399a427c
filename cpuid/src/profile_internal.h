// Private to the profile importers (profile_*.cc): the per-format parsers and the small helpers
// they share (line-numbered errors, hex fields, duplicate-leaf detection).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/profile.h"

namespace cpumodel::profile_detail {

// What the parsers know about the input: its name for messages.
struct Source {
  std::string name;  // "path/to/file" as given
  Error at(size_t line, const std::string& what) const {
    return input_error(name + ":" + std::to_string(line) + ": " + what);
  }
};

// Hex number with an optional "0x" prefix (required when `need_prefix`), at most `max_digits` digits.
std::optional<uint64_t> parse_hex(std::string_view s, bool need_prefix, size_t max_digits);

// Collects CPUID entries for one CPU, rejecting a (leaf, subleaf) given twice. Entries of leaves
// that ignore ECX but carry a nonzero subleaf are dropped (the processor ignores the subleaf).
class EntryCollector {
 public:
  explicit EntryCollector(const Source& src) : src_(src) {}
  std::optional<Error> add(uint32_t leaf, uint32_t subleaf, const CpuidRegs& regs, size_t line);
  std::optional<Error> add_msr(uint32_t index, uint64_t value, size_t line);
  CpuidTable& table() { return table_; }
  MsrMap& msrs() { return msrs_; }
  size_t last_line() const { return last_line_; }

 private:
  const Source& src_;
  CpuidTable table_;
  MsrMap msrs_;
  // Where each (leaf, subleaf) was given, for the duplicate message. Dumps list their leaves in
  // order, so a key above the last one cannot be a duplicate: `seen_` is only filled (from
  // `order_`) once a key comes out of order.
  std::vector<std::pair<CpuidKey, size_t>> order_;
  std::map<CpuidKey, size_t> seen_;
  std::map<uint32_t, size_t> msr_lines_;
  size_t last_line_ = 0;
};

// Splits text into lines (without the '\n' or a trailing '\r').
std::vector<std::string_view> split_lines(std::string_view text);
std::string_view trim(std::string_view s);

// The per-format parsers. Each fills cpuid/msrs (and for YAML everything) and sets `format`.
Result<HostProfile> parse_yaml_profile(std::string_view text, const Source& src);
Result<HostProfile> parse_libvirt_xml(std::string_view text, const Source& src);
Result<HostProfile> parse_cpuid_r(std::string_view text, const Source& src);
Result<HostProfile> parse_aida64(std::string_view text, const Source& src);

// Sniffers: true when the text looks like that format.
bool looks_like_cpuid_r(std::string_view text);
bool looks_like_aida64(std::string_view text);

}  // namespace cpumodel::profile_detail
