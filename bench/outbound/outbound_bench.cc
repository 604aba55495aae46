// Micro-benchmarks of the outbound path's per-delivery work, one stage each:
//   token bucket     — one try_take (the rate limiter's overhead per message)
//   split accuracy   — N shard-local buckets of rate/N fed by hashed
//                      recipients over 10 simulated seconds: achieved rate
//                      vs configured, reported as counters
//   signature        — Standard Webhooks HMAC-SHA256 of one body
//   delivery id      — SHA-256 idempotency key
//   reply mapping    — classifying a WhatsApp error body
//   subscription     — decoding one subscription record (JSON)
// Run with --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// for median and spread (see bench/RESULTS.md for the exact commands).
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "outbound/gateway_reply.h"
#include "outbound/token_bucket.h"
#include "outbound/webhook_signature.h"
#include "registry/subscription_codec.h"

namespace herald::outbound {
namespace {

void BM_TokenBucketTryTake(benchmark::State& state) {
    token_bucket b(1e9, 1e9, 0);
    std::int64_t now = 0;
    for (auto _ : state) {
        benchmark::DoNotOptimize(b.try_take(now));
        now += 1;
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TokenBucketTryTake);

/// Achieved rate of `shards` buckets of rate/shards each, recipients hashed
/// to shards, every shard always having work: the split's accuracy.
void BM_SplitRateAccuracy(benchmark::State& state) {
    const auto shards = static_cast<std::size_t>(state.range(0));
    const double rate = static_cast<double>(state.range(1));
    constexpr std::int64_t second = 1'000'000'000;
    double error_pct = 0;
    double worst_window = 0;
    for (auto _ : state) {
        std::vector<token_bucket> buckets;
        for (std::size_t i = 0; i < shards; ++i)
            buckets.emplace_back(rate / shards, std::max(1.0, rate / shards), 0);
        // Recipients r0.. hashed to shards (enough that every shard has work for
        // the whole window); each shard sends its next recipient
        // whenever its bucket allows, polled every 100 µs (a timer's resolution).
        std::vector<std::int64_t> sent_at;
        std::size_t next = 0;
        std::vector<std::vector<std::size_t>> queue(shards);
        for (std::size_t i = 0; i < static_cast<std::size_t>(rate * 20); ++i)
            queue[std::hash<std::string>{}("r" + std::to_string(i)) % shards].push_back(i);
        std::vector<std::size_t> pos(shards, 0);
        for (std::int64_t t = 0; t < 11 * second; t += 100'000) {
            for (std::size_t s = 0; s < shards; ++s) {
                while (pos[s] < queue[s].size() && buckets[s].try_take(t)) {
                    ++pos[s];
                    sent_at.push_back(t);
                    ++next;
                }
            }
        }
        std::sort(sent_at.begin(), sent_at.end());
        // The 10 s after the first second (the initial burst).
        const auto first = std::lower_bound(sent_at.begin(), sent_at.end(), second);
        const auto last = std::lower_bound(sent_at.begin(), sent_at.end(), 11 * second);
        const double achieved = static_cast<double>(last - first) / 10.0;
        error_pct = 100.0 * (achieved - rate) / rate;
        worst_window = 0;
        for (int k = 1; k < 11; ++k) {
            const auto a = std::lower_bound(sent_at.begin(), sent_at.end(), k * second);
            const auto b = std::lower_bound(sent_at.begin(), sent_at.end(), (k + 1) * second);
            worst_window = std::max(worst_window, std::abs(static_cast<double>(b - a) - rate) / rate * 100.0);
        }
        benchmark::DoNotOptimize(next);
    }
    state.counters["error_pct"] = error_pct;
    state.counters["worst_1s_pct"] = worst_window;
}
BENCHMARK(BM_SplitRateAccuracy)
    ->Args({1, 80})
    ->Args({2, 80})
    ->Args({2, 1000})
    ->Args({4, 1000})
    ->Args({8, 5000})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

void BM_WebhookSignature(benchmark::State& state) {
    auto secret = parse_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    const std::string body(static_cast<std::size_t>(state.range(0)), 'x');
    for (auto _ : state) {
        benchmark::DoNotOptimize(
            webhook_signature({*secret}, "msg_0123456789abcdef0123456789abcdef", 1764000000, body));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_WebhookSignature)->Arg(200)->Arg(4096);

void BM_DeliveryId(benchmark::State& state) {
    for (auto _ : state) {
        benchmark::DoNotOptimize(delivery_id("default", "lineup-change-2026-06-07-001", "fan-1234567"));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DeliveryId);

void BM_ClassifyWhatsAppError(benchmark::State& state) {
    const std::string body =
        R"({"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit","type":"OAuthException","code":131056,"error_data":{"messaging_product":"whatsapp","details":"Message failed to send."},"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}})";
    for (auto _ : state) {
        benchmark::DoNotOptimize(classify_whatsapp_reply(400, body, ""));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyWhatsAppError);

void BM_DecodeSubscriptionJson(benchmark::State& state) {
    const std::string json =
        R"({"recipient_id":"fan-1234567","audiences":["lineup.rock-am-ring","news.club"],"channel":"CHANNEL_WHATSAPP","address":"+4917612345678","consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"}})";
    for (auto _ : state) {
        benchmark::DoNotOptimize(registry::decode_subscription(json, true));
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeSubscriptionJson);

}  // namespace
}  // namespace herald::outbound
BENCHMARK_MAIN();
