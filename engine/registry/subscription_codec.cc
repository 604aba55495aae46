#include "registry/subscription_codec.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "base/audience_name.h"
#include "base/webhook_secret_syntax.h"

namespace herald::registry {
namespace {

class category : public std::error_category {
  public:
    const char* name() const noexcept override { return "herald.registry"; }
    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::malformed_json:
                return "malformed_json";
            case errc::malformed_protobuf:
                return "malformed_protobuf";
            case errc::missing_recipient_id:
                return "missing_recipient_id";
            case errc::invalid_recipient_id:
                return "invalid_recipient_id";
            case errc::invalid_tenant:
                return "invalid_tenant";
            case errc::missing_audiences:
                return "missing_audiences";
            case errc::invalid_audience:
                return "invalid_audience";
            case errc::missing_channel:
                return "missing_channel";
            case errc::invalid_address:
                return "invalid_address";
            case errc::missing_consent:
                return "missing_consent";
            case errc::invalid_field:
                return "invalid_field";
            case errc::insecure_webhook:
                return "insecure_webhook";
        }
        return "unknown";
    }
};

base::failure fail(errc e, std::string detail) {
    return base::failure(make_error_code(e), std::move(detail));
}

std::string shown(std::string_view s) {
    return std::string(s.substr(0, 160)) + (s.size() > 160 ? "…" : "");
}

bool tenant_ok(std::string_view t) {
    if (t.size() > 64)
        return false;
    return std::all_of(t.begin(), t.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    });
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return std::string(s);
}

std::vector<std::string> split_list(std::string_view s) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    while (pos <= s.size()) {
        const std::size_t end = std::min(s.find(';', pos), s.size());
        if (auto item = trim(s.substr(pos, end - pos)); !item.empty())
            out.push_back(std::move(item));
        pos = end + 1;
    }
    return out;
}

}  // namespace

const std::error_category& registry_category() noexcept {
    static const category c;
    return c;
}

bool is_e164(std::string_view n) noexcept {
    if (n.size() < 9 || n.size() > 16 || n.front() != '+' || n[1] == '0')
        return false;
    return std::all_of(n.begin() + 1, n.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_webhook_url(std::string_view url) noexcept {
    if (url.size() > 2048)
        return false;
    std::string_view rest;
    if (url.rfind("https://", 0) == 0) {
        rest = url.substr(8);
    } else if (url.rfind("http://", 0) == 0) {
        rest = url.substr(7);
    } else {
        return false;
    }
    for (const char c : url) {
        if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '#')
            return false;
    }
    const std::string_view authority = rest.substr(0, rest.find_first_of("/?"));
    if (authority.empty() || authority.find('@') != std::string_view::npos)
        return false;
    std::string_view host = authority;
    std::string_view port;
    if (authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos || close == 1)
            return false;
        if (close + 1 < authority.size()) {
            if (authority[close + 1] != ':')
                return false;
            port = authority.substr(close + 2);
            if (port.empty())
                return false;
        }
        host = authority.substr(1, close - 1);
    } else if (const auto colon = authority.rfind(':'); colon != std::string_view::npos) {
        host = authority.substr(0, colon);
        port = authority.substr(colon + 1);
        if (port.empty())
            return false;
    }
    if (host.empty())
        return false;
    if (!port.empty()) {
        if (port.size() > 5 ||
            !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
            return false;
        const int p = std::stoi(std::string(port));
        if (p < 1 || p > 65535)
            return false;
    }
    return true;
}

bool is_valid_recipient_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > 128)
        return false;
    return std::all_of(id.begin(), id.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == ':' || c == '@' ||
               c == '+' || c == '-';
    });
}

std::string subscriber_key(std::string_view tenant, std::string_view recipient_id) {
    std::string key;
    key.reserve(tenant.size() + 1 + recipient_id.size());
    key.append(tenant).push_back('/');
    key.append(recipient_id);
    return key;
}

std::optional<subscriber> parse_subscriber_key(std::string_view key) {
    const auto slash = key.find('/');
    subscriber out;
    if (slash == std::string_view::npos) {
        out.tenant = "default";
        out.recipient_id = std::string(key);
    } else {
        out.tenant = std::string(key.substr(0, slash));
        out.recipient_id = std::string(key.substr(slash + 1));
        if (out.tenant.empty() || !tenant_ok(out.tenant))
            return std::nullopt;
    }
    if (!is_valid_recipient_id(out.recipient_id))
        return std::nullopt;
    return out;
}

