// heraldd: reads the configuration, runs the application until SIGTERM or
// SIGINT, drains, exits 0. A bad configuration exits 2 with a message naming
// the setting; a start-up failure exits 1.
#include <iostream>
#include <string>
#include <vector>

#include "app/application.h"
#include "base/log.h"
#include "config/config.h"

extern char** environ;

int main(int argc, char** argv) {
    using namespace herald;
    std::vector<std::string> env;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
    auto loaded = config::load(argc, argv, env);
    if (!loaded) {
        if (loaded.err().code == std::errc::operation_canceled) {
            if (loaded.err().detail == "version")
                std::cout << "heraldd " << HERALD_VERSION << "\n";
            else
                std::cout << config::usage("heraldd");
            return 0;
        }
        std::cerr << "heraldd: config error: " << loaded.err().detail << "\n";
        return 2;
    }
    base::set_log_level(loaded->cfg.log_level);
    if (base::current_log_level() == base::log_level::debug) {
        HERALD_LOG_DEBUG(
            "config", "effective configuration",
            loaded->cfg.config_file.empty() ? std::string() : " (file " + loaded->cfg.config_file + ")");
        for (const auto& line : config::list(config::describe(loaded->cfg), '\n'))
            HERALD_LOG_DEBUG("config", "  ", line);
    }
    for (const auto& w : loaded->warnings) HERALD_LOG_WARN("config", w);

    app::application heraldd(loaded->cfg);
    if (auto started = heraldd.start(); !started) {
        // A setting that turned out wrong (a keys file, a JWT key) is a
        // configuration error like any other: exit 2; anything else 1.
        const bool config = started.err().code == std::errc::invalid_argument;
        std::cerr << "heraldd: " << (config ? "config error: " : "") << started.err().detail << "\n";
        return config ? 2 : 1;
    }
    heraldd.wait_for_signal();
    heraldd.drain();
    return 0;
}
