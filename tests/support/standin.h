// Starts tools/gateway-standin (the stand-in WhatsApp Cloud API host and
// webhook receiver) for integration tests, learns its port from its first
// stdout line, and reads back what it received as protobuf Structs.
#pragma once

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "support/daemon.h"
#include "support/peer.h"

namespace herald::testing {

class gateway_standin {
  public:
    explicit gateway_standin(std::vector<std::string> args) {
        int out[2];
        if (::pipe(out) != 0)
            return;
        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
        posix_spawn_file_actions_addclose(&actions, out[0]);
        std::vector<std::string> argv_s{"/usr/bin/env", "python3",
                                        std::string(HERALD_SOURCE_DIR) + "/tools/gateway-standin", "--port",
                                        "0"};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char*> argv;
        for (auto& a : argv_s) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ) != 0)
            pid_ = -1;
        posix_spawn_file_actions_destroy(&actions);
        ::close(out[1]);
        // First line: "gateway-standin listening on 127.0.0.1:PORT".
        std::string line;
        char c = 0;
        while (line.find('\n') == std::string::npos && ::read(out[0], &c, 1) == 1) line += c;
        ::close(out[0]);
        const auto colon = line.rfind(':');
        if (colon != std::string::npos)
            port = static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
    }
    ~gateway_standin() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    gateway_standin(const gateway_standin&) = delete;
    gateway_standin& operator=(const gateway_standin&) = delete;

    [[nodiscard]] std::string url(const std::string& path) const {
        return "http://127.0.0.1:" + std::to_string(port) + path;
    }

    /// GET path, parsed as JSON (an empty Struct if that fails).
    [[nodiscard]] google::protobuf::Struct get_json(const std::string& path) const {
        google::protobuf::Struct s;
        if (auto r = http_get(port, path, 30000))
            (void)google::protobuf::util::JsonStringToMessage(r->body, &s);
        return s;
    }

    bool inject(const std::string& json) const {
        auto r = http_call(port, "POST", "/_standin/inject", json);
        return r && r->status == 200;
    }

    std::uint16_t port = 0;

  private:
    pid_t pid_ = -1;
};

}  // namespace herald::testing
