// The outbound shard's recipients: joining and leaving audiences as
// subscriptions change, consent and opt-out, forgetting, and slots reused
// under a new generation so a queued delivery never reaches the next person.
#include "outbound/recipient_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <string>
#include <vector>

#include "herald/v1/subscription.pb.h"
#include "model/broadcast.h"

namespace herald::outbound {
namespace {

using slot = recipient_index::slot;

herald::v1::Subscription subscription(const std::string& id, std::initializer_list<const char*> audiences,
                                      bool consent = true, bool opted_out = false) {
    herald::v1::Subscription s;
    s.set_recipient_id(id);
    s.set_tenant("fest");
    for (const char* a : audiences) s.add_audiences(a);
    s.set_channel(herald::v1::CHANNEL_WHATSAPP);
    s.set_address("+4917612345678");
    if (consent) {
        s.mutable_consent()->mutable_given_at()->set_seconds(1'690'000'000);
        s.mutable_consent()->set_source("web-form");
    }
    if (opted_out)
        s.mutable_opted_out_at()->set_seconds(1'695'000'000);
    return s;
}

bool is_member(const recipient_index& idx, const std::string& audience, slot s) {
    const auto* m = idx.members(model::scope_of("fest", audience));
    return m != nullptr && std::find(m->begin(), m->end(), s) != m->end();
}

TEST(RecipientIndex, NewSubscriptionJoinsItsAudiences) {
    recipient_index idx;
    const auto [at, created] = idx.apply(subscription("r1", {"lineup", "gates"}));
    EXPECT_TRUE(created);
    EXPECT_EQ(idx.size(), 1u);

    ASSERT_NE(idx.members(model::scope_of("fest", "lineup")), nullptr);
    ASSERT_NE(idx.members(model::scope_of("fest", "gates")), nullptr);
    EXPECT_EQ(*idx.members(model::scope_of("fest", "lineup")), std::vector<slot>{at});
    EXPECT_EQ(*idx.members(model::scope_of("fest", "gates")), std::vector<slot>{at});
    EXPECT_EQ(idx.members(model::scope_of("fest", "food")), nullptr);

    const recipient& r = idx.at(at);
    EXPECT_EQ(r.id, "r1");
    EXPECT_EQ(r.address, "+4917612345678");
    EXPECT_EQ(r.channel, herald::v1::CHANNEL_WHATSAPP);
    EXPECT_TRUE(r.alive);
    EXPECT_EQ(r.audiences, (std::vector<std::string>{"gates", "lineup"}));
    EXPECT_TRUE(r.member_of("lineup"));
    EXPECT_TRUE(r.member_of("gates"));
    EXPECT_FALSE(r.member_of("food"));
    EXPECT_EQ(idx.live(at, r.generation), &idx.at(at));
}

TEST(RecipientIndex, AudiencesAreSortedAndDeduplicated) {
    recipient_index idx;
    const auto [at, created] = idx.apply(subscription("r1", {"zeta", "alpha", "zeta", "mid", "alpha"}));
    ASSERT_TRUE(created);
    EXPECT_EQ(idx.at(at).audiences, (std::vector<std::string>{"alpha", "mid", "zeta"}));
    // Listed once per audience, however often the subscription named it.
    EXPECT_EQ(*idx.members(model::scope_of("fest", "zeta")), std::vector<slot>{at});
    EXPECT_EQ(*idx.members(model::scope_of("fest", "alpha")), std::vector<slot>{at});
}

TEST(RecipientIndex, SeveralRecipientsShareAnAudience) {
    recipient_index idx;
    const slot a = idx.apply(subscription("r1", {"lineup"})).first;
    const slot b = idx.apply(subscription("r2", {"lineup", "gates"})).first;
    EXPECT_NE(a, b);
    EXPECT_EQ(idx.size(), 2u);
    ASSERT_NE(idx.members(model::scope_of("fest", "lineup")), nullptr);
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup"))->size(), 2u);
    EXPECT_TRUE(is_member(idx, "lineup", a));
    EXPECT_TRUE(is_member(idx, "lineup", b));
    EXPECT_EQ(*idx.members(model::scope_of("fest", "gates")), std::vector<slot>{b});
}

TEST(RecipientIndex, ReapplyingReplacesTheAudiences) {
    recipient_index idx;
    const auto [first, created] = idx.apply(subscription("r1", {"lineup", "gates"}));
    ASSERT_TRUE(created);
    const std::uint32_t generation = idx.at(first).generation;
    const slot other = idx.apply(subscription("r2", {"gates"})).first;

    auto changed = idx.apply(subscription("r1", {"gates", "food"}));
    EXPECT_EQ(changed.first, first);
    EXPECT_FALSE(changed.second);
    EXPECT_EQ(idx.size(), 2u);
    EXPECT_EQ(idx.at(first).generation, generation);  // the same person: queued deliveries still find them
    EXPECT_NE(idx.live(first, generation), nullptr);

    // Left "lineup", which had nobody else: it is gone.
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup")), nullptr);
    // Still in "gates", once, alongside the other recipient.
    ASSERT_NE(idx.members(model::scope_of("fest", "gates")), nullptr);
    EXPECT_EQ(idx.members(model::scope_of("fest", "gates"))->size(), 2u);
    EXPECT_TRUE(is_member(idx, "gates", first));
    EXPECT_TRUE(is_member(idx, "gates", other));
    // Joined "food".
    EXPECT_EQ(*idx.members(model::scope_of("fest", "food")), std::vector<slot>{first});
    EXPECT_EQ(idx.at(first).audiences, (std::vector<std::string>{"food", "gates"}));

    // Leaving "gates" too keeps the other recipient there.
    changed = idx.apply(subscription("r1", {"food"}));
    EXPECT_FALSE(changed.second);
    EXPECT_EQ(*idx.members(model::scope_of("fest", "gates")), std::vector<slot>{other});
    EXPECT_FALSE(idx.at(first).member_of("gates"));
}

TEST(RecipientIndex, ReapplyingTheSameAudiencesKeepsOneEntry) {
    recipient_index idx;
    const slot at = idx.apply(subscription("r1", {"lineup"})).first;
    EXPECT_FALSE(idx.apply(subscription("r1", {"lineup"})).second);
    EXPECT_FALSE(idx.apply(subscription("r1", {"lineup"})).second);
    EXPECT_EQ(*idx.members(model::scope_of("fest", "lineup")), std::vector<slot>{at});
    EXPECT_EQ(idx.size(), 1u);
}

TEST(RecipientIndex, ReapplyingTakesOverAddressAndChannel) {
    recipient_index idx;
    const slot at = idx.apply(subscription("r1", {"lineup"})).first;
    auto s = subscription("r1", {"lineup"});
    s.set_channel(herald::v1::CHANNEL_SMS);
    s.set_address("+4915112345678");
    idx.apply(s);
    EXPECT_EQ(idx.at(at).channel, herald::v1::CHANNEL_SMS);
    EXPECT_EQ(idx.at(at).address, "+4915112345678");
}

TEST(RecipientIndex, OptedOutIsAMemberOfNothingButStillKnown) {
    recipient_index idx;
    const auto [at, created] = idx.apply(subscription("r1", {"lineup"}, true, /*opted_out=*/true));
    EXPECT_TRUE(created);
    EXPECT_EQ(idx.size(), 1u);
    EXPECT_TRUE(idx.at(at).audiences.empty());
    EXPECT_FALSE(idx.at(at).member_of("lineup"));
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup")), nullptr);
    EXPECT_NE(idx.live(at, idx.at(at).generation), nullptr);
    EXPECT_EQ(idx.at(at).id, "r1");
}

TEST(RecipientIndex, WithoutConsentIsAMemberOfNothingButStillKnown) {
    recipient_index idx;
    const auto [at, created] = idx.apply(subscription("r1", {"lineup", "gates"}, /*consent=*/false));
    EXPECT_TRUE(created);
    EXPECT_EQ(idx.size(), 1u);
    EXPECT_TRUE(idx.at(at).audiences.empty());
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup")), nullptr);
    EXPECT_EQ(idx.members(model::scope_of("fest", "gates")), nullptr);
    EXPECT_NE(idx.live(at, idx.at(at).generation), nullptr);
}

TEST(RecipientIndex, OptingOutLeavesEveryAudience) {
    recipient_index idx;
    const slot at = idx.apply(subscription("r1", {"lineup", "gates"})).first;
    const slot other = idx.apply(subscription("r2", {"gates"})).first;
    const auto changed = idx.apply(subscription("r1", {"lineup", "gates"}, true, /*opted_out=*/true));
    EXPECT_EQ(changed.first, at);
    EXPECT_FALSE(changed.second);
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup")), nullptr);
    EXPECT_EQ(*idx.members(model::scope_of("fest", "gates")), std::vector<slot>{other});
    EXPECT_TRUE(idx.at(at).audiences.empty());
    EXPECT_EQ(idx.size(), 2u);

    // Opting in again rejoins.
    idx.apply(subscription("r1", {"lineup"}));
    EXPECT_EQ(*idx.members(model::scope_of("fest", "lineup")), std::vector<slot>{at});
}

TEST(RecipientIndex, ForgetUnknownIsFalse) {
    recipient_index idx;
    EXPECT_FALSE(idx.forget("fest/nobody"));
    idx.apply(subscription("r1", {"lineup"}));
    EXPECT_FALSE(idx.forget("fest/nobody"));
    EXPECT_EQ(idx.size(), 1u);
}

TEST(RecipientIndex, ForgetRemovesTheRecipientEverywhere) {
    recipient_index idx;
    const slot at = idx.apply(subscription("r1", {"lineup", "gates"})).first;
    const slot other = idx.apply(subscription("r2", {"gates"})).first;
    const std::uint32_t generation = idx.at(at).generation;
    ASSERT_NE(idx.live(at, generation), nullptr);

    EXPECT_TRUE(idx.forget("fest/r1"));
    EXPECT_EQ(idx.size(), 1u);
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup")), nullptr);
    EXPECT_EQ(*idx.members(model::scope_of("fest", "gates")), std::vector<slot>{other});
    // A delivery queued for r1 finds nobody.
    EXPECT_EQ(idx.live(at, generation), nullptr);
    // Forgotten once: a second tombstone is a no-op.
    EXPECT_FALSE(idx.forget("fest/r1"));
    EXPECT_EQ(idx.size(), 1u);
    EXPECT_NE(idx.live(other, idx.at(other).generation), nullptr);
}

TEST(RecipientIndex, ForgettingAnOptedOutRecipientWorks) {
    recipient_index idx;
    idx.apply(subscription("r1", {"lineup"}, true, /*opted_out=*/true));
    EXPECT_TRUE(idx.forget("fest/r1"));
    EXPECT_EQ(idx.size(), 0u);
}

TEST(RecipientIndex, ReusedSlotGetsANewGeneration) {
    recipient_index idx;
    const slot old_slot = idx.apply(subscription("r1", {"lineup"})).first;
    const std::uint32_t old_generation = idx.at(old_slot).generation;
    ASSERT_TRUE(idx.forget("fest/r1"));

    const auto [new_slot, created] = idx.apply(subscription("r2", {"gates"}));
    EXPECT_TRUE(created);
    EXPECT_EQ(new_slot, old_slot);  // the freed slot is taken again
    const std::uint32_t new_generation = idx.at(new_slot).generation;
    EXPECT_NE(new_generation, old_generation);

    // The delivery queued for r1 still finds nobody — not r2, who has the slot now.
    EXPECT_EQ(idx.live(old_slot, old_generation), nullptr);
    recipient* now_there = idx.live(new_slot, new_generation);
    ASSERT_NE(now_there, nullptr);
    EXPECT_EQ(now_there->id, "r2");
    // Nothing of r1 carried over.
    EXPECT_EQ(now_there->audiences, std::vector<std::string>{"gates"});
    EXPECT_EQ(idx.members(model::scope_of("fest", "lineup")), nullptr);
    EXPECT_EQ(*idx.members(model::scope_of("fest", "gates")), std::vector<slot>{new_slot});
    EXPECT_EQ(idx.size(), 1u);

    // r1 coming back is a new recipient in another slot.
    const auto back = idx.apply(subscription("r1", {"lineup"}));
    EXPECT_TRUE(back.second);
    EXPECT_NE(back.first, new_slot);
    EXPECT_EQ(idx.size(), 2u);
}

TEST(RecipientIndex, ReusingASlotTwiceNeverRepeatsAGeneration) {
    recipient_index idx;
    std::vector<std::uint32_t> generations;
    for (int i = 0; i < 4; ++i) {
        const std::string id = "r" + std::to_string(i);
        const slot at = idx.apply(subscription(id, {"lineup"})).first;
        EXPECT_EQ(at, 0u);
        generations.push_back(idx.at(at).generation);
        ASSERT_TRUE(idx.forget("fest/" + id));
        EXPECT_EQ(idx.live(at, generations.back()), nullptr);
    }
    std::sort(generations.begin(), generations.end());
    EXPECT_EQ(std::adjacent_find(generations.begin(), generations.end()), generations.end());
}

TEST(RecipientIndex, ForgettingResetsThePairLimit) {
    recipient_index idx;
    const slot at = idx.apply(subscription("r1", {"lineup"})).first;
    idx.at(at).next_allowed = base::mono_from_ns(99'000'000'000);
    idx.at(at).last_inbound = base::wall_from_ns(1);
    ASSERT_TRUE(idx.forget("fest/r1"));
    const slot again = idx.apply(subscription("r2", {"lineup"})).first;
    ASSERT_EQ(again, at);
    EXPECT_EQ(idx.at(again).next_allowed, base::mono_time{});
    EXPECT_EQ(idx.at(again).last_inbound, base::wall_time{});
}

TEST(RecipientIndex, LastInboundIsTakenFromTheSubscription) {
    recipient_index idx;
    auto s = subscription("r1", {"lineup"});
    s.mutable_last_inbound_at()->set_seconds(1'700'000'000);
    s.mutable_last_inbound_at()->set_nanos(250'000'000);
    const slot at = idx.apply(s).first;
    EXPECT_EQ(idx.at(at).last_inbound, base::wall_from_ns(1'700'000'000'250'000'000));

    // Without one: never (the epoch).
    const slot other = idx.apply(subscription("r2", {"lineup"})).first;
    EXPECT_EQ(idx.at(other).last_inbound, base::wall_time{});

    // A later message moves it.
    s.mutable_last_inbound_at()->set_seconds(1'700'000'100);
    s.mutable_last_inbound_at()->set_nanos(0);
    idx.apply(s);
    EXPECT_EQ(idx.at(at).last_inbound, base::wall_from_ns(1'700'000'100'000'000'000));
}

TEST(RecipientIndex, SizeCountsKnownRecipients) {
    recipient_index idx;
    EXPECT_EQ(idx.size(), 0u);
    idx.apply(subscription("r1", {"lineup"}));
    idx.apply(subscription("r2", {"lineup"}, /*consent=*/false));
    idx.apply(subscription("r3", {"lineup"}, true, /*opted_out=*/true));
    idx.apply(subscription("r1", {"gates"}));
    EXPECT_EQ(idx.size(), 3u);
    EXPECT_TRUE(idx.forget("fest/r2"));
    EXPECT_EQ(idx.size(), 2u);
}

TEST(RecipientIndex, KeepsTheSubscriptionsOwnWebhookSecretDecodedAndDropsItWhenRemoved) {
    recipient_index idx;
    auto s = subscription("hook", {"lineup"});
    s.set_channel(herald::v1::CHANNEL_WEBHOOK);
    s.set_address("https://hooks.example.com/in");
    s.set_webhook_secret("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA,whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    const auto [at, created] = idx.apply(s);
    ASSERT_TRUE(created);
    const auto expected = parse_webhook_secrets(s.webhook_secret());
    ASSERT_TRUE(expected);
    ASSERT_EQ(idx.at(at).webhook_secrets.size(), 2u);
    EXPECT_EQ(idx.at(at).webhook_secrets[0].key, (*expected)[0].key);
    EXPECT_EQ(idx.at(at).webhook_secrets[1].key, (*expected)[1].key);
    EXPECT_EQ(idx.at(at).webhook_secrets[0].key, std::string(24, '\0'));  // decoded bytes, not the text
    // Rewritten without one: back to the global secrets.
    s.clear_webhook_secret();
    EXPECT_EQ(idx.apply(s).first, at);
    EXPECT_TRUE(idx.at(at).webhook_secrets.empty());
    // Forgotten: nothing of it stays in the slot.
    s.set_webhook_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    idx.apply(s);
    ASSERT_TRUE(idx.forget("fest/hook"));
    EXPECT_TRUE(idx.at(at).webhook_secrets.empty());
}

}  // namespace
}  // namespace herald::outbound
