#include "cli/scratch_branch.h"

#include "absl/strings/str_cat.h"
#include "cli/resource_util.h"
#include "operator/model/json.h"
#include "operator/model/resources.h"

namespace pgbranch::cli {

using web::json::value;

std::string DerivedName(const std::string& prefix, const std::string& suffix) {
  std::string p = prefix.substr(0, 62 - suffix.size());
  while (!p.empty() && p.back() == '-') p.pop_back();
  return absl::StrCat(p, "-", suffix);
}

ScratchBranch::~ScratchBranch() { (void)Delete(); }

absl::StatusOr<value> ScratchBranch::Create(const std::string& parent, const std::string& ttl) {
  value spec = value::object();
  spec["parent"] = value::string(parent);
  spec["ttl"] = value::string(ttl);
  value espec = value::object();
  espec["branch"] = value::string(name_);
  const std::string manifests = Manifest("Branch", name_, spec).serialize() + "\n---\n" +
                                Manifest("Endpoint", name_, espec).serialize();
  absl::StatusOr<value> created = client_.Post("/v1/create", manifests);
  if (!created.ok()) return created.status();
  created_ = true;
  absl::StatusOr<value> b = WaitBranch(
      client_, name_,
      [](const value& v) {
        return control::JsonString(v.at("status"), "phase") == control::kPhaseReady;
      },
      absl::StrCat("branch \"", name_, "\" to be ready"));
  if (!b.ok()) return b.status();
  return WaitEndpointRunning(client_, name_);
}

absl::Status ScratchBranch::Delete() {
  if (!created_) return absl::OkStatus();
  absl::Status s = client_.Delete("/v1/branches/" + name_).status();
  if (s.ok() || absl::IsNotFound(s)) {
    s = WaitGone(client_, "/v1/branches/" + name_,
                 absl::StrCat("branch \"", name_, "\" to be deleted"));
  }
  if (s.ok()) created_ = false;
  return s;
}

}  // namespace pgbranch::cli
