// HostProfile -> HostSummary, and the fast path from bundles straight to summaries. One summariser
// serves both, over a read-only view of CPUID entries and MSRs: a CpuidTable, or a bundle host's
// packed words read in place (100,000 hosts must load in a fraction of a second).
#include <fcntl.h>
#include <google/protobuf/arena.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

#include "bundle.pb.h"
#include "bundle_internal.h"
#include "cpumodel/migrate/baseline.h"
#include "cpumodel/migrate/bundle.h"

namespace cpumodel {
namespace {

using Words32 = google::protobuf::RepeatedField<uint32_t>;
using Words64 = google::protobuf::RepeatedField<uint64_t>;

// A profile's tables, as they are.
struct ProfileView {
  const CpuidTable& table;
  const MsrMap& msrs;
  CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) const { return table.get(leaf, subleaf); }
  uint64_t msr(uint32_t index) const {
    auto it = msrs.find(index);
    return it == msrs.end() ? 0 : it->second;
  }
};

// A bundle host's packed CPUID words (6 per entry, sorted by leaf/subleaf as encode_bundle writes
// them; checked by the caller) and index/value MSR pairs.
struct PackedView {
  const Words32& words;
  const Words64& msrs;
  CpuidRegs cpuid(uint32_t leaf, uint32_t subleaf) const {
    if (!is_indexed_leaf(leaf)) subleaf = 0;
    int lo = 0, hi = words.size() / 6;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      uint32_t l = words[mid * 6], s = words[mid * 6 + 1];
      if (l < leaf || (l == leaf && s < subleaf)) lo = mid + 1;
      else hi = mid;
    }
    if (lo * 6 < words.size() && words[lo * 6] == leaf && words[lo * 6 + 1] == subleaf)
      return {words[lo * 6 + 2], words[lo * 6 + 3], words[lo * 6 + 4], words[lo * 6 + 5]};
    return {};
  }
  uint64_t msr(uint32_t index) const {
    for (int i = 0; i + 1 < msrs.size(); i += 2)
      if (msrs[i] == index) return msrs[i + 1];
    return 0;
  }
};

// Named bits per feature word, looked up once (the dictionary's own index is private).
struct WordBits {
  FeatureWordInfo info;
  std::array<int16_t, 32> ids;
};

const std::vector<WordBits>& word_bits() {
  static const std::vector<WordBits> words = [] {
    std::vector<WordBits> v;
    for (const auto& w : feature_words()) {
      WordBits wb{w, {}};
      for (unsigned b = 0; b < 32; ++b) {
        auto id = feature_at(w.word, b);
        wb.ids[b] = id ? static_cast<int16_t>(*id) : int16_t{-1};
      }
      v.push_back(wb);
    }
    return v;
  }();
  return words;
}

// features_of() over a view: every named bit set in the CPUID words and feature MSRs.
template <class View>
FeatureSet features_from(const View& v) {
  FeatureSet out;
  for (const auto& wb : word_bits()) {
    const FeatureWordInfo& w = wb.info;
    uint32_t value = w.is_msr ? static_cast<uint32_t>(v.msr(w.leaf_or_msr) >> (w.reg == Reg::kEdx ? 32 : 0))
                              : v.cpuid(w.leaf_or_msr, w.subleaf).get(w.reg);
    for (; value; value &= value - 1)
      if (int16_t id = wb.ids[__builtin_ctz(value)]; id >= 0) out.add(static_cast<FeatureId>(id));
  }
  return out;
}

template <class View>
void fill_signature(const View& raw, HostSummary& s) {
  CpuidRegs v = raw.cpuid(0, 0);
  char vendor[12];
  std::memcpy(vendor, &v.ebx, 4);
  std::memcpy(vendor + 4, &v.edx, 4);
  std::memcpy(vendor + 8, &v.ecx, 4);
  s.vendor = v.zero() ? std::string() : std::string(vendor, 12);
  uint32_t eax = raw.cpuid(1, 0).eax;
  unsigned base_family = (eax >> 8) & 0xf, base_model = (eax >> 4) & 0xf;
  s.family = base_family == 0xf ? base_family + ((eax >> 20) & 0xff) : base_family;
  s.model = (base_family == 6 || base_family == 0xf) ? base_model | (((eax >> 16) & 0xf) << 4) : base_model;
  s.stepping = eax & 0xf;
}

// CPUID.15H: TSC = crystal Hz * EBX / EAX, when the CPU reports all three.
template <class View>
std::optional<double> tsc_from_cpuid(const View& raw) {
  if (raw.cpuid(0, 0).eax < 0x15) return std::nullopt;
  CpuidRegs r = raw.cpuid(0x15, 0);
  if (r.eax == 0 || r.ebx == 0 || r.ecx == 0) return std::nullopt;
  return static_cast<double>(r.ecx) * r.ebx / r.eax / 1000.0;
}

