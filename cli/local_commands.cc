#include "cli/local_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pthread.h>
#include <sys/wait.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/process_util.h"
#include "common/status_macros.h"
#include "common/stop_signals.h"
#include "common/text_util.h"
#include "operator/control/grpc_timeline_service.h"
#include "operator/local/api_server.h"
#include "operator/local/branch_credentials.h"
#include "operator/local/controller.h"
#include "operator/local/local_store.h"
#include "operator/local/local_tls.h"
#include "operator/model/json.h"

namespace pgbranch::cli {
namespace {

namespace fs = std::filesystem;

bool Alive(int pid) { return ProcessAlive(pid); }

absl::StatusOr<int> Spawn(const std::vector<std::string>& argv, const std::string& log) {
  return SpawnDetached(argv, log, /*daemon=*/true);
}

// Waits for a "port" file to appear and returns its number.
absl::StatusOr<int> WaitPortFile(const std::string& path, const std::string& what,
                                 const std::string& log) {
  for (int i = 0; i < 600; ++i) {
    std::string text(absl::StripAsciiWhitespace(ReadFileOrEmpty(path)));
    if (!text.empty()) return std::atoi(text.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::UnavailableError(absl::StrCat(what, " did not start within 30 s; see ", log));
}

void StopPid(int pid, const std::string& what, int seconds) {
  if (!Alive(pid)) return;
  ::kill(pid, SIGTERM);
  for (int i = 0; i < seconds * 20 && Alive(pid); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  if (Alive(pid)) {
    std::cerr << what << " did not stop within " << seconds << " s; killing it\n";
    ::kill(pid, SIGKILL);
  }
}

}  // namespace

absl::Status LocalDown(const CliContext& ctx) {
  auto inst = ctx.Instance();
  if (!inst.ok()) {
    std::cout << "local mode is not running (" << ctx.state_dir() << ")\n";
    return absl::OkStatus();
  }
  // Proxy first (no new connections), then the controller (it suspends every compute:
  // PostgreSQL fast shutdown, flush, unmount), then the pageserver.
  // Pids from local.json, or found again by command line if that one is gone or was not known.
  auto pid = [](int recorded, const std::vector<std::string>& args) {
    return Alive(recorded) ? recorded : PidWithArgs(args);
  };
  StopPid(pid(inst->proxy_pid, {"--port-file", ctx.Path("run/proxy.port")}), "pgbranch-proxy", 10);
  StopPid(pid(inst->controller_pid, {"--state-dir", ctx.state_dir(), "local", "controller"}),
          "the controller", 90);
  StopPid(pid(inst->pageserver_pid, {"--port-file", ctx.Path("run/pageserver.port")}),
          "pgbranch-pageserver", 30);
  ::unlink(ctx.Path("local.json").c_str());
  std::cout << "local mode stopped; branches and data stay in " << ctx.state_dir()
            << " (`pgbranch local up` brings them back)\n";
  return absl::OkStatus();
}

absl::Status LocalStatus(const CliContext& ctx) {
  auto inst = ctx.Instance();
  if (!inst.ok()) {
    if (ctx.json()) {
      PrintJson(web::json::value::parse(R"({"running": false})"));
    } else {
      std::cout << "local mode is not running (state directory " << ctx.state_dir()
                << "); start it with `pgbranch local up`\n";
    }
    return absl::OkStatus();
  }
  ApiClient client(inst->controller_url);
  auto branches = client.Get("/v1/branches");
  auto endpoints = client.Get("/v1/endpoints");
  int nb = branches.ok() ? static_cast<int>(branches->at("items").size()) : -1;
  int ne = 0, running = 0;
  if (endpoints.ok()) {
    for (const auto& e : endpoints->at("items").as_array()) {
      ++ne;
      if (control::JsonString(e.at("status"), "phase") == control::kPhaseRunning) ++running;
    }
  }
  if (ctx.json()) {
    web::json::value v = web::json::value::object();
    v["running"] = web::json::value::boolean(true);
    v["stateDir"] = web::json::value::string(ctx.state_dir());
    v["pageserver"] = web::json::value::string(inst->pageserver);
    v["controller"] = web::json::value::string(inst->controller_url);
    v["proxyPort"] = web::json::value::number(inst->proxy_port);
    v["processes"] = web::json::value::object();
    v["processes"]["pageserver"] = web::json::value::boolean(Alive(inst->pageserver_pid));
    v["processes"]["controller"] = web::json::value::boolean(Alive(inst->controller_pid));
    v["processes"]["proxy"] = web::json::value::boolean(Alive(inst->proxy_pid));
    v["branches"] = web::json::value::number(nb);
    v["endpoints"] = web::json::value::number(ne);
    v["runningComputes"] = web::json::value::number(running);
    PrintJson(v);
    return absl::OkStatus();
  }
  auto state = [](int pid) {
    return Alive(pid) ? absl::StrCat("running (pid ", pid, ")") : std::string("STOPPED");
  };
  std::cout << "state directory  " << ctx.state_dir() << "\n"
            << "pageserver       " << inst->pageserver << "  " << state(inst->pageserver_pid)
            << "\n"
            << "controller       " << inst->controller_url << "  " << state(inst->controller_pid)
            << "\n"
            << "proxy            127.0.0.1:" << inst->proxy_port << "  " << state(inst->proxy_pid)
            << "\n"
            << "branches         " << nb << "\n"
            << "endpoints        " << ne << " (" << running << " running, " << ne - running
            << " suspended or starting)\n";
  return absl::OkStatus();
}

absl::Status LocalUp(const CliContext& ctx, const LocalUpOptions& options) {
  const int proxy_port = options.proxy_port;
  const bool test_clock = options.test_clock;
  if (::geteuid() != 0) {
    return absl::FailedPreconditionError(
        "local mode needs root: computes mount FUSE filesystems and run PostgreSQL as the "
        "postgres user (try sudo)");
  }
  if (auto inst = ctx.Instance(); inst.ok() && Alive(inst->controller_pid)) {
    std::cout << "local mode is already running\n";
    return LocalStatus(ctx);
  } else if (inst.ok()) {
    PGB_RETURN_IF_ERROR(LocalDown(ctx));
  }
  const std::string bin = CliContext::BinDir();
  for (const char* b : {"pgbranch-pageserver", "pgbranch-proxy", "pgbranch-compute", "pagefs"}) {
    if (::access((bin + "/" + b).c_str(), X_OK) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat(bin, "/", b, " is missing; build everything with scripts/build.sh"));
    }
  }
  std::error_code ec;
  for (const char* d : {"logs", "run", "computes", "pageserver"}) {
    fs::create_directories(ctx.Path(d), ec);
  }
  // PostgreSQL runs as `postgres` in STATE/computes/<endpoint>: it must be able to pass through.
  // Nothing secret is readable that way (credentials/ and the pageserver data stay 0700).
  ::chmod(ctx.state_dir().c_str(), 0711);
  ::chmod(ctx.Path("computes").c_str(), 0711);
  ::chmod(ctx.Path("pageserver").c_str(), 0700);
  // TLS (default) or plain TCP is chosen at a first start; a repair keeps the choice.
  if (!ctx.Instance().ok()) PGB_RETURN_IF_ERROR(ConfigureLocalTls(ctx.state_dir(), options.tls));
  for (const char* f : {"run/pageserver.port", "run/controller.port", "run/proxy.port"}) {
    ::unlink(ctx.Path(f).c_str());
  }
  LocalInstance inst;
  inst.test_clock = test_clock;
  inst.started_at = control::Rfc3339(absl::Now());

  std::cout << "Starting pgbranch-pageserver (data in " << ctx.Path("pageserver") << ")"
            << std::endl;
  PGB_RETURN_IF_ERROR(Spawn({bin + "/pgbranch-pageserver", "--data-dir", ctx.Path("pageserver"),
                             "--listen", "127.0.0.1:0", "--port-file",
                             ctx.Path("run/pageserver.port"), "--log-level", "warning"},
                            ctx.Path("logs/pageserver.log"))
                          .status());
  PGB_ASSIGN_OR_RETURN(int ps_port, WaitPortFile(ctx.Path("run/pageserver.port"), "the pageserver",
                                                 ctx.Path("logs/pageserver.log")));
  inst.pageserver = absl::StrCat("127.0.0.1:", ps_port);
  inst.pageserver_pid = PidWithArgs({"--port-file", ctx.Path("run/pageserver.port")});

  std::cout << "Starting the controller" << std::endl;
  std::vector<std::string> controller = {bin + "/pgbranch", "--state-dir", ctx.state_dir(),
                                         "local",           "controller",  "--pageserver",
                                         inst.pageserver};
  if (test_clock) controller.push_back("--test-clock");
  PGB_RETURN_IF_ERROR(Spawn(controller, ctx.Path("logs/controller.log")).status());
  PGB_ASSIGN_OR_RETURN(int c_port, WaitPortFile(ctx.Path("run/controller.port"), "the controller",
                                                ctx.Path("logs/controller.log")));
  inst.controller_url = absl::StrCat("http://127.0.0.1:", c_port);
  inst.controller_pid = PidWithArgs({"--state-dir", ctx.state_dir(), "local", "controller"});

  std::cout << "Starting pgbranch-proxy" << std::endl;
  std::vector<std::string> proxy = {bin + "/pgbranch-proxy",
                                    "--listen",
                                    absl::StrCat("127.0.0.1:", proxy_port),
                                    "--port-file",
                                    ctx.Path("run/proxy.port"),
                                    "--control",
                                    inst.controller_url,
                                    "--log-level",
                                    "info"};
  // TLS unless `local up --no-tls` chose plain TCP (operator/local/local_tls.h).
  for (const std::string& flag : LocalProxyTlsArgs(ctx.state_dir())) proxy.push_back(flag);
  PGB_RETURN_IF_ERROR(Spawn(proxy, ctx.Path("logs/proxy.log")).status());
  PGB_ASSIGN_OR_RETURN(inst.proxy_port, WaitPortFile(ctx.Path("run/proxy.port"), "the proxy",
                                                     ctx.Path("logs/proxy.log")));
  inst.proxy_pid = PidWithArgs({"--port-file", ctx.Path("run/proxy.port")});
  PGB_RETURN_IF_ERROR(ctx.WriteInstance(inst));
  std::cout << "\nlocal mode is up (state directory " << ctx.state_dir() << ")\n"
            << "  proxy     127.0.0.1:" << inst.proxy_port
            << "  (every endpoint also gets its own port)\n"
            << "  next:     pgbranch branch create main\n";
  return absl::OkStatus();
}

absl::Status RunLocalController(const CliContext& ctx, const LocalControllerOptions& options) {
  // Block the stop signals before any thread starts, so that the wait below receives them.
  BlockStopSignals();
  const std::string& pageserver = options.pageserver;
  const bool test_clock = options.test_clock;
  const std::string& level = options.log_level;
  if (level == "debug") SetLogLevel(LogLevel::kDebug);
  if (level == "warning") SetLogLevel(LogLevel::kWarning);

  // The clock the reconcilers read: real time, plus what the test clock was advanced by.
  class OffsetClock : public Clock {
   public:
    int64_t NowMicros() override { return RealClock()->NowMicros() + offset.load(); }
    std::atomic<int64_t> offset{0};
  };
  OffsetClock clock;

  pagectl::ClientOptions copts;
  copts.address = pageserver;
  copts.timeout = absl::Seconds(30);
  control::GrpcTimelineService timelines(pagectl::Client::Connect(copts));
  LocalStore store(ctx.Path("objects.json"), &clock);
  PGB_RETURN_IF_ERROR(store.Load());

  LocalComputeOptions compute;
  compute.state_dir = ctx.state_dir();
  compute.compute_bin = CliContext::BinDir() + "/pgbranch-compute";
  compute.pagefs_bin = CliContext::BinDir() + "/pagefs";
  compute.pageserver = pageserver;
  // Each branch's own password (its verifier for the compute; the proxy checks clients against
  // the same verifier, from the routes), deleted with the branch.
  BranchCredentials credentials(ctx.state_dir(), compute.role);
  store.SetBranchRemovedListener(
      [&credentials](const std::string& uid) { credentials.Remove(uid); });
  compute.password_file_for = [&store, &credentials](
                                  const std::string& ns,
                                  const std::string& branch) -> absl::StatusOr<std::string> {
    std::optional<control::Branch> b = store.GetBranch(ns, branch);
    if (!b) return absl::NotFoundError(absl::StrCat("branch \"", branch, "\" does not exist"));
    return credentials.EnsureVerifierFile(b->metadata.uid);
  };
  Controller::Options controller_options;
  Controller controller(controller_options, &store, &timelines, compute, &clock);
  controller.Start();

  std::function<void(absl::Duration)> advance;
  if (test_clock) {
    advance = [&clock](absl::Duration d) { clock.offset += absl::ToInt64Microseconds(d); };
  }
  ApiServer api(&controller, advance);
  api.SetCredentials(&credentials);
  PGB_ASSIGN_OR_RETURN(int port, api.Listen(0));
  {
    std::string tmp = ctx.Path("run/controller.port.tmp");
    std::ofstream(tmp, std::ios::trunc) << port << "\n";
    std::rename(tmp.c_str(), ctx.Path("run/controller.port").c_str());
  }
  LogInfo("Controller started", {{"api", absl::StrCat("http://127.0.0.1:", port)},
                                 {"pageserver", pageserver},
                                 {"state_dir", ctx.state_dir()}});
  int sig = WaitForStopSignal();
  LogInfo("Stopping: suspending every compute", {{"signal", std::to_string(sig)}});
  controller.Shutdown();  // wakes and long polls in flight return; computes stop
  api.Close();
  LogInfo("Controller stopped");
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
