// pgbranch-proxy: the PostgreSQL-protocol proxy with wake-on-connect.
//
//   pgbranch-proxy (--control URL | --kubernetes [--kubeconfig F] [--namespaces a,b])
//                  [--listen HOST:PORT] [--port-file F]
//                  [--tls-cert F --tls-key F] [--metrics-listen ADDR] [--wake-timeout D]
//                  [--startup-timeout D] [--connect-timeout D]
//                  [--relay auto|sockmap|threads|epoll] [--relay-threads N] [--log-level L]
//
// Routes each client connection to its endpoint (the per-endpoint port it connected to, else
// options=endpoint=NAME, else the first label of the TLS SNI name), wakes the endpoint through the
// controller and relays bytes to its PostgreSQL. Per-endpoint ports follow the controller's route
// table (GET /v1/routes long poll); open connections per endpoint are reported to the controller
// (POST /v1/proxy/activity). With --kubernetes there is no controller API: the proxy watches
// Endpoints and compute Pods and wakes an endpoint with an annotation (KubeControlClient).
// SIGTERM/SIGINT: stop accepting, cut open connections, exit 0.
// Bad flags exit 2; failing to start (port in use, bad certificate) exits 1.
#include <signal.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "cli/flags.h"
#include "cli/version.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/stop_signals.h"
#include "operator/kube/kube_config.h"
#include "operator/kube/rest_kube_client.h"
#include "proxy/activity_reporter.h"
#include "proxy/cancel_key_map.h"
#include "proxy/connection_registry.h"
#include "proxy/epoll_relay.h"
#include "proxy/http_control_client.h"
#include "proxy/kube_control_client.h"
#include "proxy/net_util.h"
#include "proxy/proxy_metrics.h"
#include "proxy/proxy_server.h"
#include "proxy/route_watcher.h"
#include "proxy/sockmap_relay.h"
#include "proxy/tls_context.h"

