// The Linux VM's QMP commands, with the reply shapes of QEMU 7.2 (qapi/machine.json, qapi/run-state.json).
#include "cpumodel/cpuid/json.h"
#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/qmp.h"

namespace cpumodel::vmm {

std::string cpus_fast_json(const std::vector<VcpuThreadInfo>& threads) {
  JsonWriter w(false);
  w.begin_array();
  for (const auto& t : threads) {
    w.begin_object().field("cpu-index", t.place.index).field("qom-path", "/machine/unattached/device[" +
                                                                             std::to_string(t.place.index) + "]");
    w.field("thread-id", static_cast<int64_t>(t.tid)).field("target", "x86_64");
    w.key("props").begin_object().field("socket-id", t.place.socket).field("die-id", t.place.die);
    w.field("core-id", t.place.core).field("thread-id", t.place.thread).end_object();
    w.end_object();
  }
  w.end_array();
  return w.str();
}

void add_vm_qmp_commands(QmpServer& server, LinuxVm& vm) {
  QmpServer* srv = &server;
  server.add_command("query-status", [&vm](const JsonValue&) {
    bool paused = vm.paused();
    return QmpOutcome::success(std::string("{\"status\": \"") + (paused ? "paused" : "running") +
                               "\", \"singlestep\": false, \"running\": " + (paused ? "false" : "true") + "}");
  });
  server.add_command("query-cpus-fast",
                     [&vm](const JsonValue&) { return QmpOutcome::success(cpus_fast_json(vm.vcpu_threads())); });
  server.add_command("stop", [&vm, srv](const JsonValue&) {
    if (!vm.paused()) {
      vm.pause();
      srv->emit_event("STOP");
    }
    return QmpOutcome::success();
  });
  server.add_command("cont", [&vm, srv](const JsonValue&) {
    if (vm.paused()) {
      vm.resume();
      srv->emit_event("RESUME");
    }
    return QmpOutcome::success();
  });
  server.add_command("system_powerdown", [&vm, srv](const JsonValue&) {
    vm.press_power_button();
    srv->emit_event("POWERDOWN");
    return QmpOutcome::success();
  });
  server.add_command("quit", [&vm](const JsonValue&) {
    vm.request_quit("QMP quit");
    return QmpOutcome::success();
  });
}

}  // namespace cpumodel::vmm
