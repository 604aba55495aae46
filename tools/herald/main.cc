// herald: the command-line tool for people and scripts around heraldd.
//   herald announce  --audience A --text T     publish an announcement to Kafka
//   herald listen    --audience A [--sse]      print live frames as they arrive
//   herald status                              what heraldd runs on, and whether it is ready
//   herald dlq                                 print dead-lettered records with their reasons
//   herald subscribe/unsubscribe/forget/import  manage outbound subscribers (ops API)
//   herald status ID / receipts --broadcast ID  follow an outbound broadcast
//   herald scheduled / cancel ID               what waits for its deliver_at; stop a broadcast
// It finds heraldd's Kafka (the embedded cluster's port is random) through
// GET /v1/info on the ops port, so with a local heraldd no flags are needed.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <jwt.h>
#include <librdkafka/rdkafkacpp.h>

#include <cctype>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "base/audience_name.h"
#include "config/config.h"
#include "herald/v1/announcement.pb.h"
#include "herald/v1/subscription.pb.h"
#include "kafka/client_config.h"
#include "net.h"
#include "registry/subscription_codec.h"
#include "security/admin_keys.h"

namespace herald::cli {
namespace {

using namespace std::chrono_literals;

constexpr int exit_runtime = 1;
constexpr int exit_usage = 2;

struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};
struct runtime_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// --name value / --name=value / bare --flag, in order; repeated names kept.
struct args {
    std::vector<std::pair<std::string, std::string>> items;
    std::vector<std::string> bare_flags;

    bool has(const std::string& name) const {
        for (const auto& f : bare_flags) {
            if (f == name)
                return true;
        }
        for (const auto& [k, v] : items) {
            if (k == name)
                return true;
        }
        return false;
    }
    std::string get(const std::string& name, const std::string& fallback = "") const {
        std::string out = fallback;
        for (const auto& [k, v] : items) {
            if (k == name)
                out = v;
        }
        return out;
    }
    std::vector<std::string> all(const std::string& name) const {
        std::vector<std::string> out;
        for (const auto& [k, v] : items) {
            if (k == name)
                out.push_back(v);
        }
        return out;
    }
};

args parse(int argc, char** argv, int first, const std::vector<std::string>& flags_without_value) {
    args a;
    for (int i = first; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg.rfind("--", 0) != 0)
            throw usage_error("unexpected argument \"" + arg + "\"");
        arg = arg.substr(2);
        if (const auto eq = arg.find('='); eq != std::string::npos) {
            a.items.emplace_back(arg.substr(0, eq), arg.substr(eq + 1));
            continue;
        }
        bool bare = false;
        for (const auto& f : flags_without_value) bare |= f == arg;
        if (bare) {
            a.bare_flags.push_back(arg);
            continue;
        }
        if (i + 1 >= argc)
            throw usage_error("--" + arg + " needs a value");
        a.items.emplace_back(arg, argv[++i]);
    }
    return a;
}

