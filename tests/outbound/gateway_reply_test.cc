// Every gateway answer Herald must tell apart, mapped to what happens next.
#include "outbound/gateway_reply.h"

#include <gtest/gtest.h>

namespace herald::outbound {
namespace {

std::string wa_error(int code) {
    return R"({"error":{"message":"(#)" + std::to_string(code) + R"() x","type":"OAuthException","code": )" +
           std::to_string(code) +
           R"(,"error_data":{"messaging_product":"whatsapp","details":"d"},"fbtrace_id":"A"}})";
}

TEST(GatewayReply, WebhookStatusCodes) {
    EXPECT_EQ(classify_webhook_reply(200, "").what, verdict::sent);
    EXPECT_EQ(classify_webhook_reply(204, "").what, verdict::sent);
    const auto throttled = classify_webhook_reply(429, "3");
    EXPECT_EQ(throttled.what, verdict::throttled);
    EXPECT_EQ(throttled.retry_after_ns, 3'000'000'000);
    EXPECT_EQ(classify_webhook_reply(503, "").what, verdict::retry);
    EXPECT_EQ(classify_webhook_reply(500, "").reason, "http_500");
    EXPECT_EQ(classify_webhook_reply(408, "").what, verdict::retry);
    const auto gone = classify_webhook_reply(410, "");
    EXPECT_EQ(gone.what, verdict::failed);
    EXPECT_EQ(gone.reason, "http_410");
}

TEST(GatewayReply, WhatsAppErrorCodes) {
    EXPECT_EQ(classify_whatsapp_reply(200, R"({"messages":[{"id":"wamid.x"}]})", "").what, verdict::sent);
    EXPECT_EQ(classify_whatsapp_reply(400, wa_error(130429), "").what, verdict::throttled);
    EXPECT_EQ(classify_whatsapp_reply(400, wa_error(131056), "").what, verdict::pair_limited);
    const auto spam = classify_whatsapp_reply(400, wa_error(131048), "");
    EXPECT_EQ(spam.what, verdict::sender_paused);
    EXPECT_EQ(spam.reason, "gateway_131048");
    EXPECT_EQ(classify_whatsapp_reply(500, wa_error(131000), "").what, verdict::retry);
    EXPECT_EQ(classify_whatsapp_reply(503, "<html>bad gateway</html>", "").what, verdict::retry);
    EXPECT_EQ(classify_whatsapp_reply(429, "{}", "2").what, verdict::throttled);
    const auto undeliverable = classify_whatsapp_reply(400, wa_error(131026), "");
    EXPECT_EQ(undeliverable.what, verdict::failed);
    EXPECT_EQ(undeliverable.reason, "gateway_131026");
    EXPECT_EQ(classify_whatsapp_reply(401, wa_error(190), "").reason, "gateway_190");
}

TEST(GatewayReply, RetryAfterParsing) {
    EXPECT_EQ(parse_retry_after_ns("5"), 5'000'000'000);
    EXPECT_EQ(parse_retry_after_ns(" 1"), 1'000'000'000);
    EXPECT_EQ(parse_retry_after_ns(""), 0);
    EXPECT_EQ(parse_retry_after_ns("soon"), 0);
    EXPECT_EQ(parse_retry_after_ns("-3"), 0);
}

TEST(GatewayReply, TransportFailuresAreRetriedWithoutSayingWhatAnswered) {
    for (const char* what : {"connect", "connect_timeout", "tls", "read", "resolve"}) {
        const auto m = transport_failure(what);
        EXPECT_EQ(m.what, verdict::retry) << what;
        EXPECT_EQ(m.reason, "transport_error") << what;  // receipts do not map the network
    }
}

TEST(GatewayReply, ARefusedCertificateIsRetriedAndNamedInTheReceipt) {
    // The receiver's to fix, so the one transport failure a receipt names;
    // a TLS handshake that broke down otherwise ("tls") stays unnamed above.
    const auto m = transport_failure("tls_certificate");
    EXPECT_EQ(m.what, verdict::retry);
    EXPECT_EQ(m.reason, "transport_error:tls_certificate");
}

TEST(GatewayReply, ABlockedAddressFailsAtOnce) {
    const auto m = transport_failure("blocked_address");
    EXPECT_EQ(m.what, verdict::failed);
    EXPECT_EQ(m.reason, "blocked_address");
}

}  // namespace
}  // namespace herald::outbound
