#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "cli/kube_api.h"

// Where pgbranch's resource commands go: the local controller, or a Kubernetes cluster
// (docs/cli-kubernetes.md). Kubernetes when asked (--kube, --context, --kubeconfig, -n, or run
// as the kubectl plugin `kubectl-pgbranch`); otherwise local mode when it runs (its local.json
// exists) or when a state directory was named (--state-dir, $PGBRANCH_HOME); otherwise
// Kubernetes when a kubeconfig exists ($KUBECONFIG, ~/.kube/config); otherwise local mode
// (whose commands then say how to start it).
namespace pgbranch::cli {

struct KubeFlags {
  bool kube = false;       // --kube
  bool plugin = false;     // run as kubectl-pgbranch
  std::string context;     // --context: a context of the kubeconfig (implies --kube)
  std::string kubeconfig;  // --kubeconfig FILE (implies --kube)
  std::string ns;          // -n/--namespace (implies --kube); "": the context's namespace
  bool Forced() const {
    return kube || plugin || !context.empty() || !kubeconfig.empty() || !ns.empty();
  }
};

struct BackendChoice {
  std::shared_ptr<KubeApi> kube;  // null: local mode
  bool automatic = false;         // chosen without a flag (the CLI says so once, on stderr)
};

// `state_dir`: the state directory in use; `state_dir_named`: --state-dir or $PGBRANCH_HOME.
absl::StatusOr<BackendChoice> ChooseBackend(const KubeFlags& flags, const std::string& state_dir,
                                            bool state_dir_named);

// A KubeApi on the cluster of the kubeconfig (`kubeconfig` "" = $KUBECONFIG, else
// ~/.kube/config, else in-cluster); `context` "" = the current one; `ns` "" = the context's.
absl::StatusOr<std::shared_ptr<KubeApi>> ConnectKube(const std::string& kubeconfig,
                                                     const std::string& context,
                                                     const std::string& ns);

}  // namespace pgbranch::cli
