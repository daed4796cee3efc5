#include "cli/connection_info.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "operator/model/json.h"

namespace pgbranch::cli {

absl::StatusOr<ConnectionInfo> EndpointConnection(const CliContext& ctx,
                                                  const web::json::value& endpoint) {
  PGB_ASSIGN_OR_RETURN(std::string pw, ctx.Password());
  PGB_ASSIGN_OR_RETURN(LocalInstance inst, ctx.Instance());
  ConnectionInfo c;
  c.endpoint = control::JsonString(endpoint.at("metadata"), "name");
  c.host = "127.0.0.1";
  c.port = static_cast<int>(control::JsonInt(endpoint.at("status"), "port"));
  c.user = "app";
  c.password = pw;
  c.database = "app";
  c.uri = ConnectionUri(pw, c.port);
  c.proxy_uri =
      absl::StrCat(ConnectionUri(pw, inst.proxy_port), "?options=endpoint%3D", c.endpoint);
  return c;
}

web::json::value ConnectionJson(const ConnectionInfo& info) {
  using web::json::value;
  value v = value::object();
  v["endpoint"] = value::string(info.endpoint);
  v["uri"] = value::string(info.uri);
  v["proxyUri"] = value::string(info.proxy_uri);
  v["host"] = value::string(info.host);
  v["port"] = value::number(info.port);
  v["user"] = value::string(info.user);
  v["password"] = value::string(info.password);
  v["database"] = value::string(info.database);
  return v;
}

}  // namespace pgbranch::cli
