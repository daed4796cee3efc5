#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "cli/cli_context.h"
#include "common/cpprest.h"

// How a client reaches an endpoint: the one place that builds connection strings, so that
// every command (create, get, connstr, schema-diff) prints the same thing. The password is the
// endpoint's branch's own (operator/local/branch_credentials.h); with TLS on (the default) the
// strings ask for sslmode=verify-full against the instance's CA (operator/local/local_tls.h).
namespace pgbranch::cli {

struct ConnectionInfo {
  std::string endpoint;
  std::string branch;
  std::string host;
  int port = 0;  // the endpoint's own port at the proxy
  std::string user;
  std::string password;
  std::string database;
  std::string sslmode;      // "verify-full", or "" for plain TCP
  std::string sslrootcert;  // the CA file with verify-full
  std::string uri;          // postgresql://user:pw@host:port/db[?params]
  std::string proxy_uri;    // the same through the shared proxy port, routed by options=endpoint=
};

// `endpoint` is the endpoint object as the controller API returns it.
absl::StatusOr<ConnectionInfo> EndpointConnection(const CliContext& ctx,
                                                  const web::json::value& endpoint);

// -o json form of `info` (what `connstr -o json` prints).
web::json::value ConnectionJson(const ConnectionInfo& info);

}  // namespace pgbranch::cli
