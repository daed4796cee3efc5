#include "operator/control/promotion_reconciler.h"

#include <cstdint>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "cli/captured_ddl.h"
#include "cli/migration_applier.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "operator/kube/kube_object.h"
#include "operator/model/json.h"

namespace pgbranch::control {

using web::json::value;

// One pass: the Promotion as read (its resourceVersion guards every status write) and the
// status being built.
struct PromotionReconciler::Pass {
  std::string ns;
  std::string name;
  value obj;
  value spec;
  value st;
  std::string Phase() const { return JsonString(st, "phase"); }
};

namespace {

constexpr char kApplicationName[] = "pgbranch-operator promotion";

value Str(const std::string& s) { return value::string(s); }

bool Has(const value& v, const std::string& key) { return v.is_object() && v.has_field(key); }

value OwnerRef(const value& promotion) {
  value o = value::object();
  o["apiVersion"] = Str(kApiVersion);
  o["kind"] = Str("Promotion");
  o["name"] = Str(kube::NameOf(promotion));
  o["uid"] = Str(kube::UidOf(promotion));
  o["controller"] = value::boolean(true);
  value refs = value::array();
  refs[0] = o;
  return refs;
}

value Resource(const std::string& kind, const std::string& ns, const std::string& name,
               const value& spec) {
  value m = value::object();
  m["apiVersion"] = Str(kApiVersion);
  m["kind"] = Str(kind);
  m["metadata"] = value::object();
  m["metadata"]["name"] = Str(name);
  m["metadata"]["namespace"] = Str(ns);
  m["spec"] = spec;
  return m;
}

std::string Phase(const value& obj) {
  return Has(obj, "status") ? JsonString(obj.at("status"), "phase") : "";
}

// "<prefix>-<suffix>" with the prefix cut so the whole is a valid name (63 characters).
std::string Derived(const std::string& prefix, const std::string& suffix) {
  const size_t room = 63 - suffix.size() - 1;
  std::string p = prefix.substr(0, std::min(prefix.size(), room));
  while (!p.empty() && p.back() == '-') p.pop_back();
  return absl::StrCat(p, "-", suffix);
}

bool CheckFailed(const absl::StatusOr<cli::SqlResult>& r, std::string* why) {
  if (!r.ok()) {
    *why = std::string(r.status().message());
    return true;
  }
  if (r->rows.size() == 1 && r->rows[0].size() == 1 && r->rows[0][0] == "f") {
    *why = "its last query returned false";
    return true;
  }
  return false;
}

}  // namespace

PromotionReconciler::PromotionReconciler(kube::KubeClient* client, SqlConnector* sql, Clock* clock,
                                         EventFn events, Options options)
    : client_(client),
      sql_(sql),
      clock_(clock),
      events_(std::move(events)),
      options_(std::move(options)) {}

std::string PromotionReconciler::RehearsalName(const std::string& promotion, int64_t attempt) {
  return Derived(promotion, absl::StrCat("rehearsal-", attempt));
}

std::string PromotionReconciler::RestorePointName(const std::string& parent,
                                                  const std::string& promotion) {
  // The hash keeps two long names that share a 56-character prefix apart.
  cli::MigrationPlan key;
  key.statements.push_back({absl::StrCat(parent, "/", promotion), true});
  return Derived(absl::StrCat(parent, "-before-", promotion).substr(0, 56),
                 Fingerprint(key).substr(0, 6));
}

std::string PromotionReconciler::Fingerprint(const cli::MigrationPlan& plan) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&](const std::string& s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    h ^= 0xff;  // separator: ("ab","c") != ("a","bc")
    h *= 1099511628211ULL;
  };
  for (const auto& s : plan.statements) mix(absl::StrCat(s.transactional ? "t:" : "n:", s.sql));
  return absl::StrFormat("%016x", h);
}

