#include "operator/kube/kube_config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "yaml-cpp/yaml.h"

namespace pgbranch::kube {
namespace {

namespace fs = std::filesystem;

constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

absl::StatusOr<std::string> ReadFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read ", what, " ", path));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string Resolve(const std::string& base_dir, const std::string& path) {
  if (path.empty() || fs::path(path).is_absolute() || base_dir.empty()) return path;
  return (fs::path(base_dir) / path).string();
}

// Finds the entry named `name` in a kubeconfig list like `clusters: [{name, cluster: {...}}]`.
YAML::Node FindNamed(const YAML::Node& list, const std::string& name, const std::string& inner) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (item["name"] && item["name"].as<std::string>("") == name) return item[inner];
  }
  return YAML::Node();
}

std::string Str(const YAML::Node& node, const std::string& key) {
  if (!node || !node.IsMap() || !node[key]) return "";
  return node[key].as<std::string>("");
}

// `<field>-data` (base64) or `<field>` (a path), as PEM bytes.
absl::StatusOr<std::string> PemField(const YAML::Node& node, const std::string& field,
                                     const std::string& base_dir, const std::string& where) {
  std::string data = Str(node, field + "-data");
  if (!data.empty()) {
    std::string pem;
    if (!absl::Base64Unescape(data, &pem)) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": ", field, "-data is not valid base64"));
    }
    return pem;
  }
  std::string path = Str(node, field);
  if (path.empty()) return std::string();
  auto pem = ReadFile(Resolve(base_dir, path), absl::StrCat(where, " ", field));
  if (!pem.ok()) return pem.status();
  return *pem;
}

// A token file, re-read when the cached copy is older than `refresh`. Thread-safe.
class TokenFile {
 public:
  TokenFile(std::string path, Clock* clock, absl::Duration refresh)
      : path_(std::move(path)), clock_(clock), refresh_(refresh) {}

  std::string Get() {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t now = clock_->NowMicros();
    if (read_once_ && now - read_at_ < absl::ToInt64Microseconds(refresh_)) return token_;
    auto text = ReadFile(path_, "token file");
    // Keep the last good token when the file is briefly missing (it is swapped atomically by
    // the kubelet, but be forgiving).
    if (text.ok()) token_ = std::string(absl::StripAsciiWhitespace(*text));
    read_at_ = now;
    read_once_ = true;
    return token_;
  }

 private:
  const std::string path_;
  Clock* const clock_;
  const absl::Duration refresh_;
  std::mutex mu_;
  std::string token_;
  int64_t read_at_ = 0;
  bool read_once_ = false;
};

}  // namespace

absl::StatusOr<KubeConfig> KubeConfig::FromYaml(const std::string& yaml,
                                                const std::string& base_dir,
                                                const std::string& source,
                                                const std::string& context) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not valid YAML: ", e.what()));
  }
  if (!root || !root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat(source, ": not a kubeconfig (not a map)"));
  }
  std::string ctx_name = context.empty() ? Str(root, "current-context") : context;
  if (ctx_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": no current-context set and no context given"));
  }
  YAML::Node ctx = FindNamed(root["contexts"], ctx_name, "context");
  if (!ctx || !ctx.IsMap()) {
    return absl::NotFoundError(absl::StrCat(source, ": context \"", ctx_name, "\" not found"));
  }
  std::string cluster_name = Str(ctx, "cluster");
  std::string user_name = Str(ctx, "user");
  YAML::Node cluster = FindNamed(root["clusters"], cluster_name, "cluster");
  if (!cluster || !cluster.IsMap()) {
    return absl::NotFoundError(absl::StrCat(source, ": cluster \"", cluster_name,
                                            "\" (of context \"", ctx_name, "\") not found"));
  }
  KubeConfig config;
  config.source = absl::StrCat("kubeconfig ", source, " (context ", ctx_name, ")");
  config.server = Str(cluster, "server");
  while (!config.server.empty() && config.server.back() == '/') config.server.pop_back();
  if (config.server.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": clusters[", cluster_name, "].cluster.server is empty"));
  }
  std::string ns = Str(ctx, "namespace");
  if (!ns.empty()) config.default_namespace = ns;
  config.insecure_skip_tls_verify = Str(cluster, "insecure-skip-tls-verify") == "true";
  std::string cluster_where = absl::StrCat(source, ": clusters[", cluster_name, "].cluster");
  auto ca = PemField(cluster, "certificate-authority", base_dir, cluster_where);
  if (!ca.ok()) return ca.status();
  config.ca_pem = *ca;

  if (!user_name.empty()) {
    YAML::Node user = FindNamed(root["users"], user_name, "user");
    if (!user) {
      return absl::NotFoundError(absl::StrCat(source, ": user \"", user_name, "\" (of context \"",
                                              ctx_name, "\") not found"));
    }
    std::string user_where = absl::StrCat(source, ": users[", user_name, "].user");
    auto cert = PemField(user, "client-certificate", base_dir, user_where);
    if (!cert.ok()) return cert.status();
    auto key = PemField(user, "client-key", base_dir, user_where);
    if (!key.ok()) return key.status();
    config.client_cert_pem = *cert;
    config.client_key_pem = *key;
    if (config.client_cert_pem.empty() != config.client_key_pem.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(user_where, ": client-certificate and client-key must be given together"));
    }
    std::string token = Str(user, "token");
    std::string token_file = Str(user, "tokenFile");
    if (!token.empty()) {
      config.token_provider = [token] { return token; };
    } else if (!token_file.empty()) {
      std::string path = Resolve(base_dir, token_file);
      auto first = ReadFile(path, absl::StrCat(user_where, " tokenFile"));
      if (!first.ok()) return first.status();
      auto file = std::make_shared<TokenFile>(path, RealClock(), absl::Minutes(1));
      config.token_provider = [file] { return file->Get(); };
    }
  }
  return config;
}

