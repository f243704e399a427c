// The 8250/16550A UART (register semantics as the National PC16550D datasheet describes them,
// what Linux's 8250 driver probes for: the scratch register, loopback mirroring MCR into MSR, a
// 16-byte FIFO flagged in IIR, THRE re-asserted when ETBEI is set again) and the port bus.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "cpumodel/vmm/devices.h"

namespace cpumodel::vmm {
namespace {

enum : uint16_t { kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7 };
constexpr uint8_t kIerRdi = 0x01, kIerThri = 0x02;
constexpr uint8_t kIirNoInt = 0x01, kIirThri = 0x02, kIirRdi = 0x04, kIirFifos = 0xc0;
constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10;
constexpr uint8_t kLsrDr = 0x01, kLsrThre = 0x20, kLsrTemt = 0x40;
constexpr uint8_t kMsrCts = 0x10, kMsrDsr = 0x20, kMsrRi = 0x40, kMsrDcd = 0x80;
constexpr uint8_t kFcrEnable = 0x01;

void write_all(int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;  // the reader went away: output is dropped, the guest runs on
    p += w;
    n -= static_cast<size_t>(w);
  }
}

}  // namespace

void PortBus::add(uint16_t base, uint16_t length, PortDevice* device) { ranges_.push_back({base, length, device}); }

void PortBus::io(uint16_t port, bool is_write, unsigned size, uint32_t count, uint8_t* data) {
  PortDevice* dev = nullptr;
  uint16_t offset = 0;
  for (const Range& r : ranges_)
    if (port >= r.base && port - r.base < r.length) {
      dev = r.device;
      offset = static_cast<uint16_t>(port - r.base);
      break;
    }
  for (uint32_t i = 0; i < count; ++i, data += size) {
    if (!dev) {
      if (!is_write) std::memset(data, 0xff, size);
      continue;
    }
    if (is_write) {
      uint32_t v = 0;
      std::memcpy(&v, data, size);
      dev->write(offset, size, v);
    } else {
      uint32_t v = dev->read(offset, size);
      std::memcpy(data, &v, size);
    }
  }
  if (!dev) unhandled_.fetch_add(1, std::memory_order_relaxed);
}

Serial8250::Serial8250(IrqFn irq, uint32_t gsi, int out_fd) : irq_(std::move(irq)), gsi_(gsi), out_fd_(out_fd) {}

uint32_t Serial8250::read(uint16_t offset, unsigned size) {
  accesses_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  uint32_t v = read_locked(offset);
  update_irq_locked();
  return size == 1 ? v : v | 0xffffff00u;
}

void Serial8250::write(uint16_t offset, unsigned, uint32_t value) {
  accesses_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(mu_);
  write_locked(offset, static_cast<uint8_t>(value));
  update_irq_locked();
}

// Queued input reaches the receiver only while the guest has receive interrupts on (or loops
// back): a port nobody has opened keeps what was typed, and the driver's start-up flush of the
// receiver does not eat it.
uint8_t Serial8250::iir_locked() const {
  bool data = !rx_.empty() && ((ier_ & kIerRdi) || (mcr_ & kMcrLoop));
  uint8_t fifo = (fcr_ & kFcrEnable) ? kIirFifos : 0;
  if ((ier_ & kIerRdi) && data) return fifo | kIirRdi;
  if ((ier_ & kIerThri) && thr_interrupt_) return fifo | kIirThri;
  return fifo | kIirNoInt;
}