base::result<void> validate_subscription(herald::v1::Subscription& s) {
    if (s.recipient_id().empty())
        return fail(errc::missing_recipient_id, "recipient_id: required");
    if (!is_valid_recipient_id(s.recipient_id()))
        return fail(
            errc::invalid_recipient_id,
            "recipient_id: 1..128 characters of [A-Za-z0-9._:@+-], got \"" + shown(s.recipient_id()) + "\"");
    if (s.tenant().empty())
        s.set_tenant("default");
    if (!tenant_ok(s.tenant()))
        return fail(errc::invalid_tenant,
                    "tenant: 0..64 characters of [a-z0-9._-], got \"" + shown(s.tenant()) + "\"");
    if (s.audiences().empty())
        return fail(errc::missing_audiences, "audiences: at least one is required");
    if (s.audiences_size() > 256)
        return fail(errc::missing_audiences,
                    "audiences: at most 256, got " + std::to_string(s.audiences_size()));
    for (const auto& a : s.audiences()) {
        if (!base::is_valid_audience(a))
            return fail(errc::invalid_audience,
                        "audiences: \"" + shown(a) + "\" is not 1..128 characters of [a-z0-9._:-]");
    }
    std::sort(s.mutable_audiences()->begin(), s.mutable_audiences()->end());
    s.mutable_audiences()->erase(std::unique(s.mutable_audiences()->begin(), s.mutable_audiences()->end()),
                                 s.mutable_audiences()->end());
    switch (s.channel()) {
        case herald::v1::CHANNEL_WEBHOOK:
            if (!is_webhook_url(s.address()))
                return fail(errc::invalid_address, "address: not an http(s) URL: " + shown(s.address()));
            break;
        case herald::v1::CHANNEL_WHATSAPP:
        case herald::v1::CHANNEL_SMS:
            if (!is_e164(s.address()))
                return fail(errc::invalid_address,
                            "address: not an E.164 phone number: " + shown(s.address()));
            break;
        default:
            return fail(errc::missing_channel,
                        "channel: one of CHANNEL_WEBHOOK, CHANNEL_WHATSAPP, CHANNEL_SMS");
    }
    if (!s.has_opted_out_at()) {
        if (!s.has_consent() || !s.consent().has_given_at())
            return fail(errc::missing_consent, "consent.given_at: required unless opted_out_at is set");
        if (s.consent().source().empty() || s.consent().source().size() > 128)
            return fail(errc::missing_consent, "consent.source: 1..128 characters required");
    }
    if (s.tags_size() > 32)
        return fail(errc::invalid_field, "tags: at most 32, got " + std::to_string(s.tags_size()));
    if (!s.webhook_secret().empty()) {
        // Never quoted: the detail reaches answers, dead letters and the CLI.
        if (s.channel() != herald::v1::CHANNEL_WEBHOOK)
            return fail(errc::invalid_field,
                        "webhook_secret: only a webhook subscription has its own secret");
        if (!base::is_webhook_secret_list(s.webhook_secret()))
            return fail(errc::invalid_field, "webhook_secret: " + std::string(base::webhook_secret_problem));
    }
    return {};
}

bool is_insecure_webhook(const herald::v1::Subscription& s) noexcept {
    return s.channel() == herald::v1::CHANNEL_WEBHOOK && !s.has_opted_out_at() &&
           s.address().rfind("http://", 0) == 0;
}

base::result<void> check_webhook_transport(const herald::v1::Subscription& s, bool allow_insecure) {
    if (allow_insecure || !is_insecure_webhook(s))
        return {};
    return fail(errc::insecure_webhook,
                "address: plain http:// webhooks are refused (the announcement and its signature would "
                "cross the network readable); use https://, or start heraldd with "
                "--allow-insecure-webhooks");
}

std::string public_detail(const base::error& e) {
    if (e.code.category() != registry_category())
        return {};
    switch (static_cast<errc>(e.code.value())) {
        case errc::malformed_json:
            return "not protobuf JSON of herald.v1.Subscription";
        case errc::malformed_protobuf:
            return "not a herald.v1.Subscription";
        case errc::invalid_address: {
            // "address: not an E.164 phone number: +49...": the rule, not the number.
            const auto first = e.detail.find(": ");
            const auto second = first == std::string::npos ? first : e.detail.find(": ", first + 2);
            return e.detail.substr(0, second);
        }
        case errc::invalid_audience:
            return "audiences: each 1..128 characters of [a-z0-9._:-]";
        default: {
            // ", got \"...\"" quotes what was sent instead of a recipient id or tenant.
            std::string out = e.detail.substr(0, e.detail.find(", got \""));
            return out.substr(0, out.find('"'));
        }
    }
}

