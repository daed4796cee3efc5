#include "operator/k8s/pod_sql_connector.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "cli/pq_session.h"
#include "operator/model/json.h"

namespace pgbranch::k8s {
namespace {

// Percent-encodes everything but unreserved characters (RFC 3986) for a URI's userinfo.
std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::BytesToHexString(std::string(1, static_cast<char>(c))));
    }
  }
  return out;
}

}  // namespace

std::string PodSqlConnector::Uri(const std::string& ip, const std::string& password) const {
  const std::string host = ip.find(':') != std::string::npos ? absl::StrCat("[", ip, "]") : ip;
  return absl::StrCat("postgresql://", Escape(role_), ":", Escape(password), "@", host, ":", port_,
                      "/", Escape(database_), "?connect_timeout=10&sslmode=prefer");
}

absl::StatusOr<std::unique_ptr<cli::SqlSession>> PodSqlConnector::Connect(
    const std::string& ns, const std::string& endpoint) {
  std::optional<web::json::value> pod = pods_(ns, PodComputeRuntime::PodName(endpoint));
  if (!pod || !PodComputeRuntime::PodServing(*pod)) {
    return absl::UnavailableError(
        absl::StrCat("endpoint ", endpoint, " has no serving compute pod yet"));
  }
  const std::string ip = control::JsonString(pod->at("status"), "podIP");
  absl::StatusOr<web::json::value> secret =
      client_->Get(kube::kSecrets, ns, PodComputeRuntime::SecretName(endpoint));
  if (!secret.ok()) {
    return absl::UnavailableError(absl::StrCat("reading the credentials of endpoint ", endpoint,
                                               ": ", secret.status().message()));
  }
  std::string password;
  // The API server keeps stringData as base64 in data; a Secret read back before that (an
  // in-memory API) still has stringData.
  if (secret->has_field("stringData")) {
    password = control::JsonString(secret->at("stringData"), "password");
  } else if (secret->has_field("data")) {
    (void)absl::Base64Unescape(control::JsonString(secret->at("data"), "password"), &password);
  }
  if (password.empty()) {
    return absl::UnavailableError(
        absl::StrCat("the credentials Secret of endpoint ", endpoint, " has no password"));
  }
  absl::StatusOr<std::unique_ptr<cli::PqSession>> s =
      cli::PqSession::Connect(Uri(ip, password), "pgbranch-operator promotion");
  if (!s.ok()) return absl::UnavailableError(std::string(s.status().message()));
  return std::unique_ptr<cli::SqlSession>(std::move(*s));
}

}  // namespace pgbranch::k8s
