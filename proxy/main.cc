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
#include <map>
#include <memory>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/log.h"
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

constexpr char kUsage[] =
    "usage: pgbranch-proxy --control URL [--listen HOST:PORT] [--port-file F]\n"
    "       pgbranch-proxy --kubernetes [--kubeconfig F] [--namespaces a,b]\n"
    "                      [--listen HOST:PORT] [--port-file F]\n"
    "   both forms also take:\n"
    "                      [--tls-cert F --tls-key F] [--metrics-listen ADDR]\n"
    "                      [--wake-timeout D] [--startup-timeout D] [--connect-timeout D]\n"
    "                      [--relay auto|sockmap|threads|epoll] [--relay-threads N]\n"
    "                      [--log-level debug|info|warning|error]\n"
    "\n"
    "  --control URL        the controller's API, e.g. http://127.0.0.1:55400 (local mode)\n"
    "  --kubernetes         Kubernetes mode: read Endpoints and compute Pods from the API\n"
    "                       server and wake an endpoint by setting its annotation\n"
    "                       pgbranch.io/wake-requested-at (exactly one of --control and\n"
    "                       --kubernetes)\n"
    "  --kubeconfig F       with --kubernetes: kubeconfig file (default: $KUBECONFIG, else the\n"
    "                       in-cluster ServiceAccount, else ~/.kube/config)\n"
    "  --namespaces a,b     with --kubernetes: namespaces to serve (default: the pod's own\n"
    "                       namespace in-cluster, else the kubeconfig context's, else\n"
    "                       default; \"\" = all namespaces). Plain endpoint names resolve in\n"
    "                       the first one listed\n"
    "  --listen HOST:PORT   main port (default 127.0.0.1:55432; port 0: the kernel picks);\n"
    "                       per-endpoint ports from the controller open on the same host\n"
    "  --port-file F        write the bound main port to F once listening\n"
    "  --tls-cert/--tls-key PEM certificate chain and key: answer SSLRequest with TLS\n"
    "                       (without them SSLRequest gets 'N')\n"
    "  --wake-timeout D     how long a client waits for its endpoint to wake (default 60s)\n"
    "  --startup-timeout D  how long a client may take to send its startup packet (default 30s)\n"
    "  --connect-timeout D  TCP connect to an endpoint's PostgreSQL (default 10s)\n"
    "  --relay MODE         plain-TCP data path once a session is established: sockmap (the\n"
    "                       kernel forwards between the two sockets, BPF sockmap; needs root or\n"
    "                       CAP_BPF+CAP_NET_ADMIN; experimental), threads (default: a blocking\n"
    "                       thread per direction), epoll (--relay-threads N shared epoll\n"
    "                       workers), or auto (sockmap when the kernel allows it, else threads)\n"
    "\n"
    "Routing keys, in order: the per-endpoint port the client connected to; options=endpoint=NAME\n"
    "(or --endpoint=NAME) in the startup options, removed before forwarding; the first label of\n"
    "the TLS SNI host name when it has two or more labels (dev.db.example.com -> dev).\n"
    "With --kubernetes the name is NAME.NAMESPACE or NAME (options=endpoint=dev.team); there\n"
    "are no per-endpoint ports.\n";

struct Flags {
  std::map<std::string, std::string> values;
};

bool ParseFlags(int argc, char** argv, Flags* f, std::string* error) {
  static const char* kValued[] = {"--control",      "--listen",          "--port-file",
                                  "--tls-cert",     "--tls-key",         "--metrics-listen",
                                  "--wake-timeout", "--startup-timeout", "--connect-timeout",
                                  "--log-level",    "--relay",           "--relay-threads",
                                  "--kubeconfig",   "--namespaces"};
  static const char* kBoolean[] = {"--kubernetes"};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      *error = "";
      return false;
    }
    if (a.rfind("--", 0) != 0) {
      *error = absl::StrCat("unexpected argument ", a);
      return false;
    }
    std::string name = a, value;
    bool inline_value = false;
    if (auto eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    bool boolean = false;
    for (const char* k : kBoolean) boolean = boolean || name == k;
    if (boolean) {
      if (inline_value) {
        *error = absl::StrCat(name, " takes no value");
        return false;
      }
      f->values[name] = "true";
      continue;
    }
    bool known = false;
    for (const char* k : kValued) known = known || name == k;
    if (!known) {
      *error = absl::StrCat("unknown flag ", a);
      return false;
    }
    if (!inline_value) {
      if (i + 1 >= argc) {
        *error = absl::StrCat(name, " needs a value");
        return false;
      }
      value = argv[++i];
    }
    f->values[name] = value;
  }
  bool control = f->values.count("--control") > 0;
  bool kubernetes = f->values.count("--kubernetes") > 0;
  if (control == kubernetes) {
    *error = control ? "--control and --kubernetes exclude each other: pick one"
                     : "one of --control URL (local mode) or --kubernetes is required";
    return false;
  }
  for (const char* k : {"--kubeconfig", "--namespaces"}) {
    if (!kubernetes && f->values.count(k)) {
      *error = absl::StrCat(k, " only applies with --kubernetes");
      return false;
    }
  }
  if (f->values.count("--tls-cert") != f->values.count("--tls-key")) {
    *error = "--tls-cert and --tls-key go together";
    return false;
  }
  return true;
}

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

