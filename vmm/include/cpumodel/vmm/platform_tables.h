// What a Linux guest learns about the machine from firmware tables, since this VMM has no BIOS:
// an Intel MP table (MultiProcessor Specification 1.4: floating pointer + configuration table with
// processor, bus, I/O APIC and interrupt entries) and minimal ACPI (RSDP, RSDT, XSDT, FADT with a
// PM1a control port, FACS, a DSDT holding only \_S5, and a MADT). Linux uses ACPI when it finds it
// and the MP table with `acpi=off`. The vCPUs appear with the APIC IDs of the CPUID builder
// (vcpu_places()), so the guest's topology is what CPUID says. Pure: written into a GuestMemory.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cpumodel/cpuid/result.h"
#include "cpumodel/vmm/guest_memory.h"

namespace cpumodel::vmm {

struct PlatformLayout {
  static constexpr uint64_t kLapicAddr = 0xfee00000;
  static constexpr uint64_t kIoapicAddr = 0xfec00000;
  static constexpr unsigned kIoapicPins = 24;  // KVM's in-kernel IOAPIC
  static constexpr uint8_t kLapicVersion = 0x14;
  static constexpr uint8_t kIoapicVersion = 0x11;
  // ACPI fixed hardware, trapped by the VMM (devices.h): PM1a event block (status, enable) and
  // PM1a control. Writing SLP_EN with SLP_TYP = kS5SleepType to PM1a control powers off.
  static constexpr uint16_t kPm1aEvent = 0x600;
  static constexpr uint16_t kPm1aControl = 0x604;
  static constexpr uint8_t kS5SleepType = 5;
  static constexpr uint8_t kSciIrq = 9;
};

struct PlatformCpu {
  uint32_t apic_id = 0;
  uint32_t signature = 0;  // CPUID.01H:EAX
  uint32_t features = 0;   // CPUID.01H:EDX
};

struct PlatformConfig {
  std::vector<PlatformCpu> cpus;  // index order; cpus[0] is the bootstrap processor
  // The I/O APIC's ID: the first ID above every local APIC ID (MP table and MADT).
  uint8_t ioapic_id() const;
};

// Sum of the bytes mod 256 (a valid ACPI table or MP structure sums to 0).
uint8_t byte_sum(std::span<const uint8_t> bytes);

// The MP floating pointer at `addr` (16-byte aligned, where Linux scans: the BIOS area), the
// configuration table right after it. Returns the first byte after the tables. Processors with an
// APIC ID above 254 cannot be described (exit-2 error). ISA IRQ n goes to I/O APIC pin n (KVM's
// default routing), IRQ 2 (the cascade) excepted; LINT0 is ExtINT, LINT1 NMI.
Result<uint64_t> write_mp_table(const GuestMemory& mem, uint64_t addr, const PlatformConfig& config);

// RSDP at `addr` (16-byte aligned) followed by RSDT, XSDT, FACS, FADT, DSDT and MADT. Returns the
// RSDP's address (for boot_params.acpi_rsdp_addr). The MADT lists every vCPU (x2APIC entries for
// APIC IDs above 254), the I/O APIC, an override making the SCI (IRQ 9) level-triggered, and LINT1 NMI.
Result<uint64_t> write_acpi_tables(const GuestMemory& mem, uint64_t addr, const PlatformConfig& config);

// The AML of the DSDT body: Name (_S5, Package (4) {kS5SleepType, kS5SleepType, 0, 0}).
std::vector<uint8_t> dsdt_aml();

}  // namespace cpumodel::vmm
