#pragma once

#include <functional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"

// Where the API server is and how to authenticate to it: from a kubeconfig file or from the
// in-cluster ServiceAccount. A loaded KubeConfig is a plain value; its token provider is
// thread-safe (the in-cluster one re-reads the token file, because bound tokens expire).
namespace pgbranch::kube {

class KubeConfig {
 public:
  // Loads like client-go: `explicit_path` if set, else $KUBECONFIG (first existing entry of a
  // ':'-separated list), else in-cluster when KUBERNETES_SERVICE_HOST is set, else
  // ~/.kube/config. `context` "" = the file's current-context.
  static absl::StatusOr<KubeConfig> Load(const std::string& explicit_path = "",
                                         const std::string& context = "");
  // A kubeconfig file; relative paths in it are resolved against its directory.
  static absl::StatusOr<KubeConfig> FromFile(const std::string& path,
                                             const std::string& context = "");
  // Kubeconfig text; `base_dir` resolves relative paths, `source` names it in errors.
  static absl::StatusOr<KubeConfig> FromYaml(const std::string& yaml, const std::string& base_dir,
                                             const std::string& source,
                                             const std::string& context = "");
  // The pod's ServiceAccount: KUBERNETES_SERVICE_HOST/PORT and
  // <root>/var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}. `root` lets
  // tests use a fake directory. The token is re-read when older than `token_refresh`.
  static absl::StatusOr<KubeConfig> InCluster(const std::string& root = "",
                                              Clock* clock = RealClock(),
                                              absl::Duration token_refresh = absl::Minutes(1));

  // "https://host:port" (no trailing slash).
  std::string server;
  // PEM bytes, already read from files or decoded from *-data; "" = not set.
  std::string ca_pem;
  std::string client_cert_pem;
  std::string client_key_pem;
  bool insecure_skip_tls_verify = false;
  // The context's namespace ("default" when unset); in-cluster: the pod's namespace.
  std::string default_namespace = "default";
  // Returns the current bearer token ("" = none). Unset when the user has no token.
  std::function<std::string()> token_provider;
  // "kubeconfig /path (context ctx)" or "in-cluster": for logs and errors.
  std::string source;
};

}  // namespace pgbranch::kube
