#include "cli/kube_target.h"

#include <cstdlib>
#include <filesystem>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "operator/kube/kube_config.h"
#include "operator/kube/rest_kube_client.h"

namespace pgbranch::cli {
namespace {

// Whether a kubeconfig file exists where kubectl would look.
bool KubeconfigExists() {
  std::error_code ec;
  if (const char* env = std::getenv("KUBECONFIG"); env && *env) {
    for (absl::string_view p : absl::StrSplit(env, ':', absl::SkipEmpty())) {
      if (std::filesystem::exists(std::string(p), ec)) return true;
    }
    return false;
  }
  const char* home = std::getenv("HOME");
  return home && *home && std::filesystem::exists(absl::StrCat(home, "/.kube/config"), ec);
}

}  // namespace

absl::StatusOr<std::shared_ptr<KubeApi>> ConnectKube(const std::string& kubeconfig,
                                                     const std::string& context,
                                                     const std::string& ns) {
  absl::StatusOr<kube::KubeConfig> config = kube::KubeConfig::Load(kubeconfig, context);
  if (!config.ok()) {
    std::string message(config.status().message());
    if (absl::StrContains(message, "context \"") && absl::StrContains(message, "not found")) {
      return absl::NotFoundError(
          absl::StrCat(message, "; list the contexts with `kubectl config get-contexts`"));
    }
    if (absl::IsNotFound(config.status())) {
      return absl::FailedPreconditionError(absl::StrCat(
          message,
          "; give one with --kubeconfig FILE or $KUBECONFIG, or use local mode (`pgbranch local "
          "up`)"));
    }
    return config.status();
  }
  kube::RestKubeClient::Options options;
  options.user_agent = "pgbranch-cli";
  absl::StatusOr<std::unique_ptr<kube::RestKubeClient>> client =
      kube::RestKubeClient::New(*config, options);
  if (!client.ok()) return client.status();
  std::string where = absl::StrCat(config->source, " at ", config->server);
  return std::make_shared<KubeApi>(std::shared_ptr<kube::KubeClient>(std::move(*client)),
                                   ns.empty() ? config->default_namespace : ns, where);
}

absl::StatusOr<BackendChoice> ChooseBackend(const KubeFlags& flags, const std::string& state_dir,
                                            bool state_dir_named) {
  BackendChoice choice;
  if (!flags.Forced()) {
    std::error_code ec;
    if (state_dir_named || std::filesystem::exists(state_dir + "/local.json", ec) ||
        !KubeconfigExists()) {
      return choice;  // local mode
    }
    choice.automatic = true;
  }
  absl::StatusOr<std::shared_ptr<KubeApi>> api =
      ConnectKube(flags.kubeconfig, flags.context, flags.ns);
  if (!api.ok()) return api.status();
  choice.kube = *api;
  return choice;
}

}  // namespace pgbranch::cli