std::optional<subscriber> identify(std::string_view value, bool is_json) {
    std::string recipient_id;
    std::string tenant;
    if (is_json) {
        // A generic parse: the record may be refused for a field's type.
        google::protobuf::Struct generic;
        if (!google::protobuf::util::JsonStringToMessage(
                 google::protobuf::StringPiece(value.data(), value.size()), &generic)
                 .ok())
            return std::nullopt;
        const auto& f = generic.fields();
        for (const char* name : {"recipient_id", "recipientId"}) {
            if (const auto it = f.find(name); it != f.end() && it->second.has_string_value())
                recipient_id = it->second.string_value();
        }
        if (const auto it = f.find("tenant"); it != f.end() && it->second.has_string_value())
            tenant = it->second.string_value();
    } else {
        herald::v1::Subscription s;
        if (!s.ParseFromArray(value.data(), static_cast<int>(value.size())))
            return std::nullopt;
        recipient_id = s.recipient_id();
        tenant = s.tenant();
    }
    if (tenant.empty())
        tenant = "default";
    if (!is_valid_recipient_id(recipient_id) || !tenant_ok(tenant))
        return std::nullopt;
    return subscriber{tenant, recipient_id};
}

base::result<herald::v1::Subscription> decode_subscription(std::string_view value, bool is_json) {
    herald::v1::Subscription s;
    if (is_json) {
        google::protobuf::util::JsonParseOptions opts;
        opts.ignore_unknown_fields = false;
        auto status = google::protobuf::util::JsonStringToMessage(
            google::protobuf::StringPiece(value.data(), value.size()), &s, opts);
        if (!status.ok()) {
            // People write "channel":"webhook"; the canonical form is
            // "CHANNEL_WEBHOOK". Accept the short names too.
            google::protobuf::Struct generic;
            std::string canonical;
            if (google::protobuf::util::JsonStringToMessage(
                    google::protobuf::StringPiece(value.data(), value.size()), &generic)
                    .ok()) {
                auto it = generic.mutable_fields()->find("channel");
                if (it != generic.mutable_fields()->end() && it->second.has_string_value()) {
                    std::string name = lower(it->second.string_value());
                    if (name == "webhook" || name == "whatsapp" || name == "sms") {
                        for (auto& c : name)
                            c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                        it->second.set_string_value("CHANNEL_" + name);
                        (void)google::protobuf::util::MessageToJsonString(generic, &canonical);
                        s.Clear();
                        status = google::protobuf::util::JsonStringToMessage(canonical, &s, opts);
                    }
                }
            }
        }
        if (!status.ok())
            return fail(errc::malformed_json, std::string(status.message()));
    } else if (!s.ParseFromArray(value.data(), static_cast<int>(value.size()))) {
        return fail(errc::malformed_protobuf, "not a herald.v1.Subscription");
    }
    if (auto v = validate_subscription(s); !v)
        return base::failure(v.err());
    return s;
}

std::string to_json(const herald::v1::Subscription& s) {
    std::string out;
    google::protobuf::util::JsonPrintOptions opts;
    opts.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(s, &out, opts);
    return out;
}

std::string to_api_json(const herald::v1::Subscription& s) {
    if (s.webhook_secret().empty())
        return to_json(s);
    herald::v1::Subscription shown = s;
    shown.clear_webhook_secret();
    return to_json(shown);
}

std::string redact_secrets(std::string record) {
    constexpr std::string_view prefix = "whsec_";
    const auto b64 = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '+' || c == '/' || c == '=';
    };
    for (std::size_t at = record.find(prefix); at != std::string::npos; at = record.find(prefix, at)) {
        at += prefix.size();
        for (; at < record.size() && b64(record[at]); ++at) record[at] = '*';
    }
    return record;
}

