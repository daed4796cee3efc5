// pgbranch-operator: reconciles pgbranch.io Branch and Endpoint resources (DESIGN.md section 4).
//
//   pgbranch-operator [--config FILE] [flags]        (pgbranch-operator --help lists them)
//
// Watches Branches, Endpoints and its compute Pods in the configured namespaces; with leader
// election only the Lease holder reconciles (standbys keep warm caches). Serves /healthz,
// /readyz (caches synced) and /metrics. SIGTERM/SIGINT: release the Lease, stop, exit 0. Losing
// the Lease exits 1 at once (the pod restarts and waits as a standby). Bad flags exit 2.
#include <prometheus/text_serializer.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/process_util.h"
#include "common/stop_signals.h"
#include "common/token_signer.h"
#include "operator/control/grpc_timeline_service.h"
#include "operator/k8s/operator_config.h"
#include "operator/k8s/operator_controller.h"
#include "operator/k8s/operator_metrics.h"
#include "operator/kube/event_recorder.h"
#include "operator/kube/kube_config.h"
#include "operator/kube/leader_elector.h"
#include "operator/kube/rest_kube_client.h"
#include "pageserver/pagectl/client.h"

int main(int argc, char** argv) {
  using namespace pgbranch;
  std::vector<std::string> args(argv + 1, argv + argc);
  absl::StatusOr<k8s::OperatorConfig> config = k8s::ParseOperatorConfig(args);
  if (!config.ok()) {
    if (absl::IsNotFound(config.status())) {
      fputs(std::string(config.status().message()).c_str(), stdout);
      return 0;
    }
    fprintf(stderr, "pgbranch-operator: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  SetLogLevel(config->log_level == "debug"     ? LogLevel::kDebug
              : config->log_level == "warning" ? LogLevel::kWarning
              : config->log_level == "error"   ? LogLevel::kError
                                               : LogLevel::kInfo);
  BlockStopSignals();

  auto kubeconfig = kube::KubeConfig::Load(config->kubeconfig, config->context);
  if (!kubeconfig.ok()) {
    fprintf(stderr, "pgbranch-operator: %s\n", std::string(kubeconfig.status().message()).c_str());
    return 2;
  }
  auto client = kube::RestKubeClient::New(*kubeconfig);
  if (!client.ok()) {
    fprintf(stderr, "pgbranch-operator: %s\n", std::string(client.status().message()).c_str());
    return 2;
  }

  pagectl::ClientOptions popts;
  popts.address = config->pageserver;
  popts.timeout = absl::Seconds(30);
  if (!config->pageserver_signing_key_file.empty()) {
    auto signer = TokenSigner::FromKeyFile(config->pageserver_signing_key_file);
    if (!signer.ok()) {
      fprintf(stderr, "pgbranch-operator: --pageserver-signing-key-file: %s\n",
              std::string(signer.status().message()).c_str());
      return 2;
    }
    config->compute.token_signer = std::make_shared<const TokenSigner>(std::move(*signer));
    TokenClaims admin;
    admin.admin = true;
    popts.token = config->compute.token_signer->Mint(admin).value_or("");
  }
  if (!config->pageserver_token_file.empty()) {  // an explicit admin token wins
    popts.token = std::string(
        absl::StripAsciiWhitespace(cli::ReadFileOrEmpty(config->pageserver_token_file)));
    if (popts.token.empty()) {
      fprintf(stderr, "pgbranch-operator: --pageserver-token-file %s is empty or unreadable\n",
              config->pageserver_token_file.c_str());
      return 2;
    }
  }
  control::GrpcTimelineService timelines(pagectl::Client::Connect(popts));

  k8s::OperatorMetrics metrics;
  kube::EventRecorder::Options eopts;
  eopts.reporting_instance = config->identity;
  kube::EventRecorder recorder(client->get(), eopts);
  k8s::OperatorController controller(
      *config, client->get(), &timelines, &metrics,
      [&recorder](const std::string&, const web::json::value& obj, const std::string& type,
                  const std::string& reason, const std::string& message) {
        recorder.Record(kube::ObjectReference::From(obj),
                        type == "Warning" ? kube::EventRecorder::Type::kWarning
                                          : kube::EventRecorder::Type::kNormal,
                        reason, message);
      });

  HttpServer health([&](const std::string&, const std::string& path) -> HttpResponse {
    if (path == "/healthz") return {200, "text/plain", "ok\n"};
    if (path == "/readyz") {
      bool ok = controller.Synced();
      return {ok ? 200 : 503, "text/plain", ok ? "ok\n" : "informers not synced\n"};
    }
    if (path == "/metrics") {
      prometheus::TextSerializer s;
      return {200, "text/plain; version=0.0.4", s.Serialize(metrics.registry()->Collect())};
    }
    return {404, "text/plain", "not found: /healthz, /readyz or /metrics\n"};
  });
  if (absl::Status s = health.Start(config->listen); !s.ok()) {
    fprintf(stderr, "pgbranch-operator: --listen %s: %s\n", config->listen.c_str(),
            std::string(s.message()).c_str());
    return 1;
  }

  LogInfo("Starting pgbranch-operator",
          {{"identity", config->identity},
           {"namespaces", config->namespaces.size() == 1 && config->namespaces[0].empty()
                              ? "*"
                              : absl::StrJoin(config->namespaces, ",")},
           {"pageserver", config->pageserver},
           {"pageserver_auth", config->compute.token_signer != nullptr ? "signed tokens"
                               : popts.token.empty()                   ? "none"
                                                                       : "admin token"},
           {"compute_image", config->compute.image},
           {"listen", absl::StrCat(config->listen, " (port ", health.port(), ")")}});
  controller.Start();
  if (!controller.WaitForSync(absl::Minutes(2))) {
    LogWarning("Caches not synced yet; continuing (the informers keep retrying)", {});
  }

  std::atomic<bool> stopping{false};
  std::unique_ptr<kube::LeaderElector> elector;
  if (config->leader_elect) {
    kube::LeaderElector::Options lopts;
    lopts.lease_namespace = config->lease_namespace;
    lopts.lease_name = config->lease_name;
    lopts.identity = config->identity;
    lopts.on_started_leading = [&controller] { controller.SetLeading(true); };
    lopts.on_stopped_leading = [&stopping] {
      if (stopping) return;
      // Another replica may already reconcile: stop at once, without finishing anything.
      LogError("Lost the leader Lease; exiting so that only one replica reconciles", {});
      std::_Exit(1);
    };
    lopts.on_new_leader = [](const std::string& id) { LogInfo("Leader", {{"identity", id}}); };
    elector = std::make_unique<kube::LeaderElector>(client->get(), lopts);
    elector->Start();
  } else {
    controller.SetLeading(true);
  }

  int sig = WaitForStopSignal();
  stopping = true;
  LogInfo("Stopping", {{"signal", std::to_string(sig)}});
  controller.SetLeading(false);
  if (elector) elector->Stop();  // releases the Lease: a standby takes over at once
  controller.Shutdown();
  health.Stop();
  return 0;
}
