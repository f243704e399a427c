// verify --hold (hold.h).
#include "cpumodel/vmm/hold.h"

#include <unistd.h>

#include <cstring>

#include "cpumodel/vmm/qmp.h"

extern "C" const uint8_t cpumodel_hold_guest_begin[], cpumodel_hold_guest_end[];

namespace cpumodel::vmm {
namespace {

constexpr uint64_t kTables = 0x200000, kTableSize = 0x20000;  // above the first 2 MiB (boot tables)
constexpr uint16_t kCom1 = 0x3f8, kCom1Lsr = 0x3fd;

}  // namespace

std::span<const uint8_t> hold_guest_code() {
  return {cpumodel_hold_guest_begin, static_cast<size_t>(cpumodel_hold_guest_end - cpumodel_hold_guest_begin)};
}

bool hold_serial_io(int serial_fd, kvm_run& run) {
  if (run.io.port < kCom1 || run.io.port >= kCom1 + 8) return false;
  uint8_t* data = reinterpret_cast<uint8_t*>(&run) + run.io.data_offset;
  size_t len = static_cast<size_t>(run.io.size) * run.io.count;
  if (run.io.direction == KVM_EXIT_IO_OUT) {
    if (run.io.port == kCom1 && serial_fd >= 0) (void)!::write(serial_fd, data, len);
  } else {
    std::memset(data, 0, len);
    if (run.io.port == kCom1Lsr) data[0] = 0x60;  // transmitter empty
  }
  return true;
}

Result<MachineReport> run_hold(const GuestCpuid& guest, const HoldOptions& o) {
  if (guest.tables.empty()) return input_error("verify --hold: no vCPU");
  if (!guest.tables[0].bit(0x80000001, 0, Reg::kEdx, 29))
    return input_error("verify --hold needs a 64-bit CPU model (the hold guest runs in long mode; this one lacks lm)");
  MachineConfig c;
  c.device = o.device;
  size_t n = guest.tables.size();
  c.ram_size = (kTables + n * kTableSize + (2u << 20) - 1) & ~uint64_t{(2u << 20) - 1};
  c.timeout_s = o.timeout_s;
  c.irqchip = false;  // the hold guest takes no interrupts
  int fd = o.serial_fd;
  c.on_io = [fd](unsigned, kvm_run& run) { return hold_serial_io(fd, run); };
  for (size_t i = 0; i < n; ++i) {
    VcpuConfig vc;
    vc.apic_id = guest.vcpus[i].apic_id;
    vc.cpuid = guest.tables[i];
    if (auto p = o.pins.find(static_cast<unsigned>(i)); p != o.pins.end()) vc.pin = p->second;
    vc.rdi = o.iterations;
    vc.rsi = kTables + i * kTableSize;
    vc.rdx = 0x243F6A8885A308D3ull + i;
    vc.rbp = i == 0;
    c.vcpus.push_back(std::move(vc));
  }
  auto m = Machine::create(std::move(c));
  if (!m) return m.error();
  if (auto st = (*m)->load_code(hold_guest_code()); !st) return st.error();
  std::unique_ptr<QmpServer> qmp;
  if (!o.qmp.empty()) {
    auto server = QmpServer::listen(o.qmp);
    if (!server) return server.error();
    qmp = std::move(*server);
    SnapshotInfo info = o.info;
    if (info.guest.empty()) info.guest = "verify --hold";
    add_machine_qmp_commands(*qmp, **m, info);
    qmp->start();
  }
  return (*m)->run();
}

}  // namespace cpumodel::vmm
