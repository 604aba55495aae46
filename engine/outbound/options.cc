#include "outbound/options.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <system_error>

#include "config/config.h"

namespace herald::outbound {

gateway_options gateway_options::from(const config::config& cfg) {
    gateway_options g;
    g.shards = cfg.outbound_shards;
    g.webhook_rate = cfg.webhook_rate;
    g.webhook_burst = cfg.webhook_burst;
    // Checked by config::load (base::is_webhook_secret_list), so it parses.
    if (auto secrets = parse_webhook_secrets(cfg.webhook_secrets))
        g.webhook_secrets = std::move(*secrets);
    g.allow_insecure_webhooks = cfg.allow_insecure_webhooks;
    g.whatsapp_base_url = cfg.whatsapp_base_url;
    g.whatsapp_api_version = cfg.whatsapp_api_version;
    g.whatsapp_phone_number_id = cfg.whatsapp_phone_number_id;
    g.whatsapp_token = cfg.whatsapp_token;
    g.whatsapp_template = cfg.whatsapp_template;
    g.whatsapp_language = cfg.whatsapp_language;
    g.whatsapp_rate = cfg.whatsapp_rate;
    g.whatsapp_burst = cfg.whatsapp_burst;
    g.sms_gateway_url = cfg.sms_gateway_url;
    g.sms_gateway_token = cfg.sms_gateway_token;
    g.sms_rate = cfg.sms_rate;
    g.sms_burst = cfg.sms_burst;
    g.connections_per_endpoint = cfg.outbound_connections;
    g.max_pending = cfg.outbound_max_pending;
    g.recipient_min_interval = cfg.recipient_min_interval;
    g.tenant_rate = cfg.tenant_rate;
    g.tenant_burst = cfg.tenant_burst;
    g.sender_pause = cfg.sender_pause;
    g.connect_timeout = cfg.outbound_connect_timeout;
    g.response_timeout = cfg.outbound_response_timeout;
    g.verify_tls = cfg.outbound_tls_verify;
    g.ca_file = cfg.outbound_ca_file;
    g.retry.max_attempts = cfg.retry_max_attempts;
    g.retry.base_ns = std::chrono::nanoseconds(cfg.retry_base).count();
    g.retry.max_age_ns = std::chrono::nanoseconds(cfg.retry_max_age).count();
    // Checked by config::load (check_resend_channels).
    for (const auto& channel : config::list(cfg.resend_unknown_channels)) {
        g.resend_unknown_whatsapp = g.resend_unknown_whatsapp || channel == "whatsapp";
        g.resend_unknown_sms = g.resend_unknown_sms || channel == "sms";
    }
    // Checked by config::load (check_networks); a list that still does not
    // parse leaves the strict default.
    if (auto guard = security::address_guard::from_list(cfg.outbound_allowed_networks))
        g.guard = std::move(*guard);
    return g;
}

bool at_most_once(herald::v1::Channel c, const gateway_options& o) noexcept {
    switch (c) {
        case herald::v1::CHANNEL_WHATSAPP:
            return !o.resend_unknown_whatsapp;
        case herald::v1::CHANNEL_SMS:
            return !o.resend_unknown_sms;
        default:
            return false;
    }
}

std::unordered_set<std::string> unknown_after_crash(
    const std::unordered_map<std::string, herald::v1::Channel>& interrupted, const gateway_options& o) {
    std::unordered_set<std::string> out;
    for (const auto& [subscriber, channel] : interrupted) {
        if (at_most_once(channel, o))
            out.insert(subscriber);
    }
    return out;
}

base::result<void> check_ca_file(const std::string& path) {
    const auto refused = [&](const char* why) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "outbound_ca_file: " + std::string(why) + " \"" + path + "\"");
    };
    BIO* bio = BIO_new_file(path.c_str(), "r");
    if (bio == nullptr) {
        ERR_clear_error();
        return refused("cannot read");
    }
    int certificates = 0;
    // Other PEM blocks (a key by mistake) are skipped: only certificates count.
    while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
        ++certificates;
        X509_free(cert);
    }
    ERR_clear_error();  // the end of the file reads as an error
    BIO_free(bio);
    if (certificates == 0)
        return refused("no PEM certificate in");
    return {};
}

}  // namespace herald::outbound
