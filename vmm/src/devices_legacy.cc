// i8042 (reset only), CMOS RTC and the ACPI PM1a registers.
#include <algorithm>
#include <ctime>

#include "cpumodel/vmm/devices.h"
#include "cpumodel/vmm/platform_tables.h"

namespace cpumodel::vmm {
namespace {

// i8042 controller commands (port 0x64) and status bits.
constexpr uint8_t kCmdReadCtr = 0x20, kCmdWriteCtr = 0x60, kCmdAuxTest = 0xa9, kCmdSelfTest = 0xaa;
constexpr uint8_t kCmdKbdTest = 0xab, kCmdWriteOutput = 0xd1, kCmdPulseReset = 0xfe;
constexpr uint8_t kStatusObf = 0x01, kStatusSystem = 0x04;

uint8_t bcd(int v) { return static_cast<uint8_t>((v / 10) << 4 | (v % 10)); }

}  // namespace

uint32_t I8042::read(uint16_t offset, unsigned) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset == 4) return kStatusSystem | (out_.empty() ? 0 : kStatusObf);
  if (offset != 0) return 0xff;
  if (out_.empty()) return 0;
  uint8_t b = out_.front();
  out_.pop_front();
  return b;
}

void I8042::write(uint16_t offset, unsigned, uint32_t value) {
  uint8_t v = static_cast<uint8_t>(value);
  bool reset = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (offset == 4) {
      pending_command_ = 0;
      switch (v) {
        case kCmdReadCtr: out_.push_back(command_byte_); break;
        case kCmdWriteCtr:
        case kCmdWriteOutput: pending_command_ = v; break;
        case kCmdSelfTest: out_.push_back(0x55); break;
        case kCmdKbdTest:
        case kCmdAuxTest: out_.push_back(0x00); break;
        case kCmdPulseReset: reset = true; break;
        default: break;
      }
    } else if (offset == 0) {
      if (pending_command_ == kCmdWriteCtr) command_byte_ = v;
      if (pending_command_ == kCmdWriteOutput && !(v & 1)) reset = true;  // output port bit 0: CPU reset line
      pending_command_ = 0;
    }
  }
  if (reset && event_) event_(MachineEvent::kReset, "the i8042 reset line was pulsed");
}

I8042State I8042::save() const {
  std::lock_guard<std::mutex> lock(mu_);
  return I8042State{{out_.begin(), out_.end()}, pending_command_, command_byte_};
}

void I8042::restore(const I8042State& s) {
  std::lock_guard<std::mutex> lock(mu_);
  // The controller answers a command with a byte or two; a longer queue is not a real state.
  out_.assign(s.out.begin(), s.out.begin() + static_cast<std::ptrdiff_t>(std::min<size_t>(s.out.size(), kOutMax)));
  pending_command_ = s.pending_command;
  command_byte_ = s.command_byte;
}

CmosRtc::CmosRtc(std::function<int64_t()> now) : now_(std::move(now)) {
  if (!now_) now_ = [] { return static_cast<int64_t>(std::time(nullptr)); };
}

uint8_t CmosRtc::reg(uint8_t index) const {
  std::time_t t = static_cast<std::time_t>(now_());
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  switch (index) {
    case 0x00: return bcd(tm.tm_sec);
    case 0x02: return bcd(tm.tm_min);
    case 0x04: return bcd(tm.tm_hour);
    case 0x06: return bcd(tm.tm_wday + 1);
    case 0x07: return bcd(tm.tm_mday);
    case 0x08: return bcd(tm.tm_mon + 1);
    case 0x09: return bcd(tm.tm_year % 100);
    case 0x32: return bcd((tm.tm_year + 1900) / 100);
    case 0x0a: return 0x26;  // 32.768 kHz time base, 1024 Hz rate; UIP clear
    case 0x0b: return 0x02;  // 24-hour, BCD, no interrupts
    case 0x0c: return 0x00;
    case 0x0d: return 0x80;  // valid RAM and time
    default: return ram_[index & 0x7f];
  }
}