absl::StatusOr<ReconcileResult> PromotionReconciler::Reconcile(const std::string& ns,
                                                               const std::string& name) {
  absl::StatusOr<value> obj = client_->Get(kube::kPromotions, ns, name);
  if (absl::IsNotFound(obj.status())) return ReconcileResult::Done();
  if (!obj.ok()) return obj.status();
  Pass p;
  p.ns = ns;
  p.name = name;
  p.obj = *obj;
  p.spec = Has(p.obj, "spec") ? p.obj.at("spec") : value::object();
  p.st =
      Has(p.obj, "status") && p.obj.at("status").is_object() ? p.obj.at("status") : value::object();
  if (!kube::MetaString(p.obj, "deletionTimestamp").empty()) return ReconcileResult::Done();
  const std::string phase = p.Phase();
  if (phase == kPromotionSucceeded || phase == kPromotionFailed) return ReconcileResult::Done();
  if (phase == kPromotionRehearsing) return Rehearse(p);
  if (phase == kPromotionApplying) return Apply(p);
  return Start(p);
}

// ---- Pending ----------------------------------------------------------------------------------

absl::StatusOr<ReconcileResult> PromotionReconciler::Start(Pass& p) {
  if (p.Phase().empty()) {
    p.st["phase"] = Str(kPromotionPending);
    p.st["startTime"] = Str(Rfc3339Seconds(absl::FromUnixMicros(clock_->NowMicros())));
  }
  const std::string branch = JsonString(p.spec, "branch");
  absl::StatusOr<value> b = client_->Get(kube::kBranches, p.ns, branch);
  if (absl::IsNotFound(b.status())) {
    return Wait(p, absl::StrCat("waiting for branch \"", branch, "\" to exist"));
  }
  if (!b.ok()) return b.status();
  const std::string parent = JsonString(b->at("spec"), "parent");
  if (parent.empty()) {
    return Fail(p, "NoParent",
                absl::StrCat("branch \"", branch,
                             "\" has no parent: a promotion moves a child's changes into its "
                             "parent"));
  }
  if (Phase(*b) != kPhaseReady) {
    return Wait(p, absl::StrCat("waiting for branch \"", branch, "\" to be Ready"));
  }
  absl::StatusOr<value> pb = client_->Get(kube::kBranches, p.ns, parent);
  if (absl::IsNotFound(pb.status())) {
    return Fail(p, "ParentNotFound", absl::StrCat("parent branch \"", parent, "\" not found"));
  }
  if (!pb.ok()) return pb.status();
  if (JsonBool(pb->at("spec"), "protected") && !JsonBool(p.spec, "allowProtected")) {
    return Fail(p, "ParentProtected",
                absl::StrCat("parent \"", parent,
                             "\" is protected: promoting into it needs spec.allowProtected: true "
                             "(a restore point is taken first)"));
  }
  p.st["parent"] = Str(parent);
  // The parent is written through its read-write endpoint: refuse early when it has none.
  absl::StatusOr<std::string> parent_ep = ServingEndpoint(p, parent, true);
  if (absl::IsFailedPrecondition(parent_ep.status())) {
    return Fail(p, "NoReadWriteEndpoint", std::string(parent_ep.status().message()));
  }
  absl::StatusOr<cli::MigrationPlan> plan = Plan(p);
  if (absl::IsUnavailable(plan.status())) return Wait(p, std::string(plan.status().message()));
  if (!plan.ok()) return Fail(p, "InvalidMigration", std::string(plan.status().message()));
  p.st["source"] = Str(plan->source);
  p.st["statements"] = value::number(static_cast<int64_t>(plan->statements.size()));
  p.st["fingerprint"] = Str(Fingerprint(*plan));
  p.st["phase"] = Str(kPromotionRehearsing);
  p.st["rehearsalAttempt"] = value::number(1);
  p.st["rehearsalBranch"] = Str(RehearsalName(p.name, 1));
  p.st["rehearsalStarted"] = value::boolean(false);
  p.st["message"] = Str(absl::StrCat("rehearsing ", plan->statements.size(),
                                     " statement(s) on a copy of ", parent, "'s head"));
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  Event(p, false, "Rehearsing", JsonString(p.st, "message"));
  return ReconcileResult::After(absl::ZeroDuration());
}

