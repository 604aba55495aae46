#include "base/loop_thread.h"

#include <pthread.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <future>
#include <optional>
#include <thread>
#include <vector>

#include "base/assert.h"

namespace herald::base {

struct loop_thread::impl {
    explicit impl(std::string n) : name(std::move(n)), work(ioc.get_executor()) {}

    std::string name;
    boost::asio::io_context ioc{1};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
    std::atomic<bool> running{false};

    struct periodic {
        periodic(boost::asio::io_context& io, std::chrono::nanoseconds p, std::function<void()> f)
            : timer(io), period(p), fn(std::move(f)) {}
        boost::asio::steady_timer timer;
        std::chrono::nanoseconds period;
        std::function<void()> fn;
    };
    std::vector<std::unique_ptr<periodic>> periodics;

    static void arm(periodic& p) {
        p.timer.expires_after(p.period);
        p.timer.async_wait([&p](const boost::system::error_code& ec) {
            if (ec)
                return;
            p.fn();
            arm(p);
        });
    }

    void repeat_step(const std::shared_ptr<std::function<void()>>& step) {
        boost::asio::post(ioc, [this, step] {
            (*step)();
            repeat_step(step);  // discarded unrun once stop() ended the loop
        });
    }
};

loop_thread::loop_thread(std::string name) : impl_(std::make_unique<impl>(std::move(name))) {}

loop_thread::~loop_thread() {
    stop();
}

void loop_thread::start() {
    HERALD_ASSERT(!impl_->thread.joinable());
    impl_->running.store(true, std::memory_order_release);
    impl_->thread = std::thread([i = impl_.get()] {
        ::pthread_setname_np(::pthread_self(), i->name.substr(0, 15).c_str());
        i->ioc.run();
    });
}

void loop_thread::stop() {
    if (!impl_->thread.joinable())
        return;
    HERALD_ASSERT(!is_current());
    impl_->work.reset();
    impl_->ioc.stop();
    impl_->thread.join();
    impl_->running.store(false, std::memory_order_release);
}

void loop_thread::post(std::function<void()> fn) {
    boost::asio::post(impl_->ioc, std::move(fn));
}

void loop_thread::run_and_wait(const std::function<void()>& fn) {
    if (!running()) {
        fn();
        return;
    }
    HERALD_ASSERT(!is_current());
    std::promise<void> done;
    boost::asio::post(impl_->ioc, [&] {
        fn();
        done.set_value();
    });
    done.get_future().wait();
}

void loop_thread::repeat(std::function<void()> step) {
    impl_->repeat_step(std::make_shared<std::function<void()>>(std::move(step)));
}

void loop_thread::every(std::chrono::nanoseconds period, std::function<void()> fn) {
    auto p = std::make_unique<impl::periodic>(impl_->ioc, period, std::move(fn));
    impl::periodic& ref = *p;
    impl_->periodics.push_back(std::move(p));  // before start(): no other thread touches the list
    boost::asio::post(impl_->ioc, [&ref] { impl::arm(ref); });
}

bool loop_thread::is_current() const noexcept {
    return impl_->ioc.get_executor().running_in_this_thread();
}

bool loop_thread::running() const noexcept {
    return impl_->running.load(std::memory_order_acquire);
}

boost::asio::io_context& loop_thread::context() noexcept {
    return impl_->ioc;
}

const std::string& loop_thread::name() const noexcept {
    return impl_->name;
}

}  // namespace herald::base
