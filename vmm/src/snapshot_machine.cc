// Snapshots of a Machine and machines restored from them (snapshot.h).
#include "cpumodel/vmm/snapshot.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/vmm/vcpu_state.h"

namespace cpumodel::vmm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void finish(Machine& m, AfterSnapshot then) {
  if (then == AfterSnapshot::kResume) m.resume();
  else if (then == AfterSnapshot::kStop) m.stop();
}

SnapshotHeader make_header(const SnapshotInfo& info, const Machine& machine, const MachineState& state,
                           const HostFingerprint& source) {
  SnapshotHeader h;
  h.tool_version = info.tool_version;
  h.cpu_spec = info.cpu_spec;
  h.cpu_model = info.cpu_model;
  h.smp = info.smp;
  h.cpus = info.cpus ? info.cpus : static_cast<unsigned>(state.vcpus.size());
  h.maxcpus = info.maxcpus ? info.maxcpus : h.cpus;
  h.sockets = info.sockets;
  h.dies = info.dies;
  h.cores = info.cores;
  h.threads = info.threads;
  if (h.smp.empty()) h.smp = std::to_string(h.cpus);
  h.source = source;
  h.created_unix_s = static_cast<uint64_t>(std::time(nullptr));
  h.cpu_mode = static_cast<uint32_t>(machine.mode());
  h.guest = info.guest;
  return h;
}

}  // namespace

Result<GuestRam> GuestRam::map_file(const std::string& path, uint64_t guest_base, uint64_t size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return input_error(path + ": cannot open guest memory: " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < size) {
    ::close(fd);
    return input_error(path + ": guest memory file has " + std::to_string(st.st_size) + " bytes, " +
                       std::to_string(size) + " needed");
  }
  // PROT_WRITE on a read-only descriptor is fine with MAP_PRIVATE: writes go to private copies.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, 0);
  int err = errno;
  ::close(fd);
  if (p == MAP_FAILED) return host_error(path + ": cannot map guest memory: " + std::strerror(err));
  return GuestRam(GuestMemory(static_cast<uint8_t*>(p), guest_base, size));
}

Result<SnapshotStats> snapshot_machine(Machine& machine, const std::string& path, const SnapshotInfo& info,
                                       AfterSnapshot then) {
  SnapshotStats stats;
  auto start = Clock::now();
  if (auto st = machine.pause(); !st) return st.error();
  stats.pause_ms = ms_since(start);
  // On any failure the guest goes on running (or stays as asked): a failed save loses nothing.
  auto fail = [&](const Error& e) -> Result<SnapshotStats> {
    finish(machine, then == AfterSnapshot::kStop ? AfterSnapshot::kResume : then);
    return e;
  };
  auto t = Clock::now();
  auto state = machine.save_state();
  if (!state) return fail(state.error());
  stats.state_ms = ms_since(t);
  Snapshot snap;
  uint32_t tsc = state->vcpus.empty() ? 0 : state->vcpus[0].tsc_khz;
  snap.header = make_header(info, machine, *state, host_fingerprint(machine.kvm(), tsc));
  t = Clock::now();
  const GuestMemory& mem = machine.memory();
  std::string mem_path = info.memory_path.empty() ? default_memory_path(path) : info.memory_path;
  auto ref = write_memory_file(mem_path, {mem.host(), mem.size()}, mem.base(), info.durable);
  if (!ref) return fail(ref.error());
  stats.memory_ms = ms_since(t);
  stats.memory_bytes = mem.size();
  snap.header.memory = *ref;
  if (mem_path.rfind('/') != std::string::npos && path.rfind('/') != std::string::npos &&
      mem_path.substr(0, mem_path.rfind('/')) != path.substr(0, path.rfind('/')))
    snap.header.memory.file = mem_path;  // not next to the snapshot: keep the path as given
  for (const auto& v : state->vcpus)
    for (const auto& u : v.unsupported)
      if (std::find(stats.unsupported.begin(), stats.unsupported.end(), u) == stats.unsupported.end())
        stats.unsupported.push_back(u);
  for (const auto& u : state->vm.unsupported) stats.unsupported.push_back(u);
  snap.state = std::move(*state);
  t = Clock::now();
  std::string bytes = encode_snapshot(snap);
  stats.state_bytes = bytes.size();
  if (auto st = write_file_atomic(path, bytes); !st) return fail(st.error());
  stats.file_ms = ms_since(t);
  finish(machine, then);
  stats.total_ms = ms_since(start);
  return stats;
}

Result<Restored> restore_machine(const Snapshot& snap, const std::string& path, const RestoreOptions& options) {
  Restored out;
  out.header = snap.header;
  auto t = Clock::now();
  if (auto st = verify_memory_file(path, snap.header.memory, options.verify_memory); !st) return st.error();
  if (options.verify_memory) out.verify_ms = ms_since(t);
  t = Clock::now();
  MachineConfig config;
  config.device = options.device;
  config.ram_size = snap.header.memory.size;
  config.mode = snap.header.cpu_mode == 1 ? CpuMode::kProtected32 : CpuMode::kLong64;
  config.timeout_s = options.timeout_s;
  config.irqchip = snap.state.vm.irqchip;
  config.on_io = options.on_io;
  config.on_vcpu_exit = options.on_vcpu_exit;
  config.ram_file = memory_path_of(path, snap.header.memory);
  for (const auto& v : snap.state.vcpus) {
    VcpuConfig vc;
    vc.apic_id = v.apic_id;
    if (auto pin = options.pins.find(v.index); pin != options.pins.end()) vc.pin = pin->second;
    config.vcpus.push_back(std::move(vc));
  }
  config.restore = std::make_shared<const MachineState>(snap.state);
  auto m = Machine::create(std::move(config));
  if (!m) return Error{path + ": cannot restore: " + m.error().message, m.error().exit_code};
  out.machine = std::move(*m);
  out.create_ms = ms_since(t);
  return out;
}

Result<Restored> restore_machine(const std::string& path, const RestoreOptions& options) {
  auto t = Clock::now();
  auto snap = read_snapshot(path);
  if (!snap) return snap.error();
  double read_ms = ms_since(t);
  auto r = restore_machine(*snap, path, options);
  if (r) r->read_ms = read_ms;
  return r;
}

}  // namespace cpumodel::vmm