std::string env_or(const char* name, const std::string& fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

/// What GET /v1/info on the ops port says (fields read through protobuf's JSON parser).
struct info {
    std::string brokers;
    std::string topic_announcements = "herald.announcements";
    std::string topic_dlq = "herald.dlq";
    int client_port = 8080;
    google::protobuf::Struct raw;
};

std::optional<info> fetch_info(const url& ops, std::string* error) {
    const auto r = http_get(ops, "/v1/info", 5s);
    if (!r.error.empty() || r.status != 200) {
        if (error)
            *error = !r.error.empty()  ? r.error
                     : r.status == 401 ? "HTTP 401: no valid API key (use --api-key-file, HERALD_API_KEY or "
                                         "--data-dir to find heraldd's admin.key)"
                                       : "HTTP " + std::to_string(r.status);
        return std::nullopt;
    }
    info out;
    google::protobuf::util::JsonParseOptions options;
    options.ignore_unknown_fields = true;
    if (!google::protobuf::util::JsonStringToMessage(r.body, &out.raw, options).ok()) {
        if (error)
            *error = "unreadable /v1/info";
        return std::nullopt;
    }
    const auto& f = out.raw.fields();
    if (auto k = f.find("kafka"); k != f.end()) {
        out.brokers = k->second.struct_value().fields().at("bootstrap_servers").string_value();
    }
    if (auto t = f.find("topics"); t != f.end()) {
        const auto& topics = t->second.struct_value().fields();
        out.topic_announcements = topics.at("announcements").string_value();
        out.topic_dlq = topics.at("dlq").string_value();
    }
    if (auto p = f.find("client_port"); p != f.end())
        out.client_port = static_cast<int>(p->second.number_value());
    return out;
}

/// The first line of a file, trailing whitespace removed ("" if unreadable).
std::string first_line(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    std::getline(in, line);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
        line.pop_back();
    return line;
}

/// The ops API key: --api-key-file, --api-key (visible in ps: prefer the
/// others), HERALD_API_KEY, else the admin key heraldd generated in its data
/// directory (--data-dir, HERALD_DATA_DIR, default herald-data) when readable.
std::string api_key(const args& a) {
    if (a.has("api-key-file")) {
        std::string key = first_line(a.get("api-key-file"));
        if (key.empty())
            throw usage_error("--api-key-file: cannot read a key from " + a.get("api-key-file"));
        return key;
    }
    if (a.has("api-key"))
        return a.get("api-key");
    if (std::string key = env_or("HERALD_API_KEY", ""); !key.empty())
        return key;
    return first_line(a.get("data-dir", env_or("HERALD_DATA_DIR", "herald-data")) + "/admin.key");
}

/// --ca-file / HERALD_CA_FILE: a PEM bundle of CAs trusted for https:// and
/// wss:// besides the system's ("" = the system's only).
std::string ca_file(const args& a) {
    std::string path = a.get("ca-file", env_or("HERALD_CA_FILE", ""));
    if (!path.empty() && !std::ifstream(path))
        throw usage_error("--ca-file: cannot read " + path);
    return path;
}

url ops_url(const args& a) {
    const std::string text = a.get("ops", env_or("HERALD_OPS_URL", "http://127.0.0.1:8081"));
    auto u = parse_url(text);
    if (!u || (u->scheme != "http" && u->scheme != "https"))
        throw usage_error("--ops: not an http:// or https:// URL: " + text);
    u->credential = api_key(a);
    u->ca_file = ca_file(a);
    return *u;
}

/// "?tenant=T" when --tenant is given, else "".
std::string tenant_query(const args& a) {
    return a.has("tenant") ? "?tenant=" + a.get("tenant") : std::string();
}

/// Brokers and topic names: flags and environment first, else from heraldd's /v1/info.
info kafka_info(const args& a) {
    info i;
    std::string brokers = a.get("brokers", env_or("HERALD_BROKERS", ""));
    if (brokers.empty()) {
        std::string error;
        auto fetched = fetch_info(ops_url(a), &error);
        if (!fetched) {
            throw runtime_error("cannot reach heraldd's ops API at " +
                                a.get("ops", env_or("HERALD_OPS_URL", "http://127.0.0.1:8081")) +
                                " to find its Kafka (" + error + "); pass --brokers HOST:PORT");
        }
        i = *fetched;
    } else {
        i.brokers = brokers;
    }
    if (a.has("topic"))
        i.topic_announcements = a.get("topic");
    return i;
}

/// "250ms", "10s", "5m", "1h" (a bare number is seconds).
std::chrono::milliseconds parse_duration(const std::string& flag, const std::string& v) {
    std::size_t used = 0;
    double n = 0;
    try {
        n = std::stod(v, &used);
    } catch (const std::exception&) {
        throw usage_error(flag + ": not a duration: \"" + v + "\" (use 250ms, 10s, 5m, 1h)");
    }
    const std::string unit = v.substr(used);
    double factor = 0;
    if (unit == "ms")
        factor = 1;
    else if (unit == "s" || unit.empty())
        factor = 1000;
    else if (unit == "m")
        factor = 60000;
    else if (unit == "h")
        factor = 3600000;
    else
        throw usage_error(flag + ": unknown unit in \"" + v + "\" (use ms, s, m, h)");
    if (n < 0)
        throw usage_error(flag + ": must not be negative");
    return std::chrono::milliseconds(static_cast<std::int64_t>(n * factor));
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

/// "+10s" (relative to now) or an RFC 3339 instant.
google::protobuf::Timestamp parse_instant(const std::string& flag, const std::string& v) {
    using google::protobuf::util::TimeUtil;
    if (!v.empty() && v[0] == '+') {
        return TimeUtil::MillisecondsToTimestamp(now_ms() + parse_duration(flag, v.substr(1)).count());
    }
    google::protobuf::Timestamp t;
    if (!TimeUtil::FromString(v, &t))
        throw usage_error(flag + ": not an RFC 3339 time: " + v);
    return t;
}

/// librdkafka properties for the CLI's Kafka clients (security.protocol,
/// sasl.*, ssl.*): --kafka-properties-file (KEY=VALUE lines, so secrets stay
/// out of argv), then HERALD_KAFKA_PROPERTIES (newline- or comma-separated),
/// then --kafka-property KEY=VALUE (repeatable); a later KEY wins. Checked
/// with librdkafka before use: a property it refuses is a usage error that
/// names it, with credentials masked.
kafka::properties kafka_properties(const args& a) {
    kafka::properties props;
    if (a.has("kafka-properties-file")) {
        const std::string path = a.get("kafka-properties-file");
        std::ifstream in(path);
        if (!in)
            throw usage_error("--kafka-properties-file: cannot read " + path);
        std::string line;
        int number = 0;
        while (std::getline(in, line)) {
            ++number;
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
                line.pop_back();
            const auto first = line.find_first_not_of(" \t");
            if (first == std::string::npos || line[first] == '#')
                continue;
            if (auto problem = config::add_kafka_properties(props, line, false); !problem.empty())
                throw usage_error(path + ":" + std::to_string(number) + ": " + problem);
        }
    }
    if (const char* env = std::getenv("HERALD_KAFKA_PROPERTIES"); env != nullptr) {
        if (auto problem = config::add_kafka_properties(props, env, true); !problem.empty())
            throw usage_error("HERALD_KAFKA_PROPERTIES: " + problem);
    }
    for (const auto& item : a.all("kafka-property")) {
        if (auto problem = config::add_kafka_properties(props, item, false); !problem.empty())
            throw usage_error("--kafka-property: " + problem);
    }
    static constexpr kafka::owned_key cli_owned[] = {{"bootstrap.servers", "use --brokers"},
                                                     {"metadata.broker.list", "use --brokers"}};
    if (auto ok = kafka::validate(props, cli_owned); !ok)
        throw usage_error(ok.err().detail);
    return props;
}

/// A client of `brokers`: the CLI's settings and `extra`, then the operator's properties.
std::unique_ptr<RdKafka::Conf> kafka_conf(const args& a, const std::string& brokers,
                                          const kafka::properties& extra = {}) {
    kafka::properties settings{
        {"bootstrap.servers", brokers}, {"client.id", "herald-cli"}, {"log_level", "3"}};
    settings.insert(settings.end(), extra.begin(), extra.end());
    auto conf = kafka::client_conf(settings, kafka_properties(a));
    if (!conf)
        throw usage_error(conf.err().detail);
    return std::move(*conf);
}

class delivery_report : public RdKafka::DeliveryReportCb {
  public:
    void dr_cb(RdKafka::Message& m) override {
        err = m.err();
        partition = m.partition();
        offset = m.offset();
        done = true;
    }
    RdKafka::ErrorCode err = RdKafka::ERR_NO_ERROR;
    std::int32_t partition = -1;
    std::int64_t offset = -1;
    bool done = false;
};

int cmd_announce(const args& a) {
    herald::v1::Announcement ann;
    const std::string audience = a.get("audience");
    if (audience.empty())
        throw usage_error("announce needs --audience");
    if (!base::is_valid_audience(audience)) {
        throw usage_error("--audience \"" + audience +
                          "\": 1..128 characters of [a-z0-9._:-], starting with a letter or digit");
    }
    ann.set_audience(audience);
    std::string id = a.get("id");
    if (id.empty()) {
        id = "cli-" + std::to_string(now_ms()) + "-" + std::to_string(std::random_device{}() % 100000);
    }
    ann.set_id(id);
    if (a.has("tenant"))
        ann.set_tenant(a.get("tenant"));
    const int payloads = a.has("text") + a.has("json") + a.has("file");
    if (payloads != 1)
        throw usage_error("announce needs exactly one of --text, --json, --file");
    if (a.has("text")) {
        ann.set_text(a.get("text"));
    } else if (a.has("json")) {
        if (!google::protobuf::util::JsonStringToMessage(a.get("json"), ann.mutable_json()).ok()) {
            throw usage_error("--json: not a JSON object");
        }
    } else {
        FILE* f = std::fopen(a.get("file").c_str(), "rb");
        if (f == nullptr)
            throw runtime_error("cannot read " + a.get("file"));
        std::string data;
        char buf[65536];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) data.append(buf, n);
        std::fclose(f);
        ann.set_binary(data);
        ann.set_content_type(a.get("content-type", "application/octet-stream"));
    }
    if (a.has("priority")) {
        static const std::map<std::string, herald::v1::Priority> names{
            {"low", herald::v1::PRIORITY_LOW},
            {"normal", herald::v1::PRIORITY_NORMAL},
            {"high", herald::v1::PRIORITY_HIGH},
            {"critical", herald::v1::PRIORITY_CRITICAL}};
        const auto it = names.find(a.get("priority"));
        if (it == names.end())
            throw usage_error("--priority: low|normal|high|critical");
        ann.set_priority(it->second);
    }
    if (a.has("deliver-at"))
        *ann.mutable_deliver_at() = parse_instant("--deliver-at", a.get("deliver-at"));
    if (a.has("expires-at"))
        *ann.mutable_expires_at() = parse_instant("--expires-at", a.get("expires-at"));
    if (a.has("ttl")) {
        const auto base_ms = ann.has_deliver_at()
                                 ? google::protobuf::util::TimeUtil::TimestampToMilliseconds(ann.deliver_at())
                                 : now_ms();
        *ann.mutable_expires_at() = google::protobuf::util::TimeUtil::MillisecondsToTimestamp(
            base_ms + parse_duration("--ttl", a.get("ttl")).count());
    }
    if (a.has("collapse-key"))
        ann.set_collapse_key(a.get("collapse-key"));
    for (const auto& label : a.all("label")) {
        const auto eq = label.find('=');
        if (eq == std::string::npos)
            throw usage_error("--label needs key=value");
        (*ann.mutable_labels())[label.substr(0, eq)] = label.substr(eq + 1);
    }

    const info where = kafka_info(a);
    std::string value;
    const bool binary = a.has("protobuf");
    if (binary) {
        value = ann.SerializeAsString();
    } else {
        google::protobuf::util::JsonPrintOptions options;
        options.preserve_proto_field_names = true;
        (void)google::protobuf::util::MessageToJsonString(ann, &value, options);
    }
    auto conf = kafka_conf(a, where.brokers);
    delivery_report report;
    std::string err;
    conf->set("dr_cb", &report, err);
    std::unique_ptr<RdKafka::Producer> producer(RdKafka::Producer::create(conf.get(), err));
    if (!producer)
        throw runtime_error("kafka: " + err);
    RdKafka::Headers* headers = RdKafka::Headers::create();
    if (!binary)
        headers->add("content-type", "application/json");
    const auto rc = producer->produce(where.topic_announcements, RdKafka::Topic::PARTITION_UA,
                                      RdKafka::Producer::RK_MSG_COPY, value.data(), value.size(),
                                      audience.data(), audience.size(), 0, headers, nullptr);
    if (rc != RdKafka::ERR_NO_ERROR) {
        delete headers;
        throw runtime_error("kafka produce: " + RdKafka::err2str(rc));
    }
    producer->flush(10000);
    if (!report.done || report.err != RdKafka::ERR_NO_ERROR) {
        throw runtime_error("announcement not acknowledged by Kafka at " + where.brokers + ": " +
                            (report.done ? RdKafka::err2str(report.err) : std::string("timed out")));
    }
    std::cout << "announced " << id << " to " << audience << " (partition " << report.partition << ", offset "
              << report.offset << ")\n";
    return 0;
}

// `listen --resume FILE`: the positions of every audience (the since list,
// `AUDIENCE:EPOCH:SEQ,...`) kept in a file between runs, so that the next
// run gets exactly what this one did not. Rewritten after each frame by
// write + rename, so a kill leaves either the old or the new list.
class resume_file {
  public:
    explicit resume_file(std::string path) : path_(std::move(path)) {
        std::ifstream in(path_);
        if (!in)
            return;  // no file yet: start at the live edge
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
        std::stringstream items(text);
        std::string item;
        while (std::getline(items, item, ',')) {
            // Audience names may hold ':', so the last two fields are taken from the right.
            const auto last = item.rfind(':');
            const auto middle =
                last == std::string::npos || last == 0 ? std::string::npos : item.rfind(':', last - 1);
            std::uint64_t seq = 0;
            const std::string seq_text = last == std::string::npos ? "" : item.substr(last + 1);
            const auto [end, ec] = std::from_chars(seq_text.data(), seq_text.data() + seq_text.size(), seq);
            if (middle == std::string::npos || middle == 0 || ec != std::errc() ||
                end != seq_text.data() + seq_text.size())
                throw usage_error("--resume " + path_ + ": \"" + item + "\" is not AUDIENCE:EPOCH:SEQ");
            remember(item.substr(0, middle), item.substr(middle + 1, last - middle - 1), seq);
        }
    }

    /// The since= value for a connection joining `audiences` ("" = none known).
    [[nodiscard]] std::string since_for(const std::vector<std::string>& audiences) const {
        std::string out;
        for (const auto& a : audiences) {
            const auto it = positions_.find(a);
            if (it == positions_.end())
                continue;
            // A server without epochs takes only a bare seq, on one audience.
            if (it->second.epoch.empty()) {
                if (audiences.size() == 1)
                    return std::to_string(it->second.seq);
                continue;
            }
            if (!out.empty())
                out += ',';
            out += a + ":" + it->second.epoch + ":" + std::to_string(it->second.seq);
        }
        return out;
    }

    /// Records a received announcement; false if it was already seen (a duplicate).
    bool remember(const std::string& audience, const std::string& epoch, std::uint64_t seq) {
        auto& p = positions_[audience];
        if (p.epoch != epoch || p.seen.empty()) {
            p.epoch = epoch;
            p.seen.clear();
            p.order.clear();
        }
        if (!p.seen.insert(seq).second)
            return false;
        p.order.push_back(seq);
        if (p.order.size() > 1024) {
            p.seen.erase(p.order.front());
            p.order.erase(p.order.begin());
        }
        // The last frame received, not the highest seq: a scheduled
        // announcement is released later with its older seq.
        p.seq = seq;
        return true;
    }

    /// Writes every position to FILE (temp file + rename).
    void save() const {
        std::string text;
        for (const auto& [a, p] : positions_) {
            if (!text.empty())
                text += ',';
            text += a + ":" + p.epoch + ":" + std::to_string(p.seq);
        }
        const std::string tmp = path_ + ".tmp";
        {
            std::ofstream out(tmp, std::ios::trunc);
            out << text << "\n";
            out.flush();
            if (!out)
                throw runtime_error("--resume: cannot write " + tmp);
        }
        if (std::rename(tmp.c_str(), path_.c_str()) != 0)
            throw runtime_error("--resume: cannot rename " + tmp + " to " + path_ + ": " +
                                std::strerror(errno));
    }

  private:
    struct position {
        std::string epoch;
        std::uint64_t seq = 0;
        std::set<std::uint64_t> seen;
        std::vector<std::uint64_t> order;
    };
    std::string path_;
    std::map<std::string, position> positions_;
};

/// A string field of a JSON object ("" if absent or not a string).
std::string string_field(const google::protobuf::Struct& s, const std::string& name) {
    const auto it = s.fields().find(name);
    return it != s.fields().end() && it->second.has_string_value() ? it->second.string_value()
                                                                   : std::string();
}

int cmd_listen(const args& a) {
    const auto audiences = a.all("audience");
    if (audiences.empty())
        throw usage_error("listen needs at least one --audience");
    for (const auto& aud : audiences) {
        if (!base::is_valid_audience(aud))
            throw usage_error("--audience \"" + aud + "\" is not a valid audience name");
    }
    std::optional<url> client;
    const std::string explicit_client = a.get("client", env_or("HERALD_CLIENT_URL", ""));
    if (!explicit_client.empty()) {
        client = parse_url(explicit_client);
        if (!client)
            throw usage_error("--client: not a ws://, wss://, http:// or https:// URL: " + explicit_client);
        client->ca_file = ca_file(a);
    } else {
        // The client port is as secure as the ops port it was learnt from.
        const url ops = ops_url(a);
        std::string error;
        auto i = fetch_info(ops, &error);
        client = url{ops.secure() ? "wss" : "ws",
                     ops.host,
                     std::to_string(i ? i->client_port : 8080),
                     "/",
                     "",
                     "",
                     ops.ca_file,
                     ""};
    }
    // A live token (never the ops API key): --token-file, --token, HERALD_TOKEN.
    if (a.has("token-file")) {
        client->credential = first_line(a.get("token-file"));
        if (client->credential.empty())
            throw usage_error("--token-file: cannot read a token from " + a.get("token-file"));
    } else {
        client->credential = a.get("token", env_or("HERALD_TOKEN", ""));
    }
    client->tenant = a.get("tenant");
    std::optional<resume_file> resume;
    if (a.has("resume")) {
        resume.emplace(a.get("resume"));
        client->since = resume->since_for(audiences);
    }
    const long count = a.has("count") ? std::stol(a.get("count")) : 0;
    const auto timeout =
        a.has("timeout") ? parse_duration("--timeout", a.get("timeout")) : std::chrono::milliseconds(0);
    long seen = 0;
    const auto r = listen(
        *client, audiences, a.has("sse"), timeout,
        [&](const std::string& frame) {
            if (!resume) {
                std::cout << frame << std::endl;
                return count == 0 || ++seen < count;
            }
            google::protobuf::Struct parsed;
            if (!google::protobuf::util::JsonStringToMessage(frame, &parsed).ok()) {
                std::cerr << "herald: unparsable frame: " << frame.substr(0, 200) << "\n";
                return true;
            }
            if (parsed.fields().contains("type")) {
                // Notices are not announcements; a gap says history was lost.
                std::cerr << string_field(parsed, "type") << ": " << frame << std::endl;
                return true;
            }
            const auto seq_it = parsed.fields().find("seq");
            if (seq_it != parsed.fields().end() && seq_it->second.has_number_value()) {
                const auto seq = static_cast<std::uint64_t>(seq_it->second.number_value());
                if (!resume->remember(string_field(parsed, "audience"), string_field(parsed, "epoch"), seq))
                    return true;  // already printed by an earlier run or this one
            }
            std::cout << frame << std::endl;
            resume->save();
            return count == 0 || ++seen < count;
        },
        [](const std::string& target) { std::cerr << "listening on " << target << std::endl; });
    switch (r.how) {
        case listen_result::stopped:
            return 0;
        case listen_result::closed:
            std::cerr << "closed: " << r.close_code << " " << r.detail << "\n";
            return count != 0 && seen < count ? exit_runtime : 0;
        case listen_result::timed_out:
            std::cerr << "herald: no frame within " << a.get("timeout") << "\n";
            return exit_runtime;
        case listen_result::failed:
            std::cerr << "herald: cannot listen on " << client->host << ":" << client->port << ": "
                      << r.detail << "\n";
            return exit_runtime;
    }
    return exit_runtime;
}

int cmd_status(const args& a) {
    const url ops = ops_url(a);
    std::string error;
    auto i = fetch_info(ops, &error);
    if (!i) {
        std::cerr << "herald: heraldd is not reachable at " << ops.host << ":" << ops.port << " (" << error
                  << ")\n";
        return exit_runtime;
    }
    const auto ready = http_get(ops, "/readyz", 5s);
    const auto& f = i->raw.fields();
    std::cout << "heraldd " << f.at("version").string_value() << " (" << f.at("instance_id").string_value()
              << ")\n"
              << "  shards:    " << f.at("shards").number_value() << "\n"
              << "  clients:   port " << i->client_port << "  (/v1/ws, /v1/sse)\n"
              << "  kafka:     " << i->brokers
              << (f.at("kafka").struct_value().fields().at("embedded").bool_value() ? " (embedded)" : "")
              << "\n"
              << "  topics:    " << i->topic_announcements << ", " << i->topic_dlq << "\n"
              << "  ready:     " << (ready.status == 200 ? "yes" : "no: " + ready.body);
    if (ready.status == 200)
        std::cout << "\n";
    return ready.status == 200 ? 0 : 3;
}

std::string json_string(const std::string& s) {
    google::protobuf::Value v;
    v.set_string_value(s);
    std::string out;
    (void)google::protobuf::util::MessageToJsonString(v, &out);
    return out;
}

int cmd_dlq(const args& a) {
    const info where = kafka_info(a);
    auto conf =
        kafka_conf(a, where.brokers, {{"group.id", "herald-cli-dlq"}, {"enable.auto.commit", "false"}});
    std::string err;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!consumer)
        throw runtime_error("kafka: " + err);
    RdKafka::Metadata* md = nullptr;
    std::unique_ptr<RdKafka::Topic> topic(
        RdKafka::Topic::create(consumer.get(), where.topic_dlq, nullptr, err));
    if (consumer->metadata(false, topic.get(), &md, 5000) != RdKafka::ERR_NO_ERROR) {
        throw runtime_error("cannot read metadata of " + where.topic_dlq + " from " + where.brokers);
    }
    std::vector<RdKafka::TopicPartition*> parts;
    for (const auto* t : *md->topics()) {
        for (const auto* p : *t->partitions()) {
            parts.push_back(RdKafka::TopicPartition::create(
                where.topic_dlq, p->id(),
                a.has("from-beginning") ? RdKafka::Topic::OFFSET_BEGINNING : RdKafka::Topic::OFFSET_END));
        }
    }
    delete md;
    consumer->assign(parts);
    RdKafka::TopicPartition::destroy(parts);
    const long count = a.has("count") ? std::stol(a.get("count")) : 0;
    const auto timeout =
        a.has("timeout") ? parse_duration("--timeout", a.get("timeout")) : std::chrono::milliseconds(0);
    auto last = std::chrono::steady_clock::now();
    long seen = 0;
    for (;;) {
        std::unique_ptr<RdKafka::Message> m(consumer->consume(200));
        if (m->err() == RdKafka::ERR_NO_ERROR) {
            std::map<std::string, std::string> h;
            if (auto* hs = m->headers()) {
                for (const auto& x : hs->get_all())
                    h[x.key()] = std::string(static_cast<const char*>(x.value()), x.value_size());
            }
            std::cout << "{\"reason\":" << json_string(h["herald-dlq-reason"])
                      << ",\"detail\":" << json_string(h["herald-dlq-detail"])
                      << ",\"source\":" << json_string(h["herald-dlq-source"])
                      << ",\"key\":" << json_string(m->key() ? *m->key() : "") << ",\"value\":"
                      << json_string(std::string(static_cast<const char*>(m->payload()), m->len())) << "}"
                      << std::endl;
            last = std::chrono::steady_clock::now();
            if (count != 0 && ++seen >= count)
                break;
        } else if (timeout.count() > 0 && std::chrono::steady_clock::now() - last > timeout) {
            consumer->close();
            return count != 0 ? exit_runtime : 0;
        }
    }
    consumer->close();
    return 0;
}

