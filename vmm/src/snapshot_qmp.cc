// QMP commands of a Machine: run state control and snapshot-save (snapshot.h).
#include <cmath>
#include <functional>

#include "cpumodel/cpuid/json.h"
#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/qmp.h"
#include "cpumodel/vmm/snapshot.h"

namespace cpumodel::vmm {

namespace {

// snapshot-save {"path": FILE, "quit": BOOL}: a paused guest stays paused, else it continues or
// quits. The reply: {"path", "bytes", "memory-bytes", "ms", "unsupported"}.
QmpOutcome snapshot_save(const JsonValue& args, bool paused,
                         const std::function<Result<SnapshotStats>(const std::string&, AfterSnapshot)>& save) {
  const JsonValue* path = args.get("path");
  if (!path || !path->is_string() || path->as_string().empty())
    return QmpOutcome::failure("Parameter 'path' is missing", "GenericError");
  const JsonValue* quit = args.get("quit");
  AfterSnapshot then = paused                    ? AfterSnapshot::kStayPaused
                       : quit && quit->as_bool() ? AfterSnapshot::kStop
                                                 : AfterSnapshot::kResume;
  auto stats = save(path->as_string(), then);
  if (!stats) return QmpOutcome::failure(stats.error().message);
  JsonWriter w(false);
  w.begin_object().field("path", path->as_string()).field("bytes", stats->state_bytes);
  w.field("memory-bytes", stats->memory_bytes).field("ms", std::round(stats->total_ms * 1000) / 1000);
  w.key("unsupported").strings(stats->unsupported);
  w.end_object();
  return QmpOutcome::success(w.str());
}

}  // namespace

void add_linux_vm_snapshot_command(QmpServer& server, LinuxVm& vm, const SnapshotInfo& info) {
  LinuxVm* v = &vm;
  server.add_command("snapshot-save", [v, info](const JsonValue& args) {
    return snapshot_save(args, v->paused(), [&](const std::string& path, AfterSnapshot then) {
      return snapshot_linux_vm(*v, path, info, then);
    });
  });
}

void add_machine_qmp_commands(QmpServer& server, Machine& machine, const SnapshotInfo& info) {
  QmpServer* srv = &server;
  Machine* m = &machine;
  server.add_command("query-status", [m](const JsonValue&) {
    bool paused = m->paused();
    return QmpOutcome::success(std::string("{\"status\": \"") + (paused ? "paused" : "running") +
                               "\", \"singlestep\": false, \"running\": " + (paused ? "false" : "true") + "}");
  });
  // query-cpus-fast (what `cpumodel vcpus` asks), as `boot` answers it: the places come from the
  // -smp the header records (one socket of `cpus` cores when it records none that fits).
  server.add_command("query-cpus-fast", [m, info](const JsonValue&) {
    auto tids = m->vcpu_tids();
    auto places = saved_places(info.smp, tids.size());
    std::vector<VcpuThreadInfo> threads;
    for (size_t i = 0; i < tids.size() && i < places.size(); ++i)
      threads.push_back(vcpu_thread_info(places[i], tids[i].first, tids[i].second));
    return QmpOutcome::success(cpus_fast_json(threads));
  });
  server.add_command("stop", [m, srv](const JsonValue&) {
    if (!m->paused()) {
      if (auto st = m->pause(); !st) return QmpOutcome::failure(st.error().message);
      srv->emit_event("STOP");
    }
    return QmpOutcome::success();
  });
  server.add_command("cont", [m, srv](const JsonValue&) {
    if (m->paused()) {
      m->resume();
      srv->emit_event("RESUME");
    }
    return QmpOutcome::success();
  });
  server.add_command("quit", [m](const JsonValue&) {
    m->stop();
    return QmpOutcome::success();
  });
  server.add_command("snapshot-save", [m, srv, info](const JsonValue& args) {
    return snapshot_save(args, m->paused(), [&](const std::string& path, AfterSnapshot then) {
      auto stats = snapshot_machine(*m, path, info, then);
      if (stats && then == AfterSnapshot::kStop)
        srv->emit_event("SHUTDOWN", "{\"guest\": false, \"reason\": \"host-qmp-quit\"}");
      return stats;
    });
  });
}

}  // namespace cpumodel::vmm
