// Bundle codec: HostProfile <-> cpumodel.pb.Bundle. Protobuf stays inside this file.
#include "cpumodel/migrate/bundle.h"

#include <set>

#include <google/protobuf/stubs/logging.h>

#include "bundle.pb.h"
#include "bundle_internal.h"

namespace cpumodel {
namespace {

void pack_table(const CpuidTable& t, google::protobuf::RepeatedField<uint32_t>* out) {
  out->Reserve(static_cast<int>(t.size() * 6));
  for (const auto& [k, r] : t.entries()) {
    for (uint32_t w : {k.leaf, k.subleaf, r.eax, r.ebx, r.ecx, r.edx}) out->AddAlreadyReserved(w);
  }
}

void pack_msrs(const MsrMap& m, google::protobuf::RepeatedField<uint64_t>* out) {
  for (const auto& [index, value] : m) {
    out->Add(index);
    out->Add(value);
  }
}

Result<MsrMap> unpack_msrs(const google::protobuf::RepeatedField<uint64_t>& words, const std::string& where) {
  if (words.size() % 2 != 0) return input_error(where + ": corrupt bundle: MSRs are not index/value pairs");
  MsrMap m;
  for (int i = 0; i < words.size(); i += 2) m[static_cast<uint32_t>(words[i])] = words[i + 1];
  return m;
}

void to_proto(const HostProfile& p, pb::Host* h) {
  h->set_name(p.name);
  h->set_source(p.source);
  h->set_format(p.format);
  pack_table(p.cpuid, h->mutable_cpuid());
  pack_msrs(p.msrs, h->mutable_msrs());
  if (p.kvm_cpuid) {
    h->set_has_kvm_cpuid(true);
    pack_table(*p.kvm_cpuid, h->mutable_kvm_cpuid());
  }
  if (p.kvm_msrs) {
    h->set_has_kvm_msrs(true);
    pack_msrs(*p.kvm_msrs, h->mutable_kvm_msrs());
  }
  auto* t = h->mutable_topology();
  t->set_packages(p.topology.packages);
  t->set_dies(p.topology.dies);
  t->set_cores(p.topology.cores);
  t->set_threads(p.topology.threads);
  t->set_numa_nodes(p.topology.numa_nodes);
  t->set_online_cpus(p.topology.online_cpus);
  if (p.tsc_khz) h->set_tsc_khz(*p.tsc_khz);
  for (const auto& [k, v] : p.facts) (*h->mutable_facts())[k] = v;
}

Result<HostProfile> from_proto(const pb::Host& h, const std::string& bundle_name) {
  HostProfile p;
  p.name = h.name();
  p.source = bundle_name + "#" + h.name();
  p.format = "bundle";
  if (auto st = internal::validate_host_words(h, p.source); !st) return st.error();
  auto cpuid = internal::unpack_table(h.cpuid(), p.source);
  if (!cpuid) return cpuid.error();
  p.cpuid = std::move(*cpuid);
  auto msrs = unpack_msrs(h.msrs(), p.source);
  if (!msrs) return msrs.error();
  p.msrs = std::move(*msrs);
  if (h.has_kvm_cpuid()) {
    auto k = internal::unpack_table(h.kvm_cpuid(), p.source);
    if (!k) return k.error();
    p.kvm_cpuid = std::move(*k);
  }
  if (h.has_kvm_msrs()) {
    auto k = unpack_msrs(h.kvm_msrs(), p.source);
    if (!k) return k.error();
    p.kvm_msrs = std::move(*k);
  }
  const auto& t = h.topology();
  p.topology = HostTopology{t.packages(), t.dies(), t.cores(), t.threads(), t.numa_nodes(), t.online_cpus()};
  if (h.has_tsc_khz()) p.tsc_khz = h.tsc_khz();
  for (const auto& [k, v] : h.facts()) p.facts[k] = v;
  if (!h.format().empty()) p.facts.emplace("source_format", h.format());
  return p;
}

}  // namespace

bool is_bundle(std::string_view data) {
  if (data.size() < 5 || static_cast<unsigned char>(data[0]) != 0x0D) return false;
  uint32_t magic = 0;
  for (int i = 0; i < 4; ++i) magic |= uint32_t{static_cast<unsigned char>(data[1 + i])} << (8 * i);
  return magic == kBundleMagic;
}

std::string encode_bundle(const std::vector<HostProfile>& hosts) {
  pb::Bundle b;
  b.set_magic(kBundleMagic);
  b.set_version(kBundleVersion);
  b.mutable_hosts()->Reserve(static_cast<int>(hosts.size()));
  for (const auto& h : hosts) to_proto(h, b.add_hosts());
  b.set_host_count(static_cast<uint32_t>(hosts.size()));
  return b.SerializeAsString();
}

namespace internal {

namespace {

bool valid_cpuid_words(const google::protobuf::RepeatedField<uint32_t>& w) {
  if (w.size() % 6 != 0) return false;
  for (int i = 0; i < w.size(); i += 6) {
    if (w[i + 1] != 0 && !is_indexed_leaf(w[i])) return false;
    if (i > 0 && (w[i - 6] > w[i] || (w[i - 6] == w[i] && w[i - 5] >= w[i + 1]))) return false;
  }
  return true;
}

bool valid_msr_words(const google::protobuf::RepeatedField<uint64_t>& w) {
  if (w.size() % 2 != 0) return false;
  for (int i = 0; i < w.size(); i += 2) {
    if (w[i] > UINT32_MAX) return false;
    if (i > 0 && w[i - 2] >= w[i]) return false;
  }
  return true;
}

}  // namespace

Status validate_host_words(const pb::Host& h, const std::string& where) {
  if (!valid_cpuid_words(h.cpuid()) || !valid_cpuid_words(h.kvm_cpuid()))
    return input_error(where + ": corrupt bundle: CPUID entries malformed, out of order or repeated");
  if (!valid_msr_words(h.msrs()) || !valid_msr_words(h.kvm_msrs()))
    return input_error(where + ": corrupt bundle: MSR list malformed, out of order or repeated");
  return ok_status();
}

Result<CpuidTable> unpack_table(const google::protobuf::RepeatedField<uint32_t>& words, const std::string& where) {
  if (words.size() % 6 != 0)
    return input_error(where + ": corrupt bundle: CPUID entries are not 6 words each");
  CpuidTable t;
  for (int i = 0; i < words.size(); i += 6)
    t.set(words[i], words[i + 1], CpuidRegs{words[i + 2], words[i + 3], words[i + 4], words[i + 5]});
  return t;
}

Status parse_bundle(pb::Bundle& b, std::string_view data, const std::string& name) {
  if (!is_bundle(data))
    return input_error(name + ": not a cpumodel bundle (no bundle magic at the start of the file)");
  bool parsed = false;
  // Protobuf logs its own parse complaints (invalid UTF-8...) to stderr; ours is the one-line error.
  google::protobuf::LogSilencer silence;
  try {
    parsed = data.size() <= static_cast<size_t>(INT32_MAX) &&
             b.ParseFromArray(data.data(), static_cast<int>(data.size()));
  } catch (const std::exception&) {
    parsed = false;
  }
  if (!parsed)
    return input_error(name + ": truncated or corrupt bundle (" + std::to_string(data.size()) +
                       " bytes do not parse as a cpumodel bundle)");
  if (b.version() == 0)  // the second field: a file cut this short has none
    return input_error(name + ": truncated bundle (" + std::to_string(data.size()) + " bytes, no version field)");
  if (b.version() != kBundleVersion)
    return input_error(name + ": bundle version " + std::to_string(b.version()) +
                       " is not supported (this cpumodel reads version " + std::to_string(kBundleVersion) + ")");
  if (b.host_count() != static_cast<uint32_t>(b.hosts_size()))
    return input_error(name + ": truncated bundle: " + std::to_string(b.hosts_size()) + " hosts found, " +
                       (b.host_count() ? "the bundle says " + std::to_string(b.host_count())
                                       : std::string("and the end-of-bundle count is missing")));
  if (b.hosts().empty()) return input_error(name + ": the bundle holds no hosts");
  return ok_status();
}

}  // namespace internal

Result<std::vector<HostProfile>> decode_bundle(std::string_view data, const std::string& name) {
  pb::Bundle b;
  auto st = internal::parse_bundle(b, data, name);
  if (!st) return st.error();
  std::vector<HostProfile> out;
  out.reserve(static_cast<size_t>(b.hosts_size()));
  for (const auto& h : b.hosts()) {
    auto p = from_proto(h, name);
    if (!p) return p.error();
    out.push_back(std::move(*p));
  }
  return out;
}

}  // namespace cpumodel

