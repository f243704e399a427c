// The compiled catalog: the resolved entries of a set of model files, in a compact binary form
// that loads in well under a millisecond (parsing the YAML with yaml-cpp and resolving it takes
// 10-30 ms, which was most of every command's run time). tools/catalog_compile writes it at build
// time from data/models; Catalog::load uses it only when the files it is asked to load are, byte
// for byte, the ones it was compiled from and the feature dictionary is the same. Anything else
// (an edited file, a user's --models-dir) is parsed from YAML as before.
//
// Format (little-endian): "CPMCAT\0" kFormatVersion, dictionary fingerprint (u64), files
// fingerprint (u64), file count + base names, entry count, the directory (per entry: name, alias,
// base name, kind (u8), version (u32), default version (u8), byte length (u32)), a checksum of
// the entries' bytes (u64), then the entries one after another, so that one can be decoded without
// the others (the checksum, ~20 us, is checked when the catalog is opened). Strings are u32 length +
// bytes; a build-time file path inside a string is stored as "\x01" + file index so `source`
// ("file:line") names the files the catalog was loaded from, wherever they are installed.
#include "compiled_catalog.h"

#include <cstring>
#include <filesystem>
#include <type_traits>

namespace cpumodel::detail {
namespace {

constexpr char kMagic[8] = {'C', 'P', 'M', 'C', 'A', 'T', '\0', '\0'};
constexpr uint32_t kFormatVersion = 2;
constexpr char kPathMark = '\x01';

#if defined(__x86_64__) && defined(__GLIBCXX__)
// A field added to one of these structs must be added to the codec below (and this size bumped).
static_assert(sizeof(Signature) == 56, "Signature changed: update compiled_catalog.cc");
static_assert(sizeof(CacheLevel) == 40, "CacheLevel changed: update compiled_catalog.cc");
static_assert(sizeof(CpuDefinition) == 352, "CpuDefinition changed: update compiled_catalog.cc");
static_assert(sizeof(ModelEntry) == 712, "ModelEntry changed: update compiled_catalog.cc");
#endif

uint64_t fnv1a(uint64_t h, std::string_view bytes) {
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;

// FNV-1a's step on 8 bytes at a time, with a shift to fold the high bits back (the model files
// are read and hashed on every start: byte-wise FNV-1a over their 80 KB took ~80 us). Detects
// edits, as the byte-wise hash did; not a cryptographic hash.
uint64_t hash_words(uint64_t h, std::string_view bytes) {
  size_t i = 0;
  for (; i + 8 <= bytes.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, bytes.data() + i, 8);
    h = (h ^ w) * 0x100000001b3ull;
    h ^= h >> 29;
  }
  return fnv1a(h, bytes.substr(i));
}

class Writer {
 public:
  explicit Writer(const std::vector<std::string>& files) : files_(files) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void raw(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    out_.append(s);
  }
  // Build-time paths become "\x01<index>": the reader puts back the paths it loaded from.
  Status str(std::string_view s) {
    if (s.find(kPathMark) != std::string_view::npos) return input_error("a catalog string holds byte 0x01");
    std::string t(s);
    for (size_t i = 0; i < files_.size(); ++i) {
      const std::string& f = files_[i];
      for (size_t p = t.find(f); p != std::string::npos; p = t.find(f, p + 2))
        t.replace(p, f.size(), std::string{kPathMark, static_cast<char>('0' + i)});
    }
    raw(t);
    return ok_status();
  }
  template <class T>
  void opt(const std::optional<T>& v) {
    u8(v.has_value());
    if (v) u64(static_cast<uint64_t>(*v));
  }
  void features(const FeatureSet& f) {
    auto ids = f.ids();
    u32(static_cast<uint32_t>(ids.size()));
    for (FeatureId id : ids) u32(id);
  }
  std::string take() { return std::move(out_); }

