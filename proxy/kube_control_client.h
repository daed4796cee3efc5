#pragma once

#include <deque>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "operator/kube/informer.h"
#include "operator/kube/kube_client.h"
#include "proxy/control_client.h"

// ControlClient for Kubernetes mode: everything comes from the API server, no controller API.
//
// Wake handshake (proxy/README.md, "In Kubernetes"): the proxy sets the annotation
// `pgbranch.io/wake-requested-at: <RFC 3339, microseconds, UTC>` on the Endpoint with a JSON merge
// patch; the operator sees the change, records activity and starts the compute pod
// `<endpoint>-compute` (labels app.kubernetes.io/managed-by=pgbranch-operator,
// pgbranch.io/endpoint=<endpoint>); the proxy watches pods until one is Ready with a podIP and
// connects to podIP:5432.
//
// Two informers per watched namespace (Endpoints; operator-managed Pods) feed a condition
// variable that waiting Wake() calls sleep on. A running endpoint is answered from the cache at
// once; its annotation is still bumped (at most every `activity_patch_interval` per endpoint, by
// a background thread) because it is the operator's activity signal from the proxy.
//
// Endpoint names from clients: "<name>.<namespace>" or "<name>" (then `default_namespace`).
// Namespaces are DNS labels without dots, so the last dot splits; when "<name>.<ns>" does not
// exist but an endpoint literally named so exists in the default namespace, that one is used.
//
// ReportActivity() is a no-op: the compute agent counts its PostgreSQL sessions itself (the
// operator reads them from the pod), so per-proxy connection counts add nothing, and with several
// proxy replicas they could not be summed anyway.
//
// Thread-safe: Wake() runs concurrently on every connection thread.
namespace pgbranch::proxy {

inline constexpr char kWakeRequestedAnnotation[] = "pgbranch.io/wake-requested-at";

class KubeControlClient : public ControlClient {
 public:
  struct Options {
    // Namespaces to watch; one "" entry = all namespaces (cluster-wide list/watch).
    std::vector<std::string> namespaces = {"default"};
    // For plain "<name>" routing keys.
    std::string default_namespace = "default";
    absl::Duration wake_timeout = absl::Seconds(60);
    // While waiting for a pod, the annotation is set again this often (a missed event).
    absl::Duration repatch_interval = absl::Seconds(10);
    // A running endpoint's annotation is bumped at most this often (activity signal).
    absl::Duration activity_patch_interval = absl::Seconds(30);
    int postgres_port = 5432;
    std::string field_manager = "pgbranch-proxy";
    // Informer back-off tuning (tests shorten it).
    kube::Informer::Options informer_options;
  };

  // `client` must outlive this object. Call Start() before Wake().
  KubeControlClient(kube::KubeClient* client, Options options);
  ~KubeControlClient() override;  // Shutdown(), stops informers and the patch thread

  // Starts the informers and the activity patch thread.
  void Start();
  // True once every informer has listed once (Wake() also waits for this, within its deadline).
  bool WaitForSync(absl::Duration timeout);

  absl::StatusOr<BackendAddress> Wake(const std::string& endpoint) override;
  absl::StatusOr<RouteTable> WatchRoutes(int64_t applied_version, int wait_seconds) override;
  absl::Status ReportActivity(const std::map<std::string, int>& connections) override;
  void Shutdown() override;

  // Number of annotation patches sent (for tests and logs).
  int64_t patches_sent();

 private:
  struct NamespaceInformers {
    std::string ns;  // "" = all
    std::unique_ptr<kube::Informer> endpoints;
    std::unique_ptr<kube::Informer> pods;
  };
  struct Target {
    std::string ns, name;
    NamespaceInformers* informers = nullptr;
  };

  // Resolves the routing key to a watched namespace + name. NotFound for unwatched namespaces.
  absl::StatusOr<Target> Resolve(const std::string& key);
  // The Ready address of `ns/name`'s compute pod, if any.
  std::optional<BackendAddress> ReadyAddress(const std::string& key);
  void OnPodEvent(const web::json::value* old_obj, const web::json::value* obj);
  void Signal();
  absl::Status PatchAnnotation(const std::string& ns, const std::string& name);
  void PatchLoop();

  kube::KubeClient* const client_;
  const Options options_;
  std::vector<std::unique_ptr<NamespaceInformers>> informers_;
  bool all_namespaces_ = false;

  absl::Mutex mu_;
  absl::CondVar cv_;  // signalled on every pod/endpoint event, on Shutdown and new patch work
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_patcher_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every event
  // "ns/endpoint" -> pod name -> address, only Ready pods with an IP, not being deleted.
  std::map<std::string, std::map<std::string, BackendAddress>> ready_pods_ ABSL_GUARDED_BY(mu_);
  // "ns/endpoint" -> when the annotation was last set (or queued) by this proxy.
  std::map<std::string, absl::Time> last_patch_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> patch_queue_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> queued_ ABSL_GUARDED_BY(mu_);
  int64_t patches_sent_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread patcher_;
  bool started_ = false;
};

}  // namespace pgbranch::proxy
