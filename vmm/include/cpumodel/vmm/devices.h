// The port-I/O devices of a Linux guest, emulated in user space and driven by the vCPU threads'
// KVM_EXIT_IO (the PIC, IOAPIC, LAPIC and PIT are KVM's in-kernel ones):
//   0x3f8  8250/16550A UART on IRQ 4: output to a file descriptor, input queued from the host
//   0x60/0x64  i8042, only what Linux's reboot needs: command 0xfe (pulse reset) -> reset
//   0x70/0x71  CMOS RTC: the host's UTC time, BCD, 24-hour
//   0x600/0x604  ACPI PM1a event and control blocks: SLP_EN with SLP_TYP S5 -> power off;
//                power button (QMP system_powerdown) -> PWRBTN_STS and the SCI (IRQ 9)
// Everything else reads as all-ones and ignores writes, as an empty ISA bus does. Interrupts go
// through an IrqFn (KVM_IRQ_LINE in the VMM, a recorder in tests): no /dev/kvm needed to test.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "cpumodel/migrate/snapshot.h"

namespace cpumodel::vmm {

// Raise (true) or lower (false) an interrupt line (a GSI: ISA IRQs are GSIs 0-15).
using IrqFn = std::function<void(uint32_t gsi, bool level)>;

// What a device asks of the machine.
enum class MachineEvent : uint8_t { kReset, kPowerOff };
using EventFn = std::function<void(MachineEvent event, const std::string& why)>;

class PortDevice {
 public:
  virtual ~PortDevice() = default;
  // offset from the device's base port; size 1, 2 or 4.
  virtual uint32_t read(uint16_t offset, unsigned size) = 0;
  virtual void write(uint16_t offset, unsigned size, uint32_t value) = 0;
};

// Port -> device. Lookups are lock-free (the table is fixed before the vCPUs start); each device
// locks what it shares with other threads.
class PortBus {
 public:
  void add(uint16_t base, uint16_t length, PortDevice* device);
  // KVM_EXIT_IO data: `count` items of `size` bytes at `data`.
  void io(uint16_t port, bool is_write, unsigned size, uint32_t count, uint8_t* data);
  uint64_t unhandled() const { return unhandled_.load(); }

 private:
  struct Range {
    uint16_t base, length;
    PortDevice* device;
  };
  std::vector<Range> ranges_;
  std::atomic<uint64_t> unhandled_{0};
};

class Serial8250 : public PortDevice {
 public:
  static constexpr uint16_t kCom1 = 0x3f8;
  static constexpr uint32_t kCom1Irq = 4;
  // out_fd: where transmitted bytes go (-1: dropped). on_output: called with each chunk written.
  Serial8250(IrqFn irq, uint32_t gsi, int out_fd);
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  // Host input for the guest (any thread). Returns how many bytes were queued (the queue holds
  // kInputMax bytes; the guest drains it through RBR).
  size_t push_input(std::span<const uint8_t> bytes);
  size_t input_pending() const;
  static constexpr size_t kInputMax = 64 * 1024;
  // Every register access and every byte transmitted (the kvm_pvm detection watches these).
  uint64_t accesses() const { return accesses_.load(); }
  uint64_t bytes_out() const { return bytes_out_.load(); }
  void set_output_observer(std::function<void(std::span<const uint8_t>)> f) { observer_ = std::move(f); }
  // Snapshots (the guest paused). restore() recomputes the line from the registers and drives it
  // when raised, so KVM's line agrees with the device (an extra edge is at worst a spurious
  // interrupt the driver ignores).
  SerialState save() const;
  void restore(const SerialState& s);

 private:
  uint8_t read_locked(uint16_t offset);
  void write_locked(uint16_t offset, uint8_t value);
  void transmit(uint8_t byte);
  uint8_t iir_locked() const;
  void update_irq_locked();

  IrqFn irq_;
  uint32_t gsi_;
  int out_fd_;
  std::function<void(std::span<const uint8_t>)> observer_;
  mutable std::mutex mu_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0x08, scr_ = 0, dll_ = 0x0c, dlm_ = 0, fcr_ = 0;
  bool thr_interrupt_ = false;  // THRE interrupt pending (cleared by reading IIR or writing THR)
  bool irq_level_ = false;
  std::atomic<uint64_t> accesses_{0};
  std::atomic<uint64_t> bytes_out_{0};
};

class I8042 : public PortDevice {
 public:
  static constexpr uint16_t kDataPort = 0x60, kCommandPort = 0x64;
  explicit I8042(EventFn event) : event_(std::move(event)) {}
  // Registered twice: at 0x60 (offset 0, data) and at 0x64 (offset 4, status/command).
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  I8042State save() const;
  void restore(const I8042State& s);  // keeps at most kOutMax queued bytes
  static constexpr size_t kOutMax = 16;

 private:
  EventFn event_;
  mutable std::mutex mu_;
  std::deque<uint8_t> out_;  // bytes for the guest to read from the data port
  uint8_t pending_command_ = 0;  // a controller command awaiting its data byte
  uint8_t command_byte_ = 0x45;
};

class CmosRtc : public PortDevice {
 public:
  static constexpr uint16_t kBase = 0x70;
  // now: seconds since the epoch (UTC); tests pass a fixed clock.
  explicit CmosRtc(std::function<int64_t()> now = nullptr);
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  CmosState save() const;
  void restore(const CmosState& s);

 private:
  uint8_t reg(uint8_t index) const;
  std::function<int64_t()> now_;
  mutable std::mutex mu_;
  uint8_t index_ = 0;
  uint8_t ram_[128] = {};
};

class AcpiPm : public PortDevice {
 public:
  // Registered at PlatformLayout::kPm1aEvent, length 6: status (0-1), enable (2-3), control (4-5).
  AcpiPm(IrqFn irq, EventFn event);
  uint32_t read(uint16_t offset, unsigned size) override;
  void write(uint16_t offset, unsigned size, uint32_t value) override;
  // The power button was pressed (QMP system_powerdown).
  void press_power_button();
  AcpiPmState save() const;
  void restore(const AcpiPmState& s);  // drives the SCI when status & enable say it is raised
  static constexpr uint16_t kPwrBtnSts = 1u << 8, kWakSts = 1u << 15, kSciEn = 1u << 0, kSlpEn = 1u << 13;

 private:
  void update_sci_locked();
  IrqFn irq_;
  EventFn event_;
  mutable std::mutex mu_;
  uint16_t status_ = 0, enable_ = 0, control_ = kSciEn;
  bool sci_level_ = false;
};

}  // namespace cpumodel::vmm