 private:
  const std::vector<std::string>& files_;
  std::string out_;
};

class Reader {
 public:
  Reader(std::string_view in, const std::vector<std::string>& files) : in_(in), files_(files) {}
  bool ok() const { return ok_; }
  bool done() const { return pos_ == in_.size(); }
  size_t remaining() const { return in_.size() - pos_; }
  uint8_t u8() {
    if (pos_ + 1 > in_.size()) return fail(), 0;
    return static_cast<uint8_t>(in_[pos_++]);
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= uint32_t{u8()} << (8 * i);
    return v;
  }
  uint64_t u64() {
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i) v |= uint64_t{u8()} << (8 * i);
    return v;
  }
  std::string_view raw() {
    uint32_t n = u32();
    if (!ok_ || n > in_.size() - pos_) return fail(), std::string_view{};
    std::string_view s = in_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string str() {
    std::string_view s = raw();
    if (s.find(kPathMark) == std::string_view::npos) return std::string(s);
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != kPathMark) {
        out.push_back(s[i]);
        continue;
      }
      size_t idx = i + 1 < s.size() ? static_cast<size_t>(s[i + 1] - '0') : files_.size();
      if (idx >= files_.size()) return fail(), std::string{};
      out += files_[idx];
      ++i;
    }
    return out;
  }
  bool flag() { return u8() != 0; }
  template <class T>
  std::optional<T> opt() {
    if (!flag()) return std::nullopt;
    return static_cast<T>(u64());
  }
  FeatureSet features() {
    FeatureSet f;
    uint32_t n = u32();
    for (uint32_t i = 0; i < n && ok_; ++i) {
      uint32_t id = u32();
      if (id >= feature_count()) return fail(), f;
      f.add(static_cast<FeatureId>(id));
    }
    return f;
  }
  // A count of items that each take at least `min_bytes`: refuses counts the input cannot hold.
  uint32_t count(size_t min_bytes) {
    uint32_t n = u32();
    if (n > (in_.size() - std::min(pos_, in_.size())) / min_bytes) return fail(), 0;
    return n;
  }

 private:
  void fail() {
    ok_ = false;
    pos_ = in_.size();
  }
  std::string_view in_;
  const std::vector<std::string>& files_;
  size_t pos_ = 0;
  bool ok_ = true;
};

Status write_definition(Writer& w, const CpuDefinition& d) {
  for (const std::string* s : {&d.model, &d.vendor, &d.model_id})
    if (auto st = w.str(*s); !st) return st;
  for (uint32_t v : {d.family, d.model_number, d.stepping, d.level, d.xlevel, d.xlevel2}) w.u32(v);
  w.features(d.features);
  w.u8(d.cache.has_value());
  if (d.cache) {
    w.u32(static_cast<uint32_t>(d.cache->levels.size()));
    for (const CacheLevel& c : d.cache->levels) {
      w.u8(static_cast<uint8_t>(c.type));
      for (uint32_t v : {c.level, c.size_kib, c.line_size, c.associativity, c.partitions, c.sets, c.lines_per_tag})
        w.u32(v);
      for (bool b : {c.self_init, c.no_invd_sharing, c.inclusive, c.complex_indexing}) w.u8(b);
      w.u8(static_cast<uint8_t>(c.shared));
    }
  }
  w.opt(d.phys_bits);
  w.u8(d.host_phys_bits);
  w.u8(d.pmu);
  w.opt(d.tsc_khz);
  w.opt(d.arch_capabilities);
  w.u32(static_cast<uint32_t>(d.notes.size()));
  for (const auto& n : d.notes)
    if (auto st = w.str(n); !st) return st;
  return ok_status();
}

