// result<T>: a value or an error, returned instead of thrown on the hot path.
//
// GCC 12 in C++20 mode has no std::expected, so this is the small subset
// Herald needs: construct from a value or an error, test, and take either.
// The error is a herald::base::error: an std::error_code (stable, countable,
// usable as a metric label) plus a human sentence with the specifics.
#pragma once

#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace herald::base {

/// An error as a value: a code for machines and a detail for people.
struct error {
    std::error_code code;
    std::string detail;

    /// "reason: detail", the form written to logs and DLQ headers.
    [[nodiscard]] std::string describe() const {
        return detail.empty() ? code.message() : code.message() + ": " + detail;
    }
};

/// Tag to construct a failed result unambiguously.
struct failure {
    error err;
    explicit failure(std::error_code code, std::string detail = {}) : err{code, std::move(detail)} {}
    explicit failure(error e) : err(std::move(e)) {}
};

template <class T>
class [[nodiscard]] result {
  public:
    // Implicit on purpose: `return value;` and `return failure(...);` read naturally.
    // NOLINTNEXTLINE(google-explicit-constructor)
    result(T value) : state_(std::in_place_index<0>, std::move(value)) {}
    // NOLINTNEXTLINE(google-explicit-constructor)
    result(failure f) : state_(std::in_place_index<1>, std::move(f.err)) {}

    [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(state_); }
    const T& value() const& { return std::get<0>(state_); }
    T&& value() && { return std::get<0>(std::move(state_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    [[nodiscard]] const error& err() const& { return std::get<1>(state_); }

  private:
    std::variant<T, error> state_;
};

/// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
  public:
    result() = default;
    result(failure f) : err_(std::move(f.err)), failed_(true) {}  // NOLINT(google-explicit-constructor)

    [[nodiscard]] bool has_value() const noexcept { return !failed_; }
    explicit operator bool() const noexcept { return !failed_; }
    [[nodiscard]] const error& err() const& { return err_; }

  private:
    error err_;
    bool failed_ = false;
};

}  // namespace herald::base