namespace cpumodel {

namespace {
constexpr size_t kMaxBundleBytes = size_t{2} << 30;  // protobuf's 2 GiB message limit
}

Result<std::vector<HostProfile>> load_profiles(const std::string& path) {
  auto data = read_file(path, kMaxBundleBytes);
  if (!data) return data.error();
  if (is_bundle(*data)) return decode_bundle(*data, path);
  if (data->empty()) return input_error(path + ": empty file, expected a host profile or a bundle");
  auto p = parse_profile(*data, path);
  if (!p) return p.error();
  if (p->source.empty()) p->source = path;
  std::vector<HostProfile> out;
  out.push_back(std::move(*p));
  return out;
}

Result<std::vector<HostProfile>> load_profiles(const std::vector<std::string>& paths) {
  std::vector<HostProfile> out;
  for (const auto& path : paths) {
    auto some = load_profiles(path);
    if (!some) return some.error();
    for (auto& p : *some) out.push_back(std::move(p));
  }
  return out;
}

Result<size_t> import_bundle(const std::vector<std::string>& inputs, const std::string& out_path,
                             const std::function<void(size_t, size_t)>& progress) {
  if (inputs.empty()) return input_error("import --bundle: no input files");
  std::vector<HostProfile> hosts;
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto some = load_profiles(inputs[i]);
    if (!some) return some.error();
    for (auto& p : *some) hosts.push_back(std::move(p));
    if (progress) progress(i + 1, inputs.size());
  }
  std::set<std::string> seen;
  for (auto& h : hosts) {
    std::string base = h.name.empty() ? profile_name_from_path(h.source) : h.name;
    std::string name = base;
    for (int n = 2; !seen.insert(name).second; ++n) name = base + "-" + std::to_string(n);
    h.name = name;
  }
  auto st = write_file_atomic(out_path, encode_bundle(hosts));
  if (!st) return st.error();
  return hosts.size();
}

}  // namespace cpumodel
