#include "linux_guest.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <sstream>

#include "command.h"
#include "cpumodel/vmm/process_memory.h"

namespace cpumodel::tools {

Result<SerialSetup> serial_setup(const std::string& spec) {
  if (spec == "stdio") return SerialSetup{};
  if (spec == "none" || spec == "null") return SerialSetup{-1, -1, false};
  if (spec.rfind("file:", 0) == 0 && spec.size() > 5) {
    int fd = ::open(spec.c_str() + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return input_error("--serial " + spec + ": cannot open: " + std::strerror(errno));
    return SerialSetup{fd, -1, true};
  }
  return input_error("--serial " + spec + ": expected stdio, file:PATH or none");
}

vmm::SnapshotInfo snapshot_info(const std::string& spec, const std::string& model, const SmpConfig& smp,
                                const std::string& guest) {
  vmm::SnapshotInfo info;
  info.tool_version = CPUMODEL_VERSION;
  info.cpu_spec = spec;
  info.cpu_model = model;
  info.smp = format_smp(smp);
  info.cpus = smp.cpus;
  info.maxcpus = smp.maxcpus;
  info.sockets = smp.sockets;
  info.dies = smp.dies;
  info.cores = smp.cores;
  info.threads = smp.threads;
  info.guest = guest;
  return info;
}

namespace {

void print_stats(const vmm::LinuxVmResult& r) {
  auto sub = [](uint64_t a, uint64_t b) { return static_cast<unsigned long long>(a > b ? a - b : 0); };
  auto u = [](uint64_t v) { return static_cast<unsigned long long>(v); };
  std::fprintf(stderr,
               "cpumodel: note: setup %.0f ms, run %.0f ms, first serial output at %.0f ms, %llu serial bytes, %llu exits\n"
               "cpumodel: note: peak RSS %llu KiB, guest RAM resident %llu of %llu KiB: VMM overhead %llu KiB "
               "(private %llu KiB, executable and shared libraries %llu KiB)\n",
               r.setup_ms, r.run_ms, r.first_output_ms, u(r.serial_bytes), u(r.exits), u(r.peak_rss_kib),
               u(r.guest_resident_kib), u(r.guest_ram_kib), sub(r.peak_rss_kib, r.guest_resident_kib),
               sub(r.rss_anon_kib, r.guest_resident_kib), u(r.rss_file_kib));
  if (r.exit_causes.empty()) return;
  std::string causes;
  for (size_t i = 0; i < r.exit_causes.size() && i < 8; ++i)
    causes += (i ? ", " : "") + r.exit_causes[i].first + " " + std::to_string(r.exit_causes[i].second);
  if (r.exit_causes.size() > 8) causes += ", ...";
  std::fprintf(stderr, "cpumodel: note: exits by cause: %s\n", causes.c_str());
}

}  // namespace

int run_linux_guest(vmm::LinuxVm& machine, vmm::QmpServer* qmp, const vmm::SnapshotInfo& info, bool stats) {
  // Once the vCPU threads run, the code only start-up ran leaves this process's RSS.
  machine.set_on_started([] { vmm::release_startup_code(); });
  if (qmp) {
    vmm::add_vm_qmp_commands(*qmp, machine);
    vmm::add_linux_vm_snapshot_command(*qmp, machine, info);
    qmp->start();
  }
  auto result = machine.run();
  if (!result) return fail(result.error());
  if (qmp) {
    static const char* const kReason[] = {"guest-shutdown", "guest-reset", "host-qmp-quit", "host-signal",
                                          "guest-panic", "host-error"};
    bool guest = result->end == vmm::LinuxVmEnd::kPowerOff || result->end == vmm::LinuxVmEnd::kReset;
    qmp->emit_event("SHUTDOWN", std::string("{\"guest\": ") + (guest ? "true" : "false") + ", \"reason\": \"" +
                                    kReason[static_cast<int>(result->end)] + "\"}");
  }
  if (stats) print_stats(*result);
  int code = result->exit_code();
  std::string line = std::string("guest ") + vmm::linux_vm_end_name(result->end) + ": " + result->what;
  if (code == kExitOk) {
    note(line);
    return code;
  }
  int rc = fail(line, code);
  // The error is one line; the guest's registers follow it, indented, for the person debugging.
  std::istringstream dump(result->dump);
  for (std::string l; std::getline(dump, l);) std::fprintf(stderr, "  %s\n", l.c_str());
  return rc;
}

}  // namespace cpumodel::tools
