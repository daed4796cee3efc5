#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/cpprest.h"
#include "common/token_signer.h"
#include "operator/control/compute_runtime.h"
#include "operator/kube/kube_client.h"

// Computes as Kubernetes Pods: one pod `<endpoint>-compute` per awake Endpoint, running
// `pgbranch-compute` (configuration in the PGBRANCH_COMPUTE_CONFIG environment variable, the role
// password from the endpoint's credentials Secret), owned by the Endpoint.
//
//   Start   = make sure the credentials Secret (and, without a fixed proxy host, the endpoint's
//             ExternalName Service to the proxy) exists, then create the pod (ALREADY_EXISTS: it is
//             there, possibly still terminating: Observe tells). With a token signer, also the
//             Secret `<endpoint>-pageserver-token` (key `token`: a tenant-scoped pageserver token,
//             tenant = spec.tenant_id), re-minted when it no longer verifies (key rotated), and
//             mounted at /etc/pgbranch/pageserver-token (compute config token_file).
//   Stop    = delete the pod; the kubelet sends SIGTERM and the agent suspends cleanly (fast
//             shutdown, pagefs flush, unmount) within terminationGracePeriodSeconds.
//   Observe = the pod as the informer cache holds it (no API call), plus the agent's /status on
//             the pod's address for activity (busy, last_active), polled at most every
//             `status_poll_interval` per endpoint.
//
// Invariant: a pod is only created when no pod of that name exists (the name is the lock), so two
// computes of one endpoint never run at once; the pageserver's writer generation fences a
// terminating pod's late writes in any case. Thread-safe.
namespace pgbranch::k8s {

struct PodComputeOptions {
  std::string image = "pgbranch/compute:dev";
  std::string image_pull_policy = "IfNotPresent";
  std::string pageserver;  // host:port as compute pods reach it
  // FUSE: empty = a privileged container (works everywhere); otherwise the extended resource a
  // device plugin hands /dev/fuse out with (e.g. "github.com/fuse"), and only CAP_SYS_ADMIN.
  std::string fuse_device_resource;
  std::string default_cpu;  // requests+limits when the Endpoint gives none ("" = none)
  std::string default_memory;
  // Where clients connect (written into the credentials Secret's uri). Empty host: the
  // endpoint's own Service, `<endpoint>.<namespace>.svc`, an ExternalName Service the operator
  // creates pointing at `proxy_service` (the proxy's Service DNS name).
  std::string proxy_host;
  std::string proxy_service = "pgbranch-proxy.pgbranch-system.svc.cluster.local";
  int proxy_port = 5432;
  std::string role = "app";
  std::string database = "app";
  int pg_port = 5432;
  int status_port = 8080;
  std::string service_account;  // "" = the namespace's default
  // Signs each compute's tenant-scoped pageserver token; null: computes get no token (the
  // pageserver runs without auth).
  std::shared_ptr<const TokenSigner> token_signer;
  absl::Duration status_poll_interval = absl::Seconds(2);
  int termination_grace_seconds = 30;
};

class PodComputeRuntime : public control::ComputeRuntime {
 public:
  // Looks a pod up in the informer cache by namespace and name.
  using PodLookup = std::function<std::optional<web::json::value>(const std::string& ns,
                                                                  const std::string& name)>;
  // Fetches agent status: (pod IP, port, path) -> body. Injectable for unit tests.
  using StatusFetch = std::function<absl::StatusOr<std::string>(const std::string& host, int port,
                                                                const std::string& path)>;

  // POSTs to the agent: (pod IP, port, path, timeout) -> body. Injectable for unit tests.
  using AgentPost = std::function<absl::StatusOr<std::string>(
      const std::string& host, int port, const std::string& path, absl::Duration timeout)>;

  PodComputeRuntime(PodComputeOptions options, kube::KubeClient* client, PodLookup pods,
                    StatusFetch fetch = nullptr, AgentPost post = nullptr);

  absl::Status Start(const control::ComputeSpec& spec) override;
  absl::Status Stop(const std::string& ns, const std::string& endpoint) override;
  control::ComputeObservation Observe(const std::string& ns, const std::string& endpoint) override;
  // POST /checkpoint to the agent of the endpoint's serving pod, at its pod IP (the operator
  // reaches computes directly; the chart's NetworkPolicy admits it).
  absl::StatusOr<bool> Checkpoint(const std::string& ns, const std::string& endpoint,
                                  absl::Duration timeout) override;

  // Running, Ready and with an address: PostgreSQL accepts connections.
  static bool PodServing(const web::json::value& pod);
  static std::string PodName(const std::string& endpoint) { return endpoint + "-compute"; }
  static std::string SecretName(const std::string& endpoint) { return endpoint + "-credentials"; }
  static std::string TokenSecretName(const std::string& endpoint) {
    return endpoint + "-pageserver-token";
  }
  static constexpr char kTokenDir[] = "/etc/pgbranch/pageserver-token";

  // The pod manifest (public for unit tests and docs).
  web::json::value PodManifest(const control::ComputeSpec& spec) const;
  // The compute agent's configuration for `spec` (YAML).
  std::string AgentConfig(const control::ComputeSpec& spec) const;
  // The credentials Secret for a new endpoint, with a fresh random password.
  web::json::value SecretManifest(const std::string& ns, const std::string& endpoint,
                                  const std::string& endpoint_uid) const;
  // The compute's pageserver token Secret (only with a token signer).
  absl::StatusOr<web::json::value> TokenSecretManifest(const control::ComputeSpec& spec) const;
  // The endpoint's ExternalName Service (only when proxy_host is empty).
  web::json::value ServiceManifest(const std::string& ns, const std::string& endpoint,
                                   const std::string& endpoint_uid) const;
  // The connection URI clients use (through the proxy).
  std::string ClientUri(const std::string& ns, const std::string& endpoint,
                        const std::string& password) const;
  std::string ClientHost(const std::string& ns, const std::string& endpoint) const;

 private:
  absl::Status EnsureSecret(const control::ComputeSpec& spec);
  absl::Status EnsureService(const control::ComputeSpec& spec);
  absl::Status EnsureTokenSecret(const control::ComputeSpec& spec);

  const PodComputeOptions options_;
  kube::KubeClient* const client_;
  const PodLookup pods_;
  const StatusFetch fetch_;
  const AgentPost post_;

  struct Activity {
    std::string pod_uid;
    absl::Time polled = absl::InfinitePast();
    bool busy = false;
    std::optional<absl::Time> last_active;
  };
  std::mutex mu_;
  std::map<std::string, Activity> activity_;  // by ns/endpoint. GUARDED_BY(mu_)
};

}  // namespace pgbranch::k8s