csv_import parse_subscriptions_csv(std::string_view text) {
    csv_import out;
    // Split into records of fields, remembering the line each record starts on.
    struct record {
        std::size_t line;
        std::vector<std::string> fields;
        bool bad_quote = false;
    };
    std::vector<record> records;
    std::size_t line = 1;
    std::size_t i = 0;
    while (i < text.size()) {
        record r{line, {}, false};
        std::string field;
        bool in_quotes = false;
        bool at_field_start = true;
        for (; i < text.size(); ++i) {
            const char c = text[i];
            if (in_quotes) {
                if (c == '"') {
                    if (i + 1 < text.size() && text[i + 1] == '"') {
                        field += '"';
                        ++i;
                    } else {
                        in_quotes = false;
                    }
                } else {
                    if (c == '\n')
                        ++line;
                    field += c;
                }
                continue;
            }
            if (c == '"' && at_field_start) {
                in_quotes = true;
                at_field_start = false;
                continue;
            }
            if (c == ',') {
                r.fields.push_back(std::move(field));
                field.clear();
                at_field_start = true;
                continue;
            }
            if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
                continue;
            if (c == '\n') {
                ++line;
                ++i;
                break;
            }
            if (c == '"')
                r.bad_quote = true;
            field += c;
            at_field_start = false;
        }
        if (in_quotes)
            r.bad_quote = true;
        r.fields.push_back(std::move(field));
        const bool blank = r.fields.size() == 1 && trim(r.fields[0]).empty();
        if (!blank)
            records.push_back(std::move(r));
    }
    if (records.empty()) {
        out.errors.push_back({1, "empty file: the first line must name the columns"});
        return out;
    }
    static const std::vector<std::string> required = {"recipient_id", "audiences",      "channel",
                                                      "address",      "consent_source", "consent_given_at"};
    static const std::vector<std::string> optional = {"tenant", "tags"};
    std::map<std::string, std::size_t> column;
    const auto& header = records.front();
    for (std::size_t c = 0; c < header.fields.size(); ++c) {
        const std::string name = lower(trim(header.fields[c]));
        if (std::find(required.begin(), required.end(), name) == required.end() &&
            std::find(optional.begin(), optional.end(), name) == optional.end()) {
            out.errors.push_back({header.line, "header: unknown column \"" + shown(name) + "\""});
            return out;
        }
        if (column.count(name) != 0) {
            out.errors.push_back({header.line, "header: column \"" + name + "\" appears twice"});
            return out;
        }
        column[name] = c;
    }
    for (const auto& name : required) {
        if (column.count(name) == 0) {
            out.errors.push_back({header.line, "header: missing column \"" + name + "\""});
            return out;
        }
    }
    std::map<std::string, std::size_t> first_line_of;
    for (std::size_t k = 1; k < records.size(); ++k) {
        const auto& r = records[k];
        if (r.bad_quote) {
            out.errors.push_back({r.line, "malformed quoting"});
            continue;
        }
        if (r.fields.size() != header.fields.size()) {
            out.errors.push_back({r.line, "expected " + std::to_string(header.fields.size()) +
                                              " fields, got " + std::to_string(r.fields.size())});
            continue;
        }
        const auto get = [&](const std::string& name) {
            const auto it = column.find(name);
            return it == column.end() ? std::string() : trim(r.fields[it->second]);
        };
        herald::v1::Subscription s;
        s.set_recipient_id(get("recipient_id"));
        s.set_tenant(get("tenant"));
        for (auto& a : split_list(get("audiences"))) s.add_audiences(std::move(a));
        for (auto& t : split_list(get("tags"))) s.add_tags(std::move(t));
        const std::string channel = lower(get("channel"));
        if (channel == "webhook") {
            s.set_channel(herald::v1::CHANNEL_WEBHOOK);
        } else if (channel == "whatsapp") {
            s.set_channel(herald::v1::CHANNEL_WHATSAPP);
        } else if (channel == "sms") {
            s.set_channel(herald::v1::CHANNEL_SMS);
        } else {
            out.errors.push_back(
                {r.line, "channel: must be webhook, whatsapp or sms, got \"" + shown(channel) + "\""});
            continue;
        }
        s.set_address(get("address"));
        s.mutable_consent()->set_source(get("consent_source"));
        const std::string given = get("consent_given_at");
        if (!given.empty() &&
            !google::protobuf::util::TimeUtil::FromString(given, s.mutable_consent()->mutable_given_at())) {
            out.errors.push_back(
                {r.line, "consent_given_at: not an RFC 3339 time: \"" + shown(given) + "\""});
            continue;
        }
        if (given.empty())
            s.mutable_consent()->clear_given_at();
        if (auto v = validate_subscription(s); !v) {
            out.errors.push_back({r.line, v.err().detail});
            continue;
        }
        if (const auto seen = first_line_of.find(s.recipient_id()); seen != first_line_of.end()) {
            out.errors.push_back({r.line, "recipient_id: duplicate of line " + std::to_string(seen->second)});
            continue;
        }
        first_line_of.emplace(s.recipient_id(), r.line);
        out.accepted.emplace_back(r.line, std::move(s));
    }
    return out;
}

}  // namespace herald::registry
