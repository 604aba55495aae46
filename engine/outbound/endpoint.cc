#include "outbound/endpoint.h"

namespace herald::outbound {

std::optional<endpoint> parse_endpoint(std::string_view url) {
    endpoint ep;
    if (url.rfind("https://", 0) == 0) {
        ep.tls = true;
        url.remove_prefix(8);
    } else if (url.rfind("http://", 0) == 0) {
        url.remove_prefix(7);
    } else {
        return std::nullopt;
    }
    const auto slash = url.find_first_of("/?");
    std::string_view authority = url.substr(0, slash);
    ep.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
    if (!ep.target.empty() && ep.target.front() == '?')
        ep.target.insert(0, "/");
    std::string_view host = authority;
    std::string_view port;
    if (!authority.empty() && authority.front() == '[') {  // [v6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return std::nullopt;
        host = authority.substr(1, close - 1);
        if (close + 1 < authority.size() && authority[close + 1] == ':')
            port = authority.substr(close + 2);
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
    }
    if (host.empty())
        return std::nullopt;
    ep.host = std::string(host);
    ep.port = port.empty() ? (ep.tls ? "443" : "80") : std::string(port);
    return ep;
}

}  // namespace herald::outbound