uint8_t Serial8250::read_locked(uint16_t offset) {
  bool dlab = lcr_ & kLcrDlab;
  bool rx_visible = !rx_.empty() && ((ier_ & kIerRdi) || (mcr_ & kMcrLoop));
  switch (offset) {
    case kRbrThr: {
      if (dlab) return dll_;
      if (!rx_visible) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer: return dlab ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t iir = iir_locked();
      if ((iir & 0x0f) == kIirThri) thr_interrupt_ = false;
      return iir;
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: return kLsrThre | kLsrTemt | (rx_visible ? kLsrDr : 0);
    case kMsr:
      if (mcr_ & kMcrLoop)
        return ((mcr_ & kMcrRts) ? kMsrCts : 0) | ((mcr_ & kMcrDtr) ? kMsrDsr : 0) |
               ((mcr_ & kMcrOut1) ? kMsrRi : 0) | ((mcr_ & kMcrOut2) ? kMsrDcd : 0);
      return kMsrDcd | kMsrDsr | kMsrCts;
    case kScr: return scr_;
    default: return 0xff;
  }
}

void Serial8250::write_locked(uint16_t offset, uint8_t v) {
  bool dlab = lcr_ & kLcrDlab;
  switch (offset) {
    case kRbrThr:
      if (dlab) {
        dll_ = v;
      } else {
        transmit(v);
        thr_interrupt_ = true;  // sent at once: the holding register is empty again
      }
      break;
    case kIer:
      if (dlab) {
        dlm_ = v;
      } else {
        if ((v & kIerThri) && !(ier_ & kIerThri)) thr_interrupt_ = true;
        ier_ = v & 0x0f;
      }
      break;
    case kIirFcr: fcr_ = v; break;
    case kLcr: lcr_ = v; break;
    case kMcr: mcr_ = v & 0x1f; break;
    case kScr: scr_ = v; break;
    default: break;  // LSR and MSR are read-only
  }
}

void Serial8250::transmit(uint8_t byte) {
  if (mcr_ & kMcrLoop) {
    if (rx_.size() < kInputMax) rx_.push_back(byte);
    return;
  }
  bytes_out_.fetch_add(1, std::memory_order_relaxed);
  if (out_fd_ >= 0) write_all(out_fd_, &byte, 1);
  if (observer_) observer_(std::span<const uint8_t>(&byte, 1));
}

void Serial8250::update_irq_locked() {
  bool level = (iir_locked() & kIirNoInt) == 0;
  if (level == irq_level_) return;
  irq_level_ = level;
  if (irq_) irq_(gsi_, level);
}

size_t Serial8250::push_input(std::span<const uint8_t> bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (uint8_t b : bytes) {
    if (rx_.size() >= kInputMax) break;
    rx_.push_back(b);
    ++n;
  }
  update_irq_locked();
  return n;
}

SerialState Serial8250::save() const {
  std::lock_guard<std::mutex> lock(mu_);
  SerialState s;
  s.ier = ier_;
  s.lcr = lcr_;
  s.mcr = mcr_;
  s.scr = scr_;
  s.dll = dll_;
  s.dlm = dlm_;
  s.fcr = fcr_;
  s.thr_interrupt = thr_interrupt_;
  s.irq_level = irq_level_;
  s.rx.assign(rx_.begin(), rx_.end());
  return s;
}

void Serial8250::restore(const SerialState& s) {
  std::lock_guard<std::mutex> lock(mu_);
  ier_ = s.ier & 0x0f;
  lcr_ = s.lcr;
  mcr_ = s.mcr & 0x1f;
  scr_ = s.scr;
  dll_ = s.dll;
  dlm_ = s.dlm;
  fcr_ = s.fcr;
  thr_interrupt_ = s.thr_interrupt;
  size_t keep = std::min(s.rx.size(), kInputMax);
  rx_.assign(s.rx.begin(), s.rx.begin() + static_cast<std::ptrdiff_t>(keep));
  // The line follows the registers (a file's irq_level is not trusted): raised again when they
  // say an interrupt is pending.
  irq_level_ = (iir_locked() & kIirNoInt) == 0;
  if (irq_level_ && irq_) irq_(gsi_, true);
}

size_t Serial8250::input_pending() const {
  std::lock_guard<std::mutex> lock(mu_);
  return rx_.size();
}

}  // namespace cpumodel::vmm