absl::StatusOr<cli::MigrationPlan> PromotionReconciler::Plan(Pass& p) {
  const value m = Has(p.spec, "migration") ? p.spec.at("migration") : value::null();
  if (Has(m, "sql")) {
    return cli::PlanFromScript(absl::StrCat("spec.migration.sql of Promotion ", p.name),
                               JsonString(m, "sql"));
  }
  if (Has(m, "configMapRef")) {
    const std::string cm = JsonString(m.at("configMapRef"), "name");
    const std::string key = JsonString(m.at("configMapRef"), "key");
    absl::StatusOr<value> c = client_->Get(kube::kConfigMaps, p.ns, cm);
    if (absl::IsNotFound(c.status())) {
      return absl::FailedPreconditionError(absl::StrCat("ConfigMap \"", cm, "\" not found"));
    }
    if (!c.ok()) return absl::UnavailableError(std::string(c.status().message()));
    if (!Has(*c, "data") || !Has(c->at("data"), key)) {
      return absl::FailedPreconditionError(
          absl::StrCat("ConfigMap \"", cm, "\" has no key \"", key, "\""));
    }
    PGB_ASSIGN_OR_RETURN(cli::MigrationPlan plan,
                         cli::PlanFromScript(absl::StrCat("ConfigMap ", cm, " key ", key),
                                             JsonString(c->at("data"), key)));
    if (plan.statements.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("ConfigMap \"", cm, "\" key \"", key, "\" has no statements"));
    }
    return plan;
  }
  absl::StatusOr<value> b = client_->Get(kube::kBranches, p.ns, JsonString(p.spec, "branch"));
  if (!b.ok()) return absl::UnavailableError(std::string(b.status().message()));
  return CapturedPlan(p, *b);
}

absl::StatusOr<cli::MigrationPlan> PromotionReconciler::CapturedPlan(Pass& p, const value& b) {
  const std::string branch = kube::NameOf(b);
  PGB_ASSIGN_OR_RETURN(std::string ep, ServingEndpoint(p, branch, false));
  absl::StatusOr<std::unique_ptr<cli::SqlSession>> session = sql_->Connect(p.ns, ep);
  if (!session.ok()) return absl::UnavailableError(std::string(session.status().message()));
  const std::string timeline =
      Has(b, "status") ? JsonString(b.at("status"), "timelineID") : std::string();
  absl::StatusOr<std::vector<cli::CapturedStatement>> captured =
      cli::ReadCapturedDdl(**session, timeline);
  if (absl::IsNotFound(captured.status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", branch,
                     "\" has no DDL capture (its compute started before pgbranch had it): give the "
                     "migration in spec.migration"));
  }
  if (!captured.ok()) {
    return absl::UnavailableError(
        absl::StrCat("reading the captured DDL of ", branch, ": ", captured.status().message()));
  }
  PGB_ASSIGN_OR_RETURN(cli::MigrationPlan plan, cli::PlanFromCapture(branch, *captured));
  if (plan.statements.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("nothing to promote: no DDL was run on branch \"", branch,
                     "\" since it branched (data changes are not captured; give a script in "
                     "spec.migration)"));
  }
  return plan;
}

absl::StatusOr<cli::MigrationPlan> PromotionReconciler::SamePlan(Pass& p) {
  absl::StatusOr<cli::MigrationPlan> plan = Plan(p);
  if (!plan.ok()) return plan.status();
  if (Fingerprint(*plan) != JsonString(p.st, "fingerprint")) {
    return absl::FailedPreconditionError(
        absl::StrCat("the migration changed since the promotion started (", plan->source,
                     "): nothing else is applied; create a new Promotion"));
  }
  return plan;
}

absl::StatusOr<std::string> PromotionReconciler::ServingEndpoint(Pass& p, const std::string& branch,
                                                                 bool read_write) {
  absl::StatusOr<kube::ObjectList> eps = client_->List(kube::kEndpoints, p.ns);
  if (!eps.ok()) return absl::UnavailableError(std::string(eps.status().message()));
  const value* chosen = nullptr;
  for (const value& e : eps->items) {
    if (JsonString(e.at("spec"), "branch") != branch) continue;
    if (!kube::MetaString(e, "deletionTimestamp").empty()) continue;
    const std::string type = JsonString(e.at("spec"), "type");
    const bool rw = type.empty() || type == "ReadWrite";
    if (read_write && !rw) continue;
    if (chosen == nullptr || (Phase(e) == kPhaseRunning && Phase(*chosen) != kPhaseRunning) ||
        (rw && Phase(e) == Phase(*chosen))) {
      chosen = &e;
    }
  }
  if (chosen == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "branch \"", branch, "\" has no ", read_write ? "read-write " : "", "endpoint to ",
        read_write ? "apply the migration through" : "read its captured DDL from",
        ": create an Endpoint with spec.branch: ", branch));
  }
  const std::string name = kube::NameOf(*chosen);
  if (Phase(*chosen) == kPhaseRunning) return name;
  // A suspended compute is woken the way `kubectl annotate` asks for it.
  value patch = value::object();
  patch["metadata"] = value::object();
  patch["metadata"]["annotations"] = value::object();
  patch["metadata"]["annotations"][kAnnotationStartRequestedAt] =
      Str(Rfc3339(absl::FromUnixMicros(clock_->NowMicros())));
  if (Phase(*chosen) == kPhaseSuspended || Phase(*chosen).empty()) {
    (void)client_->Patch(kube::kEndpoints, p.ns, name, kube::PatchType::kMerge, patch);
  }
  return absl::UnavailableError(
      absl::StrCat("waiting for endpoint \"", name, "\" of branch \"", branch, "\" to run"));
}