// --- outbound subscribers ------------------------------------------------

http_result ops_call(const args& a, const std::string& method, const std::string& target,
                     const std::string& body = {}, const std::string& content_type = "application/json") {
    const url ops = ops_url(a);
    auto r = http_request(ops, method, target, body, content_type, 120s);
    if (!r.error.empty())
        throw runtime_error("heraldd is not reachable at " + ops.host + ":" + ops.port + " (" + r.error +
                            ")");
    return r;
}

std::string error_of(const http_result& r) {
    google::protobuf::Struct s;
    if (google::protobuf::util::JsonStringToMessage(r.body, &s).ok()) {
        if (auto it = s.fields().find("error"); it != s.fields().end())
            return it->second.string_value();
    }
    return "HTTP " + std::to_string(r.status) + ": " + r.body;
}

std::string recipient_arg(const args& a, const std::vector<std::string>& positional, const char* command) {
    std::string id = a.get("recipient");
    if (id.empty() && !positional.empty())
        id = positional.front();
    if (id.empty())
        throw usage_error(std::string(command) + " needs --recipient ID");
    if (!registry::is_valid_recipient_id(id))
        throw usage_error("--recipient \"" + id + "\": 1..128 characters of [A-Za-z0-9._:@+-]");
    return id;
}

std::string path_escape(const std::string& s) {
    std::string out;
    for (const unsigned char c : s) {
        if (std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '@') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

int cmd_subscribe(const args& a) {
    herald::v1::Subscription s;
    s.set_recipient_id(a.get("recipient"));
    if (s.recipient_id().empty())
        throw usage_error("subscribe needs --recipient ID");
    s.set_tenant(a.get("tenant"));
    for (const auto& aud : a.all("audience")) s.add_audiences(aud);
    for (const auto& t : a.all("tag")) s.add_tags(t);
    const std::string channel = a.get("channel");
    if (channel == "webhook")
        s.set_channel(herald::v1::CHANNEL_WEBHOOK);
    else if (channel == "whatsapp")
        s.set_channel(herald::v1::CHANNEL_WHATSAPP);
    else if (channel == "sms")
        s.set_channel(herald::v1::CHANNEL_SMS);
    else
        throw usage_error("--channel: webhook|whatsapp|sms");
    s.set_address(a.get("address"));
    if (a.has("webhook-secret-file")) {
        // The subscriber's own signing secret(s): from a file, never argv.
        // One whsec_... per line, like heraldd's webhook_secrets_file.
        std::ifstream in(a.get("webhook-secret-file"), std::ios::binary);
        if (!in)
            throw usage_error("--webhook-secret-file: cannot read " + a.get("webhook-secret-file"));
        std::string line;
        std::string secrets;
        while (std::getline(in, line)) {
            while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
                line.pop_back();
            line.erase(0, line.find_first_not_of(" \t"));
            if (!line.empty() && line[0] != '#')
                secrets += (secrets.empty() ? "" : ",") + line;
        }
        if (secrets.empty())
            throw usage_error("--webhook-secret-file: " + a.get("webhook-secret-file") + " holds no secret");
        s.set_webhook_secret(secrets);
    }
    s.mutable_consent()->set_source(a.get("consent-source", "herald-cli"));
    *s.mutable_consent()->mutable_given_at() =
        a.has("consent-at") ? parse_instant("--consent-at", a.get("consent-at"))
                            : google::protobuf::util::TimeUtil::MillisecondsToTimestamp(now_ms());
    if (auto v = registry::validate_subscription(s); !v)
        throw usage_error(v.err().detail);
    const auto r =
        ops_call(a, "POST", "/v1/subscriptions", registry::to_json(s) + "\n", "application/x-ndjson");
    if (r.status != 200) {
        std::cerr << "herald: not subscribed: " << (r.status == 422 ? r.body : error_of(r)) << "\n";
        return exit_runtime;
    }
    std::string list;
    for (const auto& aud : s.audiences()) list += (list.empty() ? "" : ", ") + aud;
    std::cout << "subscribed " << s.recipient_id() << " to " << list << " via " << channel << " "
              << s.address() << "\n";
    return 0;
}

int cmd_unsubscribe(const args& a) {
    const std::string id = recipient_arg(a, {}, "unsubscribe");
    const auto audiences = a.all("audience");
    std::string body = "{}";
    if (!audiences.empty()) {
        body = "{\"audiences\":[";
        for (std::size_t i = 0; i < audiences.size(); ++i) body += (i ? "," : "") + json_string(audiences[i]);
        body += "]}";
    }
    const auto r =
        ops_call(a, "POST", "/v1/subscriptions/" + path_escape(id) + "/unsubscribe" + tenant_query(a), body);
    if (r.status != 200) {
        std::cerr << "herald: " << error_of(r) << "\n";
        return exit_runtime;
    }
    herald::v1::Subscription s;
    google::protobuf::util::JsonParseOptions opts;
    opts.ignore_unknown_fields = true;
    (void)google::protobuf::util::JsonStringToMessage(r.body, &s, opts);
    if (s.has_opted_out_at()) {
        std::cout << id << " opted out of everything\n";
    } else {
        std::string left;
        for (const auto& aud : s.audiences()) left += (left.empty() ? "" : ", ") + aud;
        std::cout << id << " opted out of";
        for (const auto& aud : audiences) std::cout << " " << aud;
        std::cout << "; still subscribed to " << left << "\n";
    }
    return 0;
}

int cmd_forget(const args& a, const std::vector<std::string>& positional) {
    const std::string id = recipient_arg(a, positional, "forget");
    const auto r = ops_call(a, "DELETE", "/v1/subscriptions/" + path_escape(id) + tenant_query(a));
    if (r.status != 200) {
        std::cerr << "herald: " << error_of(r) << "\n";
        return exit_runtime;
    }
    std::cout << "forgot " << id << "\n";
    return 0;
}

int cmd_subscription(const args& a, const std::vector<std::string>& positional) {
    const std::string id = recipient_arg(a, positional, "subscription");
    const auto r = ops_call(a, "GET", "/v1/subscriptions/" + path_escape(id) + tenant_query(a));
    if (r.status != 200) {
        std::cerr << "herald: " << error_of(r) << "\n";
        return exit_runtime;
    }
    std::cout << r.body;
    return 0;
}

int cmd_import(const args& a, const std::vector<std::string>& positional) {
    if (positional.size() != 1)
        throw usage_error("import needs one CSV file (or - for stdin)");
    const std::string& file = positional.front();
    std::string text;
    if (file == "-") {
        std::stringstream ss;
        ss << std::cin.rdbuf();
        text = ss.str();
    } else {
        std::ifstream in(file, std::ios::binary);
        if (!in)
            throw runtime_error("cannot read " + file);
        std::stringstream ss;
        ss << in.rdbuf();
        text = ss.str();
    }
    auto parsed = registry::parse_subscriptions_csv(text);
    std::size_t refused = parsed.errors.size();
    for (const auto& e : parsed.errors) std::cerr << file << ":" << e.line << ": " << e.reason << "\n";
    const std::size_t batch = a.has("batch") ? std::stoul(a.get("batch")) : 1000;
    std::size_t imported = 0;
    for (std::size_t start = 0; start < parsed.accepted.size(); start += batch) {
        const std::size_t end = std::min(parsed.accepted.size(), start + batch);
        std::string body;
        for (std::size_t i = start; i < end; ++i) body += registry::to_json(parsed.accepted[i].second) + "\n";
        const auto r = ops_call(a, "POST", "/v1/subscriptions", body, "application/x-ndjson");
        if (r.status != 200 && r.status != 422)
            throw runtime_error("import stopped after " + std::to_string(imported) +
                                " subscribers: " + error_of(r));
        google::protobuf::Struct reply;
        (void)google::protobuf::util::JsonStringToMessage(r.body, &reply);
        imported += static_cast<std::size_t>(reply.fields().at("accepted").number_value());
        for (const auto& v : reply.fields().at("rejected").list_value().values()) {
            const auto& f = v.struct_value().fields();
            const auto index = static_cast<std::size_t>(f.at("index").number_value());
            std::cerr << file << ":" << parsed.accepted[start + index].first << ": "
                      << f.at("reason").string_value() << "\n";
            ++refused;
        }
    }
    std::cout << "imported " << imported << " subscribers; " << refused << " lines refused\n";
    return refused == 0 ? 0 : exit_runtime;
}

/// GET /v1/broadcasts/{id}, of one tenant with --tenant (ids are unique per tenant only).
std::string broadcast_path(const args& a, const std::string& id) {
    return "/v1/broadcasts/" + path_escape(id) +
           (a.has("tenant") ? "?tenant=" + path_escape(a.get("tenant")) : "");
}

int cmd_broadcast_status(const args& a, const std::string& id) {
    // Right after `herald announce` the announcement may still be on its way
    // through Kafka: a few seconds' patience before "unknown".
    auto r = ops_call(a, "GET", broadcast_path(a, id));
    for (int tries = 0; r.status == 404 && tries < 25; ++tries) {
        std::this_thread::sleep_for(200ms);
        r = ops_call(a, "GET", broadcast_path(a, id));
    }
    if (r.status == 404) {
        std::cerr << "herald: no broadcast " << id << (a.has("tenant") ? " of tenant " + a.get("tenant") : "")
                  << " known to this heraldd\n";
        return exit_runtime;
    }
    if (r.status == 409) {
        std::string why = error_of(r);
        if (const auto q = why.rfind("?tenant="); q != std::string::npos)
            why.replace(q, 8, "--tenant");
        std::cerr << "herald: " << why << "\n";
        return exit_runtime;
    }
    if (r.status != 200)
        throw runtime_error(error_of(r));
    if (a.has("json")) {
        std::cout << r.body;
        return 0;
    }
    google::protobuf::Struct s;
    (void)google::protobuf::util::JsonStringToMessage(r.body, &s);
    const auto& f = s.fields();
    const auto n = [&](const char* k) { return static_cast<long long>(f.at(k).number_value()); };
    const std::string state = f.at("state").string_value();
    std::cout << "broadcast " << id << " (tenant " << f.at("tenant").string_value() << ") to "
              << f.at("audience").string_value() << ": " << state << "\n";
    if (state == "live_only")
        std::cout << "  (outbound delivery not taken here yet: another heraldd may own its partition)\n";
    std::cout << "  targeted    " << n("targeted") << "\n"
              << "  sent        " << n("sent") << "\n"
              << "  failed      " << n("failed") << "\n"
              << "  suppressed  " << n("suppressed");
    std::string reasons;
    for (const auto& [k, v] : f.at("suppressed_reasons").struct_value().fields())
        reasons += (reasons.empty() ? "" : ", ") + k + " " +
                   std::to_string(static_cast<long long>(v.number_value()));
    std::cout << (reasons.empty() ? "" : " (" + reasons + ")") << "\n";
    if (const auto u = f.find("unknown"); u != f.end() && u->second.number_value() > 0)
        std::cout << "  unknown     " << static_cast<long long>(u->second.number_value())
                  << " (interrupted by a crash, not sent again)\n";
    std::cout << "  pending     " << n("pending") << "\n";
    const double eta = f.at("eta_seconds").number_value();
    if (n("pending") > 0)
        std::cout << "  eta         "
                  << (eta >= 0 ? std::to_string(static_cast<long long>(eta + 0.5)) + " s" : "unknown")
                  << "\n";
    std::cout << "  live        "
              << static_cast<long long>(f.at("live").struct_value().fields().at("connections").number_value())
              << " connection(s)\n";
    return 0;
}

// --- schedules and cancel ------------------------------------------------

int cmd_scheduled(const args& a) {
    const auto r =
        ops_call(a, "GET",
                 "/v1/broadcasts?state=scheduled" +
                     (a.has("tenant") ? "&tenant=" + path_escape(a.get("tenant")) : std::string()));
    if (r.status != 200)
        throw runtime_error(error_of(r));
    if (a.has("json")) {
        std::cout << r.body;
        return 0;
    }
    google::protobuf::Struct s;
    (void)google::protobuf::util::JsonStringToMessage(r.body, &s);
    const auto& list = s.fields().at("broadcasts").list_value().values();
    if (list.empty()) {
        std::cout << "nothing scheduled\n";
        return 0;
    }
    std::printf("%-30s %-16s %-28s %-30s %s\n", "ID", "TENANT", "AUDIENCE", "DELIVER_AT", "SEQ");
    for (const auto& v : list) {
        const auto& f = v.struct_value().fields();
        std::printf("%-30s %-16s %-28s %-30s %lld\n", f.at("id").string_value().c_str(),
                    f.at("tenant").string_value().c_str(), f.at("audience").string_value().c_str(),
                    f.at("deliver_at").string_value().c_str(),
                    static_cast<long long>(f.at("seq").number_value()));
    }
    return 0;
}

int cmd_cancel(const args& a, const std::vector<std::string>& positional) {
    if (positional.empty())
        throw usage_error("cancel needs the announcement ID");
    const std::string& id = positional.front();
    const auto r = ops_call(a, "DELETE", broadcast_path(a, id));
    if (r.status == 202) {
        google::protobuf::Struct s;
        (void)google::protobuf::util::JsonStringToMessage(r.body, &s);
        const auto& f = s.fields();
        std::cout << "cancelling " << id << " (tenant " << f.at("tenant").string_value() << ", "
                  << f.at("was").string_value() << ", audience " << f.at("audience").string_value() << ")\n";
        return 0;
    }
    std::cerr << "herald: " << error_of(r) << "\n";
    return exit_runtime;
}

int cmd_receipts(const args& a) {
    const info where = kafka_info(a);
    std::string topic = "herald.receipts";
    if (auto t = where.raw.fields().find("topics"); t != where.raw.fields().end()) {
        if (auto r = t->second.struct_value().fields().find("receipts");
            r != t->second.struct_value().fields().end())
            topic = r->second.string_value();
    }
    const std::string broadcast = a.get("broadcast");
    auto conf = kafka_conf(a, where.brokers,
                           {{"group.id", "herald-cli-receipts"},
                            {"enable.auto.commit", "false"},
                            {"enable.partition.eof", "true"}});
    std::string err;
    std::unique_ptr<RdKafka::KafkaConsumer> consumer(RdKafka::KafkaConsumer::create(conf.get(), err));
    if (!consumer)
        throw runtime_error("kafka: " + err);
    RdKafka::Metadata* md = nullptr;
    std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(consumer.get(), topic, nullptr, err));
    if (consumer->metadata(false, t.get(), &md, 5000) != RdKafka::ERR_NO_ERROR)
        throw runtime_error("cannot read metadata of " + topic + " from " + where.brokers);
    std::vector<RdKafka::TopicPartition*> parts;
    for (const auto* tm : *md->topics()) {
        for (const auto* p : *tm->partitions())
            parts.push_back(
                RdKafka::TopicPartition::create(topic, p->id(), RdKafka::Topic::OFFSET_BEGINNING));
    }
    delete md;
    // Receipts leave heraldd asynchronously (batched by the producer), so the
    // end of the topic can come before the last receipt of a broadcast that
    // its status already calls done. With --broadcast, keep reading until as
    // many receipts as the broadcast has final outcomes were seen (or nothing
    // new arrived for --timeout): a forgotten recipient gets no receipt.
    std::uint64_t expected = 0;
    if (!broadcast.empty()) {
        if (const auto st = ops_call(a, "GET", broadcast_path(a, broadcast)); st.status == 200) {
            google::protobuf::Struct s;
            if (google::protobuf::util::JsonStringToMessage(st.body, &s).ok()) {
                for (const char* k : {"sent", "failed", "suppressed", "unknown"}) {
                    if (auto f = s.fields().find(k); f != s.fields().end())
                        expected += static_cast<std::uint64_t>(f->second.number_value());
                }
            }
        }
    }
    std::set<std::int32_t> at_end;  // partitions read to their end
    std::uint64_t seen = 0;
    const std::size_t partitions = parts.size();
    consumer->assign(parts);
    RdKafka::TopicPartition::destroy(parts);
    const bool follow = a.has("follow");
    const auto timeout = a.has("timeout") ? parse_duration("--timeout", a.get("timeout")) : 10000ms;
    auto last = std::chrono::steady_clock::now();
    for (;;) {
        std::unique_ptr<RdKafka::Message> m(consumer->consume(200));
        if (m->err() == RdKafka::ERR_NO_ERROR) {
            last = std::chrono::steady_clock::now();
            at_end.erase(m->partition());
            const std::string value(static_cast<const char*>(m->payload()), m->len());
            const auto of_tenant = [&] {
                if (!a.has("tenant"))
                    return true;
                google::protobuf::Struct r;
                if (!google::protobuf::util::JsonStringToMessage(value, &r).ok())
                    return false;
                const auto t = r.fields().find("tenant");
                return t != r.fields().end() && t->second.string_value() == a.get("tenant");
            };
            if ((broadcast.empty() || (m->key() != nullptr && *m->key() == broadcast)) && of_tenant()) {
                ++seen;
                std::cout << value << std::endl;
            }
        } else if (m->err() == RdKafka::ERR__PARTITION_EOF) {
            at_end.insert(m->partition());
        } else if (!follow && std::chrono::steady_clock::now() - last > timeout) {
            break;
        }
        if (!follow && at_end.size() >= partitions && seen >= expected)
            break;
    }
    consumer->close();
    return 0;
}

// --- keys and tokens ------------------------------------------------------

int cmd_keys(const args& a, const std::vector<std::string>& positional) {
    if (positional.empty())
        throw usage_error("keys needs new or hash");
    if (positional[0] == "hash") {
        std::string key;
        std::getline(std::cin, key);
        while (!key.empty() && (key.back() == '\r' || key.back() == ' ')) key.pop_back();
        if (key.empty())
            throw usage_error("keys hash reads the key from stdin");
        std::cout << security::admin_keys::digest_text(key) << "\n";
        return 0;
    }
    if (positional[0] != "new" || positional.size() != 4)
        throw usage_error("keys new NAME admin|publisher|viewer TENANT|*");
    const std::string line = positional[1] + " " + positional[2] + " " + positional[3] + " ";
    // The line must parse as the daemon will parse it.
    const std::string key = security::admin_keys::new_key();
    const std::string file_line = line + security::admin_keys::digest_text(key);
    if (auto ok = security::admin_keys::parse(file_line, "keys new"); !ok)
        throw usage_error(ok.err().detail);
    std::cout << key << "\n";
    std::cerr << "add this line to the --admin-keys-file (it holds no usable key):\n" << file_line << "\n";
    return 0;
}

int cmd_token(const args& a) {
    const std::string secret = [&] {
        std::ifstream in(a.get("secret-file"), std::ios::binary);
        if (!in)
            throw usage_error("token needs --secret-file F (the file of --jwt-hs256-secret-file)");
        std::stringstream text;
        text << in.rdbuf();
        std::string v = text.str();
        while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
        return v;
    }();
    const auto audiences = a.all("audience");
    if (audiences.empty())
        throw usage_error("token needs at least one --audience (a name or prefix*)");
    const auto ttl = parse_duration("--ttl", a.get("ttl", "1h"));
    jwt_t* jwt = nullptr;
    if (jwt_new(&jwt) != 0)
        throw runtime_error("cannot create a token");
    const std::unique_ptr<jwt_t, void (*)(jwt_t*)> owner(jwt, jwt_free);
    const long now = static_cast<long>(now_ms() / 1000);
    std::string grants = "{\"audiences\":[";
    for (std::size_t i = 0; i < audiences.size(); ++i) grants += (i ? "," : "") + json_string(audiences[i]);
    grants += "]}";
    if (jwt_add_grants_json(jwt, grants.c_str()) != 0 || jwt_add_grant_int(jwt, "iat", now) != 0 ||
        jwt_add_grant_int(jwt, "exp", now + static_cast<long>(ttl.count() / 1000)) != 0 ||
        jwt_add_grant(jwt, "tenant", a.get("tenant", "default").c_str()) != 0 ||
        (a.has("subject") && jwt_add_grant(jwt, "sub", a.get("subject").c_str()) != 0) ||
        jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()),
                    static_cast<int>(secret.size())) != 0)
        throw runtime_error("cannot build the token");
    char* encoded = jwt_encode_str(jwt);
    if (encoded == nullptr)
        throw runtime_error("cannot sign the token");
    std::cout << encoded << "\n";
    std::free(encoded);
    return 0;
}

