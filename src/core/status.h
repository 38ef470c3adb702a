// Status and Result<T>: the one error type that crosses layer boundaries, mapped to exit codes.
#pragma once

#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace lifeboat {

// Each code maps to one documented process exit code (docs/cli.md).
enum class Code {
  kOk = 0,
  kFatal,            // generic failure: exit 1
  kInvalidArgument,  // bad flag or input: exit 1
  kNotFound,         // named thing absent: exit 1
  kAlreadyExists,    // create-only write found the name taken: exit 1
  kIo,               // OS or network I/O failed: exit 1
  kUnavailable,      // transient: 429/5xx, reset, timeout, truncated download; retried, then exit 1
  kCorrupt,          // stored data failed authentication or parsing: exit 1
  kPartial,          // backup done but some files unreadable: exit 3
  kRepoMissing,      // no repository at the location: exit 10
  kLockFailed,       // could not lock the repository: exit 11
  kWrongPassword,    // no key file opens with the password: exit 12
  kForbidden,        // the key's role does not allow this (an append key reading, a restore key pruning): exit 13
  kInterrupted,      // SIGINT/SIGTERM: exit 130
  kObjectiveMissed,  // a drill restored and checked everything but missed an objective: exit 4
  // `status` as a health check (each names the sources and why):
  kStale,            // a source past its RPO objective, or never backed up: exit 5
  kDrillFailed,      // a source's last drill failed or missed an objective: exit 6
  kUnreachable,      // a repository of the plan cannot be opened: exit 7
};

int exit_code_for(Code code);
const char* code_name(Code code);

// Costs one pointer when OK; carries a code and a message saying what failed and what to do.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Code code, std::string message)
      : state_(code == Code::kOk ? nullptr : std::make_shared<State>(State{code, std::move(message)})) {}

  static Status ok() { return {}; }
  bool is_ok() const { return state_ == nullptr; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return state_ ? state_->code : Code::kOk; }
  const std::string& message() const {
    static const std::string empty;
    return state_ ? state_->message : empty;
  }
  // Prefixes context ("reading pack 3fa2…: ") while keeping the code.
  Status with_context(const std::string& context) const {
    if (is_ok()) return *this;
    return Status(code(), context + ": " + message());
  }
  std::string to_string() const { return is_ok() ? "ok" : message(); }

 private:
  struct State {
    Code code;
    std::string message;
  };
  std::shared_ptr<const State> state_;
};

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {
    if (status_.is_ok()) status_ = Status(Code::kFatal, "internal error: Result built from an OK status");
  }
  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

inline Status Error(Code code, std::string message) { return Status(code, std::move(message)); }

}  // namespace lifeboat

#define LB_CONCAT_INNER(a, b) a##b
#define LB_CONCAT(a, b) LB_CONCAT_INNER(a, b)

// Returns the status from the enclosing function when it is not OK.
#define LB_RETURN_IF_ERROR(expr)             \
  do {                                       \
    ::lifeboat::Status lb_status_ = (expr);  \
    if (!lb_status_.is_ok()) return lb_status_; \
  } while (0)

#define LB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                             \
  if (!tmp.is_ok()) return tmp.status();         \
  lhs = std::move(tmp).value()

// LB_ASSIGN_OR_RETURN(auto x, f()); declares x from a Result or returns its status.
#define LB_ASSIGN_OR_RETURN(lhs, expr) LB_ASSIGN_OR_RETURN_IMPL(LB_CONCAT(lb_result_, __LINE__), lhs, expr)