// ---- Rehearsing -------------------------------------------------------------------------------

absl::StatusOr<ReconcileResult> PromotionReconciler::Rehearse(Pass& p) {
  const std::string parent = JsonString(p.st, "parent");
  int64_t attempt = std::max<int64_t>(1, JsonInt(p.st, "rehearsalAttempt"));
  std::string rehearsal = RehearsalName(p.name, attempt);
  if (JsonBool(p.st, "rehearsalStarted")) {
    // The operator stopped during this attempt: its branch may hold half a migration. Thrown
    // away; a fresh copy of the parent's head is rehearsed on.
    DeleteRehearsal(p.ns, rehearsal);
    if (attempt >= options_.max_rehearsal_attempts) {
      return Fail(p, "RehearsalInterrupted",
                  absl::StrCat("the rehearsal was interrupted ", attempt,
                               " times (operator restarts); ", parent, " is untouched"));
    }
    ++attempt;
    rehearsal = RehearsalName(p.name, attempt);
    p.st["rehearsalAttempt"] = value::number(attempt);
    p.st["rehearsalBranch"] = Str(rehearsal);
    p.st["rehearsalStarted"] = value::boolean(false);
    PGB_RETURN_IF_ERROR(WriteStatus(p));
  }
  PGB_RETURN_IF_ERROR(EnsureRehearsal(p, rehearsal));
  absl::StatusOr<value> ep = client_->Get(kube::kEndpoints, p.ns, rehearsal);
  if (!ep.ok()) return ep.status();
  if (Phase(*ep) == kPhaseFailed) {
    DeleteRehearsal(p.ns, rehearsal);
    return Fail(
        p, "RehearsalFailed",
        absl::StrCat("the rehearsal's compute failed: ", JsonString(ep->at("status"), "message"),
                     "; ", parent, " is untouched"));
  }
  if (Phase(*ep) != kPhaseRunning) {
    return Wait(p, absl::StrCat("waiting for the rehearsal branch ", rehearsal, " to run"));
  }
  absl::StatusOr<cli::MigrationPlan> plan = SamePlan(p);
  if (absl::IsUnavailable(plan.status())) return Wait(p, std::string(plan.status().message()));
  if (!plan.ok()) {
    DeleteRehearsal(p.ns, rehearsal);
    return Fail(p, "MigrationChanged", std::string(plan.status().message()));
  }
  absl::StatusOr<std::unique_ptr<cli::SqlSession>> session = sql_->Connect(p.ns, rehearsal);
  if (!session.ok()) return Wait(p, std::string(session.status().message()));
  // From here the rehearsal branch is no longer a clean copy of the parent.
  p.st["rehearsalStarted"] = value::boolean(true);
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  cli::ApplyReport report = cli::MigrationApplier(session->get()).Apply(*plan);
  session->reset();
  std::string failure;
  if (!report.complete) {
    std::string stmt =
        report.failed >= 0 && report.failed < static_cast<int>(plan->statements.size())
            ? plan->statements[report.failed].sql
            : "";
    p.st["failedStatement"] = Str(stmt);
    failure = stmt.empty() ? absl::StrCat("the migration failed on the rehearsal: ", report.error)
                           : absl::StrCat("the migration failed on the rehearsal at statement ",
                                          report.failed + 1, " (", stmt, "): ", report.error);
  } else if (Has(p.spec, "checks")) {
    for (const value& c : p.spec.at("checks").as_array()) {
      absl::StatusOr<std::unique_ptr<cli::SqlSession>> s = sql_->Connect(p.ns, rehearsal);
      if (!s.ok()) return Wait(p, std::string(s.status().message()));
      std::string why;
      if (CheckFailed((*s)->Exec(JsonString(c, "sql")), &why)) {
        failure =
            absl::StrCat("check \"", JsonString(c, "name"), "\" failed on the rehearsal: ", why);
        break;
      }
    }
  }
  DeleteRehearsal(p.ns, rehearsal);
  if (!failure.empty()) {
    SetCondition(p, "Rehearsed", false, "RehearsalFailed", failure);
    return Fail(p, "RehearsalFailed", absl::StrCat(failure, "; ", parent, " is untouched"));
  }
  SetCondition(p, "Rehearsed", true, "RehearsalPassed",
               absl::StrCat(report.statements.size(), " statement(s) applied to a copy of ", parent,
                            "'s head", Has(p.spec, "checks") ? ", checks passed" : ""));
  p.st["phase"] = Str(kPromotionApplying);
  p.st["restorePoint"] = Str(RestorePointName(parent, p.name));
  p.st["message"] = Str(absl::StrCat("rehearsal passed; taking restore point ",
                                     JsonString(p.st, "restorePoint"), " of ", parent));
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  Event(p, false, "RehearsalPassed", JsonString(p.st, "message"));
  return ReconcileResult::After(absl::ZeroDuration());
}