constexpr const char* usage_text = R"(usage: herald <command> [options]

commands:
  announce --audience A (--text T | --json '{...}' | --file PATH [--content-type T])
           [--id ID] [--tenant T] [--priority low|normal|high|critical]
           [--deliver-at RFC3339|+10s] [--expires-at RFC3339|+30s] [--ttl 30s]
           [--collapse-key K] [--label k=v]... [--protobuf] [--topic T]
  listen   --audience A [--audience B]... [--sse] [--count N] [--timeout 10s] [--resume FILE]
           [--token-file F | --token JWT] [--tenant T]     (env HERALD_TOKEN)
  status   [BROADCAST_ID] [--tenant T] [--json]   heraldd itself, or one broadcast's progress
  dlq      [--from-beginning] [--count N] [--timeout 10s]
  scheduled [--tenant T] [--json]                 live broadcasts waiting for their deliver_at
  cancel   ID [--tenant T]                        stop a scheduled or running broadcast (a cancel record)

outbound subscribers:
  subscribe    --recipient R --audience A [--audience B]... --channel webhook|whatsapp|sms
               --address URL|+E164 [--tenant T] [--tag X]... [--consent-source S] [--consent-at RFC3339]
               [--webhook-secret-file F]   the subscriber's own whsec_... signing secret (never shown again)
  unsubscribe  --recipient R [--audience A]... [--tenant T]  (no --audience: opt out of everything)
  forget       R [--tenant T]                  erase the person everywhere Herald keeps it
  subscription R [--tenant T]                  print what Herald stores about R
  import       FILE.csv|- [--batch 1000]       columns: recipient_id, audiences (a;b), channel, address,
                                               consent_source, consent_given_at [, tenant, tags]
  receipts     [--broadcast ID [--tenant T]] [--follow]   per-recipient receipts from herald.receipts