CpuDefinition read_definition(Reader& r) {
  CpuDefinition d;
  d.model = r.str();
  d.vendor = r.str();
  d.model_id = r.str();
  for (unsigned* v : {&d.family, &d.model_number, &d.stepping}) *v = r.u32();
  for (uint32_t* v : {&d.level, &d.xlevel, &d.xlevel2}) *v = r.u32();
  d.features = r.features();
  if (r.flag()) {
    CacheInfo info;
    info.levels.resize(r.count(34));
    for (CacheLevel& c : info.levels) {
      c.type = static_cast<CacheLevel::Type>(r.u8() % 3);
      for (unsigned* v : {&c.level, &c.size_kib, &c.line_size, &c.associativity, &c.partitions, &c.sets,
                          &c.lines_per_tag})
        *v = r.u32();
      for (bool* b : {&c.self_init, &c.no_invd_sharing, &c.inclusive, &c.complex_indexing}) *b = r.flag();
      c.shared = static_cast<CacheLevel::Shared>(r.u8() % 3);
    }
    d.cache = std::move(info);
  }
  d.phys_bits = r.opt<unsigned>();
  d.host_phys_bits = r.flag();
  d.pmu = r.flag();
  d.tsc_khz = r.opt<uint64_t>();
  d.arch_capabilities = r.opt<uint64_t>();
  d.notes.resize(r.count(4));
  for (auto& n : d.notes) n = r.str();
  return d;
}

Status write_props(Writer& w, const std::vector<VersionProp>& props) {
  w.u32(static_cast<uint32_t>(props.size()));
  for (const auto& p : props) {
    if (auto st = w.str(p.key); !st) return st;
    if (auto st = w.str(p.value); !st) return st;
  }
  return ok_status();
}

std::vector<VersionProp> read_props(Reader& r) {
  std::vector<VersionProp> props(r.count(8));
  for (auto& p : props) {
    p.key = r.str();
    p.value = r.str();
  }
  return props;
}

Status write_entry(Writer& w, const ModelEntry& e) {
  for (const std::string* s : {&e.name, &e.base_name, &e.alias, &e.note, &e.source, &e.deprecation_note,
                               &e.cache_name, &e.parent})
    if (auto st = w.str(*s); !st) return st;
  w.u32(e.version);
  w.u32(e.generation);
  for (bool b : {e.deprecated, e.vendor_neutral, e.is_default_version}) w.u8(b);
  w.u8(static_cast<uint8_t>(e.kind));
  w.u32(static_cast<uint32_t>(e.signatures.size()));
  for (const Signature& s : e.signatures) {
    if (auto st = w.str(s.vendor); !st) return st;
    for (uint32_t v : {s.family, s.model_min, s.model_max, s.stepping_min, s.stepping_max}) w.u32(v);
  }
  if (auto st = write_definition(w, e.definition); !st) return st;
  if (auto st = write_props(w, e.changes); !st) return st;
  return write_props(w, e.extra_props);
}

ModelEntry read_entry(Reader& r) {
  ModelEntry e;
  for (std::string* s : {&e.name, &e.base_name, &e.alias, &e.note, &e.source, &e.deprecation_note, &e.cache_name,
                         &e.parent})
    *s = r.str();
  e.version = r.u32();
  e.generation = r.u32();
  for (bool* b : {&e.deprecated, &e.vendor_neutral, &e.is_default_version}) *b = r.flag();
  e.kind = static_cast<ModelEntry::Kind>(r.u8() % 4);
  e.signatures.resize(r.count(24));
  for (Signature& s : e.signatures) {
    s.vendor = r.str();
    for (unsigned* v : {&s.family, &s.model_min, &s.model_max, &s.stepping_min, &s.stepping_max}) *v = r.u32();
  }
  e.definition = read_definition(r);
  e.changes = read_props(r);
  e.extra_props = read_props(r);
  return e;
}

std::string base_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

}  // namespace

uint64_t dictionary_fingerprint() {
  static const uint64_t fp = [] {
    uint64_t h = fnv1a(kFnvBasis, std::to_string(feature_count()));
    for (const FeatureInfo& f : feature_table()) {
      h = fnv1a(h, f.name);
      h = fnv1a(h, std::string_view("\0", 1));
      h = fnv1a(h, f.depends ? f.depends : "");
    }
    return h;
  }();
  return fp;
}

