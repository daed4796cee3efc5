#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/cpprest.h"

// The CLI's client of the local controller API (docs/local-mode-internals.md). Errors come back
// as statuses whose message is the controller's sentence for a person, with the offending field
// and the bare reason attached (cli/api_errors.h); 409 AlreadyExists is ALREADY_EXISTS, other
// conflicts FAILED_PRECONDITION.
namespace pgbranch::cli {

// Where the requests go: the local controller over HTTP, or the same paths answered from a
// Kubernetes cluster (cli/kube_api.h). Same replies and error codes either way.
class ApiTransport {
 public:
  virtual ~ApiTransport() = default;
  // `method` GET, POST or DELETE; `path` /v1/...; `body` the manifests of apply/create.
  virtual absl::StatusOr<web::json::value> Call(const std::string& method, const std::string& path,
                                                const std::string& body) const = 0;
  // How often a command polls while it waits for a phase: often on this machine, gently
  // against a shared API server.
  virtual absl::Duration PollInterval() const { return absl::Milliseconds(10); }
  // Whether a GET of one branch or endpoint takes ?wait=STATE (the local controller holds the
  // answer until the object reaches it, up to 2 s; operator/local/api_server.cc).
  virtual bool HoldsWaits() const { return false; }
};

class ApiClient {
 public:
  // The local controller at `base_url`.
  explicit ApiClient(std::string base_url);
  explicit ApiClient(std::shared_ptr<const ApiTransport> transport)
      : transport_(std::move(transport)) {}

  absl::StatusOr<web::json::value> Get(const std::string& path) const;
  // GET of one object, held by the server until it reaches `wait` ("ready" for a branch,
  // "running" for an endpoint) when the transport supports it; else a plain GET.
  absl::StatusOr<web::json::value> GetWhen(const std::string& path, const std::string& wait) const;
  absl::StatusOr<web::json::value> Post(const std::string& path,
                                        const std::string& body = "") const;
  absl::StatusOr<web::json::value> Delete(const std::string& path) const;
  absl::Duration PollInterval() const { return transport_->PollInterval(); }

 private:
  std::shared_ptr<const ApiTransport> transport_;
};

}  // namespace pgbranch::cli