keys and tokens:
  keys new NAME admin|publisher|viewer TENANT|*   a new ops API key: the key on stdout, its keys-file line on stderr
  keys hash                                      the keys-file SECRET (sha256:...) of a key read from stdin
  token --secret-file F --audience PATTERN... [--tenant T] [--ttl 1h] [--subject S]
                                                 an HS256 token for live clients (testing, demos)

common options:
  --ops URL        heraldd's ops API (env HERALD_OPS_URL, default http://127.0.0.1:8081)
  --ca-file F      PEM CA bundle trusted besides the system's for https:// and wss:// (env HERALD_CA_FILE);
                   https/wss always verify the certificate and host name, TLS 1.2+, never fall back to plaintext
  --api-key-file F the ops API key (or env HERALD_API_KEY; --api-key K works but shows in ps); default:
                   <--data-dir, env HERALD_DATA_DIR, default herald-data>/admin.key
  --client URL     live endpoint for listen, ws:// or wss:// (env HERALD_CLIENT_URL, default: ops host,
                   client_port from /v1/info, wss when --ops is https)
  --brokers H:P    Kafka (env HERALD_BROKERS, default: bootstrap_servers from /v1/info)
  --kafka-property KEY=VALUE      a librdkafka property for announce, dlq and receipts (repeatable):
                   security.protocol, sasl.*, ssl.*, ...; values of keys containing password, secret,
                   key or token are never printed
  --kafka-properties-file F       KEY=VALUE lines (# comments), so secrets need not be in argv
                   (also env HERALD_KAFKA_PROPERTIES, newline- or comma-separated)
)";

}  // namespace
}  // namespace herald::cli

