#include "audience/live_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace herald::audience {
namespace {

struct member {
    int id = 0;
    std::vector<audience_slot<member>> slots;
    std::vector<audience_slot<member>>& audience_slots() { return slots; }
};

std::set<int> ids(live_index<member>& index, std::string_view audience) {
    std::set<int> out;
    if (auto* g = index.find(audience)) {
        for (auto* m : g->members) out.insert(m->id);
    }
    return out;
}

TEST(LiveIndex, JoinAndFind) {
    live_index<member> index;
    member a{1}, b{2};
    index.join(a, "x");
    index.join(b, "x");
    index.join(b, "y");
    EXPECT_EQ(ids(index, "x"), (std::set<int>{1, 2}));
    EXPECT_EQ(ids(index, "y"), (std::set<int>{2}));
    EXPECT_EQ(index.find("z"), nullptr);
    EXPECT_EQ(index.memberships(), 3u);
}

TEST(LiveIndex, JoinTwiceIsIdempotent) {
    live_index<member> index;
    member a{1};
    index.join(a, "x");
    index.join(a, "x");
    EXPECT_EQ(index.find("x")->members.size(), 1u);
}

TEST(LiveIndex, LeaveRemovesEverywhereAndDropsEmptyGroups) {
    live_index<member> index;
    member a{1}, b{2};
    index.join(a, "x");
    index.join(a, "y");
    index.join(b, "x");
    index.leave_all(a);
    EXPECT_EQ(ids(index, "x"), (std::set<int>{2}));
    EXPECT_EQ(index.find("y"), nullptr);
    EXPECT_TRUE(a.slots.empty());
    EXPECT_EQ(index.audiences(), 1u);
}

// Random joins and leaves against a simple model: slots stay consistent.
TEST(LiveIndex, RandomChurnMatchesModel) {
    live_index<member> index;
    std::vector<member> members(200);
    for (int i = 0; i < 200; ++i) members[i].id = i;
    std::vector<std::set<std::string>> model(200);
    std::mt19937 rng(42);
    const std::vector<std::string> names{"a", "b", "c", "d"};
    for (int step = 0; step < 5000; ++step) {
        const int i = static_cast<int>(rng() % 200);
        if (rng() % 3 == 0) {
            index.leave_all(members[i]);
            model[i].clear();
        } else {
            const auto& name = names[rng() % names.size()];
            index.join(members[i], name);
            model[i].insert(name);
        }
    }
    for (const auto& name : names) {
        std::set<int> expected;
        for (int i = 0; i < 200; ++i) {
            if (model[i].count(name))
                expected.insert(i);
        }
        EXPECT_EQ(ids(index, name), expected) << name;
    }
    for (auto& m : members) {
        for (const auto& slot : m.slots) {
            ASSERT_EQ(slot.group->members[slot.index], &m);
        }
    }
}

}  // namespace
}  // namespace herald::audience
