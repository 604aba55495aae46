// Strong id types: an audience name, a sequence number and a shard index are
// all strings or integers, and mixing them up compiles silently unless each
// has its own type. named_type<T, Tag> wraps a value with no runtime cost.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace herald::base {

template <class T, class Tag>
class named_type {
  public:
    using value_type = T;

    constexpr named_type() = default;
    constexpr explicit named_type(T v) : value_(std::move(v)) {}

    [[nodiscard]] constexpr const T& get() const noexcept { return value_; }
    constexpr auto operator<=>(const named_type&) const = default;

  private:
    T value_{};
};

/// Index of a shard, 0..shards-1.
using shard_id = named_type<std::uint32_t, struct shard_tag>;

}  // namespace herald::base

template <class T, class Tag>
struct std::hash<herald::base::named_type<T, Tag>> {
    std::size_t operator()(const herald::base::named_type<T, Tag>& v) const noexcept {
        return std::hash<T>{}(v.get());
    }
};
