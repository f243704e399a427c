// The feature dictionary: ONE table (cpuid/src/feature_table.inc) with a row per named feature
// bit. Name lookup, QEMU-style messages, decode, dependency closure are all derived from it.
#pragma once

#include <bitset>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "cpumodel/cpuid/table.h"

namespace cpumodel {

// Feature words: a 32-bit register of a CPUID leaf/subleaf, or one half of a feature MSR.
enum class FeatureWord : uint8_t {
#define CPUMODEL_WORD(id, is_msr, leaf_or_msr, subleaf, reg) id,
#include "cpumodel/cpuid/feature_words.inc"
#undef CPUMODEL_WORD
  kCount
};

struct FeatureWordInfo {
  FeatureWord word;
  bool is_msr;            // MSR feature word: leaf_or_msr is the MSR index
  uint32_t leaf_or_msr;
  uint32_t subleaf;
  Reg reg;                // for an MSR: kEax = bits 0..31, kEdx = bits 32..63
};

struct FeatureInfo {
  const char* name;       // canonical: QEMU's spelling
  const char* aliases;    // space-separated other spellings (QEMU aliases, Linux, libvirt)
  FeatureWord word;
  uint8_t bit;
  bool migratable;        // false: blocks live migration (invtsc, ...)
  const char* depends;    // space-separated canonical names this feature needs
};

using FeatureId = uint16_t;
inline constexpr size_t kMaxFeatures = 1024;
using MsrMap = std::map<uint32_t, uint64_t>;

std::span<const FeatureWordInfo> feature_words();
const FeatureWordInfo& word_info(FeatureWord w);
std::span<const FeatureInfo> feature_table();
inline const FeatureInfo& feature(FeatureId id) { return feature_table()[id]; }
size_t feature_count();

// Any accepted spelling (case-insensitive; '_' and '-' equivalent) -> id.
std::optional<FeatureId> find_feature(std::string_view spelling);
// Closest known names for a misspelling ("did you mean ...").
std::vector<std::string> suggest_features(std::string_view spelling, size_t max = 3);
// "unknown feature 'avx3' (did you mean 'avx2'?)"
std::string unknown_feature_message(std::string_view spelling);
// Id of the feature at word/bit, if that bit is named.
std::optional<FeatureId> feature_at(FeatureWord w, unsigned bit);

// QEMU's message form: "CPUID.07H:EBX.avx2 [bit 5]", "MSR(10AH).rdctl-no [bit 0]".
std::string describe_feature(FeatureId id);
// An unnamed (or named) bit: "CPUID.07H:ECX[bit 22]".
std::string describe_bit(FeatureWord w, unsigned bit);
// The word as those messages name it: "CPUID.07H:EBX", "CPUID.0DH.1:EAX", "MSR(10AH)".
std::string feature_word_label(FeatureWord w);

class FeatureSet {
 public:
  FeatureSet() = default;
  void add(FeatureId id) { bits_.set(id); }
  void remove(FeatureId id) { bits_.reset(id); }
  void set(FeatureId id, bool on) { bits_.set(id, on); }
  bool has(FeatureId id) const { return bits_.test(id); }
  bool has(std::string_view name) const;  // canonical or alias; unknown -> false
  size_t count() const { return bits_.count(); }
  bool empty() const { return bits_.none(); }
  FeatureSet& operator&=(const FeatureSet& o) { bits_ &= o.bits_; return *this; }
  FeatureSet& operator|=(const FeatureSet& o) { bits_ |= o.bits_; return *this; }
  FeatureSet& operator-=(const FeatureSet& o) { bits_ &= ~o.bits_; return *this; }
  friend FeatureSet operator&(FeatureSet a, const FeatureSet& b) { return a &= b; }
  friend FeatureSet operator|(FeatureSet a, const FeatureSet& b) { return a |= b; }
  friend FeatureSet operator-(FeatureSet a, const FeatureSet& b) { return a -= b; }
  bool operator==(const FeatureSet&) const = default;
  bool is_subset_of(const FeatureSet& o) const { return (bits_ & ~o.bits_).none(); }
  std::vector<FeatureId> ids() const;
  std::vector<std::string> names() const;  // canonical names, sorted
  const std::bitset<kMaxFeatures>& bits() const { return bits_; }

 private:
  std::bitset<kMaxFeatures> bits_;
};

// All named bits set in a table (and its feature MSRs).
FeatureSet features_of(const CpuidTable& table, const MsrMap& msrs = {});
// Named bits of the table that are set in `features` stay or get set; named bits not in
// `features` are cleared. Bits the dictionary does not name are left alone.
void apply_features(const FeatureSet& features, CpuidTable& table, MsrMap* msrs = nullptr);
// Features that every feature of `set` needs, transitively, added to it.
FeatureSet with_requirements(const FeatureSet& set);
// Every feature that (transitively) requires one of `removed` (not including `removed` itself).
FeatureSet dependents_of(const FeatureSet& removed);
// Features whose requirements are not all in `set`, removed transitively ("-avx also removes avx2").
FeatureSet drop_unsatisfied(const FeatureSet& set);
// Features that are migratable.
const FeatureSet& migratable_features();
// Every named feature.
const FeatureSet& all_features();

}  // namespace cpumodel
