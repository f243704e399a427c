// The port devices without KVM: interrupts and machine events go to recorders. Truth: the
// PC16550D datasheet register semantics and the probes Linux's 8250 driver runs
// (drivers/tty/serial/8250/8250_port.c: loopback test, THRE re-assert test), the i8042 reset
// command, ACPI 6.x PM1 register bits.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "cpumodel/vmm/devices.h"
#include "cpumodel/vmm/platform_tables.h"

namespace cpumodel::vmm {
namespace {

struct IrqRecorder {
  std::vector<std::pair<uint32_t, bool>> calls;
  bool level = false;
  IrqFn fn() {
    return [this](uint32_t gsi, bool l) {
      calls.push_back({gsi, l});
      level = l;
    };
  }
};

struct EventRecorder {
  std::vector<MachineEvent> events;
  EventFn fn() {
    return [this](MachineEvent e, const std::string&) { events.push_back(e); };
  }
};

enum : uint16_t { RBR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

TEST(Serial8250, LinuxProbesFindA16550A) {
  IrqRecorder irq;
  Serial8250 s(irq.fn(), 4, -1);
  s.write(SCR, 1, 0xa5);
  EXPECT_EQ(s.read(SCR, 1), 0xa5u);
  // Loopback: MCR LOOP | OUT2 | RTS -> MSR shows DCD | CTS (8250_port.c expects 0x90).
  s.write(MCR, 1, 0x1a);
  EXPECT_EQ(s.read(MSR, 1) & 0xf0, 0x90u);
  s.write(MCR, 1, 0x03);
  // FIFO enabled: IIR bits 7:6 set (a 16550A).
  s.write(IIR, 1, 0x01);
  EXPECT_EQ(s.read(IIR, 1) & 0xc0, 0xc0u);
  // Divisor latch.
  s.write(LCR, 1, 0x83);
  s.write(RBR, 1, 0x01);
  s.write(IER, 1, 0x00);
  EXPECT_EQ(s.read(RBR, 1), 0x01u);
  s.write(LCR, 1, 0x03);
  EXPECT_EQ(s.read(LSR, 1) & 0x60, 0x60u) << "THRE and TEMT";
}

TEST(Serial8250, ThreInterruptReassertsAsLinuxTestsIt) {
  IrqRecorder irq;
  Serial8250 s(irq.fn(), 4, -1);
  s.write(IER, 1, 0x02);
  EXPECT_EQ(s.read(IIR, 1) & 0x0f, 0x02u) << "THRI pending once enabled";
  EXPECT_TRUE(s.read(IIR, 1) & 0x01) << "reading IIR cleared it";
  s.write(IER, 1, 0x00);
  s.write(IER, 1, 0x02);
  EXPECT_EQ(s.read(IIR, 1) & 0x0f, 0x02u) << "re-asserted (no UART_BUG_THRE)";
  s.write(IER, 1, 0x00);
  EXPECT_FALSE(irq.level);
}

TEST(Serial8250, TransmitsToTheFileDescriptor) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  std::string observed;
  {
    Serial8250 s(nullptr, 4, fds[1]);
    s.set_output_observer([&](std::span<const uint8_t> b) { observed.append(b.begin(), b.end()); });
    for (char c : std::string("hi\n")) s.write(RBR, 1, static_cast<uint8_t>(c));
    EXPECT_EQ(s.bytes_out(), 3u);
  }
  char buf[8] = {};
  EXPECT_EQ(::read(fds[0], buf, sizeof buf), 3);
  EXPECT_EQ(std::string(buf), "hi\n");
  EXPECT_EQ(observed, "hi\n");
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Serial8250, InputWaitsForTheDriverThenRaisesIrq4) {
  IrqRecorder irq;
  Serial8250 s(irq.fn(), Serial8250::kCom1Irq, -1);
  const uint8_t text[] = {'l', 's', '\r'};
  EXPECT_EQ(s.push_input(text), 3u);
  // The port is not open (IER 0): no data ready, and the driver's start-up flush reads nothing.
  EXPECT_EQ(s.read(LSR, 1) & 0x01, 0u);
  EXPECT_EQ(s.read(RBR, 1), 0u);
  EXPECT_TRUE(irq.calls.empty());
  s.write(IER, 1, 0x01);  // receive interrupts on
  ASSERT_FALSE(irq.calls.empty());
  EXPECT_EQ(irq.calls.back(), std::make_pair(uint32_t{4}, true));
  EXPECT_EQ(s.read(IIR, 1) & 0x0f, 0x04u) << "received data available";
  std::string got;
  while (s.read(LSR, 1) & 0x01) got += static_cast<char>(s.read(RBR, 1));
  EXPECT_EQ(got, "ls\r");
  EXPECT_FALSE(irq.level) << "line lowered once drained";
  EXPECT_EQ(s.input_pending(), 0u);
}

TEST(Serial8250, InputQueueIsBounded) {
  Serial8250 s(nullptr, 4, -1);
  std::vector<uint8_t> big(Serial8250::kInputMax + 100, 'a');
  EXPECT_EQ(s.push_input(big), Serial8250::kInputMax);
}

TEST(I8042, PulseResetEndsTheMachine) {
  EventRecorder ev;
  I8042 k(ev.fn());
  EXPECT_EQ(k.read(4, 1) & 0x02, 0u) << "input buffer empty: Linux's kb_wait() passes";
  k.write(4, 1, 0xaa);
  EXPECT_EQ(k.read(4, 1) & 0x01, 1u);
  EXPECT_EQ(k.read(0, 1), 0x55u) << "self-test passed";
  k.write(4, 1, 0x20);
  uint8_t ctr = static_cast<uint8_t>(k.read(0, 1));
  k.write(4, 1, 0x60);
  k.write(0, 1, ctr ^ 0x01);
  k.write(4, 1, 0x20);
  EXPECT_EQ(k.read(0, 1), uint32_t(ctr ^ 0x01));
  EXPECT_TRUE(ev.events.empty());
  k.write(4, 1, 0xfe);
  ASSERT_EQ(ev.events.size(), 1u);
  EXPECT_EQ(ev.events[0], MachineEvent::kReset);
}

TEST(CmosRtc, BcdTimeOfTheClock) {
  CmosRtc rtc([] { return int64_t{1700000000}; });  // 2023-11-14 22:13:20 UTC, a Tuesday
  auto reg = [&](uint8_t i) {
    rtc.write(0, 1, i);
    return rtc.read(1, 1);
  };
  EXPECT_EQ(reg(0x00), 0x20u);
  EXPECT_EQ(reg(0x02), 0x13u);
  EXPECT_EQ(reg(0x04), 0x22u);
  EXPECT_EQ(reg(0x07), 0x14u);
  EXPECT_EQ(reg(0x08), 0x11u);
  EXPECT_EQ(reg(0x09), 0x23u);
  EXPECT_EQ(reg(0x32), 0x20u);
  EXPECT_EQ(reg(0x0a) & 0x80, 0u) << "no update in progress";
  EXPECT_EQ(reg(0x0d) & 0x80, 0x80u) << "valid";
}

TEST(AcpiPm, SleepTypeS5PowersOffOthersDoNot) {
  IrqRecorder irq;
  EventRecorder ev;
  AcpiPm pm(irq.fn(), ev.fn());
  EXPECT_EQ(pm.read(4, 2) & AcpiPm::kSciEn, AcpiPm::kSciEn) << "already in ACPI mode";
  pm.write(4, 2, (3u << 10) | AcpiPm::kSlpEn);
  EXPECT_TRUE(ev.events.empty()) << "S3 is not offered";
  pm.write(4, 2, (uint32_t{PlatformLayout::kS5SleepType} << 10));
  EXPECT_TRUE(ev.events.empty()) << "SLP_TYP alone does nothing";
  pm.write(4, 2, (uint32_t{PlatformLayout::kS5SleepType} << 10) | AcpiPm::kSlpEn);
  ASSERT_EQ(ev.events.size(), 1u);
  EXPECT_EQ(ev.events[0], MachineEvent::kPowerOff);
}

TEST(AcpiPm, PowerButtonRaisesTheSciWhenEnabled) {
  IrqRecorder irq;
  AcpiPm pm(irq.fn(), nullptr);
  pm.press_power_button();
  EXPECT_TRUE(irq.calls.empty()) << "PWRBTN_EN clear";
  EXPECT_EQ(pm.read(0, 2) & AcpiPm::kPwrBtnSts, AcpiPm::kPwrBtnSts);
  pm.write(2, 2, AcpiPm::kPwrBtnSts);  // enable
  ASSERT_EQ(irq.calls.size(), 1u);
  EXPECT_EQ(irq.calls[0], std::make_pair(uint32_t{PlatformLayout::kSciIrq}, true));
  pm.write(0, 2, AcpiPm::kPwrBtnSts);  // write 1 to clear
  EXPECT_FALSE(irq.level);
  EXPECT_EQ(pm.read(0, 2) & AcpiPm::kPwrBtnSts, 0u);
}

// Snapshots: a device saved mid-conversation and restored into a fresh one answers the guest as
// the first would have, and drives a raised line again.
TEST(DeviceState, SerialRestoresRegistersInputAndItsLine) {
  IrqRecorder irq;
  Serial8250 a(irq.fn(), 4, -1);
  a.write(LCR, 1, 0x83);  // divisor 3 (38400 baud)
  a.write(RBR, 1, 0x03);
  a.write(LCR, 1, 0x03);
  a.write(SCR, 1, 0x5a);
  a.write(MCR, 1, 0x0b);
  a.write(IER, 1, 0x01);  // receive interrupts
  const uint8_t typed[] = {'l', 's', '\n'};
  a.push_input(typed);
  EXPECT_EQ(a.read(RBR, 1), uint32_t{'l'});
  SerialState saved = a.save();
  EXPECT_EQ(saved.rx, (std::vector<uint8_t>{'s', '\n'}));
  EXPECT_TRUE(saved.irq_level);
  IrqRecorder irq2;
  Serial8250 b(irq2.fn(), 4, -1);
  b.restore(saved);
  EXPECT_EQ(b.save(), saved);
  ASSERT_EQ(irq2.calls.size(), 1u) << "the raised line is driven again";
  EXPECT_TRUE(irq2.level);
  EXPECT_EQ(b.read(SCR, 1), 0x5au);
  b.write(LCR, 1, 0x83);
  EXPECT_EQ(b.read(RBR, 1), 0x03u) << "divisor latch";
  b.write(LCR, 1, 0x03);
  EXPECT_EQ(b.read(IIR, 1) & 0x0f, 0x04u) << "received data pending";
  EXPECT_EQ(b.read(RBR, 1), uint32_t{'s'});
  EXPECT_EQ(b.read(RBR, 1), uint32_t{'\n'});
  EXPECT_FALSE(irq2.level) << "drained: the line drops";
}

TEST(DeviceState, I8042CmosAndPmRoundTrip) {
  EventRecorder ev;
  I8042 k(ev.fn());
  k.write(4, 1, 0x60);  // write the command byte...
  k.write(0, 1, 0x47);
  k.write(4, 1, 0xaa);  // ...and queue a self-test answer
  I8042 k2(ev.fn());
  k2.restore(k.save());
  EXPECT_EQ(k2.read(4, 1) & 1, 1u) << "output buffer full";
  EXPECT_EQ(k2.read(0, 1), 0x55u);
  k2.write(4, 1, 0x20);
  EXPECT_EQ(k2.read(0, 1), 0x47u);
  CmosRtc rtc([] { return int64_t{1700000000}; });
  rtc.write(0, 1, 0x40);
  rtc.write(1, 1, 0x99);
  CmosRtc rtc2([] { return int64_t{1700000000}; });
  rtc2.restore(rtc.save());
  EXPECT_EQ(rtc2.read(1, 1), 0x99u) << "index and RAM";
  IrqRecorder irq;
  AcpiPm pm(irq.fn(), ev.fn());
  pm.write(2, 2, AcpiPm::kPwrBtnSts);  // enable the power button event
  pm.press_power_button();
  IrqRecorder irq2;
  AcpiPm pm2(irq2.fn(), ev.fn());
  pm2.restore(pm.save());
  EXPECT_EQ(pm2.save(), pm.save());
  EXPECT_TRUE(irq2.level) << "the SCI was raised when saved";
  EXPECT_EQ(irq2.calls.at(0).first, PlatformLayout::kSciIrq);
  EXPECT_EQ(pm2.read(0, 2) & AcpiPm::kPwrBtnSts, AcpiPm::kPwrBtnSts);
}

TEST(PortBus, DispatchesAndReadsAllOnesElsewhere) {
  PortBus bus;
  CmosRtc rtc([] { return int64_t{0}; });
  bus.add(0x70, 2, &rtc);
  uint8_t data[4] = {0x0d, 0, 0, 0};
  bus.io(0x70, true, 1, 1, data);
  bus.io(0x71, false, 1, 1, data);
  EXPECT_EQ(data[0], 0x80);
  uint8_t none[2] = {0, 0};
  bus.io(0x2f8, false, 2, 1, none);
  EXPECT_EQ(none[0], 0xff);
  EXPECT_EQ(none[1], 0xff);
  EXPECT_EQ(bus.unhandled(), 1u);
}

}  // namespace
}  // namespace cpumodel::vmm
