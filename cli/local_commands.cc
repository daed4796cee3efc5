#include "cli/local_commands.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <pthread.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/daemon_supervisor.h"
#include "cli/local_daemons.h"
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
#include "operator/local/spare_agent.h"
#include "operator/model/json.h"
#include "pageserver/pagectl/client.h"

namespace pgbranch::cli {
namespace {

namespace fs = std::filesystem;

}  // namespace

absl::Status LocalDown(const CliContext& ctx) {
  LocalDaemons daemons(ctx);
  auto inst = ctx.Instance();
  const std::string computes = ctx.Path("computes") + "/";
  bool anything = inst.ok() || daemons.Find(Daemon::kPageserver) != 0 ||
                  daemons.Find(Daemon::kController) != 0 || daemons.Find(Daemon::kProxy) != 0 ||
                  !PidsWithCommandLine(computes).empty() ||
                  !MountsUnder(ctx.Path("computes")).empty();
  if (!anything) {
    std::cout << "local mode is not running (" << ctx.state_dir() << ")\n";
    return absl::OkStatus();
  }
  // Nobody restarts a daemon while we stop them (the controller's supervisor, a `local up`).
  absl::StatusOr<LocalDaemons::Lock> lock = daemons.Acquire(absl::Seconds(60));
  if (!lock.ok()) return lock.status();
  // Proxy first (no new connections), then the controller (it suspends every compute:
  // PostgreSQL fast shutdown, flush, unmount), then whatever computes are left (the controller
  // crashed, or did not stop them in time), then the pageserver they write to.
  daemons.Stop(Daemon::kProxy, 10);
  daemons.Stop(Daemon::kController, 90);
  int leftovers = LocalComputeRuntime::StopEverything(ctx.state_dir(), 20);
  if (leftovers > 0) {
    std::cout << "stopped " << leftovers
              << " compute process(es) the controller had left running\n";
  }
  daemons.Stop(Daemon::kPageserver, 30);
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
  LocalDaemons daemons(ctx);
  const pid_t pageserver_pid = daemons.Find(Daemon::kPageserver);
  const pid_t controller_pid = daemons.Find(Daemon::kController);
  const pid_t proxy_pid = daemons.Find(Daemon::kProxy);
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
    v["processes"]["pageserver"] = web::json::value::boolean(pageserver_pid != 0);
    v["processes"]["controller"] = web::json::value::boolean(controller_pid != 0);
    v["processes"]["proxy"] = web::json::value::boolean(proxy_pid != 0);
    v["healthy"] =
        web::json::value::boolean(pageserver_pid != 0 && controller_pid != 0 && proxy_pid != 0);
    v["branches"] = web::json::value::number(nb);
    v["endpoints"] = web::json::value::number(ne);
    v["runningComputes"] = web::json::value::number(running);
    PrintJson(v);
    return absl::OkStatus();
  }
  auto state = [](pid_t pid) {
    return pid != 0 ? absl::StrCat("running (pid ", pid, ")")
                    : std::string("STOPPED (`pgbranch local up` restarts it)");
  };
  std::cout << "state directory  " << ctx.state_dir() << "\n"
            << "pageserver       " << inst->pageserver << "  " << state(pageserver_pid) << "\n"
            << "controller       " << inst->controller_url << "  " << state(controller_pid) << "\n"
            << "proxy            127.0.0.1:" << inst->proxy_port << "  " << state(proxy_pid) << "\n"
            << "branches         " << nb << "\n"
            << "endpoints        " << ne << " (" << running << " running, " << ne - running
            << " suspended or starting)\n";
  return absl::OkStatus();
}

