#pragma once

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/api_client.h"
#include "operator/kube/kube_client.h"

// The local controller's API (docs/local-mode-internals.md) answered from a Kubernetes cluster,
// so that every pgbranch command works against a cluster unchanged (docs/cli-kubernetes.md):
//   GET    /v1/branches[/NAME], /v1/endpoints[/NAME]   list / get the custom resources
//   POST   /v1/create   new objects only (ALREADY_EXISTS otherwise), all or nothing
//   POST   /v1/apply    create or update; results say created, configured or unchanged
//   DELETE /v1/branches/NAME (refused with child branches), /v1/endpoints/NAME
//   POST   /v1/branches/NAME/reset               raises spec.resetGeneration
//   POST   /v1/endpoints/NAME/suspend|start      the operator's request annotations
// Manifests are validated as local mode validates them (the same messages), then sent as
// written. Errors are reworded for a person (cli/kube_errors.h). Objects come back as the API
// server has them, with `spec` and `status` always present; an endpoint's status.routed is true
// (in Kubernetes the proxy looks endpoints up when a client connects). Thread-compatible.
namespace pgbranch::cli {

class KubeApi : public ApiTransport {
 public:
  // `ns`: the namespace of every object; `where`: the cluster for messages
  // ("context \"dev\" (https://10.0.0.1:6443)").
  KubeApi(std::shared_ptr<kube::KubeClient> client, std::string ns, std::string where);

  absl::StatusOr<web::json::value> Call(const std::string& method, const std::string& path,
                                        const std::string& body) const override;
  absl::Duration PollInterval() const override { return absl::Milliseconds(250); }

  const std::string& ns() const { return ns_; }
  const std::string& where() const { return where_; }

  // The decoded data of a Secret in the namespace (the endpoint credentials Secret).
  absl::StatusOr<std::map<std::string, std::string>> SecretData(const std::string& name) const;

 private:
  absl::StatusOr<web::json::value> List(const kube::Resource& r, const std::string& kind) const;
  absl::StatusOr<web::json::value> GetObject(const kube::Resource& r, const std::string& kind,
                                             const std::string& name) const;
  absl::StatusOr<web::json::value> Apply(const std::string& body, bool create_only) const;
  absl::StatusOr<web::json::value> DeleteBranch(const std::string& name) const;
  absl::StatusOr<web::json::value> DeleteEndpoint(const std::string& name) const;
  absl::StatusOr<web::json::value> Reset(const std::string& name) const;
  // `branch restore NAME --to RP --keep-current-as KEPT` (docs/promotion.md): creates KEPT
  // (annotated restore-of NAME; the operator makes its timeline), then raises NAME's
  // resetGeneration with the restore annotations. KEPT is deleted again when the update fails.
  absl::StatusOr<web::json::value> Restore(const std::string& name,
                                           const web::json::value& body) const;
  absl::StatusOr<web::json::value> Annotate(const std::string& name,
                                            const std::string& annotation) const;
  absl::Status Error(const absl::Status& s, const std::string& verb, const kube::Resource& r,
                     const std::string& name) const;

  std::shared_ptr<kube::KubeClient> client_;
  std::string ns_;
  std::string where_;
};

}  // namespace pgbranch::cli
