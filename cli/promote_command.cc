// `branch promote`: the branch's migration (its captured DDL, or --file) rehearsed on a
// throwaway branch of the parent's head, then applied to the parent after a restore point.
// The order is what makes it safe: every check that can refuse runs before anything is created,
// the rehearsal runs before the parent is touched, and the restore point exists before the
// first statement reaches the parent.
#include "cli/promote_command.h"

#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "cli/captured_ddl.h"
#include "cli/check_runner.h"
#include "cli/connection_info.h"
#include "cli/migration_applier.h"
#include "cli/migration_plan.h"
#include "cli/pq_session.h"
#include "cli/promote_report.h"
#include "cli/resource_util.h"
#include "cli/schema_diff.h"
#include "cli/scratch_branch.h"
#include "cli/sql_script.h"
#include "common/status_macros.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {
namespace {

using control::JsonBool;
using control::JsonString;
using web::json::value;

constexpr char kApplicationName[] = "pgbranch promote";
constexpr char kRestorePointLabel[] = "pgbranch.io/restore-point-of";

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  *ok = static_cast<bool>(in);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The statements captured on `branch` itself (not those it inherited with its parent's data).
absl::StatusOr<MigrationPlan> CapturedPlan(const CliContext& ctx, const ApiClient& client,
                                           const std::string& branch, const std::string& parent,
                                           const std::string& timeline) {
  PGB_ASSIGN_OR_RETURN(value ep, ReadableEndpoint(client, branch));
  PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, ep));
  PGB_ASSIGN_OR_RETURN(std::unique_ptr<PqSession> session,
                       PqSession::Connect(c.uri, kApplicationName));
  absl::StatusOr<std::vector<CapturedStatement>> captured = ReadCapturedDdl(*session, timeline);
  if (absl::IsNotFound(captured.status())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "branch \"", branch,
        "\" has no DDL capture (its compute started before pgbranch had it): restart its "
        "endpoint (`pgbranch endpoint suspend ",
        branch, "`, then connect), or promote a script with --file migration.sql"));
  }
  if (!captured.ok()) {
    return absl::UnavailableError(
        absl::StrCat("reading the captured DDL of ", branch, ": ", captured.status().message()));
  }
  PGB_ASSIGN_OR_RETURN(MigrationPlan plan, PlanFromCapture(branch, *captured));
  if (plan.statements.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "nothing to promote: no DDL was run on branch \"", branch, "\" since it branched from ",
        parent,
        " (data changes are not captured; promote a script of them with --file migration.sql)"));
  }
  return plan;
}

absl::StatusOr<Rehearsal> Rehearse(const CliContext& ctx, const ApiClient& client,
                                   const PromoteOptions& o, const std::string& parent,
                                   const value& branch_endpoint, const MigrationPlan& plan) {
  std::random_device rd;
  Rehearsal out;
  ScratchBranch scratch(
      client, DerivedName(o.branch + "-rehearsal", absl::StrFormat("%04x", rd() & 0xffff)));
  out.branch = scratch.name();
  if (!ctx.json()) {
    std::cout << "rehearsal on " << scratch.name() << " (a copy of " << parent
              << "'s head, deleted afterwards)...\n"
              << std::flush;
  }
  PGB_ASSIGN_OR_RETURN(value ep, scratch.Create(parent, kRehearsalTtl));
  PGB_ASSIGN_OR_RETURN(ConnectionInfo c, EndpointConnection(ctx, ep));
  {
    PGB_ASSIGN_OR_RETURN(std::unique_ptr<PqSession> session,
                         PqSession::Connect(c.uri, kApplicationName));
    out.apply = MigrationApplier(session.get()).Apply(plan);
  }
  if (out.apply.complete) {
    for (const std::string& f : o.checks) out.checks.push_back(RunSqlCheck(c.uri, f));
    if (!o.check_command.empty()) out.checks.push_back(RunCommandCheck(c.uri, o.check_command));
    absl::StatusOr<std::vector<SchemaObject>> result = ReadSchema(ctx, ep);
    absl::StatusOr<std::vector<SchemaObject>> ours = ReadSchema(ctx, branch_endpoint);
    if (result.ok() && ours.ok()) {
      out.result_diff = TwoWaySchemaDiff(*result, *ours);
    } else {
      out.result_diff_error =
          std::string((result.ok() ? ours.status() : result.status()).message());
    }
  }
  out.deleted = scratch.Delete();
  return out;
}

