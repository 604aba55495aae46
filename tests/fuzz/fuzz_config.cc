// libFuzzer: configuration from the command line, the environment and a
// config file. Lines of the input become argv entries, HERALD_* environment
// entries and the lines of a --config file; every refusal must name a field.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    std::vector<std::string> argv_s{"heraldd"};
    std::vector<std::string> env;
    std::string file;
    std::size_t pos = 0;
    while (pos <= text.size()) {
        const std::size_t end = std::min(text.find('\n', pos), text.size());
        std::string line = text.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("HERALD_", 0) == 0) {
            env.push_back(line);
        } else if (line.rfind("--", 0) == 0) {
            argv_s.push_back(line);
        } else {
            file += line + "\n";
        }
    }
    static const std::string path = "/tmp/herald-fuzz-config-" + std::to_string(::getpid());
    if (FILE* f = std::fopen(path.c_str(), "w")) {
        std::fwrite(file.data(), 1, file.size(), f);
        std::fclose(f);
        argv_s.push_back("--config");
        argv_s.push_back(path);
    }
    std::vector<const char*> argv;
    for (const auto& a : argv_s) argv.push_back(a.c_str());
    auto r = herald::config::load(static_cast<int>(argv.size()), argv.data(), env);
    if (!r && r.err().detail.empty())
        __builtin_trap();
    return 0;
}
