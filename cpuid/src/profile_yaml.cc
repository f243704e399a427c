// Our YAML host profile: what `cpumodel host --save` and `cpumodel import` write. yaml-cpp stays
// private to this file and its exceptions are caught here. The writer is hand-made so the output
// is stable and diffable: one flow map per CPUID entry, hex as 0x-prefixed text.
#include <yaml-cpp/yaml.h>

#include <cctype>
#include <charconv>
#include <cstdio>
#include <set>

#include "profile_internal.h"

namespace cpumodel::profile_detail {
namespace {

constexpr int kProfileVersion = 1;

class Reader {
 public:
  explicit Reader(const Source& src) : src_(src) {}

  size_t line(const YAML::Node& n) const { return n.Mark().line >= 0 ? static_cast<size_t>(n.Mark().line) + 1 : 1; }
  Error err(const YAML::Node& n, const std::string& what) const { return src_.at(line(n), what); }

  Result<std::string> scalar(const YAML::Node& n, const std::string& what) const {
    if (!n.IsScalar()) return err(n, what + ": expected a single value");
    return n.Scalar();
  }
  Result<uint64_t> hex(const YAML::Node& n, const std::string& what, size_t digits) const {
    auto s = scalar(n, what);
    if (!s) return s.error();
    auto v = parse_hex(*s, true, digits);
    if (!v) return err(n, what + ": '" + *s + "' is not a hex number (0x + up to " + std::to_string(digits) + " digits)");
    return *v;
  }
  Result<unsigned> count(const YAML::Node& n, const std::string& what) const {
    auto s = scalar(n, what);
    if (!s) return s.error();
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), v);
    if (ec != std::errc() || p != s->data() + s->size()) return err(n, what + ": '" + *s + "' is not a whole number");
    return v;
  }

  std::optional<Error> cpuid_list(const YAML::Node& n, const std::string& key, CpuidTable& out) const {
    if (!n.IsSequence()) return err(n, key + ": expected a list of {leaf, subleaf, eax, ebx, ecx, edx}");
    EntryCollector c(src_);
    size_t i = 0;
    for (const YAML::Node& e : n) {
      std::string at = key + "[" + std::to_string(i++) + "]";
      if (!e.IsMap()) return err(e, at + ": expected {leaf, subleaf, eax, ebx, ecx, edx}");
      static const char* const kFields[] = {"leaf", "subleaf", "eax", "ebx", "ecx", "edx"};
      uint64_t v[6] = {};
      for (const auto& kv : e) {
        std::string k = kv.first.Scalar();
        size_t f = 0;
        while (f < 6 && k != kFields[f]) ++f;
        if (f == 6) return err(kv.first, at + ": unknown field '" + k + "'");
        auto x = hex(kv.second, at + "." + k, 8);
        if (!x) return x.error();
        v[f] = *x;
      }
      for (size_t f : {size_t{0}, size_t{2}, size_t{3}, size_t{4}, size_t{5}})
        if (!e[kFields[f]]) return err(e, at + ": missing '" + kFields[f] + "'");
      CpuidRegs regs{static_cast<uint32_t>(v[2]), static_cast<uint32_t>(v[3]), static_cast<uint32_t>(v[4]),
                     static_cast<uint32_t>(v[5])};
      if (auto x = c.add(static_cast<uint32_t>(v[0]), static_cast<uint32_t>(v[1]), regs, line(e))) return x;
    }
    out = std::move(c.table());
    return std::nullopt;
  }

  std::optional<Error> msr_list(const YAML::Node& n, const std::string& key, MsrMap& out) const {
    if (!n.IsSequence()) return err(n, key + ": expected a list of {index, value}");
    EntryCollector c(src_);
    size_t i = 0;
    for (const YAML::Node& e : n) {
      std::string at = key + "[" + std::to_string(i++) + "]";
      if (!e.IsMap() || !e["index"] || !e["value"] || e.size() != 2) return err(e, at + ": expected {index, value}");
      auto index = hex(e["index"], at + ".index", 8);
      if (!index) return index.error();
      auto value = hex(e["value"], at + ".value", 16);
      if (!value) return value.error();
      if (auto x = c.add_msr(static_cast<uint32_t>(*index), *value, line(e))) return x;
    }
    out = std::move(c.msrs());
    return std::nullopt;
  }

  std::optional<Error> topology(const YAML::Node& n, HostTopology& t) const {
    if (!n.IsMap()) return err(n, "topology: expected a map");
    for (const auto& kv : n) {
      std::string k = kv.first.Scalar();
      unsigned* f = k == "packages" ? &t.packages : k == "dies" ? &t.dies : k == "cores" ? &t.cores
                  : k == "threads" ? &t.threads : k == "numa_nodes" ? &t.numa_nodes
                  : k == "online_cpus" ? &t.online_cpus : nullptr;
      if (!f) return err(kv.first, "topology: unknown field '" + k + "'");
      auto v = count(kv.second, "topology." + k);
      if (!v) return v.error();
      *f = *v;
    }
    return std::nullopt;
  }

  std::optional<Error> facts(const YAML::Node& n, std::map<std::string, std::string>& out) const {
    if (!n.IsMap()) return err(n, "facts: expected a map of name: value");
    for (const auto& kv : n) {
      auto v = scalar(kv.second, "facts." + kv.first.Scalar());
      if (!v) return v.error();
      out[kv.first.Scalar()] = *v;
    }
    return std::nullopt;
  }

