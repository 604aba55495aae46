// A private certificate authority made at test time, so no key or
// certificate is ever committed: EC P-256 keys, a CA, server certificates for
// 127.0.0.1 / localhost (valid, expired, or for another host) and client
// certificates for mutual TLS, written as PEM files into a directory.
#pragma once

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>

namespace herald::testing {

class private_ca {
  public:
    struct issued {
        std::string cert_file;
        std::string key_file;
    };

    /// A CA named `name` whose certificate is written to dir/<name>-ca.pem.
    private_ca(std::filesystem::path dir, std::string name) : dir_(std::move(dir)), name_(std::move(name)) {
        std::filesystem::create_directories(dir_);
        key_ = new_key();
        cert_ = make_cert("CN=" + name_ + " test CA", key_.get(), nullptr, nullptr, -3600, 86400 * 30, true,
                          "", false);
        ca_file_ = (dir_ / (name_ + "-ca.pem")).string();
        write_cert(ca_file_, cert_.get());
    }

    [[nodiscard]] const std::string& ca_file() const { return ca_file_; }

    /// A server certificate for `hosts` ("IP:127.0.0.1,DNS:localhost"); valid
    /// from now - 1 h for `valid_for_s` seconds from `not_before_s` (negative: in the past).
    issued server(const std::string& file_stem, const std::string& cn,
                  const std::string& hosts = "IP:127.0.0.1,DNS:localhost", long not_before_s = -3600,
                  long valid_for_s = 86400) {
        return issue(file_stem, cn, hosts, not_before_s, valid_for_s, false);
    }

    /// A client certificate (extendedKeyUsage clientAuth).
    issued client(const std::string& file_stem, const std::string& cn) {
        return issue(file_stem, cn, "", -3600, 86400, true);
    }

  private:
    using key_ptr = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
    using cert_ptr = std::unique_ptr<X509, decltype(&X509_free)>;

    static key_ptr new_key() {
        EVP_PKEY* k = EVP_EC_gen("P-256");
        if (k == nullptr)
            throw std::runtime_error("EVP_EC_gen failed");
        return {k, EVP_PKEY_free};
    }

    static void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert, cert, nullptr, nullptr, 0);
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
        if (ext == nullptr)
            throw std::runtime_error("bad extension " + value);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }

    cert_ptr make_cert(const std::string& subject, EVP_PKEY* key, X509* issuer, EVP_PKEY* issuer_key,
                       long not_before_s, long valid_for_s, bool is_ca, const std::string& san, bool client) {
        cert_ptr cert(X509_new(), X509_free);
        X509_set_version(cert.get(), 2);
        ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), ++serial_);
        X509_gmtime_adj(X509_getm_notBefore(cert.get()), not_before_s);
        X509_gmtime_adj(X509_getm_notAfter(cert.get()), not_before_s + valid_for_s);
        X509_set_pubkey(cert.get(), key);
        X509_NAME* name = X509_get_subject_name(cert.get());
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(subject.substr(3).c_str()), -1, -1,
                                   0);
        X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
        if (is_ca) {
            add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:TRUE");
            add_ext(cert.get(), issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
        } else {
            add_ext(cert.get(), issuer, NID_basic_constraints, "critical,CA:FALSE");
            add_ext(cert.get(), issuer, NID_key_usage, "critical,digitalSignature");
            add_ext(cert.get(), issuer, NID_ext_key_usage, client ? "clientAuth" : "serverAuth");
            if (!san.empty())
                add_ext(cert.get(), issuer, NID_subject_alt_name, san);
        }
        add_ext(cert.get(), issuer, NID_subject_key_identifier, "hash");
        if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0)
            throw std::runtime_error("X509_sign failed");
        return cert;
    }

    issued issue(const std::string& stem, const std::string& cn, const std::string& san, long not_before_s,
                 long valid_for_s, bool client) {
        key_ptr key = new_key();
        cert_ptr cert = make_cert("CN=" + cn, key.get(), cert_.get(), key_.get(), not_before_s, valid_for_s,
                                  false, san, client);
        issued out{(dir_ / (stem + ".pem")).string(), (dir_ / (stem + ".key")).string()};
        // Leaf, then the chain (our CA), as servers send it.
        write_cert(out.cert_file, cert.get());
        write_cert(out.cert_file, cert_.get(), true);
        FILE* f = std::fopen(out.key_file.c_str(), "w");
        PEM_write_PrivateKey(f, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
        std::fclose(f);
        std::filesystem::permissions(
            out.key_file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
        return out;
    }

    static void write_cert(const std::string& path, X509* cert, bool append = false) {
        FILE* f = std::fopen(path.c_str(), append ? "a" : "w");
        PEM_write_X509(f, cert);
        std::fclose(f);
    }

    std::filesystem::path dir_;
    std::string name_;
    key_ptr key_{nullptr, EVP_PKEY_free};
    cert_ptr cert_{nullptr, X509_free};
    std::string ca_file_;
    long serial_ = 1000;
};

}  // namespace herald::testing