absl::Status PromotionReconciler::EnsureRehearsal(Pass& p, const std::string& name) {
  value spec = value::object();
  spec["parent"] = Str(JsonString(p.st, "parent"));
  spec["ttl"] = Str(options_.rehearsal_ttl);
  value b = Resource("Branch", p.ns, name, spec);
  b["metadata"]["labels"] = value::object();
  b["metadata"]["labels"][kLabelPromotion] = Str(p.name);
  b["metadata"]["ownerReferences"] = OwnerRef(p.obj);
  absl::Status s = client_->Create(kube::kBranches, p.ns, b).status();
  if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  value espec = value::object();
  espec["branch"] = Str(name);
  espec["type"] = Str("ReadWrite");
  value e = Resource("Endpoint", p.ns, name, espec);
  e["metadata"]["labels"] = b["metadata"]["labels"];
  e["metadata"]["ownerReferences"] = OwnerRef(p.obj);
  s = client_->Create(kube::kEndpoints, p.ns, e).status();
  if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  return absl::OkStatus();
}

void PromotionReconciler::DeleteRehearsal(const std::string& ns, const std::string& name) {
  // Best effort: both are owned by the Promotion and expire, so nothing stays for long.
  (void)client_->Delete(kube::kEndpoints, ns, name);
  (void)client_->Delete(kube::kBranches, ns, name);
}

// ---- Applying ---------------------------------------------------------------------------------