  std::optional<Error> field(const std::string& k, const YAML::Node& v, HostProfile& p) const {
    if (k == "profile_version") {
      auto x = count(v, k);
      if (!x) return x.error();
      if (*x != kProfileVersion) return err(v, "profile_version " + std::to_string(*x) + " is not supported (this build reads 1)");
      return std::nullopt;
    }
    if (k == "name") {
      auto x = scalar(v, k);
      if (!x) return x.error();
      p.name = *x;
      return std::nullopt;
    }
    if (k == "tsc_khz") {
      auto s = scalar(v, k);
      if (!s) return s.error();
      double d = 0;
      auto [end, ec] = std::from_chars(s->data(), s->data() + s->size(), d);
      if (ec != std::errc() || end != s->data() + s->size() || d < 0) return err(v, "tsc_khz: '" + *s + "' is not a number");
      p.tsc_khz = d;
      return std::nullopt;
    }
    if (k == "facts") return facts(v, p.facts);
    if (k == "topology") return topology(v, p.topology);
    if (k == "cpuid") return cpuid_list(v, k, p.cpuid);
    if (k == "msrs") return msr_list(v, k, p.msrs);
    if (k == "kvm_cpuid") return cpuid_list(v, k, p.kvm_cpuid.emplace());
    if (k == "kvm_msrs") return msr_list(v, k, p.kvm_msrs.emplace());
    return std::nullopt;
  }

 private:
  const Source& src_;
};

Result<HostProfile> read_root(const YAML::Node& root, const Source& src) {
  Reader r(src);
  if (!root.IsMap() || !root["cpuid"])
    return r.err(root, "not a host profile: expected our YAML (a map with a 'cpuid' list), libvirt <cpudata> XML, "
                       "cpuid -r text or AIDA64 text");
  static const std::set<std::string> kKeys = {"profile_version", "name", "facts", "topology", "tsc_khz",
                                              "cpuid", "msrs", "kvm_cpuid", "kvm_msrs"};
  HostProfile p;
  for (const auto& kv : root) {
    std::string k = kv.first.Scalar();
    if (!kKeys.count(k)) return r.err(kv.first, "unknown key '" + k + "' in host profile");
    if (auto e = r.field(k, kv.second, p)) return *e;
  }
  return p;
}

// ---- writer ----

std::string quoted(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

std::string key_text(const std::string& k) {
  bool plain = !k.empty();
  for (char c : k)
    plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
  return plain ? k : quoted(k);
}

void write_cpuid(std::string& out, const char* key, const CpuidTable& t) {
  out += key;
  out += t.empty() ? ": []\n" : ":\n";
  char buf[160];
  for (const auto& [k, r] : t.entries()) {
    std::snprintf(buf, sizeof buf,
                  "  - {leaf: 0x%08x, subleaf: 0x%02x, eax: 0x%08x, ebx: 0x%08x, ecx: 0x%08x, edx: 0x%08x}\n", k.leaf,
                  k.subleaf, r.eax, r.ebx, r.ecx, r.edx);
    out += buf;
  }
}

void write_msrs(std::string& out, const char* key, const MsrMap& m) {
  out += key;
  out += m.empty() ? ": []\n" : ":\n";
  char buf[96];
  for (const auto& [index, value] : m) {
    std::snprintf(buf, sizeof buf, "  - {index: 0x%08x, value: 0x%016llx}\n", index,
                  static_cast<unsigned long long>(value));
    out += buf;
  }
}

}  // namespace

Result<HostProfile> parse_yaml_profile(std::string_view text, const Source& src) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    return read_root(root, src);
  } catch (const YAML::Exception& e) {
    size_t line = e.mark.line >= 0 ? static_cast<size_t>(e.mark.line) + 1 : 1;
    return src.at(line, "malformed YAML: " + e.msg);
  }
}

}  // namespace cpumodel::profile_detail

namespace cpumodel {

std::string profile_to_yaml(const HostProfile& p) {
  using profile_detail::key_text;
  using profile_detail::quoted;
  std::string out =
      "# cpumodel host profile: raw CPUID of the first logical CPU, feature MSRs and, when known, what KVM\n"
      "# supports (kvm_cpuid, kvm_msrs). Written by `cpumodel host --save` / `cpumodel import`.\n";
  out += "profile_version: " + std::to_string(profile_detail::kProfileVersion) + "\n";
  out += "name: " + quoted(p.name) + "\n";
  if (!p.facts.empty()) {
    out += "facts:\n";
    for (const auto& [k, v] : p.facts) out += "  " + key_text(k) + ": " + quoted(v) + "\n";
  }
  if (p.topology != HostTopology{}) {  // partial ones too (online_cpus 0 = unknown): the reader keeps them
    const HostTopology& t = p.topology;
    out += "topology: {packages: " + std::to_string(t.packages) + ", dies: " + std::to_string(t.dies) +
           ", cores: " + std::to_string(t.cores) + ", threads: " + std::to_string(t.threads) +
           ", numa_nodes: " + std::to_string(t.numa_nodes) + ", online_cpus: " + std::to_string(t.online_cpus) + "}\n";
  }
  if (p.tsc_khz) {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, *p.tsc_khz);
    out += "tsc_khz: " + std::string(buf, r.ptr) + "\n";
  }
  profile_detail::write_cpuid(out, "cpuid", p.cpuid);
  if (!p.msrs.empty()) profile_detail::write_msrs(out, "msrs", p.msrs);
  if (p.kvm_cpuid) profile_detail::write_cpuid(out, "kvm_cpuid", *p.kvm_cpuid);
  if (p.kvm_msrs) profile_detail::write_msrs(out, "kvm_msrs", *p.kvm_msrs);
  return out;
}

}  // namespace cpumodel
