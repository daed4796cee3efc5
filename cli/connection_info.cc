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
absl::StatusOr<std::map<std::string, std::string>> CredentialsOf(const KubeApi& kube,
                                                                 const web::json::value& endpoint) {
  const std::string name = control::JsonString(endpoint.at("metadata"), "name");
  std::string secret = control::JsonString(endpoint.at("status"), "secretName");
  if (secret.empty()) secret = name + "-credentials";
  absl::StatusOr<std::map<std::string, std::string>> data = kube.SecretData(secret);
  if (absl::IsNotFound(data.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "endpoint \"", name, "\" has no credentials yet: its Secret \"", secret, "\" (namespace ",
        kube.ns(),
        ") appears when its compute first starts; start it with `pgbranch endpoint start ", name,
        "`"));
  }
  return data;
}

std::string Get(const std::map<std::string, std::string>& data, const char* key) {
  auto it = data.find(key);
  return it == data.end() ? std::string() : it->second;
}

absl::StatusOr<ConnectionInfo> KubeConnection(const CliContext& ctx, const KubeApi& kube,
                                              const web::json::value& endpoint) {
  ConnectionInfo c;
  c.endpoint = control::JsonString(endpoint.at("metadata"), "name");
  c.branch = control::JsonString(endpoint.at("spec"), "branch");
  PGB_ASSIGN_OR_RETURN(auto data, CredentialsOf(kube, endpoint));
  c.host = Get(data, "host");
  (void)absl::SimpleAtoi(Get(data, "port"), &c.port);
  c.user = Get(data, "user");
  c.password = Get(data, "password");
  c.database = Get(data, "dbname");
  c.uri = Get(data, "uri");
  if (c.uri.empty()) {
    return absl::FailedPreconditionError(absl::StrCat("the credentials Secret of endpoint \"",
                                                      c.endpoint,
                                                      "\" has no uri; the operator writes it"));
  }
  bool rebuild = !ctx.proxy_address().empty();
  // A read-only compute cannot set a password: its role and password are those of the branch's
  // data, set by the branch's read-write endpoint (its Secret), not the fresh one of its own
  // Secret. The routing key stays the read-only endpoint's.
  if (control::JsonString(endpoint.at("spec"), "type") == "ReadOnly") {
    PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
    PGB_ASSIGN_OR_RETURN(web::json::value list, client.Get("/v1/endpoints"));
    for (const auto& e : list.at("items").as_array()) {
      if (control::JsonString(e.at("spec"), "branch") != c.branch ||
          control::JsonString(e.at("spec"), "type") == "ReadOnly") {
        continue;
      }
      absl::StatusOr<std::map<std::string, std::string>> rw = CredentialsOf(kube, e);
      if (!rw.ok()) break;  // none yet: the endpoint's own Secret is all there is
      c.user = Get(*rw, "user");
      c.password = Get(*rw, "password");
      rebuild = true;
      break;
    }
  }
  if (!ctx.proxy_address().empty()) {
    // Another address of the proxy (a port-forward): the same routing key.
    std::string address = ctx.proxy_address();
    size_t colon = address.rfind(':');
    c.host = address.substr(0, colon);
    if (colon != std::string::npos) (void)absl::SimpleAtoi(address.substr(colon + 1), &c.port);
  }
  if (rebuild) {
    std::string routing = Get(data, "endpoint");
    if (routing.empty()) routing = absl::StrCat(c.endpoint, ".", kube.ns());
    c.uri =
        absl::StrCat("postgresql://", UriEscape(c.user), ":", UriEscape(c.password), "@", c.host,
                     ":", c.port, "/", UriEscape(c.database), "?options=endpoint%3D", routing);
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
