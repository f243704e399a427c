// What a vCPU needs to start directly in 64-bit long mode (or 32-bit protected mode for CPU
// models without `lm`): a GDT, identity-mapped page tables, and the control/segment registers.
// Written into a GuestMemory and a kvm_sregs value: no /dev/kvm needed to test them.
#pragma once

#include <linux/kvm.h>

#include <cstdint>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/vmm/guest_memory.h"

namespace cpumodel::vmm {

enum class CpuMode : uint8_t { kLong64, kProtected32 };
const char* cpu_mode_name(CpuMode m);  // "64-bit long mode", "32-bit protected mode"

// The fixed low-memory layout every guest of this VMM uses (guest-physical addresses).
struct BootLayout {
  static constexpr uint64_t kGdt = 0x1000;
  static constexpr uint64_t kPml4 = 0x2000;
  static constexpr uint64_t kPdpt = 0x3000;
  static constexpr uint64_t kPd = 0x4000;        // 512 x 2 MiB pages: identity map of [0, 1 GiB)
  static constexpr uint64_t kCode = 0x8000;      // payload code, up to kCodeMax bytes
  static constexpr uint64_t kCodeMax = 0x8000;
  static constexpr uint64_t kData = 0x10000;     // payload data starts here
  static constexpr uint64_t kIdentityMapped = 1ull << 30;
  // Outside RAM, below 4 GiB: where VMX's real-mode TSS and identity-map page go (as QEMU/kvmtool).
  static constexpr uint64_t kTss = 0xfffbd000;
  static constexpr uint64_t kIdentityMapPage = 0xfffbc000;
  // Selectors in our GDT.
  static constexpr uint16_t kCode64Sel = 0x08, kDataSel = 0x10, kCode32Sel = 0x18, kTssSel = 0x20;
};

// A GDT descriptor from flags (access byte | flags nibble << 12), base and limit (20 bits).
uint64_t gdt_entry(uint16_t flags, uint32_t base, uint32_t limit);
// The KVM segment a descriptor describes (limit scaled by granularity, as the CPU loads it).
kvm_segment segment_from_gdt(uint64_t entry, uint16_t selector);

// Writes the GDT and, for long mode, the page tables. Memory must cover [0, kData).
Status write_boot_tables(const GuestMemory& mem, CpuMode mode);
// Sets CR0/CR3/CR4/EFER, GDT and every segment register for `mode`; keeps the rest (APIC base...).
void apply_boot_sregs(CpuMode mode, kvm_sregs& sregs);

// Walks the guest page tables like the MMU (4 KiB, 2 MiB and 1 GiB pages): guest-virtual ->
// guest-physical, or an error naming the level that is not present. For tests and fault reports.
Result<uint64_t> translate(const GuestMemory& mem, uint64_t cr3, uint64_t virt);

}  // namespace cpumodel::vmm