uint32_t CmosRtc::read(uint16_t offset, unsigned) {
  std::lock_guard<std::mutex> lock(mu_);
  return offset == 1 ? reg(index_) : 0xff;
}

void CmosRtc::write(uint16_t offset, unsigned, uint32_t value) {
  std::lock_guard<std::mutex> lock(mu_);
  if (offset == 0) index_ = value & 0x7f;  // bit 7 masks NMIs
  else if (offset == 1 && index_ >= 0x0e) ram_[index_] = static_cast<uint8_t>(value);
}

CmosState CmosRtc::save() const {
  std::lock_guard<std::mutex> lock(mu_);
  CmosState s;
  s.index = index_;
  std::copy(std::begin(ram_), std::end(ram_), s.ram.begin());
  return s;
}

void CmosRtc::restore(const CmosState& s) {
  std::lock_guard<std::mutex> lock(mu_);
  index_ = s.index & 0x7f;
  std::copy(s.ram.begin(), s.ram.end(), std::begin(ram_));
}

AcpiPm::AcpiPm(IrqFn irq, EventFn event) : irq_(std::move(irq)), event_(std::move(event)) {}

uint32_t AcpiPm::read(uint16_t offset, unsigned size) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint16_t regs[3] = {status_, enable_, control_};
  uint32_t v = 0;
  for (unsigned i = 0; i < size; ++i) {
    unsigned byte = offset + i;
    uint8_t b = byte < 6 ? static_cast<uint8_t>(regs[byte / 2] >> (8 * (byte % 2))) : 0xff;
    v |= uint32_t{b} << (8 * i);
  }
  return v;
}

void AcpiPm::write(uint16_t offset, unsigned size, uint32_t value) {
  bool power_off = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (unsigned i = 0; i < size; ++i) {
      unsigned byte = offset + i;
      if (byte >= 6) break;
      uint16_t b = static_cast<uint16_t>(((value >> (8 * i)) & 0xff) << (8 * (byte % 2)));
      uint16_t mask = static_cast<uint16_t>(0xff << (8 * (byte % 2)));
      if (byte / 2 == 0) status_ &= static_cast<uint16_t>(~b);  // write 1 to clear
      else if (byte / 2 == 1) enable_ = static_cast<uint16_t>((enable_ & ~mask) | b);
      else control_ = static_cast<uint16_t>((control_ & ~mask) | b);
    }
    if (control_ & kSlpEn) {
      unsigned type = (control_ >> 10) & 7;
      control_ &= static_cast<uint16_t>(~kSlpEn);  // SLP_EN reads as zero
      power_off = type == PlatformLayout::kS5SleepType;
    }
    control_ |= kSciEn;
    update_sci_locked();
  }
  if (power_off && event_) event_(MachineEvent::kPowerOff, "the guest entered ACPI S5 (soft off)");
}

void AcpiPm::press_power_button() {
  std::lock_guard<std::mutex> lock(mu_);
  status_ |= kPwrBtnSts;
  update_sci_locked();
}

AcpiPmState AcpiPm::save() const {
  std::lock_guard<std::mutex> lock(mu_);
  return AcpiPmState{status_, enable_, control_, sci_level_};
}

void AcpiPm::restore(const AcpiPmState& s) {
  std::lock_guard<std::mutex> lock(mu_);
  status_ = s.status;
  enable_ = s.enable;
  control_ = s.control;
  sci_level_ = (status_ & enable_) != 0;  // from the registers, as update_sci_locked() would
  if (sci_level_ && irq_) irq_(PlatformLayout::kSciIrq, true);
}

void AcpiPm::update_sci_locked() {
  bool level = (status_ & enable_) != 0;
  if (level == sci_level_) return;
  sci_level_ = level;
  if (irq_) irq_(PlatformLayout::kSciIrq, level);
}

}  // namespace cpumodel::vmm
