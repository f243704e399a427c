#include "cpumodel/vmm/guest_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstdio>

namespace cpumodel::vmm {

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

Result<std::span<uint8_t>> GuestMemory::slice(uint64_t gpa, uint64_t len) const {
  if (!contains(gpa, len))
    return input_error("guest memory: [" + hex(gpa) + ", +" + hex(len) + ") is outside guest RAM [" + hex(base_) +
                       ", " + hex(base_ + size_) + ")");
  return std::span<uint8_t>(host_ + (gpa - base_), len);
}

Status GuestMemory::write(uint64_t gpa, std::span<const uint8_t> bytes) const {
  auto s = slice(gpa, bytes.size());
  if (!s) return s.error();
  if (!bytes.empty()) std::memcpy(s->data(), bytes.data(), bytes.size());
  return ok_status();
}

Status GuestMemory::fill(uint64_t gpa, uint8_t value, uint64_t len) const {
  auto s = slice(gpa, len);
  if (!s) return s.error();
  if (len) std::memset(s->data(), value, len);
  return ok_status();
}

Result<GuestRam> GuestRam::allocate(uint64_t guest_base, uint64_t size) {
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED)
    return host_error("cannot allocate " + std::to_string(size >> 10) + " KiB of guest RAM: " +
                      std::strerror(errno));
  return GuestRam(GuestMemory(static_cast<uint8_t*>(p), guest_base, size));
}

GuestRam& GuestRam::operator=(GuestRam&& o) noexcept {
  if (this != &o) {
    release();
    mem_ = o.mem_;
    o.mem_ = GuestMemory();
  }
  return *this;
}

GuestRam::~GuestRam() { release(); }

void GuestRam::release() {
  if (mem_.host()) ::munmap(mem_.host(), mem_.size());
  mem_ = GuestMemory();
}

}  // namespace cpumodel::vmm
