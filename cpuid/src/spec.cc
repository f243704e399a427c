#include "cpumodel/cpuid/spec.h"

#include <algorithm>
#include <cctype>
#include <map>

namespace cpumodel {
namespace {

std::string normalize(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = (c == '_') ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// QEMU's boolean spellings.
int parse_bool(std::string_view v) {
  std::string n = normalize(v);
  if (n == "on" || n == "true" || n == "yes") return 1;
  if (n == "off" || n == "false" || n == "no") return 0;
  return -1;
}

Error spec_error(size_t column, const std::string& what) {
  return input_error("cpu spec column " + std::to_string(column) + ": " + what);
}

struct Token {
  std::string_view text;
  size_t column;  // 1-based
};

std::vector<Token> split_commas(std::string_view text) {
  std::vector<Token> out;
  size_t pos = 0;
  for (;;) {
    size_t end = text.find(',', pos);
    if (end == std::string_view::npos) end = text.size();
    out.push_back({text.substr(pos, end - pos), pos + 1});
    if (end == text.size()) break;
    pos = end + 1;
  }
  return out;
}

}  // namespace

Result<CpuSpec> parse_spec(std::string_view text) {
  CpuSpec spec;
  if (text.empty()) return input_error("cpu spec is empty; expected MODEL[,+feat][,-feat][,feat=on|off]");
  std::vector<Token> tokens = split_commas(text);
  const Token& head = tokens.front();
  if (head.text.empty()) return spec_error(1, "missing model name before ','");
  if (head.text.find('=') != std::string_view::npos || head.text[0] == '+' || head.text[0] == '-')
    return spec_error(1, "expected a model name first, got '" + std::string(head.text) + "'");
  spec.model = std::string(head.text);
  // Names seen in each form, for QEMU's "ambiguous" warning (either order warns here).
  std::map<std::string, char> legacy_seen;
  std::map<std::string, std::string> prop_seen;
  auto ambiguous = [&](char sign, const std::string& name, const std::string& prop) {
    spec.warnings.push_back("ambiguous CPU model string: don't mix both \"" + std::string(1, sign) +
                            name + "\" and \"" + prop + "\"; " + std::string(1, sign) + name + " wins");
  };
  for (size_t i = 1; i < tokens.size(); ++i) {
    std::string_view tok = tokens[i].text;
    size_t column = tokens[i].column;
    if (tok.empty()) return spec_error(column, "empty item (two commas in a row, or a trailing comma)");
    if (tok[0] == '+' || tok[0] == '-') {
      std::string name(tok.substr(1));
      if (name.empty()) return spec_error(column, std::string("'") + tok[0] + "' without a feature name");
      if (name.find('=') != std::string::npos)
        return spec_error(column, "'" + std::string(tok) + "': +feat/-feat take no value");
      spec.edits.push_back({name, tok[0] == '+' ? FeatureEdit::Op::kPlus : FeatureEdit::Op::kMinus, column});
      std::string n = normalize(name);
      if (auto it = prop_seen.find(n); it != prop_seen.end()) ambiguous(tok[0], name, it->second);
      legacy_seen[n] = tok[0];
      continue;
    }
    size_t eq = tok.find('=');
    std::string key(tok.substr(0, eq));
    if (key.empty()) return spec_error(column, "'=' without a name");
    int on = 1;
    if (eq != std::string_view::npos) {
      std::string_view value = tok.substr(eq + 1);
      if (value.empty()) return spec_error(column + eq + 1, "'" + key + "=' has no value");
      on = parse_bool(value);
      if (on < 0) {  // not a boolean: a property such as model-id=... or phys-bits=40
        spec.properties.push_back({key, std::string(value), column});
        continue;
      }
    }
    spec.edits.push_back({key, on ? FeatureEdit::Op::kOn : FeatureEdit::Op::kOff, column});
    std::string n = normalize(key);
    if (auto it = legacy_seen.find(n); it != legacy_seen.end()) ambiguous(it->second, key, std::string(tok));
    prop_seen[n] = std::string(tok);
  }
  return spec;
}

EditOutcome resolve_edits(const CpuSpec& spec) {
  // Last state per normalized name, remembering the first spelling used.
  std::vector<std::pair<std::string, std::string>> order;  // normalized, as written
  std::map<std::string, bool> state;
  auto put = [&](const FeatureEdit& e, bool on) {
    std::string n = normalize(e.name);
    if (!state.count(n)) order.push_back({n, e.name});
    state[n] = on;
  };
  for (const auto& e : spec.edits)
    if (!e.legacy()) put(e, e.enables());
  for (const auto& e : spec.edits)
    if (e.op == FeatureEdit::Op::kPlus) put(e, true);
  for (const auto& e : spec.edits)
    if (e.op == FeatureEdit::Op::kMinus) put(e, false);
  EditOutcome out;
  for (const auto& [n, written] : order) (state[n] ? out.enable : out.disable).push_back(written);
  return out;
}

std::string format_spec(const CpuSpec& spec) {
  std::string out = spec.model;
  for (const auto& p : spec.properties) out += "," + p.key + "=" + p.value;
  for (const auto& e : spec.edits)
    if (!e.legacy()) out += "," + e.name + (e.enables() ? "=on" : "=off");
  for (const auto& e : spec.edits)
    if (e.legacy()) out += std::string(",") + (e.op == FeatureEdit::Op::kPlus ? "+" : "-") + e.name;
  return out;
}

}  // namespace cpumodel