absl::StatusOr<ReconcileResult> PromotionReconciler::Apply(Pass& p) {
  const std::string parent = JsonString(p.st, "parent");
  const std::string rp = JsonString(p.st, "restorePoint");
  // Once the transaction may have committed, the restore point is never made (again): one made
  // now would hold the migrated parent.
  if (!JsonString(p.st, "applyTransaction").empty()) {
    absl::StatusOr<ReconcileResult> outcome;
    std::unique_ptr<cli::SqlSession> session = ConnectParent(p, &outcome);
    if (session == nullptr) return outcome;
    return Resume(p, session.get());
  }
  PGB_RETURN_IF_ERROR(EnsureRestorePoint(p, rp));
  absl::StatusOr<value> rpb = client_->Get(kube::kBranches, p.ns, rp);
  if (!rpb.ok()) return rpb.status();
  if (JsonString(rpb->at("metadata").has_field("annotations")
                     ? rpb->at("metadata").at("annotations")
                     : value::object(),
                 kAnnotationPromotionUid) != kube::UidOf(p.obj)) {
    return Fail(
        p, "RestorePointTaken",
        absl::StrCat("a branch named ", rp, " exists and is not this promotion's restore point; ",
                     parent, " is untouched"));
  }
  if (Phase(*rpb) == kPhaseFailed) {
    return Fail(
        p, "RestorePointFailed",
        absl::StrCat("restore point ", rp, " could not be created; ", parent, " is untouched"));
  }
  if (Phase(*rpb) != kPhaseReady) {
    return Wait(p, absl::StrCat("waiting for restore point ", rp, " to be Ready"));
  }
  SetCondition(p, "RestorePointReady", true, "RestorePointReady",
               absl::StrCat(rp, " holds ", parent, " as it was before the promotion"));
  absl::StatusOr<ReconcileResult> outcome;
  std::unique_ptr<cli::SqlSession> session = ConnectParent(p, &outcome);
  if (session == nullptr) return outcome;

  absl::StatusOr<cli::MigrationPlan> plan = SamePlan(p);
  if (absl::IsUnavailable(plan.status())) return Wait(p, std::string(plan.status().message()));
  if (!plan.ok()) {
    (void)DropRestorePoint(p.ns, rp);
    return Fail(p, "MigrationChanged", std::string(plan.status().message()));
  }
  p.st["message"] =
      Str(absl::StrCat("applying ", plan->statements.size(), " statement(s) to ", parent));
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  Event(p, false, "Applying", JsonString(p.st, "message"));
  cli::MigrationApplier applier(session.get());
  // The transaction id is durable in status before COMMIT is sent (see the header).
  applier.SetBeforeCommit([&](const std::string& txid) {
    p.st["applyTransaction"] = Str(txid);
    absl::Status s = WriteStatus(p);
    if (!s.ok()) p.st.erase("applyTransaction");
    return s;
  });
  cli::ApplyReport report = applier.Apply(*plan);
  session.reset();
  if (!report.committed) {
    if (!JsonString(p.st, "applyTransaction").empty() || report.failed < 0) {
      // COMMIT's outcome unknown (the connection broke), or it never started: the next pass
      // decides from txid_status / starts over. Nothing was applied twice either way.
      return absl::UnavailableError(absl::StrCat("applying to ", parent, ": ", report.error));
    }
    const std::string stmt = plan->statements[report.failed].sql;
    p.st["failedStatement"] = Str(stmt);
    absl::Status dropped = DropRestorePoint(p.ns, rp);
    if (dropped.ok()) p.st.erase("restorePoint");
    SetCondition(p, "Applied", false, "ApplyFailed", report.error);
    return Fail(
        p, "ApplyFailed",
        absl::StrCat(
            "applying to ", parent, " failed at statement ", report.failed + 1, " (", stmt,
            "): ", report.error, "; ", parent, " is unchanged (rolled back)",
            dropped.ok() ? absl::StrCat("; restore point ", rp, " deleted again") : std::string()));
  }
  int64_t applied = 0;
  for (const auto& s : report.statements) applied += s.applied ? 1 : 0;
  p.st["appliedStatements"] = value::number(applied);
  p.st["rollback"] =
      Str(absl::StrCat("kubectl pgbranch branch restore ", parent, " --to ", rp, " -n ", p.ns));
  if (!report.complete) {
    SetCondition(p, "Applied", false, "PartlyApplied", report.error);
    return Fail(
        p, "PartlyApplied",
        absl::StrCat("the transaction committed on ", parent,
                     " but a statement after it failed: ", report.error,
                     "; finish by hand, or roll back with `", JsonString(p.st, "rollback"), "`"));
  }
  SetCondition(p, "Applied", true, "Promoted",
               absl::StrCat(applied, " statement(s) applied to ", parent));
  SetCondition(p, "Succeeded", true, "Promoted", "the migration is applied to the parent");
  p.st["phase"] = Str(kPromotionSucceeded);
  p.st["completionTime"] = Str(Rfc3339Seconds(absl::FromUnixMicros(clock_->NowMicros())));
  p.st["message"] =
      Str(absl::StrCat("promoted ", JsonString(p.spec, "branch"), " into ", parent, " (", applied,
                       " statement(s)); roll back with `", JsonString(p.st, "rollback"), "`"));
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  Event(p, false, "Promoted", JsonString(p.st, "message"));
  return ReconcileResult::Done();
}

