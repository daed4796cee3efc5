#pragma once

#include <memory>
#include <string>

#include "operator/control/sql_connector.h"
#include "operator/kube/kube_client.h"

// SqlConnector for computes in pods: libpq to the compute pod's IP (the operator reaches computes
// directly, as for /checkpoint; the chart's NetworkPolicy admits it) as the endpoint's role, with
// the password from the endpoint's credentials Secret (pod_compute_runtime.h).
namespace pgbranch::k8s {

class PodSqlConnector : public control::SqlConnector {
 public:
  PodSqlConnector(kube::KubeClient* client, std::string role, std::string database, int pg_port)
      : client_(client), role_(std::move(role)), database_(std::move(database)), port_(pg_port) {}

  absl::StatusOr<std::unique_ptr<cli::SqlSession>> Connect(const std::string& ns,
                                                           const std::string& endpoint) override;

  // The libpq URI for a pod address and password (public for unit tests).
  std::string Uri(const std::string& ip, const std::string& password) const;

 private:
  kube::KubeClient* const client_;
  const std::string role_;
  const std::string database_;
  const int port_;
};

}  // namespace pgbranch::k8s
