#include "cli/connection_info.h"

#include <map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/text_util.h"
#include "operator/local/branch_credentials.h"
#include "operator/local/local_tls.h"
#include "operator/model/json.h"

namespace pgbranch::cli {
namespace {

// Kubernetes: everything comes from the endpoint's credentials Secret (the operator writes it
// when the compute first starts; keys uri host port user password dbname endpoint).
absl::StatusOr<ConnectionInfo> KubeConnection(const CliContext& ctx, const KubeApi& kube,
                                              const web::json::value& endpoint) {
  ConnectionInfo c;
  c.endpoint = control::JsonString(endpoint.at("metadata"), "name");
  c.branch = control::JsonString(endpoint.at("spec"), "branch");
  std::string secret = control::JsonString(endpoint.at("status"), "secretName");
  if (secret.empty()) secret = c.endpoint + "-credentials";
  absl::StatusOr<std::map<std::string, std::string>> data = kube.SecretData(secret);
  if (absl::IsNotFound(data.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("endpoint \"", c.endpoint, "\" has no credentials yet: its Secret \"", secret,
                     "\" (namespace ", kube.ns(),
                     ") appears when its compute first starts; start it with "
                     "`pgbranch endpoint start ",
                     c.endpoint, "`"));
  }
  if (!data.ok()) return data.status();
  auto get = [&](const char* k) {
    auto it = data->find(k);
    return it == data->end() ? std::string() : it->second;
  };
  c.host = get("host");
  (void)absl::SimpleAtoi(get("port"), &c.port);
  c.user = get("user");
  c.password = get("password");
  c.database = get("dbname");
  c.uri = get("uri");
  if (c.uri.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Secret \"", secret, "\" has no uri; the operator writes it (is it running?)"));
  }
  if (!ctx.proxy_address().empty()) {
    // The same routing key through another address of the proxy.
    std::string routing = get("endpoint");
    if (routing.empty()) routing = absl::StrCat(c.endpoint, ".", kube.ns());
    std::string address = ctx.proxy_address();
    size_t colon = address.rfind(':');
    c.host = address.substr(0, colon);
    if (colon != std::string::npos) (void)absl::SimpleAtoi(address.substr(colon + 1), &c.port);
    c.uri = absl::StrCat("postgresql://", UriEscape(c.user), ":", UriEscape(c.password), "@",
                         address, "/", UriEscape(c.database), "?options=endpoint%3D", routing);
  }
  c.proxy_uri = c.uri;
  return c;
}

}  // namespace

absl::StatusOr<ConnectionInfo> EndpointConnection(const CliContext& ctx,
                                                  const web::json::value& endpoint) {
  if (const KubeApi* kube = ctx.kube()) return KubeConnection(ctx, *kube, endpoint);
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
