// Token bucket: how fast an outbound gateway may be called. A gateway's limit
// (e.g. WhatsApp's 80 messages/s with a burst of 80) is split evenly across
// the outbound shards, each holding its own bucket of rate/N and burst/N, so
// no lock or atomic is shared between shards. Time is passed in, never read,
// so the bucket is exact under test and in benchmarks.
#pragma once

#include <algorithm>
#include <cstdint>

namespace herald::outbound {

class token_bucket {
  public:
    /// `rate_per_s` tokens per second, at most `burst` stored; starts full.
    token_bucket(double rate_per_s, double burst, std::int64_t now_ns) noexcept
        : rate_per_ns_(rate_per_s * 1e-9), burst_(std::max(burst, 1.0)), tokens_(burst_), last_ns_(now_ns) {}

    /// Takes one token if there is one.
    bool try_take(std::int64_t now_ns) noexcept {
        refill(now_ns);
        if (now_ns < paused_until_ns_ || tokens_ < 1.0)
            return false;
        tokens_ -= 1.0;
        return true;
    }

    /// Whether try_take would succeed now (takes nothing).
    [[nodiscard]] bool available(std::int64_t now_ns) noexcept {
        refill(now_ns);
        return now_ns >= paused_until_ns_ && tokens_ >= 1.0;
    }

    /// When the next token can be taken (now_ns if one is available).
    [[nodiscard]] std::int64_t next_token_ns(std::int64_t now_ns) noexcept {
        refill(now_ns);
        if (tokens_ >= 1.0)
            return std::max(now_ns, paused_until_ns_);
        // Tokens accrue from the later of now and the end of a pause.
        return std::max(now_ns, last_ns_) + static_cast<std::int64_t>((1.0 - tokens_) / rate_per_ns_) + 1;
    }

    /// The gateway said "slow down": nothing until `until_ns`, and the bucket
    /// empties so the restart is not a full burst into the same wall.
    void pause_until(std::int64_t until_ns) noexcept {
        paused_until_ns_ = std::max(paused_until_ns_, until_ns);
        tokens_ = 0;
        last_ns_ = std::max(last_ns_, until_ns);
    }

    [[nodiscard]] std::int64_t paused_until_ns() const noexcept { return paused_until_ns_; }
    [[nodiscard]] double rate_per_s() const noexcept { return rate_per_ns_ * 1e9; }

  private:
    void refill(std::int64_t now_ns) noexcept {
        if (now_ns > last_ns_) {
            tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ns - last_ns_) * rate_per_ns_);
            last_ns_ = now_ns;
        }
    }

    double rate_per_ns_;
    double burst_;
    double tokens_;
    std::int64_t last_ns_;
    std::int64_t paused_until_ns_ = 0;
};

}  // namespace herald::outbound
