// Durable schedules and cancel, end to end against the real daemon: a
// broadcast scheduled beyond the horizon survives kill -9 and SIGTERM and is
// released once, at its instant, while the offsets behind it were committed
// (nothing is consumed again after a restart); cancel before the release
// (live and outbound: nobody receives it) and in the middle of a slow
// outbound broadcast (the rest get "cancelled"); the ops API and the CLI;
// a tenant's key cannot list or cancel another tenant's broadcasts.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/clock.h"
#include "herald/v1/announcement.pb.h"
#include "herald/v1/receipt.pb.h"
#include "support/daemon.h"
#include "support/kafka.h"
#include "support/standin.h"

namespace herald::testing {
namespace {

google::protobuf::Struct parse(const std::string& json) {
    google::protobuf::Struct s;
    (void)google::protobuf::util::JsonStringToMessage(json, &s);
    return s;
}

std::string text(const google::protobuf::Struct& s, const std::string& key) {
    const auto it = s.fields().find(key);
    return it == s.fields().end() ? std::string() : it->second.string_value();
}

double number(const google::protobuf::Struct& s, const std::string& key) {
    const auto it = s.fields().find(key);
    return it == s.fields().end() ? -1 : it->second.number_value();
}

/// An announcement of `audience` due `ahead_ms` from now (RFC 3339 with milliseconds); returns the instant.
std::int64_t schedule(kafka_producer& producer, const std::string& id, const std::string& audience,
                      std::int64_t ahead_ms, const std::string& tenant = "") {
    const std::int64_t at_ms = base::wall_now_ns() / 1'000'000 + ahead_ms;
    herald::v1::Announcement a;
    a.set_id(id);
    a.set_audience(audience);
    if (!tenant.empty())
        a.set_tenant(tenant);
    a.set_text("Doors open");
    a.mutable_deliver_at()->set_seconds(at_ms / 1000);
    a.mutable_deliver_at()->set_nanos(static_cast<int>(at_ms % 1000) * 1'000'000);
    EXPECT_TRUE(producer.produce("herald.announcements", audience, a.SerializeAsString()));
    return at_ms;
}

bool wait_metric(const daemon& d, const std::string& name, double want, int timeout_s,
                 const std::string& label = "") {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
        if (metric_value(d.metrics(), name, label) == want)
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
}

google::protobuf::Struct scheduled_list(const daemon& d, const std::optional<std::string>& key = as::admin(),
                                        const std::string& query = "") {
    auto r = http_get(d.ops_port, "/v1/broadcasts?state=scheduled" + query, 5000, key);
    EXPECT_TRUE(r);
    EXPECT_EQ(r ? r->status : 0, 200) << (r ? r->body : "");
    return parse(r ? r->body : "{}");
}

std::vector<std::string> listed_ids(const google::protobuf::Struct& list) {
    std::vector<std::string> out;
    for (const auto& v : list.fields().at("broadcasts").list_value().values())
        out.push_back(text(v.struct_value(), "id"));
    return out;
}

peer live_client(const daemon& d, const std::string& audience, const std::string& tenant = "") {
    peer ws(connect_tcp("127.0.0.1", d.client_port));
    EXPECT_TRUE(
        ws.websocket_handshake("/v1/ws?audience=" + audience + (tenant.empty() ? "" : "&tenant=" + tenant)));
    return ws;
}

TEST(Schedule, SurvivesKillAndTermAndIsReleasedOnceAtItsInstantWithItsOffsetCommitted) {
    external_kafka kafka;
    const std::vector<std::string> flags{
        "--brokers",      kafka.brokers, "--group-id",           "herald-live-sched",
        "--offset-reset", "earliest",    "--commit-interval-ms", "200"};
    daemon d(flags);
    kafka_producer producer(kafka.brokers);
    // A minute ahead: two restarts (the kill -9 one waits for the dead
    // member's session to expire, ~10 s) fit well inside on a loaded machine.
    const std::int64_t at_ms = schedule(producer, "doors-open", "doors.main", 60000);
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 1, 15)) << d.log();
    // A later announcement of the same audience goes out now: the scheduled
    // one behind it no longer pins the partition.
    {
        peer ws = live_client(d, "doors.main");
        ASSERT_TRUE(producer.produce_json("herald.announcements", "doors.main",
                                          R"({"id":"now","audience":"doors.main","text":"x"})"));
        auto f = ws.read_data_frame(15000);
        ASSERT_TRUE(f) << d.log();
        EXPECT_NE(f->payload.find("\"id\":\"now\""), std::string::npos) << f->payload;
    }
    const auto listed = scheduled_list(d);
    ASSERT_EQ(listed_ids(listed), std::vector<std::string>{"doors-open"});
    const auto& item = listed.fields().at("broadcasts").list_value().values(0).struct_value();
    EXPECT_EQ(text(item, "audience"), "doors.main");
    EXPECT_EQ(text(item, "tenant"), "default");
    EXPECT_GT(number(item, "seq"), 0);
    EXPECT_FALSE(text(item, "deliver_at").empty());
    EXPECT_FALSE(text(item, "created_at").empty());
    // Both offsets committed (commit interval 200 ms): give the commit time to land.
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));

    d.kill_hard();
    d.start(flags);
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 1, 10)) << "lost by kill -9\n" << d.log();
    EXPECT_EQ(metric_value(d.metrics(), "herald_announcements_consumed_total", "consumer=\"live\""), 0)
        << "records behind the scheduled one were consumed again: their offsets were not committed";
    EXPECT_EQ(d.terminate(), 0);
    d.start(flags);
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 1, 10)) << "lost by SIGTERM\n" << d.log();
    EXPECT_EQ(metric_value(d.metrics(), "herald_announcements_consumed_total", "consumer=\"live\""), 0);

    peer ws = live_client(d, "doors.main");
    const std::int64_t left_ms = at_ms - base::wall_now_ns() / 1'000'000;
    ASSERT_GT(left_ms, 1000) << "the restarts took longer than the test allows for";
    auto f = ws.read_data_frame(static_cast<int>(left_ms) + 10000);
    ASSERT_TRUE(f) << d.log();
    EXPECT_GE(base::wall_now_ns() / 1'000'000, at_ms - 5) << "released before its instant";
    EXPECT_LE(base::wall_now_ns() / 1'000'000, at_ms + 3000) << "released late";
    EXPECT_NE(f->payload.find("\"id\":\"doors-open\""), std::string::npos) << f->payload;
    EXPECT_FALSE(ws.read_data_frame(1500)) << "released twice";
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 0, 5));
    EXPECT_EQ(metric_value(d.metrics(), "herald_scheduled_released_total"), 1);
    EXPECT_TRUE(listed_ids(scheduled_list(d)).empty());
}

