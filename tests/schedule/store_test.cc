#include "schedule/store.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "metrics/registry.h"
#include "schedule/scheduler.h"

namespace herald::schedule {
namespace {

constexpr std::int64_t s = 1'000'000'000;
constexpr std::int64_t now = 1'800'000'000LL * s;

struct temp_dir {
    std::string path;
    temp_dir() {
        path = (std::filesystem::temp_directory_path() /
                ("herald-schedule-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                   .string();
        std::filesystem::remove_all(path);
    }
    ~temp_dir() { std::filesystem::remove_all(path); }
};

entry make(const std::string& tenant, const std::string& id, std::int64_t deliver_at) {
    entry e;
    e.tenant = tenant;
    e.id = id;
    e.audience = "doors.main";
    e.deliver_at_ns = deliver_at;
    e.created_at_ns = now;
    e.seq = model::seq_no(42);
    e.source = {model::kafka_partition(3), model::kafka_offset(41)};
    e.announcement = std::string("\x0a\x02id\x00\xff", 6);  // bytes, not text
    return e;
}

TEST(ScheduleStore, KeepsEverythingAcrossReopenEarliestFirst) {
    temp_dir dir;
    {
        auto st = store::open(dir.path);
        ASSERT_TRUE(st) << st.err().describe();
        ASSERT_TRUE(*(*st)->add(make("t", "late", now + 100 * s)));
        ASSERT_TRUE(*(*st)->add(make("t", "early", now + 10 * s)));
    }
    auto st = store::open(dir.path);
    ASSERT_TRUE(st);
    const auto all = (*st)->scheduled();
    ASSERT_EQ(all.size(), 2U);
    EXPECT_EQ(all[0].id, "early");
    EXPECT_EQ(all[1].id, "late");
    EXPECT_EQ(all[0].seq, model::seq_no(42));
    EXPECT_EQ(all[0].source.partition.get(), 3);
    EXPECT_EQ(all[0].source.offset.get(), 41);
    EXPECT_EQ(all[0].audience, "doors.main");
    EXPECT_EQ(all[0].announcement, std::string("\x0a\x02id\x00\xff", 6));
    EXPECT_EQ(all[0].deliver_at_ns, now + 10 * s);
    EXPECT_EQ(all[0].created_at_ns, now);
}

TEST(ScheduleStore, AnIdIsScheduledOncePerTenant) {
    temp_dir dir;
    auto st = store::open(dir.path);
    ASSERT_TRUE(st);
    EXPECT_TRUE(*(*st)->add(make("t", "a", now + 10 * s)));
    EXPECT_FALSE(*(*st)->add(make("t", "a", now + 10 * s))) << "a record consumed again";
    EXPECT_TRUE(*(*st)->add(make("u", "a", now + 10 * s))) << "ids are unique per tenant only";
    EXPECT_EQ((*st)->scheduled().size(), 2U);
}

TEST(ScheduleStore, EndedIdsAreNotScheduledAgainWithinTheRetentionThenForgotten) {
    temp_dir dir;
    auto st = store::open(dir.path);
    ASSERT_TRUE(st);
    ASSERT_TRUE(*(*st)->add(make("t", "a", now + 10 * s)));
    ASSERT_TRUE((*st)->end("t", "a", ending::released, now + 10 * s));
    ASSERT_TRUE((*st)->end("t", "b", ending::cancelled, now + 10 * s));
    EXPECT_TRUE((*st)->scheduled().empty());
    EXPECT_FALSE(*(*st)->add(make("t", "a", now + 10 * s))) << "released: consumed again after a crash";
    EXPECT_FALSE(*(*st)->add(make("t", "b", now + 10 * s))) << "cancelled";
    auto ended = (*st)->ended(now + 20 * s);
    ASSERT_EQ(ended.size(), 2U);
    EXPECT_EQ(ended[0].why == ending::released ? ended[1].why : ended[0].why, ending::cancelled);
    // Past the retention they are forgotten.
    const std::int64_t later = now + 10 * s + std::chrono::nanoseconds(store::ended_retention).count() + s;
    EXPECT_TRUE((*st)->ended(later).empty());
    EXPECT_TRUE(*(*st)->add(make("t", "a", later + 10 * s)));
}

TEST(ScheduleStore, AnUnwritableDirectoryIsAnError) {
    auto st = store::open("/proc/herald-no-such-dir");
    EXPECT_FALSE(st);
}

struct fixture {
    temp_dir dir;
    metrics::registry reg;
    probe p{reg};
    std::unique_ptr<scheduler> sched;
    std::vector<std::string> released;

    void open(std::chrono::nanoseconds lead = std::chrono::seconds(5)) {
        auto st = store::open(dir.path);
        ASSERT_TRUE(st);
        sched = std::make_unique<scheduler>(std::move(*st), p, lead);
    }
    void tick(std::int64_t at) {
        // The release handler is only installed by start(); tests drive tick() themselves.
        sched->tick(at);
    }
};

TEST(Scheduler, ReleasesLeadBeforeTheInstantOnceAndRemovesWhenDone) {
    fixture f;
    f.open();
    std::vector<std::string> released;
    ASSERT_EQ(f.sched->add(make("t", "a", now + 60 * s)), scheduler::added::scheduled);
    ASSERT_EQ(f.sched->add(make("t", "a", now + 60 * s)), scheduler::added::known);
    f.sched->start([&](const entry& e) { released.push_back(e.id); }, std::chrono::hours(1));
    f.tick(now + 54 * s);
    EXPECT_TRUE(released.empty()) << "6 s ahead, lead 5 s";
    f.tick(now + 55 * s);
    ASSERT_EQ(released.size(), 1U);
    f.tick(now + 56 * s);
    EXPECT_EQ(released.size(), 1U) << "released once";
    EXPECT_EQ(f.sched->list().size(), 1U) << "listed until the shards are done";
    f.sched->done("t", "a", true);
    EXPECT_EQ(f.sched->size(), 0U);
    EXPECT_EQ(f.sched->ended("t", "a"), ending::released);
    EXPECT_EQ(f.sched->add(make("t", "a", now + 60 * s)), scheduler::added::known);
    f.sched->stop();
}

TEST(Scheduler, ADrainsCancelKeepsItForTheNextStart) {
    fixture f;
    f.open();
    std::vector<std::string> released;
    ASSERT_EQ(f.sched->add(make("t", "a", now + 60 * s)), scheduler::added::scheduled);
    f.sched->start([&](const entry& e) { released.push_back(e.id); }, std::chrono::hours(1));
    f.tick(now + 59 * s);
    f.sched->done("t", "a", false);  // a drain cancelled it in the shards
    f.sched->stop();
    f.sched.reset();
    f.open();
    EXPECT_EQ(f.sched->size(), 1U) << "still in the store";
    std::vector<std::string> again;
    f.sched->start([&](const entry& e) { again.push_back(e.id); }, std::chrono::hours(1));
    f.tick(now + 61 * s);
    EXPECT_EQ(again, std::vector<std::string>{"a"}) << "past its instant: released at once";
    f.sched->stop();
}

TEST(Scheduler, CancelRemovesWaitingAndReleasedAndIsRememberedAcrossReopen) {
    fixture f;
    f.open();
    ASSERT_EQ(f.sched->add(make("t", "w", now + 600 * s)), scheduler::added::scheduled);
    ASSERT_EQ(f.sched->add(make("t", "r", now + 60 * s)), scheduler::added::scheduled);
    std::vector<std::string> released;
    f.sched->start([&](const entry& e) { released.push_back(e.id); }, std::chrono::hours(1));
    f.tick(now + 58 * s);
    ASSERT_EQ(released, std::vector<std::string>{"r"});
    EXPECT_EQ(f.sched->cancel("t", "w"), scheduler::cancel_result::waiting);
    EXPECT_EQ(f.sched->cancel("t", "r"), scheduler::cancel_result::released);
    EXPECT_EQ(f.sched->cancel("t", "r"), scheduler::cancel_result::already);
    EXPECT_EQ(f.sched->cancel("t", "nobody"), scheduler::cancel_result::unknown);
    f.sched->done("t", "r", true);  // the shards report it after it was cancelled: nothing more
    f.tick(now + 700 * s);
    EXPECT_EQ(released, std::vector<std::string>{"r"}) << "a cancelled one is never released";
    f.sched->stop();
    f.sched.reset();
    f.open();
    EXPECT_EQ(f.sched->size(), 0U);
    EXPECT_EQ(f.sched->ended("t", "w"), ending::cancelled);
    EXPECT_EQ(f.sched->ended("t", "nobody"), ending::cancelled)
        << "a cancel before its announcement is remembered too";
    EXPECT_EQ(f.sched->add(make("t", "w", now + 600 * s)), scheduler::added::known);
}

TEST(Scheduler, MetricsFollowTheStore) {
    fixture f;
    f.open();
    ASSERT_EQ(f.sched->add(make("t", "a", now + 60 * s)), scheduler::added::scheduled);
    ASSERT_EQ(f.sched->add(make("t", "b", now + 60 * s)), scheduler::added::scheduled);
    const auto text = f.reg.render();
    EXPECT_NE(text.find("herald_scheduled_broadcasts 2"), std::string::npos) << text;
    (void)f.sched->cancel("t", "a");
    f.sched->done("t", "b", true);
    const auto after = f.reg.render();
    EXPECT_NE(after.find("herald_scheduled_broadcasts 0"), std::string::npos) << after;
    EXPECT_NE(after.find("herald_scheduled_released_total 1"), std::string::npos) << after;
    EXPECT_NE(after.find("herald_scheduled_cancelled_total 1"), std::string::npos) << after;
}

}  // namespace
}  // namespace herald::schedule
