#include "cpumodel/vmm/qmp.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "cpumodel/cpuid/json.h"
#include "cpumodel/vmm/cpuset.h"

namespace cpumodel::vmm {
namespace {

std::string errno_text(int err) { return std::string(std::strerror(err)) + " (errno " + std::to_string(err) + ")"; }

// "unix:PATH[,server][,nowait][,wait=off]" -> PATH.
Result<std::string> socket_path(const std::string& spec) {
  if (spec.rfind("unix:", 0) != 0)
    return input_error("--qmp " + spec + ": only unix:PATH sockets are supported (e.g. unix:/tmp/vm.qmp)");
  std::string path = spec.substr(5);
  path = path.substr(0, path.find(','));
  if (path.empty()) return input_error("--qmp " + spec + ": no socket path after unix:");
  if (path.size() >= sizeof(sockaddr_un{}.sun_path))
    return input_error("--qmp " + spec + ": socket path longer than " +
                       std::to_string(sizeof(sockaddr_un{}.sun_path) - 1) + " characters");
  return path;
}

sockaddr_un unix_address(const std::string& path) {
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
  return a;
}

std::string error_reply(const QmpError& e, const std::string& id) {
  std::string s = "{\"error\": {\"class\": " + json_escape(e.error_class) + ", \"desc\": " + json_escape(e.desc) + "}";
  return s + (id.empty() ? "" : ", \"id\": " + id) + "}";
}

// Length of the first complete JSON value at the start of `buf` (after whitespace), 0 if incomplete.
size_t complete_value(const std::string& buf) {
  int depth = 0;
  bool in_string = false, escape = false, started = false;
  for (size_t i = 0; i < buf.size(); ++i) {
    char c = buf[i];
    if (in_string) {
      if (escape) escape = false;
      else if (c == '\\') escape = true;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') in_string = true;
    else if (c == '{' || c == '[') ++depth, started = true;
    else if (c == '}' || c == ']') --depth;
    else if (!started && c == '\n') return i + 1;  // a line that is no object: reply with an error
    if (started && depth <= 0) return i + 1;
  }
  return 0;
}

std::string timestamp_json() {
  timeval tv{};
  ::gettimeofday(&tv, nullptr);
  return "{\"seconds\": " + std::to_string(tv.tv_sec) + ", \"microseconds\": " + std::to_string(tv.tv_usec) + "}";
}

}  // namespace

std::string QmpServer::greeting() {
  return "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"cpumodel\"}, "
         "\"capabilities\": [\"oob\"]}}";
}

Result<std::unique_ptr<QmpServer>> QmpServer::listen(const std::string& spec) {
  auto path = socket_path(spec);
  if (!path) return path.error();
  std::unique_ptr<QmpServer> s(new QmpServer());
  s->path_ = *path;
  struct stat st;
  if (::lstat(path->c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path->c_str());
  s->listen_fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0) return host_error("QMP socket: " + errno_text(errno));
  sockaddr_un a = unix_address(*path);
  if (::bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0 || ::listen(s->listen_fd_, 4) < 0)
    return host_error("QMP socket " + *path + ": " + errno_text(errno));
  if (::pipe2(s->wake_, O_CLOEXEC) < 0) return host_error("pipe: " + errno_text(errno));
  s->add_command("query-commands", [srv = s.get()](const JsonValue&) {
    std::string out = "[";
    bool first = true;
    for (const auto& [name, h] : srv->commands_) {
      out += (first ? "" : ", ") + std::string("{\"name\": ") + json_escape(name) + "}";
      first = false;
    }
    return QmpOutcome::success(out + ", {\"name\": \"qmp_capabilities\"}]");
  });
  s->add_command("query-version", [](const JsonValue&) {
    return QmpOutcome::success("{\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, \"package\": \"cpumodel\"}");
  });
  return s;
}

QmpServer::~QmpServer() {
  stop_.store(true);
  if (wake_[1] >= 0) (void)!::write(wake_[1], "x", 1);
  if (thread_.joinable()) thread_.join();
  for (int fd : {listen_fd_, wake_[0], wake_[1]})
    if (fd >= 0) ::close(fd);
  if (listen_fd_ >= 0) ::unlink(path_.c_str());
}

void QmpServer::add_command(const std::string& name, QmpHandler handler) { commands_[name] = std::move(handler); }
bool QmpServer::has_command(const std::string& name) const { return commands_.count(name) > 0; }

void QmpServer::start() {
  if (!thread_.joinable())
    thread_ = std::thread([this] {
      sigset_t all;  // a service thread: process-directed signals go to the VMM's own threads
      sigfillset(&all);
      ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
      serve();
    });
}

std::string QmpServer::handle(std::string_view request, bool& negotiated) {
  auto v = parse_json(request);
  if (!v) return error_reply({"GenericError", "JSON parse error, " + v.error().message}, "");
  if (!v->is_object()) return error_reply({"GenericError", "QMP input must be a JSON object"}, "");
  const JsonValue* id_value = v->get("id");
  std::string id = id_value ? id_value->dump() : "";
  const JsonValue* exec = v->get("execute");
  if (!exec) exec = v->get("exec-oob");
  if (!exec || !exec->is_string()) return error_reply({"GenericError", "QMP input lacks member 'execute'"}, id);
  const std::string& name = exec->as_string();
  const JsonValue* args = v->get("arguments");
  if (args && !args->is_object())
    return error_reply({"GenericError", "QMP input member 'arguments' must be an object"}, id);
  std::string outcome;
  if (name == "qmp_capabilities") {
    if (negotiated)
      return error_reply({"CommandNotFound", "Capabilities negotiation is already complete, command ignored"}, id);
    negotiated = true;
    outcome = "{}";
  } else if (!negotiated) {
    return error_reply({"CommandNotFound", "Expecting capabilities negotiation with 'qmp_capabilities'"}, id);
  } else {
    auto it = commands_.find(name);
    if (it == commands_.end()) return error_reply({"CommandNotFound", "The command " + name + " has not been found"}, id);
    static const JsonValue kEmpty = JsonValue::make_object({});
    QmpOutcome r = it->second(args ? *args : kEmpty);
    if (!r.ok) return error_reply(r.error, id);
    outcome = r.value;
  }
  return "{\"return\": " + outcome + (id.empty() ? "" : ", \"id\": " + id) + "}";
}

bool QmpServer::send_line(int fd, const std::string& line) {
  std::string s = line + "\r\n";
  const char* p = s.data();
  size_t n = s.size();
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

void QmpServer::emit_event(const std::string& name, const std::string& data_json) {
  std::lock_guard<std::mutex> lock(client_mu_);
  if (client_fd_ < 0) return;
  send_line(client_fd_, "{\"timestamp\": " + timestamp_json() + ", \"event\": " + json_escape(name) +
                            ", \"data\": " + data_json + "}");
}

void QmpServer::serve() {
  while (!stop_.load()) {
    pollfd p[2] = {{listen_fd_, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[1].revents) break;
    if (!(p[0].revents & POLLIN)) continue;
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) serve_client(fd);
  }
}

void QmpServer::serve_client(int fd) {
  {
    std::lock_guard<std::mutex> lock(client_mu_);
    client_fd_ = fd;
    send_line(fd, greeting());
  }
  bool negotiated = false;
  std::string buf;
  char chunk[4096];
  while (!stop_.load()) {
    pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
    if (::poll(p, 2, -1) < 0) continue;
    if (p[1].revents) break;
    ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
    if (n <= 0) break;
    buf.append(chunk, static_cast<size_t>(n));
    while (size_t len = complete_value(buf)) {
      std::string request = buf.substr(0, len);
      buf.erase(0, len);
      if (request.find_first_not_of(" \t\r\n") == std::string::npos) continue;
      std::string reply = handle(request, negotiated);
      std::lock_guard<std::mutex> lock(client_mu_);
      send_line(fd, reply);
    }
  }
  std::lock_guard<std::mutex> lock(client_mu_);
  client_fd_ = -1;
  ::close(fd);
}

// --- client ---

namespace {

class LineReader {
 public:
  LineReader(int fd, double timeout_s) : fd_(fd), timeout_ms_(static_cast<int>(timeout_s * 1000)) {}
  Result<std::string> line() {
    for (;;) {
      if (auto nl = buf_.find('\n'); nl != std::string::npos) {
        std::string l = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        return l;
      }
      pollfd p{fd_, POLLIN, 0};
      int r = ::poll(&p, 1, timeout_ms_);
      if (r == 0) return host_error("QMP: no answer within " + std::to_string(timeout_ms_ / 1000) + " s");
      char chunk[4096];
      ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n <= 0) return host_error("QMP: the server closed the connection");
      buf_.append(chunk, static_cast<size_t>(n));
    }
  }
  // The next reply ("return" or "error"), skipping events.
  Result<JsonValue> reply() {
    for (;;) {
      auto l = line();
      if (!l) return l.error();
      auto v = parse_json(*l);
      if (!v) return input_error("QMP: bad reply: " + v.error().message);
      if (v->get("event")) continue;
      if (const JsonValue* e = v->get("error")) {
        const JsonValue* d = e->get("desc");
        return Error{"QMP: " + (d ? d->as_string() : e->dump()), kExitNegative};
      }
      if (const JsonValue* r = v->get("return")) return *r;
      if (v->get("QMP")) continue;
      return input_error("QMP: unexpected message " + l.value());
    }
  }

 private:
  int fd_;
  int timeout_ms_;
  std::string buf_;
};

}  // namespace

Result<JsonValue> qmp_execute(const std::string& spec, const std::string& command, const std::string& arguments_json,
                              double timeout_s) {
  auto path = socket_path(spec);
  if (!path) return path.error();
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return host_error("QMP socket: " + errno_text(errno));
  sockaddr_un a = unix_address(*path);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) < 0) {
    int err = errno;
    ::close(fd);
    return host_error("QMP " + *path + ": cannot connect: " + errno_text(err) + "; is the VM running with --qmp?");
  }
  LineReader in(fd, timeout_s);
  auto send = [&](const std::string& s) { return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == ssize_t(s.size()); };
  Result<JsonValue> out = host_error("QMP: no greeting");
  if (auto g = in.line(); !g) {
    out = g.error();
  } else if (!send("{\"execute\": \"qmp_capabilities\"}\n")) {
    out = host_error("QMP: write failed");
  } else if (auto cap = in.reply(); !cap) {
    out = cap.error();
  } else {
    std::string req = "{\"execute\": " + json_escape(command) +
                      (arguments_json.empty() ? "" : ", \"arguments\": " + arguments_json) + "}\n";
    out = send(req) ? in.reply() : Result<JsonValue>(host_error("QMP: write failed"));
  }
  ::close(fd);
  return out;
}