const std::string consent = R"("consent":{"given_at":"2026-06-01T10:00:00Z","source":"web-form"})";

void subscribe_webhooks(const daemon& d, const gateway_standin& gw, const std::string& prefix, int n,
                        const std::string& audience) {
    std::string body;
    for (int i = 0; i < n; ++i) {
        const std::string id = prefix + std::to_string(i);
        body += R"({"recipient_id":")" + id + R"(","audiences":[")" + audience +
                R"("],"channel":"webhook","address":")" + gw.url("/webhook/" + id) + "\"," + consent + "}\n";
    }
    auto r = http_call(d.ops_port, "POST", "/v1/subscriptions", body, "application/x-ndjson", 60000);
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
}

std::size_t accepted_count(const gateway_standin& gw) {
    const auto all = gw.get_json("/_standin/received?accepted=1");
    const auto it = all.fields().find("requests");
    return it == all.fields().end() ? 0 : static_cast<std::size_t>(it->second.list_value().values_size());
}

google::protobuf::Struct broadcast_status(const daemon& d, const std::string& id) {
    auto r = http_get(d.ops_port, "/v1/broadcasts/" + id, 5000);
    return parse(r && r->status == 200 ? r->body : "{}");
}

TEST(Schedule, CancelBeforeReleaseReachesNobodyLiveOrOutbound) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    daemon d({"--recipient-min-interval-ms", "0"});
    subscribe_webhooks(d, gw, "fan", 3, "doors.main");
    peer ws = live_client(d, "doors.main");
    kafka_producer producer(d.brokers);

    // Beyond the horizon (5 s): in the schedule store; cancelled with the API.
    const std::int64_t far_ms = schedule(producer, "far", "doors.main", 9000);
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 1, 15)) << d.log();
    auto r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/far", "");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    EXPECT_EQ(text(parse(r->body), "was"), "scheduled");
    EXPECT_EQ(text(parse(r->body), "audience"), "doors.main");
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 0, 10)) << d.log();
    EXPECT_EQ(metric_value(d.metrics(), "herald_scheduled_cancelled_total"), 1);

    // Under the horizon (held in the shards): cancelled by a producer's cancel record.
    const std::int64_t near_ms = schedule(producer, "near", "doors.main", 3000);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "doors.main", R"({"cancel":"near"})"));
    // A cancel naming nothing is counted and ignored.
    ASSERT_TRUE(producer.produce_json("herald.announcements", "doors.main", R"({"cancel":"nobody-knows"})"));
    // A bad cancel is dead-lettered, not applied.
    ASSERT_TRUE(producer.produce_json("herald.announcements", "doors.main", R"({"cancel":"bad id"})"));
    ASSERT_TRUE(wait_metric(d, "herald_cancels_unknown_total", 1, 10, "consumer=\"outbound\"")) << d.log();

    // Past both instants, and a marker after them: nobody got either.
    while (base::wall_now_ns() / 1'000'000 < std::max(far_ms, near_ms) + 1000)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(producer.produce_json("herald.announcements", "doors.main",
                                      R"({"id":"marker","audience":"doors.main","text":"x"})"));
    auto f = ws.read_data_frame(15000);
    ASSERT_TRUE(f) << d.log();
    EXPECT_NE(f->payload.find("\"id\":\"marker\""), std::string::npos)
        << "a cancelled broadcast reached a live client: " << f->payload;
    EXPECT_FALSE(ws.read_data_frame(500));
    // The marker reaches the three webhooks; the cancelled ones never did.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (accepted_count(gw) < 3 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(accepted_count(gw), 3U) << "only the marker may reach the gateway";
    const auto far = broadcast_status(d, "far");
    EXPECT_EQ(text(far, "state"), "cancelled") << d.log();
    EXPECT_EQ(number(far, "sent"), 0);
    EXPECT_EQ(number(far.fields().at("suppressed_reasons").struct_value(), "cancelled"), 3)
        << "every outbound recipient gets a cancelled receipt";
    const auto dlq = read_topic(d.brokers, "herald.dlq", 1, 10000);
    ASSERT_EQ(dlq.size(), 1U);

    // Cancelled already: 409; unknown: 404.
    r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/far", "");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 409) << r->body;
    r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/never-was", "");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << r->body;
    // Delivered already: 409.
    r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/marker", "");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 409) << r->body;
}