std::unique_ptr<cli::SqlSession> PromotionReconciler::ConnectParent(
    Pass& p, absl::StatusOr<ReconcileResult>* outcome) {
  absl::StatusOr<std::string> ep = ServingEndpoint(p, JsonString(p.st, "parent"), true);
  if (absl::IsFailedPrecondition(ep.status())) {
    *outcome = Fail(p, "NoReadWriteEndpoint", std::string(ep.status().message()));
    return nullptr;
  }
  if (!ep.ok()) {
    *outcome = Wait(p, std::string(ep.status().message()));
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<cli::SqlSession>> session = sql_->Connect(p.ns, *ep);
  if (!session.ok()) {
    *outcome = Wait(p, std::string(session.status().message()));
    return nullptr;
  }
  return std::move(*session);
}

absl::StatusOr<ReconcileResult> PromotionReconciler::Resume(Pass& p, cli::SqlSession* session) {
  const std::string txid = JsonString(p.st, "applyTransaction");
  const std::string parent = JsonString(p.st, "parent");
  int64_t id = 0;
  if (!absl::SimpleAtoi(txid, &id)) {
    return Fail(p, "ApplyUnknown", absl::StrCat("status.applyTransaction is not a number: ", txid));
  }
  absl::StatusOr<cli::SqlResult> r = session->Exec(absl::StrCat("SELECT txid_status(", id, ")"));
  if (!r.ok()) return absl::UnavailableError(std::string(r.status().message()));
  std::optional<std::string> state;
  if (r->rows.size() == 1 && !r->rows[0].empty()) state = r->rows[0][0];
  if (state == "in progress") {
    return Wait(p, absl::StrCat("waiting for the interrupted transaction ", txid, " on ", parent,
                                " to end"));
  }
  if (state == "aborted") {
    // It rolled back: nothing of the migration is on the parent; apply it in the next pass.
    p.st.erase("applyTransaction");
    PGB_RETURN_IF_ERROR(WriteStatus(p));
    return ReconcileResult::After(absl::ZeroDuration());
  }
  const std::string rp = JsonString(p.st, "restorePoint");
  p.st["rollback"] =
      Str(absl::StrCat("kubectl pgbranch branch restore ", parent, " --to ", rp, " -n ", p.ns));
  if (state != "committed") {
    return Fail(p, "ApplyUnknown",
                absl::StrCat("cannot tell whether transaction ", txid, " committed on ", parent,
                             "; compare it with restore point ", rp, " (roll back with `",
                             JsonString(p.st, "rollback"), "`)"));
  }
  // Committed before the operator stopped. The non-transactional statements after it (if any)
  // may or may not have run: they are not run again blindly.
  const int64_t total = JsonInt(p.st, "statements");
  absl::StatusOr<cli::MigrationPlan> plan = Plan(p);
  const int64_t transactional =
      plan.ok() ? static_cast<int64_t>(plan->TransactionalCount()) : total;
  p.st["appliedStatements"] = value::number(transactional);
  if (transactional < total) {
    SetCondition(p, "Applied", false, "PartlyApplied", "interrupted after COMMIT");
    return Fail(p, "PartlyApplied",
                absl::StrCat("the transaction committed on ", parent,
                             " before an operator restart; the ", total - transactional,
                             " statement(s) that run outside it were interrupted: check and run "
                             "them by hand, or roll back with `",
                             JsonString(p.st, "rollback"), "`"));
  }
  SetCondition(p, "Applied", true, "Promoted",
               absl::StrCat(transactional, " statement(s) applied to ", parent));
  SetCondition(p, "Succeeded", true, "Promoted", "the migration is applied to the parent");
  p.st["phase"] = Str(kPromotionSucceeded);
  p.st["completionTime"] = Str(Rfc3339Seconds(absl::FromUnixMicros(clock_->NowMicros())));
  p.st["message"] = Str(absl::StrCat("promoted ", JsonString(p.spec, "branch"), " into ", parent,
                                     " (", transactional, " statement(s)); roll back with `",
                                     JsonString(p.st, "rollback"), "`"));
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  Event(p, false, "Promoted", JsonString(p.st, "message"));
  return ReconcileResult::Done();
}

absl::Status PromotionReconciler::EnsureRestorePoint(Pass& p, const std::string& name) {
  const std::string parent = JsonString(p.st, "parent");
  value spec = value::object();
  spec["parent"] = Str(parent);
  const value rp = Has(p.spec, "restorePoint") ? p.spec.at("restorePoint") : value::object();
  if (JsonBool(rp, "keep")) {
    spec["protected"] = value::boolean(true);
    spec["noExpiry"] = value::boolean(true);
  } else {
    const std::string ttl = JsonString(rp, "ttl");
    spec["ttl"] = Str(ttl.empty() ? "7d" : ttl);
  }
  // Not owned by the Promotion: deleting the record must not delete the way back.
  value b = Resource("Branch", p.ns, name, spec);
  b["metadata"]["labels"] = value::object();
  b["metadata"]["labels"][kLabelRestorePointOf] = Str(parent);
  b["metadata"]["labels"][kLabelPromotion] = Str(p.name);
  b["metadata"]["annotations"] = value::object();
  b["metadata"]["annotations"][kAnnotationPromotionUid] = Str(kube::UidOf(p.obj));
  absl::Status s = client_->Create(kube::kBranches, p.ns, b).status();
  if (s.ok()) Event(p, false, "RestorePointCreated", absl::StrCat("created restore point ", name));
  if (!s.ok() && !absl::IsAlreadyExists(s)) return s;
  return absl::OkStatus();
}

absl::Status PromotionReconciler::DropRestorePoint(const std::string& ns, const std::string& name) {
  value patch = value::object();
  patch["spec"] = value::object();
  patch["spec"]["protected"] = value::boolean(false);
  absl::Status s =
      client_->Patch(kube::kBranches, ns, name, kube::PatchType::kMerge, patch).status();
  if (!s.ok() && !absl::IsNotFound(s)) return s;
  s = client_->Delete(kube::kBranches, ns, name);
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

// ---- status -----------------------------------------------------------------------------------

absl::Status PromotionReconciler::WriteStatus(Pass& p) {
  p.st["observedGeneration"] = value::number(kube::IntField(p.obj, "generation"));
  value o = p.obj;
  o["status"] = p.st;
  // With the resourceVersion read at the start of the pass: a conflict means another writer
  // (or an earlier operator) got there first; the pass starts over from what is.
  absl::StatusOr<value> written = client_->UpdateStatus(kube::kPromotions, p.ns, o);
  if (!written.ok()) return written.status();
  p.obj = *written;
  return absl::OkStatus();
}

void PromotionReconciler::SetCondition(Pass& p, const std::string& type, bool ok,
                                       const std::string& reason, const std::string& message) {
  value conds = Has(p.st, "conditions") && p.st.at("conditions").is_array() ? p.st.at("conditions")
                                                                            : value::array();
  value c = value::object();
  c["type"] = Str(type);
  c["status"] = Str(ok ? "True" : "False");
  c["reason"] = Str(reason);
  c["message"] = Str(message);
  c["observedGeneration"] = value::number(kube::IntField(p.obj, "generation"));
  c["lastTransitionTime"] = Str(Rfc3339Seconds(absl::FromUnixMicros(clock_->NowMicros())));
  size_t i = 0;
  for (; i < conds.size(); ++i) {
    if (JsonString(conds[i], "type") == type) {
      if (JsonString(conds[i], "status") == JsonString(c, "status")) {
        c["lastTransitionTime"] = conds[i].at("lastTransitionTime");
      }
      break;
    }
  }
  conds[i] = c;
  p.st["conditions"] = conds;
}

absl::StatusOr<ReconcileResult> PromotionReconciler::Fail(Pass& p, const std::string& reason,
                                                          const std::string& message) {
  if (JsonString(p.st, "phase") == kPromotionRehearsing) {
    DeleteRehearsal(p.ns, JsonString(p.st, "rehearsalBranch"));
  }
  p.st["phase"] = Str(kPromotionFailed);
  p.st["message"] = Str(message);
  p.st["reason"] = Str(reason);
  p.st["completionTime"] = Str(Rfc3339Seconds(absl::FromUnixMicros(clock_->NowMicros())));
  SetCondition(p, "Succeeded", false, reason, message);
  PGB_RETURN_IF_ERROR(WriteStatus(p));
  LogWarning("Promotion failed",
             {{"namespace", p.ns}, {"promotion", p.name}, {"reason", reason}, {"error", message}});
  Event(p, true, reason, message);
  return ReconcileResult::Done();
}

absl::StatusOr<ReconcileResult> PromotionReconciler::Wait(Pass& p, const std::string& message) {
  if (JsonString(p.st, "message") != message) {
    p.st["message"] = Str(message);
    PGB_RETURN_IF_ERROR(WriteStatus(p));
  }
  return ReconcileResult::After(options_.poll);
}

void PromotionReconciler::Event(const Pass& p, bool warning, const std::string& reason,
                                const std::string& message) {
  if (events_) events_(p.obj, warning, reason, message);
}

}  // namespace pgbranch::control
