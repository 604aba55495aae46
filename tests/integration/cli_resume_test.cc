// `herald listen --resume FILE` against the real daemon: the first run
// writes each audience's position to FILE; announcements made while nobody
// listens are printed by the next run exactly, per audience in order, none
// twice; a third run prints nothing (stderr goes to its own file: the
// commands run in a subshell, as run_command adds 2>&1); a position from another epoch gets a
// gap notice on stderr, never on stdout.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/daemon.h"
#include "support/kafka.h"

namespace herald::testing {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string line; std::getline(s, line);)
        if (!line.empty())
            out.push_back(line);
    return out;
}

/// The "id" of each frame line, in order.
std::vector<std::string> ids_of(const std::string& text) {
    std::vector<std::string> out;
    for (const auto& line : lines_of(text)) {
        const auto at = line.find("\"id\":\"");
        if (at != std::string::npos)
            out.push_back(line.substr(at + 6, line.find('"', at + 6) - at - 6));
    }
    return out;
}

void produce(kafka_producer& producer, const std::string& audience, const std::string& id) {
    ASSERT_TRUE(
        producer.produce_json("herald.announcements", audience,
                              R"({"id":")" + id + R"(","audience":")" + audience + R"(","text":"x"})"));
}

void wait_released(const daemon& d, double total) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (metric_value(d.metrics(), "herald_broadcasts_total") < total &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_GE(metric_value(d.metrics(), "herald_broadcasts_total"), total);
}

TEST(CliResume, ListenResumesEachAudienceExactlyFromItsFile) {
    daemon d;
    kafka_producer producer(d.brokers);
    const std::string file = d.data_dir() + "/positions.txt";
    const std::string out = d.data_dir() + "/listen.out";
    const std::string err = d.data_dir() + "/listen.err";
    const std::string listen =
        d.cli_env() + bin_dir() + "/herald listen --audience lineup.x --audience ticker.y --resume " + file;

    // Run 1: no file yet, live edge; two announcements, then it stops (--count).
    run_result first;
    std::thread runner(
        [&] { first = run_command(listen + " --count 2 --timeout 20s >" + out + " 2>" + err); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (read_file(err).find("listening on") == std::string::npos &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    produce(producer, "lineup.x", "a1");
    produce(producer, "ticker.y", "b1");
    runner.join();
    ASSERT_EQ(first.exit_code, 0) << read_file(err) << d.log();
    auto printed = ids_of(read_file(out));
    std::sort(printed.begin(), printed.end());  // two partitions: no order between audiences
    EXPECT_EQ(printed, (std::vector<std::string>{"a1", "b1"}));
    const std::string saved = read_file(file);
    EXPECT_NE(saved.find("lineup.x:"), std::string::npos) << saved;
    EXPECT_NE(saved.find("ticker.y:"), std::string::npos) << saved;
    EXPECT_FALSE(std::ifstream(file + ".tmp")) << "the temporary file is renamed, not left";

    // Nobody listens: two more per audience.
    for (const char* id : {"a2", "a3"}) produce(producer, "lineup.x", id);
    for (const char* id : {"b2", "b3"}) produce(producer, "ticker.y", id);
    wait_released(d, 6);

    // Run 2: exactly the missed ones, each audience in order.
    auto second = run_command("(" + listen + " --count 4 --timeout 15s 2>" + err + ")");
    ASSERT_EQ(second.exit_code, 0) << second.output << read_file(err);
    auto ids = ids_of(second.output);
    ASSERT_EQ(ids.size(), 4u) << second.output;
    std::vector<std::string> x;
    std::vector<std::string> y;
    for (const auto& id : ids) (id[0] == 'a' ? x : y).push_back(id);
    EXPECT_EQ(x, (std::vector<std::string>{"a2", "a3"}));
    EXPECT_EQ(y, (std::vector<std::string>{"b2", "b3"}));
    EXPECT_EQ(read_file(err).find("gap"), std::string::npos) << read_file(err);

    // Run 3: nothing new, nothing printed (it times out).
    auto third = run_command("(" + listen + " --timeout 2s 2>" + err + ")");
    EXPECT_EQ(third.exit_code, 1);
    EXPECT_TRUE(ids_of(third.output).empty()) << third.output;

    // A position from another epoch: a gap notice on stderr, the history on stdout.
    {
        std::ofstream f(file, std::ios::trunc);
        f << "lineup.x:00000000000000aa:1\n";
    }
    auto fourth = run_command("(" + d.cli_env() + bin_dir() + "/herald listen --audience lineup.x --resume " +
                              file + " --count 3 --timeout 15s 2>" + err + ")");
    EXPECT_EQ(fourth.exit_code, 0) << fourth.output << read_file(err);
    EXPECT_NE(read_file(err).find("gap: {\"type\":\"gap\""), std::string::npos) << read_file(err);
    EXPECT_EQ(fourth.output.find("\"type\""), std::string::npos) << fourth.output;
    EXPECT_EQ(ids_of(fourth.output), (std::vector<std::string>{"a1", "a2", "a3"}));

    // A malformed file is a usage error naming it.
    {
        std::ofstream f(file, std::ios::trunc);
        f << "lineup.x-7\n";
    }
    auto bad = run_command(listen + " --timeout 1s");
    EXPECT_EQ(bad.exit_code, 2) << bad.output;
    EXPECT_NE(bad.output.find("--resume"), std::string::npos) << bad.output;
}

}  // namespace
}  // namespace herald::testing
