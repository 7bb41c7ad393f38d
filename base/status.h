// Status and Result: how errors travel inside the engine.
//
// Every fallible function below the FUSE boundary returns a Status (no value) or
// a Result<T> (a value or a Status). A Status carries a POSIX errno, because that
// is what a filesystem must eventually answer, plus a sentence for logs and for
// roamctl. The FUSE layer maps Status to errno in exactly one place
// (fusefs/fuse/reply.h); roamctl prints the message.
//
// "Not found" where absence is an ordinary answer (a lookup of a missing name, a
// missing xattr) is an std::optional, not an error: see the store's accessors.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace roam {

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK

  static Status ok() { return {}; }
  static Status error(int err, std::string message) { return Status(err, std::move(message)); }
  // Shorthands for the errnos the engine answers most.
  static Status not_found(std::string m) { return error(ENOENT, std::move(m)); }
  static Status io(std::string m) { return error(EIO, std::move(m)); }
  static Status corrupt(std::string m) { return error(EIO, "store is corrupt: " + std::move(m)); }
  static Status invalid(std::string m) { return error(EINVAL, std::move(m)); }

  bool is_ok() const { return err_ == 0; }
  explicit operator bool() const { return is_ok(); }
  int err() const { return err_; }
  const std::string& message() const { return message_; }
  // Uniform with Result<T>::take_status so ROAM_TRY accepts either.
  Status take_status() && { return std::move(*this); }
  // Prefix the message with context ("writing segment 3: ...").
  Status with_context(const std::string& where) const {
    return is_ok() ? *this : Status(err_, where + ": " + message_);
  }

 private:
  Status(int err, std::string message) : err_(err), message_(std::move(message)) {}
  int err_ = 0;
  std::string message_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}           // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}    // NOLINT: must not be OK

  bool is_ok() const { return v_.index() == 0; }
  explicit operator bool() const { return is_ok(); }
  T& value() & { return std::get<0>(v_); }
  const T& value() const& { return std::get<0>(v_); }
  T&& value() && { return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  // The error; only meaningful when !is_ok().
  const Status& status() const& {
    static const Status kOk;
    return is_ok() ? kOk : std::get<1>(v_);
  }
  Status take_status() && { return is_ok() ? Status::ok() : std::get<1>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

// Propagate a failed Status or Result from the current function.
#define ROAM_TRY(expr)                                   \
  do {                                                   \
    if (auto roam_try_s_ = (expr); !roam_try_s_.is_ok()) \
      return std::move(roam_try_s_).take_status();        \
  } while (0)

// Evaluate a Result<T> expression; on error return its Status, else bind the
// value. Expands to several statements: use braces around it under an `if`.
#define ROAM_CONCAT_INNER(a, b) a##b
#define ROAM_CONCAT(a, b) ROAM_CONCAT_INNER(a, b)
#define ROAM_ASSIGN(lhs, expr) ROAM_ASSIGN_IMPL(ROAM_CONCAT(roam_res_, __LINE__), lhs, expr)
#define ROAM_ASSIGN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                     \
  if (!tmp.is_ok()) return std::move(tmp).take_status(); \
  lhs = std::move(tmp).value()

}  // namespace roam