// A restore point's name: "<parent>-before-promote-YYYYMMDD-HHMMSS" (UTC), cut to 63.
std::string RestorePointName(const std::string& parent, absl::Time now) {
  return DerivedName(parent + "-before-promote",
                     absl::FormatTime("%Y%m%d-%H%M%S", now, absl::UTCTimeZone()));
}

// No endpoint (nothing runs on it, nothing writes to it) and labelled with its parent. The
// controller refuses a protected branch that expires: by default it expires (its storage is what
// the parent changes meanwhile); `keep` protects it and keeps it until deleted by hand.
absl::Status CreateRestorePoint(const ApiClient& client, const std::string& name,
                                const std::string& parent, const PromoteOptions& o) {
  value spec = value::object();
  spec["parent"] = value::string(parent);
  if (o.keep_restore_point) {
    spec["protected"] = value::boolean(true);
    spec["noExpiry"] = value::boolean(true);
  } else {
    spec["ttl"] = value::string(o.restore_point_ttl);
  }
  value m = Manifest("Branch", name, spec);
  m["metadata"]["labels"] = value::object();
  m["metadata"]["labels"][kRestorePointLabel] = value::string(parent);
  PGB_RETURN_IF_ERROR(client.Post("/v1/create", m.serialize()).status());
  return WaitBranch(
             client, name,
             [](const value& v) {
               return JsonString(v.at("status"), "phase") == control::kPhaseReady;
             },
             absl::StrCat("restore point \"", name, "\" to be ready"))
      .status();
}

// Removes a restore point that protects nothing (the migration did not reach the parent).
absl::Status DropRestorePoint(const ApiClient& client, const std::string& name) {
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + name));
  if (JsonBool(b.at("spec"), "protected")) {
    value spec = b.at("spec");
    spec["protected"] = value::boolean(false);
    value m = Manifest("Branch", name, spec);
    m["metadata"]["labels"] = b.at("metadata").at("labels");
    PGB_RETURN_IF_ERROR(client.Post("/v1/apply", m.serialize()).status());
  }
  PGB_RETURN_IF_ERROR(client.Delete("/v1/branches/" + name).status());
  return WaitGone(client, "/v1/branches/" + name,
                  absl::StrCat("restore point \"", name, "\" to be deleted"));
}

}  // namespace

