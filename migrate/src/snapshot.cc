// The snapshot file: framing (magic, versions, length, SHA-256), atomic writes, the memory file.
#include "cpumodel/migrate/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/progress.h"
#include "snapshot_internal.h"

namespace cpumodel {
namespace {

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>(v >> (8 * i) & 0xff);
}

uint64_t get_le(std::string_view in, size_t off, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(in[off + i])} << (8 * i);
  return v;
}

std::span<const uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string errno_text(int err) { return std::string(std::strerror(err)); }

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Writes `bytes` to fd, skipping 64 KiB blocks of zeros (left as holes: the file reads back the
// same and a lazily mapped restore faults in fewer pages); runs of data go out in one pwrite of up
// to 8 MiB (small writes cost a third of the throughput, measured).
bool write_sparse(int fd, std::span<const uint8_t> bytes) {
  constexpr size_t kBlock = 64 * 1024, kRun = 8 << 20;
  static const uint8_t kZero[kBlock] = {};
  auto zero_block = [&](size_t off) {
    return bytes.size() - off >= kBlock && std::memcmp(bytes.data() + off, kZero, kBlock) == 0;
  };
  Progress progress("writing guest memory", bytes.size());
  for (size_t off = 0; off < bytes.size();) {
    progress.update(off);
    if (zero_block(off)) {
      off += kBlock;
      continue;
    }
    size_t end = off;
    while (end < bytes.size() && end - off < kRun && !zero_block(end)) end = std::min(bytes.size(), end + kBlock);
    while (off < end) {
      ssize_t n = ::pwrite(fd, bytes.data() + off, end - off, static_cast<off_t>(off));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
  }
  return ::ftruncate(fd, static_cast<off_t>(bytes.size())) == 0;
}

}  // namespace

uint64_t VcpuState::xcr0() const {
  if (xcrs)
    for (const auto& [x, v] : *xcrs)
      if (x == 0) return v;
  return 1;
}

std::optional<uint64_t> VcpuState::msr(uint32_t index) const {
  for (const auto& m : msrs)
    if (m.index == index) return m.value;
  return std::nullopt;
}

std::string encode_snapshot(const Snapshot& snapshot) {
  std::string payload = internal::snapshot_payload(snapshot);
  std::string out;
  out.reserve(kSnapshotPreamble + payload.size() + kSnapshotChecksumSize);
  out.append(kSnapshotMagic, sizeof kSnapshotMagic);
  put_le(out, kSnapshotMajor, 2);
  put_le(out, kSnapshotMinor, 2);
  put_le(out, 0, 4);
  put_le(out, payload.size(), 8);
  out += payload;
  auto digest = sha256(as_bytes(out));
  out.append(reinterpret_cast<const char*>(digest.data()), digest.size());
  return out;
}

Result<Snapshot> decode_snapshot(std::string_view bytes, const std::string& name) {
  std::string_view magic(kSnapshotMagic, sizeof kSnapshotMagic);
  if (bytes.substr(0, magic.size()) != magic.substr(0, std::min(magic.size(), bytes.size())) || bytes.empty())
    return input_error(name + ": not a cpumodel snapshot (wrong magic: the file does not start with \"CPMSNAP\")");
  if (bytes.size() < kSnapshotPreamble)
    return input_error(name + ": truncated: " + std::to_string(bytes.size()) + " bytes, shorter than the " +
                       std::to_string(kSnapshotPreamble) + "-byte header");
  auto major = static_cast<uint16_t>(get_le(bytes, 8, 2)), minor = static_cast<uint16_t>(get_le(bytes, 10, 2));
  std::string version = std::to_string(major) + "." + std::to_string(minor);
  if (major > kSnapshotMajor)
    return input_error(name + ": snapshot format " + version + " is newer than this cpumodel reads (major " +
                       std::to_string(kSnapshotMajor) + "); use a newer cpumodel");
  if (major == 0) return input_error(name + ": snapshot format " + version + " is not a released format");
  uint64_t length = get_le(bytes, 16, 8);
  uint64_t expected = kSnapshotPreamble + kSnapshotChecksumSize;
  if (length > bytes.size() || bytes.size() - expected < length || bytes.size() < expected)
    return input_error(name + ": truncated: the header announces " + std::to_string(length) +
                       " bytes of state and a 32-byte checksum, the file has " +
                       std::to_string(bytes.size() - std::min<size_t>(bytes.size(), kSnapshotPreamble)) +
                       " bytes after the header");
  if (bytes.size() - expected > length)
    return input_error(name + ": " + std::to_string(bytes.size() - expected - length) +
                       " unexpected bytes after the checksum (the header announces " + std::to_string(length) +
                       " bytes of state)");
  size_t covered = kSnapshotPreamble + length;
  auto digest = sha256(as_bytes(bytes.substr(0, covered)));
  auto stored = as_bytes(bytes.substr(covered, kSnapshotChecksumSize));
  if (std::memcmp(digest.data(), stored.data(), digest.size()) != 0)
    return input_error(name + ": checksum mismatch: the file is corrupted (SHA-256 stored " + hex_bytes(stored).substr(0, 16) +
                       "..., computed " + hex_bytes(digest).substr(0, 16) + "...)");
  auto s = internal::parse_snapshot_payload(bytes.substr(kSnapshotPreamble, length), name);
  if (!s) return s.error();
  s->header.major = major;
  s->header.minor = minor;
  return s;
}

Status write_snapshot(const std::string& path, const Snapshot& snapshot) {
  return write_file_atomic(path, encode_snapshot(snapshot));
}

Result<Snapshot> read_snapshot(const std::string& path) {
  auto bytes = read_file(path, 1u << 30);
  if (!bytes) return bytes.error();
  return decode_snapshot(*bytes, path);
}

std::string default_memory_path(const std::string& snapshot_path) { return snapshot_path + ".mem"; }

std::vector<const MemoryRef*> memory_regions(const SnapshotHeader& header) {
  std::vector<const MemoryRef*> out{&header.memory};
  for (const auto& m : header.more_memory) out.push_back(&m);
  return out;
}

std::string memory_path_of(const std::string& snapshot_path, const MemoryRef& ref) {
  if (!ref.file.empty() && ref.file[0] == '/') return ref.file;
  return dir_of(snapshot_path) + "/" + ref.file;
}

Result<MemoryRef> write_memory_file(const std::string& memory_path, std::span<const uint8_t> bytes,
                                    uint64_t guest_base, bool durable, std::string* pending) {
  MemoryRef ref;
  ref.file = base_of(memory_path);
  ref.size = bytes.size();
  ref.guest_base = guest_base;
  // The checksum runs on a second thread while the file is written (both read the same memory).
  std::thread hasher([&] { ref.checksum = xxh64(bytes); });
  std::string tmp = memory_path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    hasher.join();
    return input_error(memory_path + ": cannot write: " + errno_text(err));
  }
  bool ok = write_sparse(fd, bytes) && (!durable || ::fdatasync(fd) == 0);
  hasher.join();
  int err = errno;
  if (::close(fd) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (ok && pending) {
    *pending = tmp;
    return ref;
  }
  if (ok && ::rename(tmp.c_str(), memory_path.c_str()) != 0) {
    ok = false;
    err = errno;
  }
  if (!ok) {
    ::unlink(tmp.c_str());
    return input_error(memory_path + ": cannot write: " + errno_text(err));
  }
  return ref;
}

Status verify_memory_file(const std::string& snapshot_path, const MemoryRef& ref, bool checksum) {
  std::string path = memory_path_of(snapshot_path, ref);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return input_error(path + ": cannot open the snapshot's memory file: " + errno_text(errno));
  struct stat st{};
  ::fstat(fd, &st);
  if (static_cast<uint64_t>(st.st_size) != ref.size) {
    ::close(fd);
    return input_error(path + ": the memory file has " + std::to_string(st.st_size) + " bytes, the snapshot says " +
                       std::to_string(ref.size) + " (truncated, or another snapshot's)");
  }
  if (!checksum || ref.size == 0) {
    ::close(fd);
    return ok_status();
  }
  void* p = ::mmap(nullptr, ref.size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (p == MAP_FAILED) return input_error(path + ": cannot map: " + errno_text(errno));
  ::madvise(p, ref.size, MADV_SEQUENTIAL);
  uint64_t got = xxh64({static_cast<const uint8_t*>(p), ref.size});
  ::munmap(p, ref.size);
  if (ref.checksum_algorithm != "xxh64")
    return input_error(path + ": unknown memory checksum algorithm '" + ref.checksum_algorithm + "'");
  if (got != ref.checksum) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " (XXH64 %016llx, the snapshot says %016llx)", static_cast<unsigned long long>(got),
                  static_cast<unsigned long long>(ref.checksum));
    return input_error(path + ": memory checksum mismatch: the memory file is corrupted or not this snapshot's" + buf);
  }
  return ok_status();
}

}  // namespace cpumodel
