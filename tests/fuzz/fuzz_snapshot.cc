// Snapshots (`state inspect`, `restore`, `migrate-check --state`): decode_snapshot must refuse or
// accept any bytes without crashing. The format ends in a SHA-256 of everything before it, which
// random mutation never gets right, so the last input byte is a mode, not data: bit 0 rewrites the
// header's payload length to fit, bit 1 rewrites the checksum (inputs without those bits still
// reach the magic/version/length/checksum checks). For an accepted snapshot: the inspect text and
// JSON and the migrate check against a real host run, and encode(decode(x)) is a fixed point
// (decode(encode(s)) encodes to the same bytes).
#include <cstdint>
#include <memory>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/migrate/snapshot.h"
#include "cpumodel/migrate/state_check.h"
#include "fuzz_check.h"

namespace cpumodel::fuzz {
namespace {

const HostProfile* host() {
  static std::unique_ptr<HostProfile> h = [] {
    auto p = load_profile(CPUMODEL_SOURCE_DIR "/tests/fuzz/corpus/fuzz_profile_libvirt_xml/Xeon-Gold-6148.xml");
    return p ? std::make_unique<HostProfile>(std::move(*p)) : nullptr;
  }();
  return h.get();
}

void put_le64(std::string& s, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i) s[at + static_cast<size_t>(i)] = static_cast<char>(v >> (8 * i));
}

}  // namespace
}  // namespace cpumodel::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cpumodel;
  using namespace cpumodel::fuzz;
  if (size == 0) return 0;
  const uint8_t mode = data[size - 1];
  std::string bytes(reinterpret_cast<const char*>(data), size - 1);
  const size_t frame = kSnapshotPreamble + kSnapshotChecksumSize;
  if (bytes.size() >= frame) {
    if (mode & 1) put_le64(bytes, 16, bytes.size() - frame);
    if (mode & 2) {
      size_t covered = bytes.size() - kSnapshotChecksumSize;
      auto digest = sha256({reinterpret_cast<const uint8_t*>(bytes.data()), covered});
      bytes.replace(covered, digest.size(), reinterpret_cast<const char*>(digest.data()), digest.size());
    }
  }
  auto s = decode_snapshot(bytes, "fuzz.snap");
  if (!s) {
    check_one_line(s.error().message);
    return 0;
  }
  (void)snapshot_text(*s);
  (void)snapshot_json(*s);
  if (const HostProfile* h = host()) (void)state_check_text(check_state(*s, "fuzz.snap", *h));
  std::string once = encode_snapshot(*s);
  auto again = decode_snapshot(once, "again.snap");
  check(again.ok(), "an encoded snapshot decodes", again ? "" : again.error().message);
  check(encode_snapshot(*again) == once, "encode(decode(encode(x))) == encode(x)");
  return 0;
}
