// TLS termination settings for the client and ops ports.
//
// The problem it solves: a certificate must be loadable at start (a bad file
// stops start-up naming the setting), replaceable on SIGHUP without dropping
// open connections (each connection keeps the SSL_CTX it was accepted with;
// new connections get the new one), and restricted to what a browser and an
// SRE's Prometheus need today: TLS 1.2 and 1.3, ALPN http/1.1, optionally a
// client certificate signed by a given CA (mutual TLS on the ops port).
//
// Kernel TLS is asked for when both the kernel (the "tls" TCP ULP) and
// OpenSSL support it; whether it is in use is decided per host at start-up
// (probe_ktls) and reported, never assumed.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "base/result.h"

struct ssl_ctx_st;

namespace herald::tls {

struct server_files {
    std::string cert_file;       // PEM: leaf first, then the chain
    std::string key_file;        // PEM private key
    std::string client_ca_file;  // "" = no client certificates asked for
    /// Names the settings in errors ("tls_cert_file", "ops_tls_cert_file").
    std::string cert_setting = "tls_cert_file";
    std::string key_setting = "tls_key_file";
    std::string client_ca_setting = "tls_client_ca_file";
};

/// Whether this host can hand TLS records to the kernel.
struct ktls_support {
    bool available = false;
    std::string detail;  // why not, or "kernel tls ULP and OpenSSL support it"
};

/// Probes once: OpenSSL built with KTLS and setsockopt(TCP_ULP, "tls") accepted
/// on a connected loopback socket.
[[nodiscard]] const ktls_support& probe_ktls();

class server_context {
  public:
    using ctx_ptr = std::shared_ptr<ssl_ctx_st>;

    /// Loads the files; an error names the setting and the file.
    [[nodiscard]] static base::result<std::shared_ptr<server_context>> load(server_files files,
                                                                            bool use_ktls);

    /// Re-reads the same files (SIGHUP). On error the current context stays.
    [[nodiscard]] base::result<void> reload();

    /// The context new connections use. Thread-safe.
    [[nodiscard]] ctx_ptr current() const;

    [[nodiscard]] bool ktls() const noexcept { return use_ktls_; }
    [[nodiscard]] bool mutual() const noexcept { return !files_.client_ca_file.empty(); }
    /// The loaded leaf certificate's subject and expiry, for logs and /v1/info.
    [[nodiscard]] std::string describe() const;

    server_context(server_files files, bool use_ktls) : files_(std::move(files)), use_ktls_(use_ktls) {}

  private:
    [[nodiscard]] base::result<ctx_ptr> build() const;

    server_files files_;
    bool use_ktls_;
    mutable std::mutex mutex_;
    ctx_ptr current_;
    std::string description_;
};

}  // namespace herald::tls