namespace {

int int_member(const JsonValue& v, const char* key) {
  const JsonValue* m = v.get(key);
  return m && m->is_number() ? static_cast<int>(m->as_number()) : 0;
}

std::string proc_status_field(pid_t tid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(tid) + "/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind(field + ":", 0) == 0) {
      size_t p = line.find_first_not_of(" \t", field.size() + 1);
      return p == std::string::npos ? "" : line.substr(p);
    }
  return "";
}

// The CPU a thread of another process (the VMM's) last ran on: field 39 of /proc/TID/stat.
int proc_last_cpu(pid_t tid) {
  std::string f = proc_stat_field("/proc/" + std::to_string(tid) + "/stat", 39);
  return f.empty() ? -1 : std::atoi(f.c_str());
}

}  // namespace

Result<std::vector<VcpuThreadRow>> query_vcpu_threads(const std::string& spec) {
  auto r = qmp_execute(spec, "query-cpus-fast");
  if (!r) return r.error();
  std::vector<VcpuThreadRow> rows;
  for (const JsonValue& c : r->items()) {
    VcpuThreadRow row;
    row.index = static_cast<unsigned>(int_member(c, "cpu-index"));
    row.tid = static_cast<pid_t>(int_member(c, "thread-id"));
    if (const JsonValue* props = c.get("props")) {
      row.socket = int_member(*props, "socket-id");
      row.die = int_member(*props, "die-id");
      row.core = int_member(*props, "core-id");
      row.thread = int_member(*props, "thread-id");
    }
    if (const JsonValue* q = c.get("qom-path"); q && q->is_string()) row.qom_path = q->as_string();
    if (row.tid > 0) {
      row.host_cpu = proc_last_cpu(row.tid);
      row.allowed = proc_status_field(row.tid, "Cpus_allowed_list");
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

std::string format_vcpu_threads(const std::vector<VcpuThreadRow>& rows) {
  std::string out = "vCPU  thread   socket  die  core  thread  host CPU  allowed\n";
  for (const auto& r : rows) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "%-5u %-8d %-7d %-4d %-5d %-7d %-9s %s\n", r.index, static_cast<int>(r.tid),
                  r.socket, r.die, r.core, r.thread, r.host_cpu < 0 ? "?" : std::to_string(r.host_cpu).c_str(),
                  r.allowed.empty() ? "?" : r.allowed.c_str());
    out += buf;
  }
  return out;
}

std::string vcpu_threads_json(const std::vector<VcpuThreadRow>& rows) {
  JsonWriter w;
  w.begin_object().key("vcpus").begin_array();
  for (const auto& r : rows) {
    w.begin_object().field("index", r.index).field("tid", static_cast<int64_t>(r.tid));
    w.field("socket", r.socket).field("die", r.die).field("core", r.core).field("thread", r.thread);
    w.field("qom_path", r.qom_path).field("host_cpu", r.host_cpu).field("allowed", r.allowed).end_object();
  }
  w.end_array().end_object();
  return w.str() + "\n";
}

}  // namespace cpumodel::vmm
