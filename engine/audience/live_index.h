// Which live connections of one shard belong to which audience.
//
// The hot path walks one audience's members in a flat vector, so delivery is
// a linear scan with no hashing per recipient. Joining and leaving are O(1):
// each member remembers its slot in every audience it joined, and leaving
// swaps the last member into the hole. The index is shard-local and touched
// only by the shard's thread, so nothing in it is atomic or locked.
//
// Member must expose `audience_slots()`: a container of `audience_slot`
// (see below) that the index maintains on the member's behalf.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/assert.h"

namespace herald::audience {

template <class Member>
class live_index;

/// One audience's members, in no particular order.
template <class Member>
struct audience_group {
    std::string name;
    std::vector<Member*> members;
    /// Bumped per broadcast so the first recipient rotates (nobody is always last).
    std::uint64_t rotation = 0;
};

/// A member's place in one audience group.
template <class Member>
struct audience_slot {
    audience_group<Member>* group = nullptr;
    std::uint32_t index = 0;
};

template <class Member>
class live_index {
  public:
    using group = audience_group<Member>;

    /// Held while a delivery walks a group's members: nobody may join or
    /// leave meanwhile (a leave swaps the last member into the hole, so the
    /// walk would skip one and visit another twice). Sessions that close
    /// during a walk leave afterwards (the shard defers it).
    class walk {
      public:
        explicit walk(live_index& index) noexcept : index_(index) { ++index_.walks_; }
        ~walk() { --index_.walks_; }
        walk(const walk&) = delete;
        walk& operator=(const walk&) = delete;

      private:
        live_index& index_;
    };

    /// Adds `m` to `audience` (no-op if already a member).
    void join(Member& m, std::string_view audience) {
        HERALD_ASSERT(walks_ == 0);
        for (const auto& slot : m.audience_slots()) {
            if (slot.group->name == audience) {
                return;
            }
        }
        auto it = groups_.find(audience);
        if (it == groups_.end()) {
            auto g = std::make_unique<group>();
            g->name = std::string(audience);
            it = groups_.emplace(g->name, std::move(g)).first;
        }
        group& g = *it->second;
        m.audience_slots().push_back({&g, static_cast<std::uint32_t>(g.members.size())});
        g.members.push_back(&m);
        ++memberships_;
    }

    /// Removes `m` from every audience it joined.
    void leave_all(Member& m) {
        HERALD_ASSERT(walks_ == 0);
        for (const auto& slot : m.audience_slots()) {
            // The slot must point at the member itself, or the swap below
            // would remove somebody else from the audience.
            HERALD_BUG(slot.index < slot.group->members.size() && slot.group->members[slot.index] == &m,
                       "audience.member_index");
            if (slot.index >= slot.group->members.size() || slot.group->members[slot.index] != &m)
                continue;
            remove_from(*slot.group, slot.index);
            --memberships_;
        }
        m.audience_slots().clear();
    }

    /// Members of `audience`, or nullptr when nobody on this shard listens.
    [[nodiscard]] group* find(std::string_view audience) {
        auto it = groups_.find(audience);
        return it == groups_.end() ? nullptr : it->second.get();
    }

    [[nodiscard]] std::size_t audiences() const noexcept { return groups_.size(); }
    [[nodiscard]] std::size_t memberships() const noexcept { return memberships_; }

  private:
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };

    void remove_from(group& g, std::uint32_t index) {
        const std::size_t last_index = g.members.size() - 1;
        if (index != last_index) {
            Member* moved = g.members[last_index];
            g.members[index] = moved;
            // Point the moved member's slot for this group at its new index.
            for (auto& slot : moved->audience_slots()) {
                if (slot.group == &g) {
                    slot.index = index;
                    break;
                }
            }
        }
        g.members.pop_back();
        if (g.members.empty()) {
            groups_.erase(groups_.find(std::string_view(g.name)));  // destroys g
        }
    }

    std::unordered_map<std::string, std::unique_ptr<group>, name_hash, std::equal_to<>> groups_;
    std::size_t memberships_ = 0;
    std::uint32_t walks_ = 0;
};

}  // namespace herald::audience
