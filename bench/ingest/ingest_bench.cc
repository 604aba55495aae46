// Micro-benchmarks of ingest's per-record work: decoding and validating an
// announcement from canonical JSON and from protobuf binary, and parsing a
// client's WebSocket frames (the only client input after the handshake).
#include <benchmark/benchmark.h>

#include "base/clock.h"
#include "channels/ws_frame_parser.h"
#include "ingest/decoder.h"

namespace herald::ingest {
namespace {

void BM_DecodeJson(benchmark::State& state) {
    const std::string value =
        R"({"id":"a1","audience":"lineup.rock-am-ring","text":"Headliner moved to 21:00","priority":"PRIORITY_HIGH",)"
        R"("labels":{"stage":"main"}})";
    const limits lim;
    const auto now = base::wall_now_ns();
    for (auto _ : state) {
        auto r = decode_announcement(value, true, lim, now);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeJson);

void BM_DecodeProtobuf(benchmark::State& state) {
    herald::v1::Announcement a;
    a.set_id("a1");
    a.set_audience("lineup.rock-am-ring");
    a.set_text("Headliner moved to 21:00");
    a.set_priority(herald::v1::PRIORITY_HIGH);
    (*a.mutable_labels())["stage"] = "main";
    const std::string value = a.SerializeAsString();
    const limits lim;
    const auto now = base::wall_now_ns();
    for (auto _ : state) {
        auto r = decode_announcement(value, false, lim, now);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecodeProtobuf);

void BM_ParseClientFrames(benchmark::State& state) {
    // A masked ping and a masked 64-byte text message, as a client sends them.
    std::string bytes;
    const auto add = [&](std::uint8_t op, const std::string& payload) {
        bytes.push_back(static_cast<char>(0x80 | op));
        bytes.push_back(static_cast<char>(0x80 | payload.size()));
        const char key[4] = {1, 2, 3, 4};
        bytes.append(key, 4);
        for (std::size_t i = 0; i < payload.size(); ++i)
            bytes.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
    };
    add(0x9, "ping");
    add(0x1, std::string(64, 'm'));
    channels::ws_frame_parser parser(4096);
    std::size_t events = 0;
    for (auto _ : state) {
        parser.feed(bytes, [&](const channels::ws_event&) { ++events; });
    }
    benchmark::DoNotOptimize(events);
    state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_ParseClientFrames);

}  // namespace
}  // namespace herald::ingest

BENCHMARK_MAIN();
