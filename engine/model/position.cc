#include "model/position.h"

#include <charconv>
#include <system_error>

#include "base/audience_name.h"

namespace herald::model {
namespace {

constexpr std::size_t epoch_digits = 16;

bool is_epoch(std::string_view e) {
    if (e.size() != epoch_digits)
        return false;
    for (const char c : e) {
        if ((c < '0' || c > '9') && (c < 'a' || c > 'f'))
            return false;
    }
    return true;
}

bool parse_seq(std::string_view text, seq_no& out) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty())
        return false;
    out = seq_no(v);
    return true;
}

base::failure refuse(std::string why) {
    return base::failure(std::make_error_code(std::errc::invalid_argument), std::move(why));
}

}  // namespace

std::string epoch_of(std::string_view cluster_id, std::string_view topic, std::int32_t partition) {
    // FNV-1a, 64 bits: stable across builds and machines (std::hash is not);
    // this names a sequence space, it protects nothing.
    std::uint64_t h = 0xcbf29ce484222325ULL;
    const auto mix = [&h](std::string_view bytes) {
        for (const char c : bytes) {
            h ^= static_cast<unsigned char>(c);
            h *= 0x100000001b3ULL;
        }
        h ^= 0xff;  // separator: ("ab","c") and ("a","bc") differ
        h *= 0x100000001b3ULL;
    };
    mix(cluster_id);
    mix(topic);
    mix(std::to_string(partition));
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(epoch_digits, '0');
    for (std::size_t i = 0; i < epoch_digits; ++i) {
        out[epoch_digits - 1 - i] = digits[h & 0xf];
        h >>= 4;
    }
    return out;
}

base::result<std::vector<audience_position>> parse_positions(std::string_view text,
                                                             std::size_t max_positions) {
    std::vector<audience_position> out;
    if (text.find(':') == std::string_view::npos) {
        seq_no seq;
        if (!parse_seq(text, seq))
            return refuse("since / Last-Event-ID must be SEQ or AUDIENCE:EPOCH:SEQ[,...]");
        out.push_back({{}, {}, seq});
        return out;
    }
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
        const std::size_t last = item.rfind(':');
        const std::size_t mid = last == std::string_view::npos || last == 0 ? std::string_view::npos
                                                                            : item.rfind(':', last - 1);
        if (mid == std::string_view::npos)
            return refuse("a position is AUDIENCE:EPOCH:SEQ");
        audience_position p;
        p.audience = std::string(item.substr(0, mid));
        p.epoch = std::string(item.substr(mid + 1, last - mid - 1));
        if (!base::is_valid_audience(p.audience))
            return refuse("a position names an invalid audience");
        if (!is_epoch(p.epoch))
            return refuse("a position's epoch is 16 hex digits");
        if (!parse_seq(item.substr(last + 1), p.seq))
            return refuse("a position's seq is a number");
        for (const auto& q : out) {
            if (q.audience == p.audience)
                return refuse("audience " + p.audience + " has two positions");
        }
        out.push_back(std::move(p));
        if (out.size() > max_positions)
            return refuse("too many positions: at most " + std::to_string(max_positions));
    }
    if (out.empty())
        return refuse("since / Last-Event-ID is empty");
    return out;
}

void append_position(std::string& out, std::string_view audience, std::string_view epoch, seq_no seq) {
    out.append(audience).push_back(':');
    out.append(epoch).push_back(':');
    out.append(std::to_string(seq.get()));
}

}  // namespace herald::model
