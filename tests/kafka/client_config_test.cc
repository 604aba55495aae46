// The operator's librdkafka properties: refused before anything starts when
// librdkafka or Herald cannot take them (naming the property, never showing
// a credential), applied after Herald's own settings otherwise.
#include "kafka/client_config.h"

#include <gtest/gtest.h>
#include <librdkafka/rdkafkacpp.h>

#include <fstream>

namespace herald::kafka {
namespace {

std::string refusal(const properties& props) {
    auto r = validate(props, daemon_owned_keys());
    return r ? std::string() : r.err().detail;
}

TEST(KafkaProperties, ValidOnesPass) {
    EXPECT_TRUE(validate({}, daemon_owned_keys()));
    EXPECT_TRUE(validate({{"security.protocol", "sasl_plaintext"},
                          {"sasl.mechanism", "PLAIN"},
                          {"sasl.username", "alice"},
                          {"sasl.password", "hunter2-secret"},
                          {"client.id", "fest-herald"},
                          {"session.timeout.ms", "12000"}},
                         daemon_owned_keys()));
}

TEST(KafkaProperties, AnUnknownPropertyIsRefusedByName) {
    const auto why = refusal({{"client.id", "x"}, {"no.such.property", "1"}});
    EXPECT_NE(why.find("kafka_property no.such.property"), std::string::npos) << why;
    auto r = validate({{"no.such.property", "1"}}, daemon_owned_keys());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.err().code, std::errc::invalid_argument);  // a configuration error: exit 2
}

TEST(KafkaProperties, AValueLibrdkafkaRefusesIsNamedWithoutItsCredential) {
    auto why = refusal({{"security.protocol", "carrier-pigeon"}});
    EXPECT_NE(why.find("kafka_property security.protocol"), std::string::npos) << why;
    // librdkafka quotes refused values; a credential's value is masked.
    why = refusal({{"sasl.password", "hunter2-secret"},
                   {"ssl.key.password", "x"},
                   {"enable.sasl.oauthbearer.unsecure.jwt", "hunter2-secret"}});
    EXPECT_NE(why.find("enable.sasl.oauthbearer.unsecure.jwt"), std::string::npos) << why;
    EXPECT_EQ(why.find("hunter2"), std::string::npos) << why;
}

TEST(KafkaProperties, CombinationsAreCheckedByCreatingAClient) {
    // Accepted one by one, refused together: SASL without a usable mechanism
    // (GSSAPI needs Kerberos settings), an unreadable CA file.
    auto why = refusal({{"security.protocol", "sasl_plaintext"}});
    EXPECT_NE(why.find("cannot create a client"), std::string::npos) << why;
    why = refusal({{"security.protocol", "ssl"}, {"ssl.ca.location", "/nonexistent/ca.pem"}});
    EXPECT_NE(why.find("ssl.ca.location"), std::string::npos) << why;
}

TEST(KafkaProperties, SettingsHeraldsGuaranteesRestOnAreRefused) {
    for (const char* key : {"enable.auto.commit", "group.id", "bootstrap.servers", "enable.idempotence",
                            "message.timeout.ms", "Enable.Auto.Commit"}) {
        const auto why = refusal({{key, "true"}});
        EXPECT_NE(why.find(std::string("kafka_property ") + key + ": set by Herald itself"),
                  std::string::npos)
            << why;
    }
    // Another client (the CLI) owns less.
    constexpr owned_key cli[] = {{"bootstrap.servers", "use --brokers"}};
    EXPECT_TRUE(validate({{"group.id", "mine"}}, cli));
    EXPECT_FALSE(validate({{"bootstrap.servers", "k:9092"}}, cli));
}

TEST(KafkaProperties, OperatorPropertiesComeAfterHeraldsSettings) {
    auto conf = client_conf({{"client.id", "heraldd-a"}, {"linger.ms", "20"}, {"enable.idempotence", "true"}},
                            {{"client.id", "fest-herald"}, {"sasl.username", "alice"}});
    ASSERT_TRUE(conf) << conf.err().detail;
    std::string value;
    ASSERT_EQ((*conf)->get("client.id", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, "fest-herald");
    ASSERT_EQ((*conf)->get("linger.ms", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, "20");
    ASSERT_EQ((*conf)->get("sasl.username", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, "alice");
    ASSERT_EQ((*conf)->get("enable.idempotence", value), RdKafka::Conf::CONF_OK);
    EXPECT_EQ(value, "true");

    auto bad = client_conf({}, {{"sasl.password", "hunter2-secret"}, {"linger.ms", "hunter2-secret"}});
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.err().detail.find("kafka_property linger.ms"), std::string::npos) << bad.err().detail;
    EXPECT_EQ(bad.err().detail.find("hunter2"), std::string::npos) << bad.err().detail;
}

TEST(KafkaProperties, ScrubMasksEveryCredentialValue) {
    const properties props{{"sasl.password", "pw-1"}, {"sasl.username", "alice"}, {"my.token", "tok-9"}};
    EXPECT_EQ(scrub("login alice:pw-1 with tok-9 and pw-1", props), "login alice:*** with *** and ***");
    EXPECT_EQ(scrub("nothing here", props), "nothing here");
    EXPECT_EQ(scrub("x", {{"sasl.password", ""}}), "x");
}

}  // namespace
}  // namespace herald::kafka
