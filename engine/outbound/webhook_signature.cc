#include "outbound/webhook_signature.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <system_error>

#include "base/webhook_secret_syntax.h"

namespace herald::outbound {

std::string base64_encode(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3), '\0');
    const int n =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                        reinterpret_cast<const unsigned char*>(bytes.data()), static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

base::result<webhook_secret> parse_webhook_secret(std::string_view text) {
    constexpr std::string_view prefix = "whsec_";
    if (text.substr(0, prefix.size()) != prefix) {
        return base::failure(std::make_error_code(std::errc::invalid_argument), "must start with whsec_");
    }
    const std::string_view b64 = text.substr(prefix.size());
    if (b64.empty() || b64.size() % 4 != 0) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "the part after whsec_ is not base64");
    }
    std::string key(b64.size() / 4 * 3, '\0');
    const int n =
        EVP_DecodeBlock(reinterpret_cast<unsigned char*>(key.data()),
                        reinterpret_cast<const unsigned char*>(b64.data()), static_cast<int>(b64.size()));
    if (n < 0) {
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             "the part after whsec_ is not base64");
    }
    // EVP_DecodeBlock counts padding as zero bytes; drop them.
    std::size_t len = static_cast<std::size_t>(n);
    if (b64.back() == '=')
        --len;
    if (b64.size() >= 2 && b64[b64.size() - 2] == '=')
        --len;
    key.resize(len);
    if (key.size() < 16) {
        return base::failure(std::make_error_code(std::errc::invalid_argument), "key shorter than 16 bytes");
    }
    return webhook_secret{std::move(key)};
}

base::result<std::vector<webhook_secret>> parse_webhook_secrets(std::string_view list) {
    if (!base::is_webhook_secret_list(list))
        return base::failure(std::make_error_code(std::errc::invalid_argument),
                             std::string(base::webhook_secret_problem));
    std::vector<webhook_secret> out;
    std::size_t pos = 0;
    while (pos <= list.size()) {
        const std::size_t end = std::min(list.find(',', pos), list.size());
        std::string_view item = list.substr(pos, end - pos);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        pos = end + 1;
        if (item.empty())
            continue;
        auto secret = parse_webhook_secret(item);
        if (!secret)
            return base::failure(secret.err());
        out.push_back(std::move(*secret));
    }
    return out;
}

std::string webhook_signature(const std::vector<webhook_secret>& secrets, std::string_view id,
                              std::int64_t timestamp_s, std::string_view body) {
    std::string content;
    content.reserve(id.size() + body.size() + 24);
    content.append(id).append(".").append(std::to_string(timestamp_s)).append(".").append(body);
    std::string out;
    for (const auto& s : secrets) {
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int mac_len = 0;
        HMAC(EVP_sha256(), s.key.data(), static_cast<int>(s.key.size()),
             reinterpret_cast<const unsigned char*>(content.data()), content.size(), mac, &mac_len);
        if (!out.empty())
            out += ' ';
        out += "v1,";
        out += base64_encode(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
    }
    return out;
}

std::string delivery_id(std::string_view tenant, std::string_view announcement_id,
                        std::string_view recipient_id) {
    std::string input;
    input.append(tenant).append("/").append(announcement_id).append("/").append(recipient_id);
    unsigned char digest[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out = "msg_";
    for (int i = 0; i < 16; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 0xf];
    }
    return out;
}

}  // namespace herald::outbound
