#include "cpumodel/cpuid/features.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <string>
#include <unordered_map>

namespace cpumodel {
namespace {

constexpr FeatureWordInfo kWords[] = {
#define CPUMODEL_WORD(id, is_msr, leaf_or_msr, subleaf, reg) \
  {FeatureWord::id, is_msr, leaf_or_msr, subleaf, reg},
#include "cpumodel/cpuid/feature_words.inc"
#undef CPUMODEL_WORD
};
static_assert(std::size(kWords) == static_cast<size_t>(FeatureWord::kCount));

constexpr FeatureInfo kFeatures[] = {
#include "feature_table.inc"
};
static_assert(std::size(kFeatures) <= kMaxFeatures, "raise kMaxFeatures");

std::string normalize(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c == '_') ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

template <class F>
void for_each_word(const char* list, F&& f) {
  std::string_view s(list);
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(' ', pos);
    if (end == std::string_view::npos) end = s.size();
    if (end > pos) f(s.substr(pos, end - pos));
    pos = end + 1;
  }
}

struct Index {
  std::unordered_map<std::string, FeatureId> by_name;  // normalized canonical names and aliases
  std::array<std::array<int16_t, 32>, static_cast<size_t>(FeatureWord::kCount)> by_bit{};
  std::vector<std::vector<FeatureId>> requires_of;     // direct requirements
  std::vector<std::vector<FeatureId>> required_by;     // direct dependents
  FeatureSet migratable, all;

