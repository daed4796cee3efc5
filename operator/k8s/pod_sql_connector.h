#pragma once

#include <memory>
#include <string>

#include "operator/control/sql_connector.h"
#include "operator/k8s/pod_compute_runtime.h"
#include "operator/kube/kube_client.h"

// SqlConnector for computes in pods: libpq to the compute pod's IP (the operator reaches computes
// directly, as for /checkpoint; the chart's NetworkPolicy admits it) as the endpoint's role, with
// the password from the endpoint's credentials Secret (pod_compute_runtime.h).
namespace pgbranch::k8s {

class PodSqlConnector : public control::SqlConnector {
 public:
  // `pods` looks a pod up (the operator's informer cache), as PodComputeRuntime does.
  PodSqlConnector(kube::KubeClient* client, PodComputeRuntime::PodLookup pods, std::string role,
                  std::string database, int pg_port)
      : client_(client),
        pods_(std::move(pods)),
        role_(std::move(role)),
        database_(std::move(database)),
        port_(pg_port) {}

  absl::StatusOr<std::unique_ptr<cli::SqlSession>> Connect(const std::string& ns,
                                                           const std::string& endpoint) override;

  // The libpq URI for a pod address and password (public for unit tests).
  std::string Uri(const std::string& ip, const std::string& password) const;

 private:
  kube::KubeClient* const client_;
  const PodComputeRuntime::PodLookup pods_;
  const std::string role_;
  const std::string database_;
  const int port_;
};

}  // namespace pgbranch::k8s
