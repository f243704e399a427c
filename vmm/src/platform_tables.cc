#include "cpumodel/vmm/platform_tables.h"

#include <algorithm>
#include <cstring>
#include <string_view>

namespace cpumodel::vmm {
namespace {

using L = PlatformLayout;

// Little-endian byte builder for firmware tables.
class Bytes {
 public:
  Bytes& u8(uint8_t v) { b_.push_back(v); return *this; }
  Bytes& u16(uint16_t v) { return u8(v & 0xff).u8(v >> 8); }
  Bytes& u32(uint32_t v) { return u16(v & 0xffff).u16(v >> 16); }
  Bytes& u64(uint64_t v) { return u32(static_cast<uint32_t>(v)).u32(static_cast<uint32_t>(v >> 32)); }
  // Fixed-width text, space-padded (MP) or NUL-padded (ACPI).
  Bytes& text(std::string_view s, size_t width, char pad) {
    for (size_t i = 0; i < width; ++i) u8(static_cast<uint8_t>(i < s.size() ? s[i] : pad));
    return *this;
  }
  Bytes& zeros(size_t n) { b_.insert(b_.end(), n, 0); return *this; }
  Bytes& append(std::span<const uint8_t> s) { b_.insert(b_.end(), s.begin(), s.end()); return *this; }
  size_t size() const { return b_.size(); }
  void put16(size_t off, uint16_t v) { std::memcpy(&b_[off], &v, 2); }
  void put32(size_t off, uint32_t v) { std::memcpy(&b_[off], &v, 4); }
  // Sets the byte at `off` so that bytes [from, to) sum to zero.
  void checksum(size_t off, size_t from = 0, size_t to = SIZE_MAX) {
    b_[off] = 0;
    to = std::min(to, b_.size());
    b_[off] = static_cast<uint8_t>(-byte_sum(std::span<const uint8_t>(b_).subspan(from, to - from)));
  }
  std::span<const uint8_t> span() const { return b_; }

