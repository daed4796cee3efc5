#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/migration_plan.h"
#include "common/clock.h"
#include "common/cpprest.h"
#include "operator/control/reconcile_context.h"
#include "operator/control/sql_connector.h"
#include "operator/kube/kube_client.h"

// Reconciles one Promotion (crds/promotions.pgbranch.io.yaml, docs/promotion.md): the
// Kubernetes form of `pgbranch branch promote`, with the CLI's core (cli/migration_plan.h,
// cli/migration_applier.h) run against the computes in pods.
//
//   Pending    the branch, its parent, the parent's read-write endpoint and the migration
//              (inline, a ConfigMap key, or the DDL captured on the branch) are checked; the
//              statements' fingerprint is recorded;
//   Rehearsing a throwaway branch of the parent's head (`<promotion>-rehearsal-<attempt>`, owned
//              by the Promotion, with a TTL) gets the migration and the checks, then is deleted;
//   Applying   the restore point (`<parent>-before-<promotion>`, not owned: it outlives the
//              Promotion) is created and Ready, then the migration runs on the parent;
//   Succeeded / Failed: terminal; the Promotion is a record.
//
// Idempotent across operator restarts, every step resumes from status:
//  - the rehearsal is marked started before its migration runs; a pass that finds it started
//    (the operator died during it) throws that rehearsal branch away and starts a new attempt;
//  - the parent's transaction id is written to status before COMMIT (MigrationApplier's
//    before-commit hook; the write fails on a stale resourceVersion, which rolls back). A pass
//    that finds an id asks the parent txid_status(id): committed -> Succeeded without applying
//    again; aborted -> apply; in progress -> wait. So the migration never commits twice.
//  - the migration's fingerprint is compared before each run: a migration that changed midway
//    (more DDL captured, the ConfigMap edited) fails the Promotion instead of applying another
//    migration than the one rehearsed.
// Not thread-safe: one worker calls it (Apply blocks for the migration's duration).
namespace pgbranch::control {

inline constexpr char kPromotionPending[] = "Pending";
inline constexpr char kPromotionRehearsing[] = "Rehearsing";
inline constexpr char kPromotionApplying[] = "Applying";
inline constexpr char kPromotionSucceeded[] = "Succeeded";
inline constexpr char kPromotionFailed[] = "Failed";

// Labels and annotations the reconciler puts on the branches it creates.
inline constexpr char kLabelPromotion[] = "pgbranch.io/promotion";
inline constexpr char kLabelRestorePointOf[] = "pgbranch.io/restore-point-of";
inline constexpr char kAnnotationPromotionUid[] = "pgbranch.io/promotion-uid";

class PromotionReconciler {
 public:
  // An Event about the Promotion (warning: a person should look).
  using EventFn = std::function<void(const web::json::value& promotion, bool warning,
                                     const std::string& reason, const std::string& message)>;
  struct Options {
    absl::Duration poll = absl::Seconds(2);  // while waiting for a branch or a compute
    std::string rehearsal_ttl = "1h";        // a rehearsal left behind expires
    int max_rehearsal_attempts = 3;          // interrupted rehearsals started again
  };

  PromotionReconciler(kube::KubeClient* client, SqlConnector* sql, Clock* clock, EventFn events,
                      Options options);
  PromotionReconciler(kube::KubeClient* client, SqlConnector* sql, Clock* clock, EventFn events)
      : PromotionReconciler(client, sql, clock, std::move(events), Options()) {}

  // An error means "try again with back-off" (the API server or a compute is unreachable).
  absl::StatusOr<ReconcileResult> Reconcile(const std::string& ns, const std::string& name);

  static std::string RehearsalName(const std::string& promotion, int64_t attempt);
  static std::string RestorePointName(const std::string& parent, const std::string& promotion);
  // Stable across builds (FNV-1a over the statements), so a restarted operator compares equal.
  static std::string Fingerprint(const cli::MigrationPlan& plan);

 private:
  struct Pass;

  absl::StatusOr<ReconcileResult> Start(Pass& p);
  absl::StatusOr<ReconcileResult> Rehearse(Pass& p);
  absl::StatusOr<ReconcileResult> Apply(Pass& p);
  // The parent's transaction id was recorded: did it commit?
  absl::StatusOr<ReconcileResult> Resume(Pass& p, cli::SqlSession* session);

  // The migration to promote, or FAILED_PRECONDITION/INVALID_ARGUMENT (the Promotion fails)
  // or UNAVAILABLE (wait: the branch's compute is starting).
  absl::StatusOr<cli::MigrationPlan> Plan(Pass& p);
  absl::StatusOr<cli::MigrationPlan> CapturedPlan(Pass& p, const web::json::value& branch);
  // The same statements as recorded at Pending, or FAILED_PRECONDITION.
  absl::StatusOr<cli::MigrationPlan> SamePlan(Pass& p);
  // A Running endpoint of `branch` (read-write when asked); UNAVAILABLE while it starts (a
  // suspended one is asked to start), FAILED_PRECONDITION when there is none.
  absl::StatusOr<std::string> ServingEndpoint(Pass& p, const std::string& branch, bool read_write);
  // A session on the parent's (status.parent) read-write endpoint. Null when there is none (the
  // Promotion fails: NoReadWriteEndpoint) or it cannot be reached yet (a Wait), with what the
  // pass returns in `*outcome`.
  std::unique_ptr<cli::SqlSession> ConnectParent(Pass& p, absl::StatusOr<ReconcileResult>* outcome);
  absl::Status EnsureRehearsal(Pass& p, const std::string& name);
  absl::Status EnsureRestorePoint(Pass& p, const std::string& name);
  void DeleteRehearsal(const std::string& ns, const std::string& name);
  absl::Status DropRestorePoint(const std::string& ns, const std::string& name);

  absl::Status WriteStatus(Pass& p);
  void SetCondition(Pass& p, const std::string& type, bool ok, const std::string& reason,
                    const std::string& message);
  absl::StatusOr<ReconcileResult> Fail(Pass& p, const std::string& reason,
                                       const std::string& message);
  absl::StatusOr<ReconcileResult> Wait(Pass& p, const std::string& message);
  void Event(const Pass& p, bool warning, const std::string& reason, const std::string& message);

  kube::KubeClient* const client_;
  SqlConnector* const sql_;
  Clock* const clock_;
  const EventFn events_;
  const Options options_;
};

}  // namespace pgbranch::control
