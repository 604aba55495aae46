// The live schedule in use: the store's contents mirrored in memory, a
// thread (`herald-sched`) that hands each broadcast back `lead` before its
// instant, cancels, and the listing behind GET /v1/broadcasts?state=scheduled.
//
// A scheduled broadcast is in one of two states: waiting (only here), or
// released (handed to the shards, which hold it to its exact instant; still
// in the store, so a crash before every shard is done releases it again
// after the restart). It leaves the store when the shards report it done
// (delivered, expired or superseded) or when it is cancelled; either is
// remembered for store::ended_retention, so a record consumed again is not
// scheduled twice. A drain's cancel of a held broadcast keeps it in the
// store: the next start releases it.
//
// Every method may be called from any thread: one mutex guards the mirror
// and the store, and nothing calls out while holding it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/loop_thread.h"
#include "schedule/probe.h"
#include "schedule/store.h"

namespace herald::schedule {

class scheduler {
  public:
    /// Scheduler thread: hand `e` to the shards (its instant is `lead` or less away, or past).
    using release_handler = std::function<void(const entry&)>;

    scheduler(std::unique_ptr<store> s, probe& p, std::chrono::nanoseconds lead);
    ~scheduler();
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    /// Loads what the store holds; the thread looks every `period` for what is due.
    void start(release_handler on_release, std::chrono::milliseconds period = std::chrono::milliseconds(100));
    /// Ends the thread (nothing is released afterwards). Idempotent.
    void stop();

    enum class added : std::uint8_t {
        scheduled,  // written down: its Kafka offset may be committed
        known,      // scheduled before, released or cancelled within the retention: nothing to do
        failed,     // the store failed: deliver it the old way (held in the shards, uncommitted)
    };
    [[nodiscard]] added add(const entry& e);

    enum class cancel_result : std::uint8_t {
        waiting,   // removed before its release
        released,  // removed; already handed to the shards (the caller takes it back from them)
        already,   // cancelled before
        unknown,   // not scheduled here (remembered as cancelled anyway)
    };
    /// Cancels and remembers (durably) that `tenant`/`id` was cancelled.
    /// `audience` (optional) gets the cancelled broadcast's audience.
    cancel_result cancel(const std::string& tenant, const std::string& id, std::string* audience = nullptr);

    /// The shards are done with a released one: `delivered` (or expired,
    /// superseded) removes it; otherwise (a drain) it stays for the next start.
    void done(const std::string& tenant, const std::string& id, bool delivered);

    /// Whether `tenant`/`id` was released or cancelled within the retention.
    [[nodiscard]] std::optional<ending> ended(const std::string& tenant, const std::string& id) const;
    [[nodiscard]] std::optional<entry> find(const std::string& tenant, const std::string& id) const;
    /// What waits or is released and not yet done, earliest first (announcement left out).
    [[nodiscard]] std::vector<entry> list() const;
    [[nodiscard]] std::size_t size() const;
    [[nodiscard]] const std::string& path() const noexcept { return store_->path(); }

    /// Hands out what is due at `now_wall_ns` (the thread calls it; tests may too).
    void tick(std::int64_t now_wall_ns);

  private:
    struct slot {
        entry e;
        bool released = false;
    };
    static std::string key(const std::string& tenant, const std::string& id) { return tenant + '\x1f' + id; }
    void remember_ended(const std::string& k, ending why, std::int64_t at_ns);  // mutex held
    void publish_size();                                                        // mutex held

    std::unique_ptr<store> store_;
    probe& probe_;
    std::chrono::nanoseconds lead_;
    release_handler on_release_;
    mutable std::mutex mutex_;
    std::map<std::string, slot> slots_;  // by key
    std::unordered_map<std::string, std::pair<ending, std::int64_t>> ended_;
    std::int64_t next_expiry_ns_ = 0;
    base::loop_thread loop_{"herald-sched"};
};

}  // namespace herald::schedule