 private:
  std::vector<uint8_t> b_;
};

// --- MP table (Intel MultiProcessor Specification 1.4, chapter 4) ---
constexpr uint8_t kMpProcessor = 0, kMpBus = 1, kMpIoapic = 2, kMpIoInterrupt = 3, kMpLocalInterrupt = 4;
constexpr uint8_t kMpIntInt = 0, kMpIntNmi = 1, kMpIntExtInt = 3;
constexpr uint8_t kMpCpuEnabled = 1, kMpCpuBsp = 2;
constexpr uint8_t kIsaBus = 0;
constexpr size_t kMpHeaderSize = 44;

void mp_config_entries(Bytes& t, const PlatformConfig& c, uint16_t& count) {
  for (size_t i = 0; i < c.cpus.size(); ++i) {
    const PlatformCpu& cpu = c.cpus[i];
    t.u8(kMpProcessor).u8(static_cast<uint8_t>(cpu.apic_id)).u8(L::kLapicVersion);
    t.u8(kMpCpuEnabled | (i == 0 ? kMpCpuBsp : 0)).u32(cpu.signature).u32(cpu.features).zeros(8);
    ++count;
  }
  t.u8(kMpBus).u8(kIsaBus).text("ISA", 6, ' ');
  t.u8(kMpIoapic).u8(c.ioapic_id()).u8(L::kIoapicVersion).u8(1).u32(static_cast<uint32_t>(L::kIoapicAddr));
  count += 2;
  for (uint8_t irq = 0; irq < 16; ++irq) {
    if (irq == 2) continue;  // the PIC cascade
    // Flags 0: polarity and trigger "conform to the bus" (ISA: edge, active high).
    t.u8(kMpIoInterrupt).u8(kMpIntInt).u16(0).u8(kIsaBus).u8(irq).u8(c.ioapic_id()).u8(irq);
    ++count;
  }
  t.u8(kMpLocalInterrupt).u8(kMpIntExtInt).u16(0).u8(kIsaBus).u8(0).u8(0xff).u8(0);
  t.u8(kMpLocalInterrupt).u8(kMpIntNmi).u16(0).u8(kIsaBus).u8(0).u8(0xff).u8(1);
  count += 2;
}

// --- ACPI (ACPI 6.x, chapter 5) ---
constexpr size_t kAcpiHeaderSize = 36;
constexpr uint32_t kFadtSize = 276;
constexpr uint32_t kFacsSize = 64;

Bytes acpi_header(std::string_view signature, uint8_t revision) {
  Bytes t;
  t.text(signature, 4, '\0').u32(0).u8(revision).u8(0);
  t.text("CPUMDL", 6, ' ').text("CPUMODEL", 8, ' ').u32(1).text("CPMD", 4, ' ').u32(1);
  return t;
}

// Fills in the length and checksum of a finished table.
std::vector<uint8_t> acpi_finish(Bytes t) {
  t.put32(4, static_cast<uint32_t>(t.size()));
  t.checksum(9);
  return {t.span().begin(), t.span().end()};
}

std::vector<uint8_t> fadt(uint32_t facs, uint32_t dsdt) {
  Bytes t = acpi_header("FACP", 6);
  t.u32(facs).u32(dsdt).u8(0).u8(0);          // FIRMWARE_CTRL, DSDT, reserved, preferred PM profile
  t.u16(L::kSciIrq).u32(0).u8(0).u8(0).u8(0).u8(0);  // SCI_INT, SMI_CMD (0: always in ACPI mode), ...
  t.u32(L::kPm1aEvent).u32(0).u32(L::kPm1aControl).u32(0).u32(0);  // PM1a/b event, PM1a/b control, PM2
  t.u32(0).u32(0).u32(0);                     // PM timer, GPE0, GPE1: none
  t.u8(4).u8(2).u8(0).u8(0).u8(0).u8(0).u8(0).u8(0);  // PM1_EVT_LEN, PM1_CNT_LEN, PM2, TMR, GPE0/1, GPE1_BASE, CST
  t.u16(0xfff).u16(0x3e9);                    // P_LVL2_LAT > 100, P_LVL3_LAT > 1000: no C2/C3
  t.u16(0).u16(0).u8(0).u8(0).u8(0).u8(0).u8(0x32);  // flush, duty, RTC alarms, CENTURY (CMOS 0x32)
  t.u16(1u << 2).u8(0);                       // IAPC_BOOT_ARCH: VGA not present (and no 8042)
  // Flags: WBINVD, PROC_C1, SLP_BUTTON (no sleep button), RESET_REG_SUP clear.
  t.u32((1u << 0) | (1u << 2) | (1u << 5));
  t.zeros(12).u8(0).u16(0).u8(0);             // RESET_REG, RESET_VALUE, ARM_BOOT_ARCH, minor version
  t.u64(0).u64(0);                            // X_FIRMWARE_CTRL, X_DSDT: 0, the 32-bit fields apply
  t.zeros(kFadtSize - t.size());              // X_PM* blocks (0: from the 32-bit fields), sleep regs, hypervisor id
  return acpi_finish(std::move(t));
}

std::vector<uint8_t> facs() {
  Bytes t;
  t.text("FACS", 4, '\0').u32(kFacsSize).u32(0).u32(0).u32(0).u32(0).u64(0).u8(2);
  t.zeros(kFacsSize - t.size());
  return {t.span().begin(), t.span().end()};
}

std::vector<uint8_t> madt(const PlatformConfig& c) {
  constexpr uint8_t kLocalApic = 0, kIoapic = 1, kOverride = 2, kLocalApicNmi = 4, kLocalX2apic = 9;
  constexpr uint8_t kX2apicNmi = 0x0a;
  Bytes t = acpi_header("APIC", 4);
  t.u32(static_cast<uint32_t>(L::kLapicAddr)).u32(1);  // PCAT_COMPAT: dual 8259s present
  bool any_x2apic = false;
  for (size_t i = 0; i < c.cpus.size(); ++i) {
    uint32_t id = c.cpus[i].apic_id;
    if (id < 0xff) {
      t.u8(kLocalApic).u8(8).u8(static_cast<uint8_t>(i)).u8(static_cast<uint8_t>(id)).u32(1);
    } else {
      t.u8(kLocalX2apic).u8(16).u16(0).u32(id).u32(1).u32(static_cast<uint32_t>(i));
      any_x2apic = true;
    }
  }
  t.u8(kIoapic).u8(12).u8(c.ioapic_id()).u8(0).u32(static_cast<uint32_t>(L::kIoapicAddr)).u32(0);
  // SCI: ISA IRQ 9 -> GSI 9, active high (01), level triggered (11 << 2).
  t.u8(kOverride).u8(10).u8(0).u8(L::kSciIrq).u32(L::kSciIrq).u16(0x000d);
  t.u8(kLocalApicNmi).u8(6).u8(0xff).u16(0).u8(1);  // every processor: LINT1 is NMI
  if (any_x2apic) t.u8(kX2apicNmi).u8(12).u16(0).u32(0xffffffff).u8(1).zeros(3);
  return acpi_finish(std::move(t));
}

std::vector<uint8_t> sdt(std::string_view signature, const std::vector<uint64_t>& tables, bool wide) {
  Bytes t = acpi_header(signature, 1);
  for (uint64_t a : tables) wide ? t.u64(a) : t.u32(static_cast<uint32_t>(a));
  return acpi_finish(std::move(t));
}

std::vector<uint8_t> rsdp(uint32_t rsdt, uint64_t xsdt) {
  Bytes t;
  t.text("RSD PTR ", 8, ' ').u8(0).text("CPUMDL", 6, ' ').u8(2).u32(rsdt).u32(36).u64(xsdt).u8(0).zeros(3);
  t.checksum(8, 0, 20);
  t.checksum(32);
  return {t.span().begin(), t.span().end()};
}

uint64_t align(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

uint8_t PlatformConfig::ioapic_id() const {
  uint32_t id = 0;
  for (const auto& c : cpus)
    if (c.apic_id < 0xfe) id = std::max(id, c.apic_id + 1);
  return static_cast<uint8_t>(id);
}

uint8_t byte_sum(std::span<const uint8_t> bytes) {
  uint8_t s = 0;
  for (uint8_t b : bytes) s = static_cast<uint8_t>(s + b);
  return s;
}

Result<uint64_t> write_mp_table(const GuestMemory& mem, uint64_t addr, const PlatformConfig& c) {
  if (addr % 16) return input_error("MP floating pointer at " + hex(addr) + " is not 16-byte aligned");
  if (c.cpus.empty()) return input_error("MP table: no processors");
  for (size_t i = 0; i < c.cpus.size(); ++i)
    if (c.cpus[i].apic_id > 0xfe)
      return input_error("MP table: vCPU " + std::to_string(i) + " has APIC ID " + std::to_string(c.cpus[i].apic_id) +
                         ", above the 254 an MP table can describe");
  uint64_t config_addr = addr + 16;
  Bytes t;
  t.text("PCMP", 4, ' ').u16(0).u8(4).u8(0).text("CPUMODEL", 8, ' ').text("KVM", 12, ' ');
  t.u32(0).u16(0).u16(0).u32(static_cast<uint32_t>(PlatformLayout::kLapicAddr)).u16(0).u8(0).u8(0);
  uint16_t count = 0;
  mp_config_entries(t, c, count);
  t.put16(4, static_cast<uint16_t>(t.size()));
  t.put16(34, count);
  t.checksum(7);
  Bytes fp;
  fp.text("_MP_", 4, ' ').u32(static_cast<uint32_t>(config_addr)).u8(1).u8(4).u8(0).u8(0).zeros(4);
  fp.checksum(10);
  if (auto st = mem.write(addr, fp.span()); !st) return st.error();
  if (auto st = mem.write(config_addr, t.span()); !st) return st.error();
  return config_addr + t.size();
}

std::vector<uint8_t> dsdt_aml() {
  // NameOp "_S5_" PackageOp PkgLength NumElements BytePrefix 5 BytePrefix 5 ZeroOp ZeroOp
  const uint8_t s5 = PlatformLayout::kS5SleepType;
  return {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a, s5, 0x0a, s5, 0x00, 0x00};
}

Result<uint64_t> write_acpi_tables(const GuestMemory& mem, uint64_t addr, const PlatformConfig& c) {
  if (addr % 16) return input_error("ACPI RSDP at " + hex(addr) + " is not 16-byte aligned");
  if (c.cpus.empty()) return input_error("ACPI MADT: no processors");
  uint64_t rsdt_at = addr + 64, xsdt_at = rsdt_at + 64, facs_at = align(xsdt_at + 64, 64);
  uint64_t fadt_at = facs_at + kFacsSize, dsdt_at = align(fadt_at + kFadtSize, 16);
  Bytes dsdt_bytes = acpi_header("DSDT", 2);
  dsdt_bytes.append(dsdt_aml());
  std::vector<uint8_t> dsdt = acpi_finish(std::move(dsdt_bytes));
  uint64_t madt_at = align(dsdt_at + dsdt.size(), 16);
  std::vector<uint64_t> tables = {fadt_at, madt_at};
  struct Piece {
    uint64_t at;
    std::vector<uint8_t> bytes;
  };
  const Piece pieces[] = {
      {addr, rsdp(static_cast<uint32_t>(rsdt_at), xsdt_at)},
      {rsdt_at, sdt("RSDT", tables, false)},
      {xsdt_at, sdt("XSDT", tables, true)},
      {facs_at, facs()},
      {fadt_at, fadt(static_cast<uint32_t>(facs_at), static_cast<uint32_t>(dsdt_at))},
      {dsdt_at, dsdt},
      {madt_at, madt(c)},
  };
  for (const auto& p : pieces)
    if (auto st = mem.write(p.at, p.bytes); !st) return st.error();
  return addr;
}

}  // namespace cpumodel::vmm