absl::Status LocalUp(const CliContext& ctx, const LocalUpOptions& options) {
  if (::geteuid() != 0) {
    return absl::FailedPreconditionError(
        "local mode needs root: computes mount FUSE filesystems and run PostgreSQL as the "
        "postgres user (try sudo)");
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

  LocalDaemons daemons(ctx);
  PGB_ASSIGN_OR_RETURN(LocalDaemons::Lock lock, daemons.Acquire(absl::Seconds(60)));
  // An instance that was up (local.json) is repaired in place: whatever daemon is missing is
  // started again on its recorded address, and running computes are left alone (the
  // controller adopts them). Otherwise this is a first start.
  absl::StatusOr<LocalInstance> recorded = ctx.Instance();
  const bool repair = recorded.ok();
  LocalInstance inst;
  if (repair) {
    inst = *recorded;
  } else {
    inst.test_clock = options.test_clock;
    inst.started_at = control::Rfc3339(absl::Now());
    inst.proxy_port = options.proxy_port;
  }
  std::vector<std::string> repaired;
  // Starts `d` unless it runs; a restart that cannot have its old address (taken meanwhile)
  // takes a new one when nothing depends on the old one.
  auto ensure = [&](Daemon d, bool may_move) -> absl::Status {
    if (pid_t pid = daemons.Find(d); pid != 0) {
      // Running: record it (local.json may have lost it).
      int port = std::atoi(ReadFileOrEmpty(daemons.PortFile(d)).c_str());
      if (d == Daemon::kPageserver) {
        inst.pageserver_pid = pid;
        if (inst.pageserver.empty() && port > 0) inst.pageserver = absl::StrCat("127.0.0.1:", port);
      } else if (d == Daemon::kController) {
        inst.controller_pid = pid;
        if (inst.controller_url.empty() && port > 0) {
          inst.controller_url = absl::StrCat("http://127.0.0.1:", port);
        }
      } else {
        inst.proxy_pid = pid;
        if (port > 0) inst.proxy_port = port;
      }
      return absl::OkStatus();
    }
    std::cout << (repair ? "Restarting " : "Starting ") << LocalDaemons::Name(d) << std::endl;
    absl::Status s = daemons.Start(d, &inst);
    if (!s.ok() && repair && may_move) {
      std::cout << "  cannot restart it on its previous address; trying any free port" << std::endl;
      if (d == Daemon::kPageserver) inst.pageserver.clear();
      if (d == Daemon::kProxy) inst.proxy_port = 0;
      s = daemons.Start(d, &inst);
    }
    if (s.ok() && repair) repaired.push_back(LocalDaemons::Name(d));
    return s;
  };
  const std::string old_pageserver = inst.pageserver;
  // The pageserver may move only while no compute uses it.
  // (Agents started for a compute, and spares: an agent that started as one keeps that command
  // line; operator/local/spare_agent.h.)
  bool computes_running =
      !PidsWithCommandLine("--config " + ctx.Path("computes") + "/").empty() ||
      !PidsWithCommandLine(absl::StrCat(SpareAgent::kFlag, " ", ctx.Path("computes"), "/")).empty();
  PGB_RETURN_IF_ERROR(ensure(Daemon::kPageserver, !computes_running));
  if (repair && inst.pageserver != old_pageserver && daemons.Find(Daemon::kController) != 0) {
    // A controller that talks to the old address cannot go on.
    daemons.Stop(Daemon::kController, 90);
  }
  // A first start that fails leaves nothing running behind it (a repair keeps what ran).
  auto undo = [&](absl::Status s) {
    if (!repair) {
      daemons.Stop(Daemon::kController, 30);
      daemons.Stop(Daemon::kPageserver, 30);
    }
    return s;
  };
  if (absl::Status s = ensure(Daemon::kController, false); !s.ok()) return undo(s);
  if (pid_t proxy = daemons.Find(Daemon::kProxy);
      proxy != 0 &&
      CommandLine(proxy).find("--control " + inst.controller_url) == std::string::npos) {
    std::cout << "The controller moved to " << inst.controller_url << "; restarting pgbranch-proxy"
              << std::endl;
    daemons.Stop(Daemon::kProxy, 10);
  }
  if (absl::Status s = ensure(Daemon::kProxy, true); !s.ok()) return undo(s);
  PGB_RETURN_IF_ERROR(ctx.WriteInstance(inst));

  if (!repair) {
    std::cout << "\nlocal mode is up (state directory " << ctx.state_dir() << ")\n"
              << "  proxy     127.0.0.1:" << inst.proxy_port
              << "  (every endpoint also gets its own port)\n"
              << "  next:     pgbranch branch create main\n";
    return absl::OkStatus();
  }
  if (repaired.empty()) {
    std::cout << "local mode is already running; nothing to repair\n";
  } else {
    std::cout << "repaired: restarted " << absl::StrJoin(repaired, ", ")
              << "; running computes were left untouched\n";
  }
  if (options.proxy_port != inst.proxy_port && options.proxy_port != 55432 &&
      options.proxy_port != 0) {
    std::cout << "note: the proxy keeps its port " << inst.proxy_port
              << " (--proxy-port applies to a first start; `pgbranch local down` first to "
                 "change it)\n";
  }
  return LocalStatus(ctx);
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
  // pagefs mounts reach the pageserver on its Unix socket when the state directory's path
  // allows one (LocalDaemons::PageserverSocket); the controller's own calls stay on TCP.
  compute.pageserver = pageserver;
  if (std::string sock = LocalDaemons::PageserverSocket(ctx); !sock.empty()) {
    compute.pageserver = "unix:" + sock;
  } else {
    LogWarning(
        "The state directory's path is too long for a Unix socket (sockaddr_un holds " +
            std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
            " bytes); pagefs mounts reach the pageserver over TCP, which adds latency to every "
            "fsync. A shorter --state-dir / $PGBRANCH_HOME avoids that",
        {{"socket", ctx.Path("run/ps.sock")}, {"pageserver", pageserver}});
  }
  // pagefs commits over the pageserver's commit channel (LocalDaemons::CommitSocket) instead of
  // its CommitStream RPC: ~150 us less per waited commit (README, fifth round).
  // PGBRANCH_LOCAL_COMMIT_CHANNEL=0 in the controller's environment keeps CommitStream.
  const char* channel_env = std::getenv("PGBRANCH_LOCAL_COMMIT_CHANNEL");
  if (channel_env == nullptr || std::string(channel_env) != "0") {
    if (std::string sock = LocalDaemons::CommitSocket(ctx); !sock.empty()) {
      compute.commit_channel = "unix:" + sock;
    } else {
      LogWarning(
          "pagefs mounts commit over the CommitStream RPC, not the commit channel: the state "
          "directory's path is too long for a Unix socket",
          {{"socket", ctx.Path("run/pc.sock")}});
    }
  }
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
  controller.Start();  // adopts the computes a crashed controller left running

  std::function<void(absl::Duration)> advance;
  if (test_clock) {
    advance = [&clock](absl::Duration d) { clock.offset += absl::ToInt64Microseconds(d); };
  }
  ApiServer api(&controller, advance);
  api.SetCredentials(&credentials);
  // A restarted controller comes back on its recorded port: the proxy's --control names it.
  int recorded_port = 0;
  if (auto inst = ctx.Instance(); inst.ok()) {
    size_t colon = inst->controller_url.rfind(':');
    if (colon != std::string::npos)
      recorded_port = std::atoi(inst->controller_url.c_str() + colon + 1);
  }
  absl::StatusOr<int> listening = api.Listen(recorded_port);
  if (!listening.ok() && recorded_port != 0) {
    LogWarning("Cannot listen on the recorded port; taking a new one",
               {{"port", std::to_string(recorded_port)}, {"error", listening.status().ToString()}});
    listening = api.Listen(0);
  }
  PGB_ASSIGN_OR_RETURN(int port, std::move(listening));
  {
    std::string tmp = ctx.Path("run/controller.port.tmp");
    std::ofstream(tmp, std::ios::trunc) << port << "\n";
    std::rename(tmp.c_str(), ctx.Path("run/controller.port").c_str());
  }
  LogInfo("Controller started", {{"api", absl::StrCat("http://127.0.0.1:", port)},
                                 {"pageserver", pageserver},
                                 {"pagefs_pageserver", compute.pageserver},
                                 {"pagefs_commit_channel", compute.commit_channel},
                                 {"state_dir", ctx.state_dir()}});
  // Restarts the pageserver and the proxy when they die; tells the controller whether the
  // pageserver answers.
  pagectl::ClientOptions ping_options = copts;
  ping_options.timeout = absl::Seconds(2);
  std::unique_ptr<pagectl::Client> ping_client = pagectl::Client::Connect(ping_options);
  DaemonSupervisor supervisor(
      ctx,
      [&ping_client, &ping_options] {
        namespace v1 = ::pgbranch::pageserver::v1;
        v1::ListTenantsRequest request;
        v1::ListTenantsResponse response;
        absl::Status s =
            ping_client->Call(&v1::PageService::StubInterface::ListTenants, request, &response);
        // A fresh channel after a failure: a failed one waits out gRPC's reconnect back-off
        // (up to minutes) before it notices that a restarted pageserver is back.
        if (absl::IsUnavailable(s)) ping_client = pagectl::Client::Connect(ping_options);
        return s;
      },
      [&controller](bool reachable, const std::string& message) {
        controller.SetPageserverReachable(reachable, message);
      });
  supervisor.Start();
  int sig = WaitForStopSignal();
  supervisor.Stop();
  LogInfo("Stopping: suspending every compute", {{"signal", std::to_string(sig)}});
  controller.Shutdown();  // wakes and long polls in flight return; computes stop
  api.Close();
  LogInfo("Controller stopped");
  return absl::OkStatus();
}

}  // namespace pgbranch::cli