int main(int argc, char** argv) {
    using namespace herald::cli;
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "help") {
        std::cout << usage_text;
        return argc < 2 ? exit_usage : 0;
    }
    const std::string command = argv[1];
    try {
        if (command == "announce")
            return cmd_announce(parse(argc, argv, 2, {"protobuf", "help"}));
        if (command == "listen")
            return cmd_listen(parse(argc, argv, 2, {"sse", "help"}));
        // Commands with one positional argument first: forget R, import FILE, status ID.
        std::vector<std::string> positional;
        int first = 2;
        if (argc > 2 && std::string(argv[2]).rfind("--", 0) != 0) {
            positional.emplace_back(argv[2]);
            first = 3;
        }
        if (command == "status") {
            const auto a = parse(argc, argv, first, {"json", "help"});
            return positional.empty() ? cmd_status(a) : cmd_broadcast_status(a, positional.front());
        }
        if (command == "scheduled")
            return cmd_scheduled(parse(argc, argv, 2, {"json", "help"}));
        if (command == "cancel")
            return cmd_cancel(parse(argc, argv, first, {"help"}), positional);
        if (command == "subscribe")
            return cmd_subscribe(parse(argc, argv, 2, {"help"}));
        if (command == "unsubscribe")
            return cmd_unsubscribe(parse(argc, argv, 2, {"help"}));
        if (command == "forget")
            return cmd_forget(parse(argc, argv, first, {"help"}), positional);
        if (command == "subscription")
            return cmd_subscription(parse(argc, argv, first, {"help"}), positional);
        if (command == "import")
            return cmd_import(parse(argc, argv, first, {"help"}), positional);
        if (command == "receipts")
            return cmd_receipts(parse(argc, argv, 2, {"follow", "help"}));
        if (command == "keys")
            return cmd_keys(args{}, std::vector<std::string>(argv + 2, argv + argc));
        if (command == "token")
            return cmd_token(parse(argc, argv, 2, {"help"}));
        if (command == "dlq")
            return cmd_dlq(parse(argc, argv, 2, {"from-beginning", "help"}));
        throw usage_error("unknown command \"" + command + "\"");
    } catch (const usage_error& e) {
        std::cerr << "herald: " << e.what() << "\n(see herald --help)\n";
        return exit_usage;
    } catch (const std::exception& e) {
        std::cerr << "herald: " << e.what() << "\n";
        return exit_runtime;
    }
}