template <class View>
void fill_xsave(const View& guest, HostSummary& s) {
  if (s.level < 0xd) return;
  CpuidRegs d0 = guest.cpuid(0xd, 0), d1 = guest.cpuid(0xd, 1);
  s.xcr0 = (uint64_t{d0.edx} << 32) | d0.eax;
  s.xss = (uint64_t{d1.edx} << 32) | d1.ecx;
  s.xsave_size = d0.ecx;
  for (unsigned i = 2; i < s.xsave_end.size(); ++i)
    if (s.xcr0 >> i & 1) {
      CpuidRegs c = guest.cpuid(0xd, i);
      s.xsave_end[i] = c.eax + c.ebx;
    }
}

template <class View>
HostSummary summarize(const std::string& name, const View& raw, const View& guest, bool from_kvm,
                      std::optional<double> tsc_khz) {
  static const std::optional<FeatureId> pae = find_feature("pae");
  HostSummary s;
  s.name = name;
  fill_signature(raw, s);
  s.features = features_from(guest);
  if (!from_kvm) s.features |= kvm_synthesised_features();
  s.from_kvm = from_kvm;
  s.level = guest.cpuid(0, 0).eax;
  s.xlevel = guest.cpuid(0x80000000, 0).eax;
  if (s.xlevel >= 0x80000008) s.phys_bits = guest.cpuid(0x80000008, 0).eax & 0xff;
  if (s.phys_bits == 0) s.phys_bits = pae && s.features.has(*pae) ? 36 : 32;  // what the SDM says to assume
  fill_xsave(guest, s);
  s.tsc_khz = tsc_khz ? tsc_khz : tsc_from_cpuid(raw);
  return s;
}

Status summarize_bundle(std::string_view data, const std::string& path, std::vector<HostSummary>& out) {
  google::protobuf::Arena arena;
  auto* b = google::protobuf::Arena::CreateMessage<pb::Bundle>(&arena);
  auto st = internal::parse_bundle(*b, data, path);
  if (!st) return st;
  out.reserve(out.size() + static_cast<size_t>(b->hosts_size()));
  for (const auto& h : b->hosts()) {
    if (auto st = internal::validate_host_words(h, path + "#" + h.name()); !st) return st;
    std::optional<double> tsc;
    if (h.has_tsc_khz()) tsc = h.tsc_khz();
    PackedView raw{h.cpuid(), h.msrs()};
    // The guest view is HostProfile's: KVM's table and MSRs where the bundle has them, else the raw ones.
    PackedView guest{h.has_kvm_cpuid() ? h.kvm_cpuid() : h.cpuid(), h.has_kvm_msrs() ? h.kvm_msrs() : h.msrs()};
    out.push_back(summarize(h.name(), raw, guest, h.has_kvm_cpuid(), tsc));
  }
  return ok_status();
}

}  // namespace

HostSummary summarize_host(const HostProfile& p) {
  return summarize(p.name, ProfileView{p.cpuid, p.msrs}, ProfileView{p.guest_cpuid(), p.guest_msrs()},
                   p.kvm_cpuid.has_value(), p.tsc_khz);
}

namespace {

// A file mapped read-only (bundles can be 100 MB: no copy), or read when it cannot be mapped.
class FileBytes {
 public:
  static Result<FileBytes> open(const std::string& path) {
    FileBytes f;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    // Small files (every profile; a bundle of a few hosts) are read: cheaper than a mapping's
    // mmap, munmap and page faults. Large ones are mapped. Anything else (a pipe, a short read)
    // goes to read_file below.
    constexpr off_t kReadBelow = off_t{1} << 20;
    if (fd >= 0 && ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      size_t size = static_cast<size_t>(st.st_size);
      if (st.st_size < kReadBelow) {
        f.copy_.resize(size);
        if (::pread(fd, f.copy_.data(), size, 0) == st.st_size) {
          ::close(fd);
          return f;
        }
        f.copy_.clear();
      } else if (void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0); p != MAP_FAILED) {
        f.map_ = p;
        f.size_ = size;
      }
    }
    if (fd >= 0) ::close(fd);
    if (f.map_) return f;
    auto data = read_file(path, size_t{2} << 30);
    if (!data) return data.error();
    f.copy_ = std::move(*data);
    return f;
  }
  FileBytes() = default;
  FileBytes(FileBytes&& o) noexcept : map_(std::exchange(o.map_, nullptr)), size_(o.size_), copy_(std::move(o.copy_)) {}
  FileBytes& operator=(FileBytes&&) = delete;
  ~FileBytes() {
    if (map_) ::munmap(map_, size_);
  }
  std::string_view bytes() const { return map_ ? std::string_view(static_cast<const char*>(map_), size_) : copy_; }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
  std::string copy_;
};

}  // namespace

Result<std::vector<HostSummary>> load_host_summaries(const std::vector<std::string>& paths) {
  std::vector<HostSummary> out;
  for (const auto& path : paths) {
    auto file = FileBytes::open(path);
    if (!file) return file.error();
    std::string_view data = file->bytes();
    if (is_bundle(data)) {
      auto st = summarize_bundle(data, path, out);
      if (!st) return st.error();
      continue;
    }
    if (data.empty()) return input_error(path + ": empty file, expected a host profile or a bundle");
    auto p = parse_profile(data, path);
    if (!p) return p.error();
    out.push_back(summarize_host(*p));
  }
  return out;
}

}  // namespace cpumodel
