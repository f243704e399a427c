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
#include <functional>

#include "cpumodel/cpuid/profile.h"
#include "cpumodel/cpuid/smp.h"
#include "cpumodel/vmm/vcpu_state.h"

namespace cpumodel::vmm {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

// What a snapshot needs of a running guest, the probe Machine or a LinuxVm alike.
struct Guest {
  std::function<Status()> pause;
  std::function<void()> resume, stop;
  std::function<Result<MachineState>()> save_state;
  const Kvm* kvm;
  std::vector<const GuestMemory*> memory;  // regions, lowest first
  uint32_t cpu_mode;
};

void finish(const Guest& g, AfterSnapshot then) {
  if (then == AfterSnapshot::kResume) g.resume();
  else if (then == AfterSnapshot::kStop) g.stop();
}

SnapshotHeader make_header(const SnapshotInfo& info, uint32_t cpu_mode, const MachineState& state,
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
  h.cpu_mode = cpu_mode;
  h.guest = info.guest;
  return h;
}

std::string dir_part(const std::string& p) { return p.rfind('/') == std::string::npos ? "" : p.substr(0, p.rfind('/')); }

Result<SnapshotStats> snapshot_guest(const Guest& g, const std::string& path, const SnapshotInfo& info,
                                     AfterSnapshot then) {
  SnapshotStats stats;
  auto start = Clock::now();
  if (auto st = g.pause(); !st) return st.error();
  stats.pause_ms = ms_since(start);
  // On any failure the guest goes on running (or stays as asked): a failed save loses nothing.
  auto fail = [&](const Error& e) -> Result<SnapshotStats> {
    finish(g, then == AfterSnapshot::kStop ? AfterSnapshot::kResume : then);
    return e;
  };
  auto t = Clock::now();
  auto state = g.save_state();
  if (!state) return fail(state.error());
  stats.state_ms = ms_since(t);
  Snapshot snap;
  uint32_t tsc = state->vcpus.empty() ? 0 : state->vcpus[0].tsc_khz;
  snap.header = make_header(info, g.cpu_mode, *state, host_fingerprint(*g.kvm, tsc));
  t = Clock::now();
  // Region 0 goes to PATH.mem (or --memory-path), region i > 0 to that name plus ".i". Every file
  // is written under a temporary name first and renamed only once all of them and the state are
  // written: a save that fails (a full disk) leaves the snapshot that was at PATH as it was.
  std::string mem_path = info.memory_path.empty() ? default_memory_path(path) : info.memory_path;
  std::vector<std::pair<std::string, std::string>> pending;  // temporary name, final name
  struct Cleanup {
    std::vector<std::pair<std::string, std::string>>& files;
    ~Cleanup() {
      for (const auto& f : files) ::unlink(f.first.c_str());
    }
  } cleanup{pending};
  for (size_t i = 0; i < g.memory.size(); ++i) {
    const GuestMemory& mem = *g.memory[i];
    std::string file = i == 0 ? mem_path : mem_path + "." + std::to_string(i);
    std::string tmp;
    auto ref = write_memory_file(file, {mem.host(), mem.size()}, mem.base(), info.durable, &tmp);
    if (!ref) return fail(ref.error());
    pending.emplace_back(tmp, file);
    if (dir_part(file) != dir_part(path)) ref->file = file;  // not next to the snapshot: keep the path as given
    stats.memory_bytes += mem.size();
    if (i == 0) snap.header.memory = *ref;
    else snap.header.more_memory.push_back(*ref);
  }
  stats.memory_ms = ms_since(t);
  for (const auto& v : state->vcpus)
    for (const auto& u : v.unsupported)
      if (std::find(stats.unsupported.begin(), stats.unsupported.end(), u) == stats.unsupported.end())
        stats.unsupported.push_back(u);
  for (const auto& u : state->vm.unsupported) stats.unsupported.push_back(u);
  snap.state = std::move(*state);
  t = Clock::now();
  std::string bytes = encode_snapshot(snap);
  stats.state_bytes = bytes.size();
  std::string state_tmp = path + ".state." + std::to_string(::getpid());
  if (auto st = write_file_atomic(state_tmp, bytes); !st) return fail(st.error());
  pending.emplace_back(state_tmp, path);  // last: the state names the memory files before it
  for (auto it = pending.begin(); it != pending.end(); it = pending.erase(it))
    if (::rename(it->first.c_str(), it->second.c_str()) != 0)
      return fail(input_error(it->second + ": cannot write: " + std::strerror(errno)));
  stats.file_ms = ms_since(t);
  finish(g, then);
  stats.total_ms = ms_since(start);
  return stats;
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
  Guest g{[&machine] { return machine.pause(); },
          [&machine] { machine.resume(); },
          [&machine] { machine.stop(); },
          [&machine] { return machine.save_state(); },
          &machine.kvm(),
          {&machine.memory()},
          static_cast<uint32_t>(machine.mode())};
  return snapshot_guest(g, path, info, then);
}

Result<SnapshotStats> snapshot_linux_vm(LinuxVm& vm, const std::string& path, const SnapshotInfo& info,
                                        AfterSnapshot then) {
  Guest g{[&vm] {
            vm.pause();
            return ok_status();
          },
          [&vm] { vm.resume(); },
          [&vm] { vm.request_quit("snapshot-save with quit"); },
          [&vm] { return vm.save_state(); },
          &vm.kvm(),
          vm.memory(),
          static_cast<uint32_t>(CpuMode::kLong64)};
  return snapshot_guest(g, path, info, then);
}

Result<std::unique_ptr<LinuxVm>> restore_linux_vm(const Snapshot& snap, const std::string& path,
                                                  LinuxVmConfig config, bool verify_memory) {
  // Checked here, before the memory files are hashed; LinuxVm::create checks the rest.
  if (!snap.state.devices)
    return input_error(path + ": not a Linux guest's snapshot (no port device state)");
  for (const MemoryRef* r : memory_regions(snap.header)) {
    if (auto st = verify_memory_file(path, *r, verify_memory); !st) return st.error();
    config.ram_files.push_back(memory_path_of(path, *r));
  }
  config.places = saved_places(snap.header.smp, snap.state.vcpus.size());
  config.restore = std::make_shared<const Snapshot>(snap);
  auto vm = LinuxVm::create(std::move(config));
  if (!vm) return Error{path + ": cannot restore: " + vm.error().message, vm.error().exit_code};
  return vm;
}

std::vector<VcpuPlace> saved_places(const std::string& smp_text, size_t vcpus) {
  auto parsed = parse_smp(smp_text);
  SmpConfig smp;
  if (parsed && parsed->cpus == vcpus) {
    smp = *parsed;
  } else {
    smp.cpus = smp.maxcpus = smp.cores = static_cast<unsigned>(vcpus);
  }
  auto places = vcpu_places(smp);  // maxcpus of them: the present ones come first
  if (places.size() > vcpus) places.resize(vcpus);
  return places;
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
