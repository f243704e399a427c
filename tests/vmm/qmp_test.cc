// The QMP server and client over a real UNIX socket (no KVM). Truth: QEMU 7.2's QMP
// (docs/interop/qmp-spec.rst; error classes and messages as `qemu-system-x86_64 -qmp stdio` gives them).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <string>

#include "cpumodel/vmm/linux_vm.h"
#include "cpumodel/vmm/qmp.h"

namespace cpumodel::vmm {
namespace {

std::string temp_socket(const char* name) {
  return "/tmp/cpumodel-qmp-test-" + std::to_string(::getpid()) + "-" + name + ".sock";
}

TEST(Json, ParsesWhatQmpSends) {
  auto v = parse_json(R"( {"execute": "query-status", "id": {"n": [1, 2.5, -3e2, true, null]},
                          "s": "a\"b\\c\u00e9\ud83d\ude00"} )");
  ASSERT_TRUE(v.ok()) << v.error().message;
  EXPECT_EQ(v->get("execute")->as_string(), "query-status");
  EXPECT_EQ(v->get("id")->dump(), R"({"n": [1, 2.5, -300, true, null]})");
  EXPECT_EQ(v->get("s")->as_string(), "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80");
  for (const char* bad : {"", "{", "{\"a\" 1}", "[1,]", "tru", "\"abc", "{} x", "01x"}) {
    auto b = parse_json(bad);
    EXPECT_FALSE(b.ok()) << bad;
    if (!b.ok()) {
      EXPECT_NE(b.error().message.find("column"), std::string::npos);
    }
  }
}

TEST(QmpServer, NegotiationErrorsAndIds) {
  auto s = QmpServer::listen("unix:" + temp_socket("handle"));
  ASSERT_TRUE(s.ok()) << s.error().message;
  QmpServer& srv = **s;
  srv.add_command("echo", [](const JsonValue& args) {
    const JsonValue* x = args.get("x");
    if (!x) return QmpOutcome::failure("Parameter 'x' is missing");
    return QmpOutcome::success(x->dump());
  });
  bool neg = false;
  EXPECT_EQ(srv.handle(R"({"execute": "echo"})", neg),
            R"({"error": {"class": "CommandNotFound", "desc": "Expecting capabilities negotiation with 'qmp_capabilities'"}})");
  EXPECT_EQ(srv.handle(R"({"execute": "qmp_capabilities", "id": "a"})", neg), R"({"return": {}, "id": "a"})");
  EXPECT_TRUE(neg);
  EXPECT_EQ(srv.handle(R"({"execute": "echo", "arguments": {"x": [1]}, "id": 7})", neg), R"({"return": [1], "id": 7})");
  EXPECT_EQ(srv.handle(R"({"execute": "echo"})", neg),
            R"({"error": {"class": "GenericError", "desc": "Parameter 'x' is missing"}})");
  EXPECT_EQ(srv.handle(R"({"execute": "nope"})", neg),
            R"({"error": {"class": "CommandNotFound", "desc": "The command nope has not been found"}})");
  EXPECT_NE(srv.handle(R"({"execute": "echo", "arguments": 3})", neg).find("must be an object"), std::string::npos);
  EXPECT_NE(srv.handle(R"({"exec": 1})", neg).find("lacks member 'execute'"), std::string::npos);
  EXPECT_NE(srv.handle("{bad", neg).find("JSON parse error"), std::string::npos);
  EXPECT_NE(srv.handle(R"({"execute": "query-commands"})", neg).find("\"echo\""), std::string::npos);
}

TEST(QmpServer, GreetsAndAnswersOverTheSocket) {
  std::string path = temp_socket("socket");
  auto s = QmpServer::listen("unix:" + path + ",server,nowait");
  ASSERT_TRUE(s.ok()) << s.error().message;
  (*s)->add_command("query-status", [](const JsonValue&) {
    return QmpOutcome::success(R"({"status": "running", "singlestep": false, "running": true})");
  });
  (*s)->start();
  auto r = qmp_execute("unix:" + path, "query-status");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->get("status")->as_string(), "running");
  // A second client after the first left.
  auto bad = qmp_execute("unix:" + path, "no-such-command");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().exit_code, kExitNegative);
  EXPECT_NE(bad.error().message.find("has not been found"), std::string::npos);
  // Raw: the greeting is the first line, QEMU's shape.
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strcpy(a.sun_path, path.c_str());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  char buf[512] = {};
  ASSERT_GT(::recv(fd, buf, sizeof buf - 1, 0), 0);
  auto g = parse_json(std::string(buf));
  ASSERT_TRUE(g.ok()) << buf;
  EXPECT_EQ(g->get("QMP")->get("version")->get("qemu")->get("major")->as_number(), 7);
  ::close(fd);
  s->reset();
  EXPECT_NE(::access(path.c_str(), F_OK), 0) << "socket file removed";
}

TEST(QmpServer, BadSpecsAndNobodyListening) {
  EXPECT_EQ(QmpServer::listen("tcp:localhost:4444").error().exit_code, kExitUsage);
  EXPECT_EQ(QmpServer::listen("unix:").error().exit_code, kExitUsage);
  auto r = qmp_execute("unix:" + temp_socket("nobody"), "query-status");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().exit_code, kExitHost);
}

TEST(QmpVm, CpusFastHasQemuShape) {
  VcpuThreadInfo t;
  t.place = {3, 6, 1, 0, 1, 0};
  t.tid = 1234;
  auto v = parse_json(cpus_fast_json({t}));
  ASSERT_TRUE(v.ok());
  ASSERT_EQ(v->items().size(), 1u);
  const JsonValue& c = v->items()[0];
  EXPECT_EQ(c.get("cpu-index")->as_number(), 3);
  EXPECT_EQ(c.get("thread-id")->as_number(), 1234);
  EXPECT_EQ(c.get("qom-path")->as_string(), "/machine/unattached/device[3]");
  EXPECT_EQ(c.get("props")->get("socket-id")->as_number(), 1);
  EXPECT_EQ(c.get("props")->get("core-id")->as_number(), 1);
  EXPECT_EQ(c.get("props")->get("thread-id")->as_number(), 0);
}

}  // namespace
}  // namespace cpumodel::vmm