absl::Status BranchPromote(const CliContext& ctx, const PromoteOptions& o) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  PGB_ASSIGN_OR_RETURN(value b, client.Get("/v1/branches/" + o.branch));
  const std::string parent = JsonString(b.at("spec"), "parent");
  if (parent.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", o.branch,
                     "\" has no parent: promote moves a child's changes into its parent"));
  }
  PGB_ASSIGN_OR_RETURN(value p, client.Get("/v1/branches/" + parent));
  if (!o.dry_run && JsonBool(p.at("spec"), "protected") && !o.allow_protected) {
    return absl::FailedPreconditionError(absl::StrCat(
        "parent \"", parent,
        "\" is protected: promoting into it needs --allow-protected (a restore point is taken "
        "first); rehearse without touching it with --dry-run"));
  }
  for (const std::string& f : o.checks) {
    bool readable = false;
    (void)ReadFile(f, &readable);
    if (!readable) return absl::InvalidArgumentError(absl::StrCat("--check: cannot read ", f));
  }
  // The parent is written through its read-write endpoint.
  PGB_ASSIGN_OR_RETURN(value parent_ep, ReadableEndpoint(client, parent));
  if (!o.dry_run && JsonString(parent_ep.at("spec"), "type") != "ReadWrite") {
    return absl::FailedPreconditionError(
        absl::StrCat("parent \"", parent,
                     "\" has no read-write endpoint to apply the migration "
                     "through; create one: pgbranch endpoint create ",
                     parent, " --branch ", parent));
  }
  PGB_ASSIGN_OR_RETURN(value branch_ep, ReadableEndpoint(client, o.branch));

  MigrationPlan plan;
  if (!o.file.empty()) {
    bool readable = false;
    std::string sql = ReadFile(o.file, &readable);
    if (!readable) return absl::InvalidArgumentError(absl::StrCat("--file: cannot read ", o.file));
    PGB_ASSIGN_OR_RETURN(plan, PlanFromScript(o.file, sql));
    if (plan.statements.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--file ", o.file, " has no statements"));
    }
  } else {
    PGB_ASSIGN_OR_RETURN(plan, CapturedPlan(ctx, client, o.branch, parent,
                                            JsonString(b.at("status"), "timelineID")));
  }

  // Conflicts first: an object changed on both sides since the branch point is refused with the
  // diff, before anything is created.
  SchemaDiffOptions diff_options;
  diff_options.branch = o.branch;
  PGB_ASSIGN_OR_RETURN(SchemaComparison comparison, CompareSchemas(ctx, diff_options));
  value doc = value::object();
  doc["branch"] = value::string(o.branch);
  doc["parent"] = value::string(parent);
  doc["dryRun"] = value::boolean(o.dry_run);
  doc["source"] = value::string(plan.source);
  doc["schemaDiff"] = SchemaComparisonJson(comparison);
  if (comparison.conflicts > 0) {
    doc["result"] = value::string("Refused");
    if (ctx.json()) {
      PrintJson(doc);
    } else {
      PrintSchemaComparison(comparison);
    }
    return absl::FailedPreconditionError(absl::StrCat(
        "refused: ", comparison.conflicts, " object(s) changed on both ", o.branch, " and ", parent,
        " since the branch point (the diff above); reconcile them on ", o.branch,
        " (for example `pgbranch branch reset ", o.branch,
        "` and apply your change again), then promote"));
  }
  if (!ctx.json()) {
    std::cout << (o.dry_run ? "rehearsing" : "promoting") << " " << o.branch << " into " << parent
              << ": " << plan.statements.size() << " statement(s), the " << plan.source << "\n";
    if (!plan.ignored.empty()) {
      std::cout << "  ignored (promote uses its own transaction): "
                << absl::StrJoin(plan.ignored, ", ") << "\n";
    }
    int drift = 0;
    for (const auto& c : comparison.changes) drift += c.side == ChangeSide::kParent ? 1 : 0;
    std::cout << "  schema check: no conflicts with " << parent
              << (drift > 0 ? absl::StrCat(" (", drift, " object(s) changed there since: drift)")
                            : std::string())
              << "\n";
  }

  const absl::Time rehearsal_start = absl::Now();
  PGB_ASSIGN_OR_RETURN(Rehearsal rehearsal, Rehearse(ctx, client, o, parent, branch_ep, plan));
  const absl::Duration rehearsal_took = absl::Now() - rehearsal_start;
  doc["rehearsal"] = RehearsalJson(rehearsal);
  // The whole rehearsal: branch and compute, migration, checks, comparison, deletion.
  doc["rehearsal"]["totalMs"] = value::number(absl::ToInt64Milliseconds(rehearsal_took));
  if (!ctx.json()) {
    PrintRehearsal(rehearsal, o.branch);
    std::cout << "  the rehearsal took "
              << absl::FormatDuration(absl::Trunc(rehearsal_took, absl::Milliseconds(10)))
              << " in all\n";
  }
  if (!rehearsal.ok()) {
    doc["result"] = value::string("RehearsalFailed");
    if (ctx.json()) PrintJson(doc);
    return absl::FailedPreconditionError(RehearsalFailure(rehearsal, parent));
  }
  if (o.dry_run) {
    doc["result"] = value::string("Rehearsed");
    if (ctx.json()) {
      PrintJson(doc);
    } else {
      std::cout << "dry run: the migration applies to " << parent
                << "'s current head; promote it with:\n  pgbranch branch promote " << o.branch
                << (o.file.empty() ? "" : " --file " + o.file) << "\n";
    }
    return absl::OkStatus();
  }

  const std::string restore_point = RestorePointName(parent, absl::Now());
  const absl::Time restore_start = absl::Now();
  PGB_RETURN_IF_ERROR(CreateRestorePoint(client, restore_point, parent, o));
  const absl::Duration restore_took = absl::Now() - restore_start;
  doc["restorePoint"] = value::string(restore_point);
  doc["restorePointMs"] = value::number(absl::ToInt64Milliseconds(restore_took));
  if (!ctx.json()) {
    std::cout << "restore point " << restore_point << " taken in " << Millis(restore_took) << " ("
              << (o.keep_restore_point ? "protected, kept until deleted"
                                       : "expires in " + o.restore_point_ttl)
              << ")\napplying to " << parent << "...\n"
              << std::flush;
  }
  PGB_ASSIGN_OR_RETURN(ConnectionInfo pc, EndpointConnection(ctx, parent_ep));
  absl::StatusOr<std::unique_ptr<PqSession>> session = PqSession::Connect(pc.uri, kApplicationName);
  ApplyReport applied;
  if (session.ok()) {
    applied = MigrationApplier(session->get()).Apply(plan);
    session->reset();
  } else {
    applied.error = std::string(session.status().message());
  }
  doc["applied"] = ApplyJson(applied);
  // The rollback: the parent's data back to the restore point under the same connection strings
  // (restore_command.h). The restore point must stay unwritten for it: no read-write endpoint.
  const std::string rollback =
      absl::StrCat("pgbranch branch restore ", parent, " --to ", restore_point,
                   JsonBool(p.at("spec"), "protected") ? " --allow-protected" : "");
  if (!ctx.json()) PrintApply(applied);
  if (!applied.committed) {
    // Nothing reached the parent: the restore point protects nothing.
    absl::Status dropped = DropRestorePoint(client, restore_point);
    doc["result"] = value::string("Failed");
    doc["restorePointDeleted"] = value::boolean(dropped.ok());
    if (ctx.json()) PrintJson(doc);
    return absl::AbortedError(absl::StrCat(
        "applying to ", parent, " failed: ", applied.error, "\n  ", parent,
        " is unchanged (the transaction rolled back); ",
        dropped.ok()
            ? absl::StrCat("restore point ", restore_point, " deleted again")
            : absl::StrCat("remove restore point ", restore_point, " with `pgbranch branch update ",
                           restore_point, " --no-protected && pgbranch branch delete ",
                           restore_point, "`")));
  }
  doc["rollback"] = value::string(rollback);
  if (!applied.complete) {
    doc["result"] = value::string("PartlyApplied");
    if (ctx.json()) PrintJson(doc);
    return absl::AbortedError(
        absl::StrCat("the transaction committed on ", parent, " but a statement after it failed: ",
                     applied.error, "\n  the statements before it stay applied; finish by hand (",
                     parent, " as it was before is kept in restore point ", restore_point,
                     "; roll back with `", rollback, "`)"));
  }
  doc["result"] = value::string("Promoted");
  if (ctx.json()) {
    PrintJson(doc);
    return absl::OkStatus();
  }
  std::cout << "promoted " << o.branch << " into " << parent << " (" << applied.statements.size()
            << " statement(s) in " << Millis(applied.duration) << ")\n"
            << parent << " as it was before is kept in " << restore_point << "; roll back with:\n  "
            << rollback << "\n";
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