  Index() {
    for (auto& w : by_bit) w.fill(-1);
    requires_of.resize(std::size(kFeatures));
    required_by.resize(std::size(kFeatures));
    for (FeatureId id = 0; id < std::size(kFeatures); ++id) {
      const FeatureInfo& f = kFeatures[id];
      by_name.emplace(normalize(f.name), id);
      by_bit[static_cast<size_t>(f.word)][f.bit] = static_cast<int16_t>(id);
      all.add(id);
      if (f.migratable) migratable.add(id);
    }
    // Aliases after canonical names, so a canonical name always wins a clash.
    for (FeatureId id = 0; id < std::size(kFeatures); ++id)
      for_each_word(kFeatures[id].aliases, [&](std::string_view a) { by_name.emplace(normalize(a), id); });
    for (FeatureId id = 0; id < std::size(kFeatures); ++id)
      for_each_word(kFeatures[id].depends, [&](std::string_view r) {
        auto it = by_name.find(normalize(r));
        if (it == by_name.end()) return;  // caught by the dictionary sanity test
        requires_of[id].push_back(it->second);
        required_by[it->second].push_back(id);
      });
  }
};

const Index& index() {
  static const Index idx;
  return idx;
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

// Walks the graph from `start` along `edges`, returning everything reached (start excluded).
FeatureSet reach(const FeatureSet& start, const std::vector<std::vector<FeatureId>>& edges) {
  FeatureSet seen = start;
  std::vector<FeatureId> stack = start.ids();
  while (!stack.empty()) {
    FeatureId id = stack.back();
    stack.pop_back();
    for (FeatureId next : edges[id])
      if (!seen.has(next)) {
        seen.add(next);
        stack.push_back(next);
      }
  }
  return seen - start;
}

}  // namespace

std::span<const FeatureWordInfo> feature_words() { return kWords; }
const FeatureWordInfo& word_info(FeatureWord w) { return kWords[static_cast<size_t>(w)]; }
std::span<const FeatureInfo> feature_table() { return kFeatures; }
size_t feature_count() { return std::size(kFeatures); }

std::optional<FeatureId> find_feature(std::string_view spelling) {
  const auto& m = index().by_name;
  auto it = m.find(normalize(spelling));
  if (it == m.end()) {
    // QEMU also accepts "sse4.1" written as "sse4-1"/"sse4_1": '.' and '-' are interchangeable.
    std::string n = normalize(spelling);
    std::replace(n.begin(), n.end(), '.', '-');
    it = m.find(n);
    if (it == m.end()) return std::nullopt;
  }
  return it->second;
}

std::vector<std::string> suggest_features(std::string_view spelling, size_t max) {
  std::string n = normalize(spelling);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const auto& f : kFeatures) {
    size_t d = edit_distance(n, normalize(f.name));
    if (d <= std::max<size_t>(2, n.size() / 3)) scored.push_back({d, f.name});
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (auto& [d, name] : scored)
    if (out.size() < max) out.push_back(name);
  return out;
}

std::string unknown_feature_message(std::string_view spelling) {
  std::string msg = "unknown feature '" + std::string(spelling) + "'";
  auto s = suggest_features(spelling, 1);
  if (!s.empty()) msg += " (did you mean '" + s[0] + "'?)";
  return msg;
}

std::optional<FeatureId> feature_at(FeatureWord w, unsigned bit) {
  if (bit >= 32) return std::nullopt;
  int16_t id = index().by_bit[static_cast<size_t>(w)][bit];
  if (id < 0) return std::nullopt;
  return static_cast<FeatureId>(id);
}

std::string feature_word_label(FeatureWord w) {
  const FeatureWordInfo& wi = word_info(w);
  char buf[48];
  if (wi.is_msr) {
    std::snprintf(buf, sizeof buf, "MSR(%02XH)", wi.leaf_or_msr);
    return buf;
  }
  std::string leaf = leaf_label(wi.leaf_or_msr);
  if (is_indexed_leaf(wi.leaf_or_msr) && wi.subleaf != 0) leaf += "." + std::to_string(wi.subleaf);
  return "CPUID." + leaf + ":" + reg_name(wi.reg);
}

std::string describe_bit(FeatureWord w, unsigned bit) {
  const FeatureWordInfo& wi = word_info(w);
  auto id = feature_at(w, bit);
  std::string name = id ? std::string(".") + kFeatures[*id].name + " " : std::string();
  unsigned b = bit + (wi.is_msr && wi.reg == Reg::kEdx ? 32 : 0);  // an MSR's high word: bits 32..63
  return feature_word_label(w) + name + "[bit " + std::to_string(b) + "]";
}

std::string describe_feature(FeatureId id) { return describe_bit(kFeatures[id].word, kFeatures[id].bit); }

bool FeatureSet::has(std::string_view name) const {
  auto id = find_feature(name);
  return id && has(*id);
}

std::vector<FeatureId> FeatureSet::ids() const {
  std::vector<FeatureId> out;
  for (size_t i = bits_._Find_first(); i < kMaxFeatures; i = bits_._Find_next(i))
    out.push_back(static_cast<FeatureId>(i));
  return out;
}

std::vector<std::string> FeatureSet::names() const {
  std::vector<std::string> out;
  for (FeatureId id : ids()) out.emplace_back(kFeatures[id].name);
  std::sort(out.begin(), out.end());
  return out;
}

namespace {
uint32_t word_value(const FeatureWordInfo& wi, const CpuidTable& table, const MsrMap& msrs) {
  if (!wi.is_msr) return table.reg_value(wi.leaf_or_msr, wi.subleaf, wi.reg);
  auto it = msrs.find(wi.leaf_or_msr);
  if (it == msrs.end()) return 0;
  return static_cast<uint32_t>(wi.reg == Reg::kEdx ? it->second >> 32 : it->second);
}
}  // namespace

FeatureSet features_of(const CpuidTable& table, const MsrMap& msrs) {
  FeatureSet out;
  const Index& idx = index();
  for (const auto& wi : kWords) {
    uint32_t v = word_value(wi, table, msrs);
    const auto& bits = idx.by_bit[static_cast<size_t>(wi.word)];
    for (; v; v &= v - 1) {
      int16_t id = bits[__builtin_ctz(v)];
      if (id >= 0) out.add(static_cast<FeatureId>(id));
    }
  }
  return out;
}

void apply_features(const FeatureSet& features, CpuidTable& table, MsrMap* msrs) {
  for (FeatureId id = 0; id < std::size(kFeatures); ++id) {
    const FeatureInfo& f = kFeatures[id];
    const FeatureWordInfo& wi = word_info(f.word);
    bool on = features.has(id);
    if (!wi.is_msr) {
      if (on || table.has(wi.leaf_or_msr, wi.subleaf)) table.set_bit(wi.leaf_or_msr, wi.subleaf, wi.reg, f.bit, on);
    } else if (msrs) {
      uint64_t mask = 1ull << (f.bit + (wi.reg == Reg::kEdx ? 32 : 0));
      auto it = msrs->find(wi.leaf_or_msr);
      if (on) (*msrs)[wi.leaf_or_msr] |= mask;
      else if (it != msrs->end()) it->second &= ~mask;
    }
  }
}

FeatureSet with_requirements(const FeatureSet& set) { return set | reach(set, index().requires_of); }

FeatureSet dependents_of(const FeatureSet& removed) { return reach(removed, index().required_by); }

FeatureSet drop_unsatisfied(const FeatureSet& set) {
  FeatureSet missing = all_features() - set;
  return set - dependents_of(missing);
}

const FeatureSet& migratable_features() { return index().migratable; }
const FeatureSet& all_features() { return index().all; }

}  // namespace cpumodel