absl::StatusOr<KubeConfig> KubeConfig::FromFile(const std::string& path,
                                                const std::string& context) {
  auto text = ReadFile(path, "kubeconfig");
  if (!text.ok()) return text.status();
  return FromYaml(*text, fs::path(path).parent_path().string(), path, context);
}

absl::StatusOr<KubeConfig> KubeConfig::InCluster(const std::string& root, Clock* clock,
                                                 absl::Duration token_refresh) {
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
  if (host == nullptr || *host == '\0' || port == nullptr || *port == '\0') {
    return absl::FailedPreconditionError(
        "not running in a cluster: KUBERNETES_SERVICE_HOST/KUBERNETES_SERVICE_PORT are not set");
  }
  std::string dir = root + kServiceAccountDir;
  KubeConfig config;
  config.source = "in-cluster";
  std::string h = host;
  if (h.find(':') != std::string::npos) h = absl::StrCat("[", h, "]");  // IPv6
  config.server = absl::StrCat("https://", h, ":", port);
  auto ca = ReadFile(dir + "/ca.crt", "in-cluster CA");
  if (!ca.ok()) return ca.status();
  config.ca_pem = *ca;
  auto token = ReadFile(dir + "/token", "in-cluster ServiceAccount token");
  if (!token.ok()) return token.status();
  auto ns = ReadFile(dir + "/namespace", "in-cluster namespace");
  if (ns.ok() && !absl::StripAsciiWhitespace(*ns).empty()) {
    config.default_namespace = std::string(absl::StripAsciiWhitespace(*ns));
  }
  auto file = std::make_shared<TokenFile>(dir + "/token", clock, token_refresh);
  config.token_provider = [file] { return file->Get(); };
  return config;
}

absl::StatusOr<KubeConfig> KubeConfig::Load(const std::string& explicit_path,
                                            const std::string& context) {
  if (!explicit_path.empty()) return FromFile(explicit_path, context);
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr && *env != '\0') {
    for (absl::string_view p : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      std::string path(p);
      std::error_code ec;
      if (fs::exists(path, ec)) return FromFile(path, context);
    }
    return absl::NotFoundError(absl::StrCat("no file of $KUBECONFIG (", env, ") exists"));
  }
  const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
  if (host != nullptr && *host != '\0') return InCluster();
  const char* home = std::getenv("HOME");
  std::string path = absl::StrCat(home ? home : "", "/.kube/config");
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "no Kubernetes configuration: no --kubeconfig, no $KUBECONFIG, not in a cluster, and ",
        path, " does not exist"));
  }
  return FromFile(path, context);
}

}  // namespace pgbranch::kube