TEST(Schedule, CancelDuringASlowOutboundBroadcastGivesTheRestCancelledReceipts) {
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    // 2 webhooks a second: 20 recipients take ~10 s.
    daemon d({"--recipient-min-interval-ms", "0", "--webhook-rate", "2", "--webhook-burst", "1"});
    subscribe_webhooks(d, gw, "fan", 20, "news.main");
    kafka_producer producer(d.brokers);
    ASSERT_TRUE(producer.produce_json("herald.announcements", "news.main",
                                      R"({"id":"slow","audience":"news.main","text":"x"})"));
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (accepted_count(gw) < 2 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_GE(accepted_count(gw), 2U) << d.log();
    // With the CLI, as an operator would.
    const auto cli = run_command(d.cli_env() + bin_dir() + "/herald cancel slow 2>&1");
    ASSERT_EQ(cli.exit_code, 0) << cli.output;
    EXPECT_NE(cli.output.find("cancelling slow"), std::string::npos) << cli.output;
    EXPECT_NE(cli.output.find("running"), std::string::npos) << cli.output;

    google::protobuf::Struct status;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
        status = broadcast_status(d, "slow");
        if (text(status, "state") == "cancelled" && number(status, "pending") == 0)
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    ASSERT_EQ(text(status, "state"), "cancelled") << d.log();
    ASSERT_EQ(number(status, "pending"), 0);
    const double sent = number(status, "sent");
    const double cancelled = number(status.fields().at("suppressed_reasons").struct_value(), "cancelled");
    EXPECT_GE(sent, 2);
    EXPECT_LT(sent, 20) << "the cancel came after the end: nothing was tested";
    EXPECT_EQ(sent + cancelled, 20);
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    EXPECT_EQ(static_cast<double>(accepted_count(gw)), sent) << "a cancelled recipient was still sent to";
    // Receipts: one per recipient, the cancelled ones with reason "cancelled".
    const auto receipts = read_topic(d.brokers, "herald.receipts", 20, 15000);
    int with_reason = 0;
    for (const auto& rec : receipts) {
        herald::v1::Receipt receipt;  // JSON on herald.receipts
        google::protobuf::util::JsonParseOptions lenient;
        lenient.ignore_unknown_fields = true;
        if (google::protobuf::util::JsonStringToMessage(rec.value, &receipt, lenient).ok() &&
            receipt.announcement_id() == "slow" && receipt.reason() == "cancelled") {
            EXPECT_EQ(receipt.outcome(), herald::v1::OUTCOME_SUPPRESSED);
            ++with_reason;
        }
    }
    EXPECT_EQ(with_reason, static_cast<int>(cancelled));
    // Finished now: a second cancel is a conflict, and the CLI says so.
    const auto again = run_command(d.cli_env() + bin_dir() + "/herald cancel slow 2>&1");
    EXPECT_NE(again.exit_code, 0) << again.output;
    EXPECT_NE(again.output.find("cancelled already"), std::string::npos) << again.output;
}

std::string new_key(const std::string& dir, const std::string& name, const std::string& role,
                    const std::string& tenant, std::string& line) {
    const std::string err = dir + "/" + name + ".err";
    const auto r = run_command("(" + bin_dir() + "/herald keys new " + name + " " + role + " '" + tenant +
                               "' 2>" + err + ")");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::ifstream in(err);
    for (std::string l; std::getline(in, l);) {  // the keys-file line comes last
        while (!l.empty() && (l.back() == '\r' || l.back() == ' ')) l.pop_back();
        if (!l.empty())
            line = l;
    }
    std::string key = r.output;
    while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
    return key;
}

TEST(Schedule, ATenantsKeyListsAndCancelsOnlyItsOwn) {
    char tmpl[] = "/tmp/herald-sched-keys-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl;
    std::string admin_line;
    std::string a_line;
    std::string b_line;
    std::string viewer_line;
    const std::string admin = new_key(dir, "ops", "admin", "*", admin_line);
    const std::string key_a = new_key(dir, "backend-a", "publisher", "fest-a", a_line);
    const std::string key_b = new_key(dir, "backend-b", "publisher", "fest-b", b_line);
    const std::string viewer_a = new_key(dir, "viewer-a", "viewer", "fest-a", viewer_line);
    {
        std::ofstream keys(dir + "/keys");
        keys << admin_line << "\n" << a_line << "\n" << b_line << "\n" << viewer_line << "\n";
    }
    daemon d({"--admin-keys-file", dir + "/keys"});
    kafka_producer producer(d.brokers);
    schedule(producer, "a-doors", "doors.a", 120000, "fest-a");
    schedule(producer, "b-doors", "doors.b", 120000, "fest-b");
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 2, 15)) << d.log();

    EXPECT_EQ(listed_ids(scheduled_list(d, as::key(admin))),
              (std::vector<std::string>{"a-doors", "b-doors"}));
    EXPECT_EQ(listed_ids(scheduled_list(d, as::key(key_a))), std::vector<std::string>{"a-doors"});
    EXPECT_EQ(listed_ids(scheduled_list(d, as::key(viewer_a))), std::vector<std::string>{"a-doors"});
    EXPECT_EQ(listed_ids(scheduled_list(d, as::key(admin), "&tenant=fest-b")),
              std::vector<std::string>{"b-doors"});
    auto r = http_get(d.ops_port, "/v1/broadcasts?state=scheduled&tenant=fest-b", 5000, as::key(key_a));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << "tenant A listed tenant B's schedule: " << r->body;
    r = http_get(d.ops_port, "/v1/broadcasts?state=running", 5000, as::key(admin));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;

    // Tenant A cannot cancel B's: as if it did not exist, with or without ?tenant=.
    for (const std::string path : {"/v1/broadcasts/b-doors", "/v1/broadcasts/b-doors?tenant=fest-b"}) {
        r = http_call(d.ops_port, "DELETE", path, "", "text/plain", 10000, as::key(key_a));
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 404) << path << ": " << r->body;
    }
    // A viewer may not cancel at all; nobody without a key.
    r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/a-doors", "", "text/plain", 10000, as::key(viewer_a));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 403) << r->body;
    r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/a-doors", "", "text/plain", 10000, as::nobody());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << r->body;
    EXPECT_EQ(metric_value(d.metrics(), "herald_scheduled_broadcasts"), 2) << "a refused cancel cancelled";

    // Its own: accepted; an admin names B's tenant with ?tenant=.
    r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/a-doors", "", "text/plain", 10000, as::key(key_a));
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 202) << r->body;
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 1, 10));
    EXPECT_EQ(listed_ids(scheduled_list(d, as::key(admin))), std::vector<std::string>{"b-doors"});
    // `herald scheduled` with the admin key: a table, and --json.
    const std::string cli = "HERALD_OPS_URL=http://127.0.0.1:" + std::to_string(d.ops_port) +
                            " HERALD_API_KEY=" + admin + " " + bin_dir() + "/herald ";
    auto table = run_command(cli + "scheduled 2>&1");
    EXPECT_EQ(table.exit_code, 0) << table.output;
    EXPECT_NE(table.output.find("b-doors"), std::string::npos) << table.output;
    EXPECT_NE(table.output.find("fest-b"), std::string::npos) << table.output;
    EXPECT_NE(table.output.find("DELIVER_AT"), std::string::npos) << table.output;
    auto json = run_command(cli + "scheduled --json 2>&1");
    EXPECT_EQ(json.exit_code, 0) << json.output;
    EXPECT_EQ(listed_ids(parse(json.output)), std::vector<std::string>{"b-doors"});
    auto cancel_b = run_command(cli + "cancel b-doors --tenant fest-b 2>&1");
    EXPECT_EQ(cancel_b.exit_code, 0) << cancel_b.output;
    EXPECT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 0, 10));
    std::filesystem::remove_all(dir);
}

