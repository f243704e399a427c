// A small, real QMP server (QEMU Machine Protocol, docs/interop/qmp-spec.rst): JSON objects over a
// UNIX socket, the greeting, capabilities negotiation, {"execute", "arguments", "id"} commands
// answered with {"return"} or {"error": {"class", "desc"}}, and asynchronous events. Commands are a
// table: name -> handler, so each part of the VMM adds its own (the Linux VM adds query-status,
// query-cpus-fast, stop, cont, system_powerdown, quit; snapshots add theirs). One thread serves one
// client at a time, as QEMU's monitor does; handlers run on that thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "cpumodel/cpuid/result.h"

namespace cpumodel::vmm {

// A parsed JSON value (what QMP commands carry).
class JsonValue {
 public:
  enum class Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  JsonValue() = default;
  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  const std::string& as_string() const { return string_; }
  const std::vector<JsonValue>& items() const { return items_; }
  const std::map<std::string, JsonValue>& members() const { return members_; }
  // Object member or nullptr.
  const JsonValue* get(std::string_view key) const;
  // Compact JSON text (what a QMP reply echoes for "id").
  std::string dump() const;

  static JsonValue make_string(std::string s);
  static JsonValue make_number(double d);
  static JsonValue make_object(std::map<std::string, JsonValue> m);

 private:
  friend class JsonParser;
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<JsonValue> items_;
  std::map<std::string, JsonValue> members_;
};

// Errors name the column: "JSON: expected ':' at column 12".
Result<JsonValue> parse_json(std::string_view text);

// A QMP error reply's class and description.
struct QmpError {
  std::string error_class = "GenericError";  // GenericError, CommandNotFound, ...
  std::string desc;
};

// A handler gets the "arguments" object (an empty object when absent) and returns the JSON text
// of "return" ("{}" for nothing), or a QmpError.
struct QmpOutcome {
  bool ok = true;
  std::string value = "{}";
  QmpError error;
  static QmpOutcome success(std::string json = "{}") { return {true, std::move(json), {}}; }
  static QmpOutcome failure(std::string desc, std::string cls = "GenericError") {
    return {false, "", {std::move(cls), std::move(desc)}};
  }
};
using QmpHandler = std::function<QmpOutcome(const JsonValue& arguments)>;

class QmpServer {
 public:
  // `spec` is "unix:PATH" (QEMU's -qmp spelling; ",server,nowait" suffixes are accepted). An
  // existing socket file at PATH is replaced. Exit 2 for a bad spec, 3 when the socket cannot be made.
  static Result<std::unique_ptr<QmpServer>> listen(const std::string& spec);
  ~QmpServer();  // stops the thread, closes the client, removes the socket file
  QmpServer(const QmpServer&) = delete;
  QmpServer& operator=(const QmpServer&) = delete;

  const std::string& path() const { return path_; }
  // Register before start(); a later registration of the same name replaces the handler.
  void add_command(const std::string& name, QmpHandler handler);
  bool has_command(const std::string& name) const;
  // Serves clients on a thread until destroyed.
  void start();
  // Sends {"event": NAME, "data": DATA_JSON, "timestamp": {...}} to the connected client, if any.
  void emit_event(const std::string& name, const std::string& data_json = "{}");

  // One request in, one reply out (no socket): for tests and for the thread. `negotiated` is the
  // connection's capabilities state, updated by qmp_capabilities.
  std::string handle(std::string_view request, bool& negotiated);
  // The greeting line QEMU 7.2 sends.
  static std::string greeting();

 private:
  QmpServer() = default;
  void serve();
  void serve_client(int fd);
  bool send_line(int fd, const std::string& line);

  std::string path_;
  int listen_fd_ = -1;
  int wake_[2] = {-1, -1};  // a pipe that wakes poll() for shutdown
  std::map<std::string, QmpHandler> commands_;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::mutex client_mu_;  // guards client_fd_ and writes to it
  int client_fd_ = -1;
};

// Client side: connects to "unix:PATH", negotiates, runs one command and returns its "return"
// value. Exit 3 when nothing listens there, 1 for a QMP error reply.
Result<JsonValue> qmp_execute(const std::string& spec, const std::string& command,
                              const std::string& arguments_json = "", double timeout_s = 5);

// What `cpumodel vcpus` prints: query-cpus-fast, plus for each thread (read from /proc) the host CPU
// it last ran on and its allowed CPUs.
struct VcpuThreadRow {
  unsigned index = 0;
  pid_t tid = 0;
  int socket = 0, die = 0, core = 0, thread = 0;
  std::string qom_path;
  int host_cpu = -1;
  std::string allowed;  // "0-1"
};
Result<std::vector<VcpuThreadRow>> query_vcpu_threads(const std::string& spec);
std::string format_vcpu_threads(const std::vector<VcpuThreadRow>& rows);
std::string vcpu_threads_json(const std::vector<VcpuThreadRow>& rows);

}  // namespace cpumodel::vmm
