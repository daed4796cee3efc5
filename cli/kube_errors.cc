#include "cli/kube_errors.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "cli/api_errors.h"

namespace pgbranch::cli {
namespace {

// "spec.lsn: Invalid value: 0: must be ..." -> field "spec.lsn", detail "must be ...".
void SplitCause(absl::string_view cause, std::string* field, std::string* detail) {
  size_t colon = cause.find(": ");
  if (colon == absl::string_view::npos) {
    *detail = std::string(cause);
    return;
  }
  *field = std::string(cause.substr(0, colon));
  absl::string_view rest = cause.substr(colon + 2);
  for (absl::string_view prefix : {"Invalid value: ", "Unsupported value: "}) {
    if (!absl::ConsumePrefix(&rest, prefix) || rest.empty()) continue;
    size_t end = rest.front() == '"' ? rest.find("\": ", 1) : rest.find(": ");
    if (end != absl::string_view::npos) rest = rest.substr(end + (rest.front() == '"' ? 3 : 2));
  }
  absl::ConsumePrefix(&rest, "Required value: ");
  absl::ConsumePrefix(&rest, "Forbidden: ");
  *detail = std::string(rest);
}

bool IsTransportError(absl::string_view message) {
  for (absl::string_view m : {"GET /", "POST /", "PUT /", "PATCH /", "DELETE /"}) {
    if (absl::StartsWith(message, m)) return true;
  }
  return false;
}

}  // namespace

bool IsMissingResourceType(const absl::Status& error) {
  return absl::IsNotFound(error) &&
         (absl::StrContains(error.message(), "could not find the requested resource") ||
          absl::StrContains(error.message(), "404 page not found"));
}

absl::Status NotFoundIn(const std::string& kind, const std::string& name, const std::string& ns) {
  return absl::NotFoundError(absl::StrCat(kind, " \"", name, "\" not found in namespace ", ns));
}

absl::Status KubeError(const absl::Status& error, const KubeCall& call, const std::string& ns,
                       const std::string& where) {
  if (error.ok()) return error;
  const std::string message(error.message());
  const bool ours = absl::StrContains(call.resource, "pgbranch.io");
  switch (error.code()) {
    case absl::StatusCode::kNotFound:
      if (IsMissingResourceType(error) && ours) {
        return absl::FailedPreconditionError(absl::StrCat(
            "pgbranch is not installed in ", where, ": the API server has no ", call.resource,
            " (the CRDs are missing); install pgbranch with `helm install pgbranch helm/pgbranch "
            "--namespace pgbranch-system --create-namespace` or `kubectl apply --server-side -f "
            "deploy/install.yaml` (see docs/install.md)"));
      }
      if (absl::StartsWith(message, "namespaces \"")) {
        return absl::NotFoundError(absl::StrCat("namespace \"", ns, "\" does not exist in ", where,
                                                "; create it (`kubectl create namespace ", ns,
                                                "`) or choose another with -n"));
      }
      if (!call.name.empty()) return NotFoundIn(call.kind, call.name, ns);
      return absl::NotFoundError(message);
    case absl::StatusCode::kAlreadyExists:
      return absl::AlreadyExistsError(absl::StrCat(call.kind, " \"", call.name,
                                                   "\" already exists; `pgbranch apply` changes "
                                                   "an existing ",
                                                   call.kind));
    case absl::StatusCode::kPermissionDenied: {
      // A ValidatingAdmissionPolicy (protected branches) says why in its own words.
      size_t denied = message.find("denied request: ");
      if (denied != std::string::npos) {
        return absl::FailedPreconditionError(message.substr(denied + 16));
      }
      return absl::PermissionDeniedError(absl::StrCat(
          "not allowed: your credentials in ", where, " may not ", call.verb, " ", call.resource,
          " in namespace ", ns, " (RBAC); ask a cluster admin for a Role granting \"", call.verb,
          "\" on ", call.resource, " (`kubectl auth can-i ", call.verb, " ", call.resource, " -n ",
          ns, "` checks). The API server said: ", message));
    }
    case absl::StatusCode::kUnauthenticated:
      return absl::UnauthenticatedError(
          absl::StrCat("the API server of ", where,
                       " rejected the credentials (401 Unauthorized); log in again or refresh the "
                       "kubeconfig's credentials. The API server said: ",
                       message));
    case absl::StatusCode::kInvalidArgument: {
      // `Branch.pgbranch.io "x" is invalid: spec.lsn: Invalid value: ...: message` (CEL and
      // schema rules); with one cause, the field goes along so commands name their flag.
      size_t at = message.find(" is invalid: ");
      if (at == std::string::npos) return error;
      std::string causes = message.substr(at + 13);
      absl::Status out =
          absl::InvalidArgumentError(absl::StrCat(call.kind, " \"", call.name, "\": ", causes));
      if (absl::StartsWith(causes, "[")) return out;  // several causes
      std::string field, detail;
      SplitCause(causes, &field, &detail);
      return WithApiErrorFields(out, field, detail);
    }
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      if (IsTransportError(message)) {
        return absl::UnavailableError(
            absl::StrCat("cannot reach the Kubernetes API server of ", where, " (", message,
                         "); check that the cluster runs and the kubeconfig points at it (`kubectl "
                         "cluster-info`), choose another context with --context, or use local mode "
                         "(`pgbranch local up`)"));
      }
      return absl::UnavailableError(absl::StrCat("the API server of ", where, " could not answer (",
                                                 message, "); try again in a moment"));
    default:
      return error;
  }
}

}  // namespace pgbranch::cli