std::map<std::string, int> accepted_by_announcement(const gateway_standin& gw, double* first_t = nullptr) {
    std::map<std::string, int> out;
    const auto all = gw.get_json("/_standin/received?accepted=1");
    const auto it = all.fields().find("requests");
    if (it == all.fields().end())
        return out;
    for (const auto& v : it->second.list_value().values()) {
        const auto& f = v.struct_value();
        const auto b = f.fields().find("body");
        if (b == f.fields().end())
            continue;
        const std::string id = text(b->second.struct_value(), "id");
        ++out[id];
        if (first_t != nullptr && (*first_t == 0 || number(f, "t") < *first_t))
            *first_t = number(f, "t");
    }
    return out;
}

TEST(Schedule, OutboundKeepsItsInstantAcrossKillNineAndACancelledOneIsNotResumed) {
    external_kafka kafka;
    gateway_standin gw({"--rate", "1000", "--pair-interval-s", "0"});
    ASSERT_NE(gw.port, 0);
    const std::vector<std::string> flags{
        "--brokers", kafka.brokers, "--recipient-min-interval-ms", "0", "--checkpoint-interval-ms", "100"};
    daemon d(flags);
    subscribe_webhooks(d, gw, "fan", 3, "doors.main");
    kafka_producer producer(kafka.brokers);
    const std::int64_t keep_ms = schedule(producer, "keep", "doors.main", 30000);
    schedule(producer, "drop", "doors.main", 30000);
    ASSERT_TRUE(wait_metric(d, "herald_scheduled_broadcasts", 2, 15)) << d.log();
    // Both written down on the outbound side before the cancel.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while ((text(broadcast_status(d, "keep"), "state") != "running" ||
            text(broadcast_status(d, "drop"), "state") != "running") &&
           std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(text(broadcast_status(d, "drop"), "state"), "running") << d.log();
    auto r = http_call(d.ops_port, "DELETE", "/v1/broadcasts/drop", "");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 202) << r->body;
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (text(broadcast_status(d, "drop"), "state") != "cancelled" &&
           std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_EQ(text(broadcast_status(d, "drop"), "state"), "cancelled") << d.log();
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // commits and checkpoints land

    d.kill_hard();
    EXPECT_EQ(accepted_count(gw), 0U) << "sent before its instant";
    d.start(flags);
    // "drop" is not resumed: finished in its checkpoint (every recipient
    // suppressed) or, had the kill come before that flush, skipped as
    // cancelled in the schedule store. Either way nobody gets it (below).
    const std::int64_t left_ms = keep_ms - base::wall_now_ns() / 1'000'000;
    ASSERT_GT(left_ms, 1000) << "the restart took longer than the test allows for";
    // Nothing before the instant; then each recipient once.
    EXPECT_EQ(accepted_count(gw), 0U) << "a resumed scheduled broadcast lost its instant";
    const auto wait_until = std::chrono::steady_clock::now() + std::chrono::milliseconds(left_ms + 15000);
    while (accepted_count(gw) < 3 && std::chrono::steady_clock::now() < wait_until)
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    double first_t = 0;
    const auto by_id = accepted_by_announcement(gw, &first_t);
    EXPECT_EQ(by_id, (std::map<std::string, int>{{"keep", 3}})) << d.log();
    EXPECT_GE(first_t * 1000, static_cast<double>(keep_ms) - 50) << "sent before its instant";
}

}  // namespace
}  // namespace herald::testing
