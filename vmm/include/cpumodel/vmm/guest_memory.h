// Guest memory: GuestMemory is a bounds-checked view of guest-physical [base, base + size) over
// host bytes, so the loaders (page tables, GDT, probe guest) are unit-tested on a plain buffer;
// GuestRam owns an anonymous mmap that KVM maps as a memslot.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <type_traits>

#include "cpumodel/cpuid/result.h"

namespace cpumodel::vmm {

class GuestMemory {
 public:
  GuestMemory() = default;
  GuestMemory(uint8_t* host, uint64_t guest_base, uint64_t size) : host_(host), base_(guest_base), size_(size) {}
  explicit GuestMemory(std::span<uint8_t> bytes, uint64_t guest_base = 0)
      : GuestMemory(bytes.data(), guest_base, bytes.size()) {}

  uint64_t base() const { return base_; }
  uint64_t size() const { return size_; }
  uint8_t* host() const { return host_; }
  bool contains(uint64_t gpa, uint64_t len) const {
    return gpa >= base_ && len <= size_ && gpa - base_ <= size_ - len;
  }

  // Host bytes of [gpa, gpa + len), or an error naming the range.
  Result<std::span<uint8_t>> slice(uint64_t gpa, uint64_t len) const;
  Status write(uint64_t gpa, std::span<const uint8_t> bytes) const;
  Status fill(uint64_t gpa, uint8_t value, uint64_t len) const;

  template <class T>
  Status write_obj(uint64_t gpa, const T& v) const {
    static_assert(std::is_trivially_copyable_v<T>);
    return write(gpa, std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(&v), sizeof v));
  }
  template <class T>
  Result<T> read_obj(uint64_t gpa) const {
    static_assert(std::is_trivially_copyable_v<T>);
    auto s = slice(gpa, sizeof(T));
    if (!s) return s.error();
    T v;
    std::memcpy(&v, s->data(), sizeof v);
    return v;
  }

 private:
  uint8_t* host_ = nullptr;
  uint64_t base_ = 0;
  uint64_t size_ = 0;
};

// Anonymous, private, zero-filled memory for a memslot (MAP_NORESERVE: pages cost only when touched).
class GuestRam {
 public:
  static Result<GuestRam> allocate(uint64_t guest_base, uint64_t size);
  // A private (copy-on-write) mapping of the first `size` bytes of the file `path`: pages are read
  // when first touched and guest writes never reach the file (restoring a snapshot's memory).
  // Defined in snapshot_machine.cc.
  static Result<GuestRam> map_file(const std::string& path, uint64_t guest_base, uint64_t size);
  GuestRam(GuestRam&& o) noexcept : mem_(o.mem_) { o.mem_ = GuestMemory(); }
  GuestRam& operator=(GuestRam&& o) noexcept;
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;
  ~GuestRam();
  const GuestMemory& memory() const { return mem_; }

 private:
  explicit GuestRam(GuestMemory m) : mem_(m) {}
  void release();
  GuestMemory mem_;
};

// "0x1000"
std::string hex(uint64_t v);

}  // namespace cpumodel::vmm
