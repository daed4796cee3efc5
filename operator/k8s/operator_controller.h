#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "operator/control/activity_tracker.h"
#include "operator/control/branch_reconciler.h"
#include "operator/control/endpoint_reconciler.h"
#include "operator/control/promotion_reconciler.h"
#include "operator/control/timeline_service.h"
#include "operator/k8s/kube_object_store.h"
#include "operator/k8s/operator_config.h"
#include "operator/k8s/operator_metrics.h"
#include "operator/k8s/pod_compute_runtime.h"
#include "operator/k8s/pod_sql_connector.h"
#include "operator/kube/informer.h"
#include "operator/kube/kube_client.h"
#include "operator/kube/work_queue.h"

// The Kubernetes side of the operator: informers for Branches, Endpoints, Promotions and compute
// Pods in the watched namespaces, one work queue and one worker per kind, and the shared reconcile
// core (control::BranchReconciler / EndpointReconciler) over KubeObjectStore and PodComputeRuntime.
//
// Level-triggered: every event, timer (requeue_after) and resync enqueues a key; a pass reads
// the caches and converges. Before the first pass over an object the operator's finalizer is
// added (nothing external exists for an object without it). Workers run only while Leading():
// caches stay warm on standby replicas so a new leader starts at once.
//
// Wake handshake with the proxy: the proxy sets the annotation `pgbranch.io/wake-requested-at`
// (RFC 3339) on the Endpoint; a change of it counts as activity and enqueues the endpoint, whose
// pass starts the compute pod; the proxy watches the pod become Ready.
namespace pgbranch::k8s {

inline constexpr char kWakeAnnotation[] = "pgbranch.io/wake-requested-at";

class OperatorController {
 public:
  // Called with (kind, ns, name, type "Normal"|"Warning", reason, message) to record an Event.
  using EventFn = std::function<void(const std::string& kind, const web::json::value& obj,
                                     const std::string& type, const std::string& reason,
                                     const std::string& message)>;

  OperatorController(const OperatorConfig& config, kube::KubeClient* client,
                     control::TimelineService* timelines, OperatorMetrics* metrics,
                     EventFn events = nullptr, Clock* clock = RealClock());
  ~OperatorController();

  // Starts the informers (all replicas).
  void Start();
  bool WaitForSync(absl::Duration timeout);
  bool Synced();
  // Starts or stops the workers (leader election). Stopping waits for passes in flight.
  void SetLeading(bool leading);
  bool Leading() const { return leading_; }
  // Stops workers and informers.
  void Shutdown();

  KubeObjectStore* store() { return store_.get(); }

 private:
  kube::Informer* InformerFor(std::vector<std::unique_ptr<kube::Informer>>& list,
                              const std::string& ns);
  std::optional<web::json::value> CacheGet(const kube::Resource& r, const std::string& ns,
                                           const std::string& name);
  std::vector<web::json::value> CacheList(const kube::Resource& r, const std::string& ns);

  void OnBranch(const web::json::value& obj, bool deleted);
  void OnEndpoint(const web::json::value* old_obj, const web::json::value& obj, bool deleted);
  // Secondary indexes (parent -> children, branch -> endpoints), so an event enqueues its
  // dependants without scanning the cache.
  void Index(std::map<std::string, std::set<std::string>>* index,
             std::map<std::string, std::string>* owner_of, const std::string& ns,
             const std::string& name, const std::string& owner, bool deleted);
  std::vector<std::string> Indexed(const std::map<std::string, std::set<std::string>>& index,
                                   const std::string& ns, const std::string& owner);
  void OnPod(const web::json::value& obj);
  // Promotions have their own queue and worker: a pass may block while a migration runs.
  void WorkPromotions();
  void Enqueue(control::Kind kind, const std::string& ns, const std::string& name);

  void Work(control::Kind kind);
  void ProcessKey(control::Kind kind, const std::string& key);
  void EmitConditionEvent(control::Kind kind, const std::string& ns, const std::string& name,
                          const std::string& before_reason);
  std::string ReadyReason(control::Kind kind, const std::string& ns, const std::string& name);
  void PhaseMetricsLoop();

  const OperatorConfig config_;
  kube::KubeClient* const client_;
  OperatorMetrics* const metrics_;
  const EventFn events_;
  Clock* const clock_;

  control::ActivityTracker activity_;
  std::unique_ptr<KubeObjectStore> store_;
  std::unique_ptr<PodComputeRuntime> runtime_;
  std::unique_ptr<control::BranchReconciler> branches_;
  std::unique_ptr<control::EndpointReconciler> endpoints_;
  std::unique_ptr<PodSqlConnector> sql_;
  std::unique_ptr<control::PromotionReconciler> promotions_;

  std::vector<std::unique_ptr<kube::Informer>> branch_informers_;
  std::vector<std::unique_ptr<kube::Informer>> endpoint_informers_;
  std::vector<std::unique_ptr<kube::Informer>> pod_informers_;
  std::vector<std::unique_ptr<kube::Informer>> promotion_informers_;

  kube::WorkQueue branch_queue_;
  kube::WorkQueue endpoint_queue_;
  kube::WorkQueue promotion_queue_;

  std::mutex mu_;
  std::map<std::string, std::set<std::string>> children_;  // ns/parent -> names. GUARDED_BY(mu_)
  std::map<std::string, std::string> parent_of_;           // ns/name -> parent. GUARDED_BY(mu_)
  std::map<std::string, std::set<std::string>>
      endpoints_of_;                              // ns/branch -> names. GUARDED_BY(mu_)
  std::map<std::string, std::string> branch_of_;  // ns/name -> branch. GUARDED_BY(mu_)
  std::map<std::string, absl::Time>
      wake_started_;  // ns/name -> when the proxy asked. GUARDED_BY(mu_)
  std::atomic<bool> leading_{false};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> workers_;
  std::thread metrics_thread_;
};

}  // namespace pgbranch::k8s
