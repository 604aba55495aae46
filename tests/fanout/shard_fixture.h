// The shard test fixture: real shards with their threads and io_contexts,
// clients connected through socketpairs (optionally over TLS), broadcasts
// built by the dispatcher. Shared by the plaintext and the TLS shard tests.
#pragma once

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <atomic>
#include <boost/asio/post.hpp>
#include <chrono>
#include <future>
#include <mutex>
#include <optional>
#include <thread>

#include "base/clock.h"
#include "fanout/dispatcher.h"
#include "fanout/shard.h"
#include "metrics/registry.h"
#include "model/build.h"
#include "support/peer.h"

namespace herald::fanout {
namespace {

using model::broadcast_ptr;
using testing::peer;

model::kafka_position at(std::int64_t offset) {
    return {model::kafka_partition(0), model::kafka_offset(offset)};
}

class ShardTest : public ::testing::Test {
  protected:
    void SetUp() override { make_shards(2, {}); }

    void make_shards(std::uint32_t n, shard_options opts) {
        shards_.clear();
        probe_ = std::make_unique<probe>(registry_, n);
        std::vector<shard*> ptrs;
        for (std::uint32_t i = 0; i < n; ++i) {
            shards_.push_back(
                std::make_unique<shard>(base::shard_id(i), opts, *probe_, budget_,
                                        [this](const broadcast_ptr& b) { dispatcher_->on_shard_done(b); }));
            ptrs.push_back(shards_.back().get());
        }
        dispatcher_ = std::make_unique<dispatcher>(ptrs, *probe_, [this](const broadcast_ptr& b) {
            std::lock_guard lock(mu_);
            done_.push_back(b);
        });
        for (auto& s : shards_) s->start();
    }

    void TearDown() override {
        for (auto& s : shards_) s->shutdown(1001, "test over", std::chrono::milliseconds(500));
    }

    /// A client connected to shard `s` through a socketpair.
    peer connect(std::size_t s) {
        int fds[2];
        EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        shard& target = *shards_[s];
        std::promise<void> adopted;
        boost::asio::post(target.io_context(), [&target, fd = fds[0], &adopted] {
            boost::asio::ip::tcp::socket sock(target.io_context());
            sock.assign(boost::asio::ip::tcp::v4(), fd);
            target.adopt({std::move(sock), std::nullopt, 0});
            adopted.set_value();
        });
        adopted.get_future().wait();
        budget_.open.fetch_add(1);
        peer p(fds[1]);
        if (tls_client_) {
            const std::string why = p.start_tls(*tls_client_);
            EXPECT_EQ(why, "") << "TLS handshake with the shard failed";
        }
        return p;
    }

    /// Set (with shard_options::tls) to make connect() speak TLS to the shards.
    std::optional<peer::tls_options> tls_client_;

    peer subscribe_ws(std::size_t s, const std::string& query) {
        peer p = connect(s);
        auto head = p.websocket_handshake("/v1/ws?" + query);
        EXPECT_TRUE(head.has_value());
        if (head) {
            EXPECT_EQ(head->rfind("HTTP/1.1 101", 0), 0u) << *head;
        }
        return p;
    }

    peer subscribe_sse(std::size_t s, const std::string& query) {
        peer p = connect(s);
        auto head = p.sse_handshake("/v1/sse?" + query);
        EXPECT_TRUE(head.has_value());
        if (head) {
            EXPECT_NE(head->find("text/event-stream"), std::string::npos) << *head;
        }
        return p;
    }

    /// Waits until every shard has run everything posted so far (sessions joined).
    void settle() {
        for (auto& s : shards_) {
            std::promise<void> p;
            boost::asio::post(s->io_context(), [&p] { p.set_value(); });
            p.get_future().wait();
        }
    }

    broadcast_ptr announce(const std::string& id, const std::string& audience, const std::string& text,
                           std::int64_t offset, std::function<void(herald::v1::Announcement&)> edit = {}) {
        return announce_on(0, id, audience, text, offset, std::move(edit));
    }

    /// The sequence space announce() publishes in (partition 0 of the test cluster).
    std::string epoch_ = model::epoch_of("test-cluster", "herald.announcements", 0);

    /// announce() on another partition (its own sequence space and epoch).
    broadcast_ptr announce_on(std::int32_t partition, const std::string& id, const std::string& audience,
                              const std::string& text, std::int64_t offset,
                              std::function<void(herald::v1::Announcement&)> edit = {}) {
        herald::v1::Announcement a;
        a.set_id(id);
        a.set_audience(audience);
        a.set_text(text);
        if (edit)
            edit(a);
        return dispatcher_->publish(a, {model::kafka_partition(partition), model::kafka_offset(offset)},
                                    model::epoch_of("test-cluster", "herald.announcements", partition));
    }

    bool wait_done(std::size_t n, int timeout_ms = 5000) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
        while (std::chrono::steady_clock::now() < deadline) {
            {
                std::lock_guard lock(mu_);
                if (done_.size() >= n)
                    return true;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        return false;
    }

    metrics::registry registry_;
    std::unique_ptr<probe> probe_;
    channels::connection_budget budget_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::unique_ptr<dispatcher> dispatcher_;
    std::mutex mu_;
    std::vector<broadcast_ptr> done_;
};

}  // namespace
}  // namespace herald::fanout
