#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "operator/k8s/pod_compute_runtime.h"

// pgbranch-operator settings: defaults, overridden by a YAML file (--config), overridden by
// flags. Every YAML key has a flag of the same name in kebab-case (`compute_image` ->
// `--compute-image`); lists (namespaces) take a comma-separated flag value.
//
// YAML keys:
//   kubeconfig: ""                 # empty: $KUBECONFIG, in-cluster, ~/.kube/config
//   context: ""
//   namespaces: [default]          # [] or [""]: every namespace
//   pageserver: 127.0.0.1:6400     # where the operator reaches the pageserver (admin API)
//   pageserver_token_file: ""      # admin token for the pageserver, if it requires tokens
//   pageserver_signing_key_file: "" # the pageserver's --token-signing-key-file: the operator
//                                   # mints its admin token and one tenant token per compute pod
//   compute_pageserver: ""         # where compute pods reach it (default: pageserver)
//   compute_image: pgbranch/compute:dev
//   image_pull_policy: IfNotPresent
//   fuse_device_resource: ""       # "" = privileged compute pods
//   compute_cpu: "" / compute_memory: ""
//   proxy_host: ""                 # host in connection strings ("" = <endpoint>.<ns>.svc)
//   proxy_service: pgbranch-proxy.pgbranch-system.svc.cluster.local
//   proxy_port: 5432
//   listen: 0.0.0.0:8080           # /healthz, /readyz, /metrics
//   leader_elect: true
//   lease_namespace: default / lease_name: pgbranch-operator / identity: <hostname>-<pid>
//   resync_seconds: 300
//   log_level: info
namespace pgbranch::k8s {

struct OperatorConfig {
  std::string kubeconfig;
  std::string context;
  std::vector<std::string> namespaces = {"default"};
  std::string pageserver = "127.0.0.1:6400";
  std::string pageserver_token_file;
  std::string pageserver_signing_key_file;
  PodComputeOptions compute;
  std::string listen = "0.0.0.0:8080";
  bool leader_elect = true;
  std::string lease_namespace = "default";
  std::string lease_name = "pgbranch-operator";
  std::string identity;
  int resync_seconds = 300;
  std::string log_level = "info";
};

// Parses argv (without argv[0]). `--help` yields NOT_FOUND carrying the usage text; errors say
// which flag or key is wrong and what to write.
absl::StatusOr<OperatorConfig> ParseOperatorConfig(const std::vector<std::string>& args);
std::string OperatorUsage();

}  // namespace pgbranch::k8s
