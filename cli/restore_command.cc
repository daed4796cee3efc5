#include "cli/restore_command.h"

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "cli/api_client.h"
#include "cli/lsn.h"
#include "cli/resource_util.h"
#include "cli/scratch_branch.h"
#include "common/status_macros.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {
namespace {

using control::JsonInt;
using control::JsonString;
using web::json::value;

// The message of condition `type` when it is True, else empty.
std::string TrueCondition(const value& status, const std::string& type) {
  if (!status.has_array_field("conditions")) return "";
  for (const value& c : status.at("conditions").as_array()) {
    if (JsonString(c, "type") == type && JsonString(c, "status") == "True") {
      return JsonString(c, "message");
    }
  }
  return "";
}

}  // namespace

absl::Status BranchRestore(const CliContext& ctx, const RestoreOptions& o) {
  PGB_ASSIGN_OR_RETURN(ApiClient client, ctx.Client());
  const std::string keep =
      !o.keep_current_as.empty()
          ? o.keep_current_as
          : DerivedName(o.parent + "-before-restore",
                        absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::UTCTimeZone()));
  value body = value::object();
  body["to"] = value::string(o.to);
  body["keepCurrentAs"] = value::string(keep);
  body["allowProtected"] = value::boolean(o.allow_protected);
  PGB_ASSIGN_OR_RETURN(value rp, client.Get("/v1/branches/" + o.to));
  PGB_ASSIGN_OR_RETURN(value req,
                       client.Post("/v1/branches/" + o.parent + "/restore", body.serialize()));
  const int64_t want = JsonInt(req.at("spec"), "resetGeneration");
  PGB_ASSIGN_OR_RETURN(value b, WaitBranch(
                                    client, o.parent,
                                    [&](const value& v) {
                                      const value& st = v.at("status");
                                      return JsonInt(st, "observedResetGeneration") >= want &&
                                             JsonString(st, "phase") == control::kPhaseReady;
                                    },
                                    absl::StrCat("branch \"", o.parent, "\" to be restored")));
  if (std::string why = TrueCondition(b.at("status"), "RestoreRefused"); !why.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("branch \"", o.parent, "\" was not restored (nothing changed): ", why));
  }
  PGB_ASSIGN_OR_RETURN(value kept, WaitBranch(
                                       client, keep,
                                       [](const value& v) {
                                         return JsonString(v.at("status"), "phase") ==
                                                control::kPhaseReady;
                                       },
                                       absl::StrCat("branch \"", keep, "\" to be ready")));
  if (ctx.json()) {
    value v = value::object();
    v["branch"] = b;
    v["restorePoint"] = value::string(o.to);
    v["keptAs"] = kept;
    PrintJson(v);
    return absl::OkStatus();
  }
  const std::string since = JsonString(rp.at("metadata"), "creationTimestamp");
  std::cout << "branch \"" << o.parent << "\" restored to " << o.to << " (LSN "
            << FormatLsn(static_cast<uint64_t>(JsonInt(b.at("status"), "parentLSN")))
            << "); its endpoints keep their connection strings and wake on the next connection\n"
            << o.parent << "'s changes since " << since
            << " are discarded; they remain readable in branch " << keep
            << " (`pgbranch endpoint create " << keep << " --branch " << keep
            << "`) until it is deleted, which is possible once " << o.parent
            << " is deleted (its data is built on it)\n";
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