std::string list_or_all(const std::vector<std::string>& namespaces) {
  if (namespaces.size() == 1 && namespaces[0].empty()) return "all";
  return absl::StrJoin(namespaces, ",");
}

int Fail(const std::string& message) {
  fprintf(stderr, "pgbranch-proxy: %s\n", message.c_str());
  return 1;
}

int Run(const Flags& f) {
  auto get = [&](const char* name, const std::string& def = "") {
    auto it = f.values.find(name);
    return it == f.values.end() ? def : it->second;
  };
  std::string level = get("--log-level", "info");
  SetLogLevel(level == "debug"     ? LogLevel::kDebug
              : level == "warning" ? LogLevel::kWarning
              : level == "error"   ? LogLevel::kError
                                   : LogLevel::kInfo);

  SessionConfig config;
  for (auto [flag, def, out] : {std::tuple{"--wake-timeout", "60s", &config.wake_timeout},
                                std::tuple{"--startup-timeout", "30s", &config.startup_timeout},
                                std::tuple{"--connect-timeout", "10s", &config.connect_timeout}}) {
    if (!ParseDurationFlag(get(flag, def), out)) {
      fprintf(stderr, "pgbranch-proxy: %s: '%s' is not a positive duration (e.g. 30s)\n", flag,
              get(flag).c_str());
      return 2;
    }
  }
  absl::StatusOr<HostPort> listen = ParseHostPort(get("--listen", "127.0.0.1:55432"));
  if (!listen.ok()) {
    fprintf(stderr, "pgbranch-proxy: --listen: %s\n",
            std::string(listen.status().message()).c_str());
    return 2;
  }
  config.public_host =
      listen->host.empty() || listen->host == "0.0.0.0" ? "127.0.0.1" : listen->host;

  std::unique_ptr<TlsContext> tls;
  if (!get("--tls-cert").empty()) {
    auto loaded = TlsContext::Load(get("--tls-cert"), get("--tls-key"));
    if (!loaded.ok()) return Fail(std::string(loaded.status().message()));
    tls = std::move(*loaded);
    config.tls = tls.get();
  }

  // The controller: the local controller's HTTP API, or the Kubernetes API server.
  std::unique_ptr<kube::RestKubeClient> kube_client;
  std::unique_ptr<ControlClient> control_client;
  std::string control_desc;
  if (f.values.count("--kubernetes")) {
    auto kc = kube::KubeConfig::Load(get("--kubeconfig"));
    if (!kc.ok()) return Fail(absl::StrCat("--kubernetes: ", kc.status().message()));
    kube::RestKubeClient::Options kopts;
    kopts.user_agent = "pgbranch-proxy";
    auto client = kube::RestKubeClient::New(*kc, kopts);
    if (!client.ok()) return Fail(absl::StrCat("--kubernetes: ", client.status().message()));
    kube_client = std::move(*client);
    KubeControlClient::Options kopt;
    kopt.wake_timeout = config.wake_timeout;
    if (f.values.count("--namespaces")) {
      kopt.namespaces.clear();
      std::string list = get("--namespaces");
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
    auto http = HttpControlClient::Create(get("--control"), config.wake_timeout);
    if (!http.ok()) {
      fprintf(stderr, "pgbranch-proxy: %s\n", std::string(http.status().message()).c_str());
      return 2;
    }
    control_client = std::move(*http);
    control_desc = get("--control");
  }
  ControlClient* control = control_client.get();

  ProxyMetrics metrics;
  if (!get("--metrics-listen").empty()) {
    absl::Status s = metrics.Expose(get("--metrics-listen"));
    if (!s.ok()) return Fail(s.ToString());
  }
  // Default: user-space threads. The kernel splice (sockmap) is opt-in: it measured only ~20%
  // less proxy overhead here and has a narrow window in which an unsolicited server message
  // (NOTIFY) arriving between the two map inserts could be lost (proxy/README.md).
  std::string relay_mode = get("--relay", "threads");
  int relay_threads = 1;
  if ((relay_mode != "auto" && relay_mode != "sockmap" && relay_mode != "epoll" &&
       relay_mode != "threads") ||
      !absl::SimpleAtoi(get("--relay-threads", "1"), &relay_threads) || relay_threads < 1) {
    fprintf(stderr,
            "pgbranch-proxy: --relay is auto, sockmap, threads or epoll; --relay-threads >= 1\n");
    return 2;
  }
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
  if (!get("--port-file").empty()) {
    std::string tmp = get("--port-file") + ".tmp";
    std::ofstream(tmp) << server->main_port() << "\n";
    if (std::rename(tmp.c_str(), get("--port-file").c_str()) != 0) {
      return Fail(absl::StrCat("cannot write the port file ", get("--port-file")));
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
                      {"metrics", get("--metrics-listen")}});

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
  // Block the stop signals in every thread; main waits for them.
  pgbranch::BlockStopSignals();

  Flags flags;
  std::string error;
  if (!ParseFlags(argc, argv, &flags, &error)) {
    if (error.empty()) {
      fputs(kUsage, stdout);
      return 0;
    }
    fprintf(stderr, "pgbranch-proxy: %s\n%s", error.c_str(), kUsage);
    return 2;
  }
  return Run(flags);
}
