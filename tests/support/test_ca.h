// A throwaway certificate authority for TLS tests. Certificates are made
// with the openssl command at test time, never committed: a CA (P-256, two
// days) and the server certificates it signs — valid for 127.0.0.1 and
// localhost, already expired, or for another host — in a private temporary
// directory removed with the object. Nothing here is trusted by the system,
// so a client that verifies refuses all of them unless told about `ca_file`.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "support/daemon.h"

namespace herald::testing {

class test_ca {
  public:
    struct issued {
        std::string cert;  // PEM certificate
        std::string key;   // PEM private key
    };

    test_ca() {
        char tmpl[] = "/tmp/herald-test-ca-XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) {
            error = "mkdtemp failed";
            return;
        }
        dir = tmpl;
        ca_file = dir + "/ca.pem";
        ca_key_ = dir + "/ca.key";
        ok_ = openssl(
            "req -x509 " + new_key() + " -days 2 -subj '/CN=Herald test CA'" +
            " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign" +
            " -keyout " + ca_key_ + " -out " + ca_file);
    }
    ~test_ca() {
        if (!dir.empty())
            std::filesystem::remove_all(dir);
    }
    test_ca(const test_ca&) = delete;
    test_ca& operator=(const test_ca&) = delete;

    /// Whether the CA exists (else `error` holds openssl's output).
    [[nodiscard]] bool ok() const { return ok_; }

    /// A server certificate signed by this CA for `sans` (subjectAltName,
    /// e.g. "IP:127.0.0.1,DNS:localhost"), valid for `days` from now; a
    /// negative `days` makes one that has already expired. Empty paths (and
    /// `error` set) if openssl failed.
    issued issue(const std::string& name, const std::string& sans, int days = 1) {
        const std::string base = dir + "/" + name;
        {
            std::ofstream ext(base + ".ext");
            ext << "subjectAltName=" << sans << "\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
        }
        if (!openssl("req -new " + new_key() + " -subj /CN=" + name + " -keyout " + base + ".key -out " +
                     base + ".csr") ||
            !openssl("x509 -req -in " + base + ".csr -CA " + ca_file + " -CAkey " + ca_key_ +
                     " -set_serial " + std::to_string(++serial_) + " -days " + std::to_string(days) +
                     " -extfile " + base + ".ext -out " + base + ".pem"))
            return {};
        return {base + ".pem", base + ".key"};
    }

    std::string dir;
    std::string ca_file;  // the CA's certificate: what --ca-file / outbound_ca_file name
    std::string error;

  private:
    static std::string new_key() { return "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"; }

    bool openssl(const std::string& args) {
        const auto r = run_command("openssl " + args);
        if (r.exit_code != 0)
            error += "openssl " + args + ":\n" + r.output;
        return r.exit_code == 0;
    }

    std::string ca_key_;
    bool ok_ = false;
    int serial_ = 1;
};

}  // namespace herald::testing
