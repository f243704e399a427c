// Expected-style results: library functions return a value or an Error; no exception crosses a
// library boundary. Error carries the exit code of ../shared/CLI.md so tools print and exit.
#pragma once

#include <string>
#include <utility>
#include <variant>

namespace cpumodel {

// Exit codes of the CLI contract.
enum ExitCode : int {
  kExitOk = 0,
  kExitNegative = 1,  // incompatible, cannot migrate, verify found differences
  kExitUsage = 2,     // bad usage or bad input
  kExitHost = 3,      // this host cannot do it
};

struct Error {
  std::string message;  // one line, names the file:line, token:column or CPUID coordinates
  int exit_code = kExitUsage;
};

inline Error input_error(std::string msg) { return Error{std::move(msg), kExitUsage}; }
inline Error host_error(std::string msg) { return Error{std::move(msg), kExitHost}; }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// For functions that produce nothing but may fail.
struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace cpumodel
