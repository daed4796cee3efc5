#include "cli/connection_info.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "operator/local/branch_credentials.h"
#include "operator/local/local_tls.h"
#include "operator/model/json.h"

namespace pgbranch::cli {

absl::StatusOr<ConnectionInfo> EndpointConnection(const CliContext& ctx,
                                                  const web::json::value& endpoint) {
  PGB_ASSIGN_OR_RETURN(LocalInstance inst, ctx.Instance());
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  ConnectionInfo c;
  c.endpoint = control::JsonString(endpoint.at("metadata"), "name");
  c.branch = control::JsonString(endpoint.at("spec"), "branch");
  PGB_ASSIGN_OR_RETURN(web::json::value branch,
                       client.Get("/v1/branches/" + web::uri::encode_data_string(c.branch)));
  BranchCredentials credentials(ctx.state_dir());
  PGB_ASSIGN_OR_RETURN(c.password,
                       credentials.Password(control::JsonString(branch.at("metadata"), "uid")));
  c.host = "127.0.0.1";  // the proxy's certificate names it (subjectAltName IP:127.0.0.1)
  c.port = static_cast<int>(control::JsonInt(endpoint.at("status"), "port"));
  c.user = credentials.role();
  c.database = "app";
  c.sslrootcert = LocalTlsRootCert(ctx.state_dir());
  if (!c.sslrootcert.empty()) c.sslmode = "verify-full";
  std::string base = absl::StrCat("postgresql://", UriEscape(c.user), ":", UriEscape(c.password),
                                  "@", c.host, ":");
  std::string params;
  if (!c.sslmode.empty()) {
    params = absl::StrCat("sslmode=", c.sslmode, "&sslrootcert=", UriEscape(c.sslrootcert));
  }
  c.uri = absl::StrCat(base, c.port, "/", UriEscape(c.database), params.empty() ? "" : "?", params);
  c.proxy_uri = absl::StrCat(base, inst.proxy_port, "/", UriEscape(c.database), "?", params,
                             params.empty() ? "" : "&", "options=endpoint%3D", c.endpoint);
  return c;
}

web::json::value ConnectionJson(const ConnectionInfo& info) {
  using web::json::value;
  value v = value::object();
  v["endpoint"] = value::string(info.endpoint);
  v["branch"] = value::string(info.branch);
  v["uri"] = value::string(info.uri);
  v["proxyUri"] = value::string(info.proxy_uri);
  v["host"] = value::string(info.host);
  v["port"] = value::number(info.port);
  v["user"] = value::string(info.user);
  v["password"] = value::string(info.password);
  v["database"] = value::string(info.database);
  if (!info.sslmode.empty()) v["sslmode"] = value::string(info.sslmode);
  if (!info.sslrootcert.empty()) v["sslrootcert"] = value::string(info.sslrootcert);
  return v;
}

}  // namespace pgbranch::cli
