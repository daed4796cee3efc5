#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

// TLS material of a local instance, made once by `pgbranch local up` and reused after:
//
//   STATE/tls/ca.crt       a CA of this state directory only (what clients verify against:
//                          sslmode=verify-full&sslrootcert=STATE/tls/ca.crt)
//   STATE/tls/ca.key       its key (0600; signs nothing after the server certificate)
//   STATE/tls/server.crt   the proxy's certificate, signed by the CA, for localhost,
//                          127.0.0.1 and ::1 (subjectAltName), valid 10 years
//   STATE/tls/server.key   its key (0600)
//
// Keys are ECDSA P-256, signatures SHA-256 (OpenSSL API, no openssl binary). The directory is
// made under a temporary name and renamed into place, so a crash leaves either nothing or all of
// it. Whether the proxy uses it is recorded in STATE/run/proxy-tls, which connection strings
// follow (`local up --no-tls` turns it off).
namespace pgbranch::cli {

struct LocalTlsFiles {
  std::string ca_cert;
  std::string cert;
  std::string key;
};

// Creates the material if STATE/tls is missing or incomplete; returns the paths.
absl::StatusOr<LocalTlsFiles> EnsureLocalTls(const std::string& state_dir);

// Records whether the instance's proxy speaks TLS (`local up`: on by default, off with
// --no-tls); with `enabled`, makes sure the material exists first.
absl::Status ConfigureLocalTls(const std::string& state_dir, bool enabled);

// The proxy's TLS flags as recorded: {"--tls-cert", F, "--tls-key", F}, or none for plain TCP.
// For whoever starts (or restarts) the proxy.
std::vector<std::string> LocalProxyTlsArgs(const std::string& state_dir);

// The CA file clients must verify the proxy against, or "" when the proxy speaks plain TCP.
std::string LocalTlsRootCert(const std::string& state_dir);

}  // namespace pgbranch::cli