namespace {

using namespace pgbranch;
using namespace pgbranch::proxy;

constexpr char kFooter[] =
    "Routing keys, in order: the per-endpoint port the client connected to; options=endpoint=NAME\n"
    "(or --endpoint=NAME) in the startup options, removed before forwarding; the first label of\n"
    "the TLS SNI host name when it has two or more labels (dev.db.example.com -> dev).\n"
    "With --kubernetes the name is NAME.NAMESPACE or NAME (options=endpoint=dev.team); there\n"
    "are no per-endpoint ports.\n"
    "Bad flags exit 2; failing to start (port in use, bad certificate) exits 1.";

struct Flags {
  std::string control, kubeconfig, port_file, tls_cert, tls_key, metrics_listen;
  bool kubernetes = false;
  std::optional<std::string> namespaces;  // "" = all namespaces
  std::string listen = "127.0.0.1:55432";
  absl::Duration wake_timeout = absl::Seconds(60);
  absl::Duration startup_timeout = absl::Seconds(30);
  absl::Duration connect_timeout = absl::Seconds(10);
  std::string relay = "threads";
  int relay_threads = 1;
  std::string log_level = "info";
};

// "60s", "500ms", "2m" (absl durations) or a plain number of seconds.
bool ParseDurationFlag(const std::string& s, absl::Duration* d) {
  double seconds;
  if (absl::SimpleAtod(s, &seconds)) {
    *d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(s, d)) {
    return false;
  }
  return *d > absl::ZeroDuration();
}

CLI::Option* AddDuration(CLI::App& app, const std::string& name, absl::Duration* out,
                         const std::string& help) {
  return app
      .add_option_function<std::string>(
          name,
          [name, out](const std::string& v) {
            if (!ParseDurationFlag(v, out)) {
              throw CLI::ValidationError(
                  name, "\"" + v + "\" is not a positive duration (like 30s, 500ms or 2m)");
            }
          },
          help)
      ->type_name("D");
}

// The command line (cli/flags.h): everything is validated here, before anything starts.
void DefineFlags(CLI::App& app, Flags* f) {
  cli::ConfigureApp(app);
  app.description(
      "The PostgreSQL-protocol proxy with wake-on-connect: routes each client connection to its\n"
      "endpoint, wakes the endpoint through the controller and relays bytes to its PostgreSQL.");
  app.footer(kFooter);
  app.set_version_flag("--version", cli::Version(), "print the version and exit");
  auto* control = app.add_option("--control", f->control,
                                 "the controller's API, e.g. http://127.0.0.1:55400 (local mode)")
                      ->type_name("URL");
  auto* kubernetes =
      app.add_flag("--kubernetes", f->kubernetes,
                   "Kubernetes mode: read Endpoints and compute Pods from the API server and wake "
                   "an endpoint by setting its annotation pgbranch.io/wake-requested-at")
          ->excludes(control);
  app.add_option("--kubeconfig", f->kubeconfig,
                 "with --kubernetes: kubeconfig file (default: $KUBECONFIG, else the in-cluster "
                 "ServiceAccount, else ~/.kube/config)")
      ->type_name("F")
      ->needs(kubernetes);
  app.add_option("--namespaces", f->namespaces,
                 "with --kubernetes: namespaces to serve (default: the pod's own namespace "
                 "in-cluster, else the kubeconfig context's, else default; \"\" = all). Plain "
                 "endpoint names resolve in the first one listed")
      ->type_name("a,b")
      ->needs(kubernetes);
  app.add_option("--listen", f->listen,
                 "main port (default 127.0.0.1:55432; port 0: the kernel picks); per-endpoint "
                 "ports from the controller open on the same host")
      ->type_name("HOST:PORT");
  app.add_option("--port-file", f->port_file, "write the bound main port to F once listening")
      ->type_name("F");
  auto* cert = app.add_option("--tls-cert", f->tls_cert,
                              "PEM certificate chain: answer SSLRequest with TLS (without it "
                              "SSLRequest gets 'N')")
                   ->type_name("F");
  auto* key = app.add_option("--tls-key", f->tls_key, "PEM key of --tls-cert")->type_name("F");
  cert->needs(key);
  key->needs(cert);
  app.add_option("--metrics-listen", f->metrics_listen, "serve Prometheus metrics on ADDR")
      ->type_name("ADDR");
  AddDuration(app, "--wake-timeout", &f->wake_timeout,
              "how long a client waits for its endpoint to wake (default 60s)");
  AddDuration(app, "--startup-timeout", &f->startup_timeout,
              "how long a client may take to send its startup packet (default 30s)");
  AddDuration(app, "--connect-timeout", &f->connect_timeout,
              "TCP connect to an endpoint's PostgreSQL (default 10s)");
  app.add_option("--relay", f->relay,
                 "plain-TCP data path once a session is established: sockmap (the kernel "
                 "forwards between the two sockets, BPF sockmap; needs root or "
                 "CAP_BPF+CAP_NET_ADMIN; experimental), threads (default: a blocking thread per "
                 "direction), epoll (--relay-threads N shared epoll workers), or auto (sockmap "
                 "when the kernel allows it, else threads)")
      ->type_name("MODE")
      ->check(CLI::IsMember({"auto", "sockmap", "threads", "epoll"}));
  app.add_option("--relay-threads", f->relay_threads, "epoll workers (default 1)")
      ->type_name("N")
      ->check(CLI::Range(1, 1024));
  app.add_option("--log-level", f->log_level, "debug, info, warning or error")
      ->check(CLI::IsMember({"debug", "info", "warning", "error"}));
}

std::string list_or_all(const std::vector<std::string>& namespaces) {
  if (namespaces.size() == 1 && namespaces[0].empty()) return "all";
  return absl::StrJoin(namespaces, ",");
}

int Fail(const std::string& message) {
  fprintf(stderr, "pgbranch-proxy: %s\n", message.c_str());
  return 1;
}

int Run(const Flags& f) {
  const std::string& level = f.log_level;
  SetLogLevel(level == "debug"     ? LogLevel::kDebug
              : level == "warning" ? LogLevel::kWarning
              : level == "error"   ? LogLevel::kError
                                   : LogLevel::kInfo);

  SessionConfig config;
  config.wake_timeout = f.wake_timeout;
  config.startup_timeout = f.startup_timeout;
  config.connect_timeout = f.connect_timeout;
  absl::StatusOr<HostPort> listen = ParseHostPort(f.listen);
  if (!listen.ok()) {
    fprintf(stderr, "pgbranch-proxy: --listen: %s\n",
            std::string(listen.status().message()).c_str());
    return 2;
  }
  config.public_host =
      listen->host.empty() || listen->host == "0.0.0.0" ? "127.0.0.1" : listen->host;

  std::unique_ptr<TlsContext> tls;
  if (!f.tls_cert.empty()) {
    auto loaded = TlsContext::Load(f.tls_cert, f.tls_key);
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    tls = std::move(*loaded);
    config.tls = tls.get();
  }

  // The controller: the local controller's HTTP API, or the Kubernetes API server.
  std::unique_ptr<kube::RestKubeClient> kube_client;
  std::unique_ptr<ControlClient> control_client;
  std::string control_desc;
  if (f.kubernetes) {
    auto kc = kube::KubeConfig::Load(f.kubeconfig);
    if (!kc.ok()) return Fail(absl::StrCat("--kubernetes: ", kc.status().message()));
    kube::RestKubeClient::Options kopts;
    kopts.user_agent = "pgbranch-proxy";
    auto client = kube::RestKubeClient::New(*kc, kopts);
    if (!client.ok()) return Fail(absl::StrCat("--kubernetes: ", client.status().message()));
    kube_client = std::move(*client);
    KubeControlClient::Options kopt;
    kopt.wake_timeout = config.wake_timeout;
    if (f.namespaces.has_value()) {
      kopt.namespaces.clear();
      const std::string& list = *f.namespaces;
      if (list.empty()) {
        kopt.namespaces = {""};
      } else {
        for (absl::string_view ns : absl::StrSplit(list, ',', absl::SkipWhitespace())) {
          kopt.namespaces.emplace_back(absl::StripAsciiWhitespace(ns));
        }
        if (kopt.namespaces.empty()) {
          fprintf(stderr, "pgbranch-proxy: --namespaces: no namespace in '%s'\n", list.c_str());
          return 2;
        }
      }
    } else {
      kopt.namespaces = {kc->default_namespace};
    }
    kopt.default_namespace =
        kopt.namespaces.front().empty() ? kc->default_namespace : kopt.namespaces.front();
    auto kcc = std::make_unique<KubeControlClient>(kube_client.get(), kopt);
    kcc->Start();
    if (!kcc->WaitForSync(absl::Seconds(10))) {
      LogWarning("Endpoints and pods not listed yet; wakes wait for them", {{"api", kc->source}});
    }
    control_desc = absl::StrCat("kubernetes (", kc->source, "; namespaces ",
                                list_or_all(kopt.namespaces), ")");
    control_client = std::move(kcc);
  } else {
    auto http = HttpControlClient::Create(f.control, config.wake_timeout);
    if (!http.ok()) {
      fprintf(stderr, "pgbranch-proxy: %s\n", std::string(http.status().message()).c_str());
      return 2;
    }
    control_client = std::move(*http);
    control_desc = f.control;
  }
  ControlClient* control = control_client.get();

  ProxyMetrics metrics;
  if (!f.metrics_listen.empty()) {
    absl::Status s = metrics.Expose(f.metrics_listen);
    if (!s.ok()) return Fail(s.ToString());
  }
  // Default: user-space threads. The kernel splice (sockmap) is opt-in: it measured only ~20%
  // less proxy overhead here and has a narrow window in which an unsolicited server message
  // (NOTIFY) arriving between the two map inserts could be lost (proxy/README.md).
  std::string relay_mode = f.relay;
  const int relay_threads = f.relay_threads;
  std::unique_ptr<SockmapRelay> sockmap_relay;
  std::string relay_reason;
  if (relay_mode == "auto" || relay_mode == "sockmap") {
    auto created = SockmapRelay::Create(&metrics);
    if (created.ok()) {
      sockmap_relay = std::move(*created);
      relay_reason =
          "the kernel splices established plain-TCP sessions (BPF sockmap); TLS "
          "sessions use threads";
      relay_mode = "sockmap";
    } else if (relay_mode == "sockmap") {
      return Fail(absl::StrCat("--relay sockmap: ", created.status().message()));
    } else {
      relay_reason = absl::StrCat("BPF sockmap unavailable: ", created.status().message());
      relay_mode = "threads";
    }
  } else {
    relay_reason = "--relay " + relay_mode;
  }
  std::unique_ptr<EpollRelay> epoll_relay;
  if (relay_mode == "epoll") {
    auto created = EpollRelay::Create(relay_threads, &metrics.bytes_client_to_server(),
                                      &metrics.bytes_server_to_client());
    if (!created.ok()) return Fail(created.status().ToString());
    epoll_relay = std::move(*created);
  }
  LogInfo("Relay", {{"mode", relay_mode}, {"why", relay_reason}});
  ConnectionRegistry registry;
  CancelKeyMap cancel_keys;
  auto server =
      std::make_unique<ProxyServer>(config, SessionDeps{control, &registry, &cancel_keys, &metrics,
                                                        epoll_relay.get(), sockmap_relay.get()});
  absl::Status s = server->Start(listen->host, listen->port);
  if (!s.ok()) return Fail(s.ToString());
  if (!f.port_file.empty()) {
    std::string tmp = f.port_file + ".tmp";
    std::ofstream(tmp) << server->main_port() << "\n";
    if (std::rename(tmp.c_str(), f.port_file.c_str()) != 0) {
      return Fail(absl::StrCat("cannot write the port file ", f.port_file));
    }
  }

  RouteWatcher watcher(
      control, [&server](const RouteTable& table) { return server->ApplyRoutes(table); },
      RouteWatcher::Options{});
  watcher.Start();
  ActivityReporter reporter(control, &registry, ActivityReporter::Options{});
  reporter.Start();
  LogInfo("Serving", {{"listen", listen->host},
                      {"port", std::to_string(server->main_port())},
                      {"control", control_desc},
                      {"tls", tls ? "on" : "off"},
                      {"wake_timeout", absl::FormatDuration(config.wake_timeout)},
                      {"metrics", f.metrics_listen}});

  int sig = ::pgbranch::WaitForStopSignal();
  LogInfo("Shutting down", {{"signal", std::to_string(sig)},
                            {"connections", std::to_string(server->active_sessions())}});
  control->Shutdown();  // ends wakes in progress and the route long poll
  watcher.Stop();
  if (!server->Stop(absl::Seconds(5))) {
    // A session is stuck (it cannot be destroyed safely): the process exit cuts it.
    LogWarning("Connections still open at exit",
               {{"connections", std::to_string(server->active_sessions())}});
    reporter.Stop();
    fflush(stdout);
    fflush(stderr);
    _exit(0);
  }
  reporter.Stop();  // the last report carries the zeros
  server.reset();
  LogInfo("Stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  pgbranch::UseReleaseMutexMode();
  // Block the stop signals in every thread; main waits for them.
  pgbranch::BlockStopSignals();

  Flags flags;
  CLI::App app("", "pgbranch-proxy");
  DefineFlags(app, &flags);
  app.callback([&flags] {
    if (flags.control.empty() && !flags.kubernetes) {
      throw CLI::RequiredError("one of --control URL (local mode) or --kubernetes");
    }
  });
  if (std::optional<int> exit_code = cli::ParseCommandLine(app, argc, argv)) return *exit_code;
  return Run(flags);
}