uint64_t files_fingerprint(const std::vector<std::string>& paths, const std::vector<std::string>& contents) {
  uint64_t h = fnv1a(kFnvBasis, std::to_string(paths.size()));
  for (size_t i = 0; i < paths.size(); ++i) {
    h = fnv1a(h, base_name(paths[i]) + '\0' + std::to_string(contents[i].size()) + '\0');
    h = hash_words(h, contents[i]);
  }
  return h;
}

Result<std::string> encode_compiled_catalog(const std::vector<ModelEntry>& entries,
                                            const std::vector<std::string>& paths, uint64_t files_fp) {
  if (paths.size() > 40) return input_error("too many model files to compile a catalog from");
  Writer w(paths);
  for (char c : kMagic) w.u8(static_cast<uint8_t>(c));
  w.u32(kFormatVersion);
  w.u64(dictionary_fingerprint());
  w.u64(files_fp);
  w.u32(static_cast<uint32_t>(paths.size()));
  for (const auto& p : paths) w.raw(base_name(p));
  w.u32(static_cast<uint32_t>(entries.size()));
  std::vector<std::string> bodies;
  for (const auto& e : entries) {
    Writer body(paths);
    if (auto st = write_entry(body, e); !st) return st.error();
    bodies.push_back(body.take());
  }
  for (size_t i = 0; i < entries.size(); ++i) {
    const ModelEntry& e = entries[i];
    for (const std::string* s : {&e.name, &e.alias, &e.base_name})
      if (auto st = w.str(*s); !st) return st.error();
    w.u8(static_cast<uint8_t>(e.kind));
    w.u32(e.version);
    w.u8(e.is_default_version);
    w.u32(static_cast<uint32_t>(bodies[i].size()));
  }
  std::string joined;
  for (const auto& b : bodies) joined += b;
  w.u64(hash_words(kFnvBasis, joined));
  return w.take() + joined;
}

std::optional<CompiledCatalog> CompiledCatalog::open(std::string_view blob, const std::vector<std::string>& paths,
                                                     uint64_t files_fp) {
  Reader r(blob, paths);
  for (char c : kMagic)
    if (r.u8() != static_cast<uint8_t>(c)) return std::nullopt;
  if (r.u32() != kFormatVersion || r.u64() != dictionary_fingerprint() || r.u64() != files_fp) return std::nullopt;
  uint32_t nfiles = r.count(4);
  if (!r.ok() || nfiles != paths.size()) return std::nullopt;
  for (uint32_t i = 0; i < nfiles; ++i)
    if (r.raw() != base_name(paths[i])) return std::nullopt;
  CompiledCatalog c;
  c.blob_ = blob;
  c.paths_ = paths;
  c.names_.resize(r.count(22));
  std::vector<size_t> lengths;
  for (CompiledName& n : c.names_) {
    for (std::string_view* s : {&n.name, &n.alias, &n.base_name}) {
      *s = r.raw();
      if (s->find(kPathMark) != std::string_view::npos) return std::nullopt;  // names hold no paths
    }
    n.kind = static_cast<ModelEntry::Kind>(r.u8() % 4);
    n.version = r.u32();
    n.is_default_version = r.flag();
    lengths.push_back(r.u32());
  }
  uint64_t checksum = r.u64();
  if (!r.ok()) return std::nullopt;
  // The entries fill the rest of the blob exactly, and are the bytes the checksum was made of.
  size_t at = blob.size() - r.remaining();
  if (hash_words(kFnvBasis, blob.substr(at)) != checksum) return std::nullopt;
  for (size_t len : lengths) {
    if (len > blob.size() - at) return std::nullopt;
    c.spans_.push_back({at, len});
    at += len;
  }
  if (at != blob.size()) return std::nullopt;
  return c;
}

std::optional<ModelEntry> CompiledCatalog::entry(size_t i) const {
  if (i >= spans_.size()) return std::nullopt;
  Reader r(blob_.substr(spans_[i].first, spans_[i].second), paths_);
  ModelEntry e = read_entry(r);
  if (!r.ok() || !r.done()) return std::nullopt;
  return e;
}

}  // namespace cpumodel::detail
