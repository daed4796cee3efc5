#include "compute/compute_agent.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <libpq-fe.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "compute/gated_child.h"
#include "compute/recovery_choice.h"
#include "compute/role_setup.h"
#include "compute/standby_settings.h"

namespace pgbranch::compute {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

std::string Seconds(double s) {
  char buf[32];
  snprintf(buf, sizeof(buf), "%.3f", s);
  return buf;
}

absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (mkdir(path.c_str(), mode) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("mkdir ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

// The first column of every row of `sql` (a superuser connection over the socket).
absl::StatusOr<std::vector<std::string>> QueryColumn(const std::string& conninfo,
                                                     const std::string& sql) {
  PGconn* conn = PQconnectdb(conninfo.c_str());
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string e = PQerrorMessage(conn);
    PQfinish(conn);
    return absl::UnavailableError(absl::StrCat("cannot connect to PostgreSQL: ", e));
  }
  PGresult* r = PQexec(conn, sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::string e = PQresultErrorMessage(r);
    PQclear(r);
    PQfinish(conn);
    return absl::InternalError(e);
  }
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r); ++i) out.push_back(PQgetvalue(r, i, 0));
  PQclear(r);
  PQfinish(conn);
  return out;
}

// Below this much WAL since the last checkpoint's redo point, nothing but the checkpoint's own
// records (running transactions, the checkpoint record: ~200 bytes) followed it: the checkpoint
// is skipped. Any write beyond that is cheaper checkpointed here than replayed by the branch: a
// branch starts by crash recovery (recovery_choice.h), which reads every page the WAL touches
// cold through pagefs and then writes and fsyncs them all again in its synchronous
// end-of-recovery checkpoint, on the branch's start path; here the pages are in shared buffers
// and the parent would write them at its next checkpoint anyway. Replay of a branch of a branch
// stays bounded all the same: every ancestor's data directory had its redo point within this
// distance of its branch point.
constexpr int64_t kCheckpointMinWalBytes = 1024;

// How long after the start the activity sampler opens its connection. A new branch's first
// client usually connects within tens of ms of "running", and its backend reads the catalogs
// cold: the sampler's backend (its own cold reads, on the postgres database) waits until that
// is over. Activity is sampled every second anyway; the proxy reports its client connections
// on its own.
constexpr std::chrono::milliseconds kFirstSampleDelay(250);

// CHECKPOINT unless less than kCheckpointMinWalBytes of WAL was written since the last one, on
// `conn` (a superuser connection over the socket). Sets `*wal_bytes` to that distance and
// `*done`. Safe to repeat.
absl::Status CheckpointIfWorthIt(PGconn* conn, int64_t* wal_bytes, bool* done) {
  *done = false;
  absl::Status s = absl::OkStatus();
  PGresult* r = PQexec(conn,
                       "SELECT pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_insert_lsn(), "
                       "redo_lsn)::bigint FROM pg_catalog.pg_control_checkpoint()");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    s = absl::InternalError(PQerrorMessage(conn));
  } else {
    *wal_bytes = std::atoll(PQgetvalue(r, 0, 0));
  }
  PQclear(r);
  if (s.ok() && *wal_bytes >= kCheckpointMinWalBytes) {
    r = PQexec(conn, "CHECKPOINT");
    if (PQresultStatus(r) == PGRES_COMMAND_OK) {
      *done = true;
    } else {
      s = absl::InternalError(PQerrorMessage(conn));
    }
    PQclear(r);
  }
  return s;
}

// pg_reload_conf(), then waits (up to 5 s) until new sessions see the reloaded configuration
// (pg_conf_load_time() moves: the postmaster re-reads the file asynchronously).
absl::Status ReloadPostgresConfig(const std::string& conninfo) {
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> before,
                       QueryColumn(conninfo, "SELECT pg_conf_load_time()::text"));
  PGB_ASSIGN_OR_RETURN(std::vector<std::string> ok,
                       QueryColumn(conninfo, "SELECT pg_reload_conf()::text"));
  for (int i = 0; i < 250; ++i) {
    PGB_ASSIGN_OR_RETURN(std::vector<std::string> now,
                         QueryColumn(conninfo, "SELECT pg_conf_load_time()::text"));
    if (now != before) return absl::OkStatus();
    std::this_thread::sleep_for(milliseconds(20));
  }
  return absl::DeadlineExceededError("PostgreSQL did not reload its configuration within 5 s");
}

absl::Status WritePortFile(const std::string& path, int port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << port << "\n";
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", tmp, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace

ComputeAgent::ComputeAgent(ComputeConfig config, Clock* clock, SignalWaiter* waiter)
    : config_(std::move(config)),
      clock_(clock),
      waiter_(waiter),
      start_time_(std::chrono::steady_clock::now()),
      status_(clock, config_.pg_port),
      // With bodies: POST /checkpoint (its body is empty and ignored).
      http_([this](const std::string& m, const std::string& p, const std::string&) {
        return Handle(m, p);
      }) {
  start_deadline_ = start_time_ + seconds(config_.start_timeout_seconds);
  status_.SetEndpoint(config_.endpoint);
}

ComputeAgent::~ComputeAgent() {
  http_.Stop();
  if (sampler_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sampler_mu_);
      sampler_stop_ = true;
    }
    sampler_cv_.notify_all();
    sampler_.join();
  }
}

bool ComputeAgent::ShouldAbort() {
  waiter_->Sleep(milliseconds(0));  // takes pending signals
  return waiter_->stop_requested();
}

milliseconds ComputeAgent::Remaining() const {
  auto left =
      std::chrono::duration_cast<milliseconds>(start_deadline_ - std::chrono::steady_clock::now());
  return left.count() > 0 ? left : milliseconds(1);
}

int ComputeAgent::Run() {
  LogInfo("Starting compute", {{"endpoint", config_.endpoint},
                               {"branch", config_.branch},
                               {"tenant", config_.tenant},
                               {"timeline", config_.timeline},
                               {"mode", ModeName(config_.mode)},
                               {"pg_port", std::to_string(config_.pg_port)}});
  absl::Status s = StartServing();
  if (s.ok()) s = StartCompute();
  std::optional<std::string> failure;
  if (s.ok()) {
    // Logged before the status says running: whoever sees "running" finds this line in the log.
    LogInfo("Started PostgreSQL", {{"endpoint", config_.endpoint},
                                   {"branch", config_.branch},
                                   {"timeline", config_.timeline},
                                   {"port", std::to_string(config_.pg_port)},
                                   {"recovery", recovery_},
                                   {"mount_seconds", Seconds(mount_seconds_)},
                                   {"initdb_seconds", Seconds(initdb_seconds_)},
                                   {"postgres_seconds", Seconds(postgres_seconds_)},
                                   {"role_seconds", Seconds(role_seconds_)},
                                   {"startup_seconds", Seconds(SecondsSince(start_time_))}});
    status_.MarkRunning();
    failure = Monitor();
  } else if (!absl::IsCancelled(s)) {
    failure = std::string(s.message());
  }

  auto stop_start = std::chrono::steady_clock::now();
  if (failure.has_value()) {
    status_.MarkFailed(*failure);
    LogError("Compute failed", {{"endpoint", config_.endpoint},
                                {"branch", config_.branch},
                                {"timeline", config_.timeline},
                                {"error", *failure}});
  } else {
    status_.MarkStopping();
    LogInfo("Suspending", {{"endpoint", config_.endpoint},
                           {"branch", config_.branch},
                           {"timeline", config_.timeline},
                           {"signal", strsignal(waiter_->stop_signal())}});
  }
  absl::Status cleanup = Shutdown();
  if (!cleanup.ok()) {
    LogError("Unclean stop", {{"endpoint", config_.endpoint},
                              {"timeline", config_.timeline},
                              {"error", cleanup.ToString()}});
  }
  if (failure.has_value()) return 1;
  if (!cleanup.ok()) return 1;
  LogInfo("Suspended", {{"endpoint", config_.endpoint},
                        {"branch", config_.branch},
                        {"timeline", config_.timeline},
                        {"stop_seconds", Seconds(SecondsSince(stop_start))}});
  return 0;
}

absl::Status ComputeAgent::StartServing() {
  // Local mode chose pg_port by binding port 0 and releasing it: the kernel may hand the same
  // port to this server's port 0, and PostgreSQL could then not listen (seen in a benchmark run).
  PGB_RETURN_IF_ERROR(http_.Start(config_.status_listen, config_.pg_port));
  if (!config_.status_port_file.empty()) {
    PGB_RETURN_IF_ERROR(WritePortFile(config_.status_port_file, http_.port()));
  }
  LogInfo("Serving status",
          {{"endpoint", config_.endpoint}, {"port", std::to_string(http_.port())}});
  return absl::OkStatus();
}

absl::Status ComputeAgent::PrepareWorkdir() {
  PGB_ASSIGN_OR_RETURN(OsUser user, LookupOsUser("postgres"));
  user_ = std::move(user);
  if (config_.mode == ComputeMode::kReadWrite) {
    PGB_ASSIGN_OR_RETURN(password_, ReadPasswordFile(config_.password_file));
  }
  std::error_code ec;
  std::filesystem::create_directories(config_.workdir, ec);
  if (ec) return absl::InternalError(absl::StrCat("mkdir ", config_.workdir, ": ", ec.message()));
  // The mount table lists resolved paths.
  char resolved[PATH_MAX];
  if (realpath(config_.workdir.c_str(), resolved) == nullptr) {
    return absl::InternalError(absl::StrCat("realpath ", config_.workdir, ": ", strerror(errno)));
  }
  layout_.emplace(resolved);
  PGB_RETURN_IF_ERROR(CheckUserCanTraverse(*user_, layout_->workdir));

  pagefs_ = std::make_unique<PagefsProcess>(config_, layout_->mountpoint, layout_->pagefs_log);
  pagefs_->set_spare(std::move(spare_pagefs_));
  spare_pagefs_.reset();
  // Before touching mnt/: a dead mount left by a crashed agent fails every access.
  PGB_RETURN_IF_ERROR(pagefs_->ClearStaleMount());
  PGB_RETURN_IF_ERROR(MakeDir(layout_->mountpoint, 0755));
  if (layout_->socket_dir.rfind(layout_->workdir + "/", 0) != 0) {
    // A short socket directory outside the workdir (ComputeLayout::SocketDirFor).
    std::filesystem::create_directories(std::filesystem::path(layout_->socket_dir).parent_path(),
                                        ec);
  }
  PGB_RETURN_IF_ERROR(MakeDir(layout_->socket_dir, 0700));
  PGB_RETURN_IF_ERROR(ChownTo(*user_, layout_->socket_dir, 0700));
  // Socket and lock files of a previous run: their PIDs may belong to someone else by now.
  for (const auto& entry : std::filesystem::directory_iterator(layout_->socket_dir, ec)) {
    std::filesystem::remove(entry.path(), ec);
  }
  return absl::OkStatus();
}

absl::Status ComputeAgent::StartCompute() {
  PGB_RETURN_IF_ERROR(PrepareWorkdir());
  const ComputeLayout& layout = *layout_;

  // The postmaster is spawned now and held before its main() (PostgresProcess::Prespawn): its
  // exec and dynamic linking overlap the mount and the steps up to its start.
  postgres_ = std::make_unique<PostgresProcess>(config_, layout, *user_);
  postgres_->Prespawn(StartGateLibraryNextToExecutable());

  auto t = std::chrono::steady_clock::now();
  absl::Status s = pagefs_->Mount(
      Remaining(), [this] { return ShouldAbort(); }, [this](milliseconds d) { Sleep(d); });
  if (!s.ok()) return s;
  mounted_ = true;
  mount_seconds_ = SecondsSince(t);
  LogInfo("Mounted branch", {{"endpoint", config_.endpoint},
                             {"branch", config_.branch},
                             {"timeline", config_.timeline},
                             {"mountpoint", layout.mountpoint},
                             {"seconds", Seconds(mount_seconds_)}});
  // postgres must traverse the mount's root to reach pgdata.
  struct stat st;
  if (stat(layout.mountpoint.c_str(), &st) != 0) {
    return absl::UnavailableError(
        absl::StrCat("the mount ", layout.mountpoint, " is not usable: ", strerror(errno)));
  }
  if ((st.st_mode & 0777) != 0755 && chmod(layout.mountpoint.c_str(), 0755) != 0) {
    return absl::InternalError(absl::StrCat("chmod ", layout.mountpoint, ": ", strerror(errno)));
  }

  bool initialised = false;
  if (!postgres_->HasCluster()) {
    if (config_.mode == ComputeMode::kReadOnly) {
      return absl::FailedPreconditionError(absl::StrCat(
          "timeline ", config_.timeline,
          " holds no PostgreSQL data directory (pgdata/PG_VERSION is missing): a read-only "
          "endpoint needs a branch that has been initialised by a read-write endpoint"));
    }
    t = std::chrono::steady_clock::now();
    PGB_RETURN_IF_ERROR(postgres_->InitDb([this] { return ShouldAbort(); }));
    initialised = true;
    initdb_seconds_ = SecondsSince(t);
    recovery_ = "initdb";
    LogInfo("Initialised a new database", {{"endpoint", config_.endpoint},
                                           {"branch", config_.branch},
                                           {"timeline", config_.timeline},
                                           {"seconds", Seconds(initdb_seconds_)}});
  }
  // A read-write start of a data directory that was not shut down cleanly (a branch of a
  // running database, a compute that crashed) needs WAL replay: crash recovery when little WAL
  // follows the last checkpoint, else as a standby promoted at the end of pg_wal
  // (recovery_choice.h).
  bool promote = false;
  if (config_.mode == ComputeMode::kReadWrite && !initialised) {
    absl::StatusOr<PgControlSummary> control = postgres_->ReadControlFile();
    if (!control.ok()) {
      LogWarning("Cannot read pg_control: starting without a promotion",
                 {{"endpoint", config_.endpoint},
                  {"timeline", config_.timeline},
                  {"error", control.status().ToString()}});
    } else if (!control->clean()) {
      const std::string data_dir = layout.data_dir;
      RecoveryMode mode = ChooseRecovery(*control, ListWalFiles(data_dir),
                                         [&data_dir](const std::string& file, uint32_t tli) {
                                           return ReadFirstPageAddress(data_dir, file, tli);
                                         });
      promote = mode == RecoveryMode::kPromote;
      recovery_ = promote ? "promote" : "crash";
      LogInfo("The data directory was not shut down cleanly",
              {{"endpoint", config_.endpoint},
               {"timeline", config_.timeline},
               {"state", control->StateName()},
               {"recovery", promote ? "standby, then promotion" : "crash recovery"}});
    }
  } else if (config_.mode == ComputeMode::kReadOnly) {
    recovery_ = "standby";
    absl::StatusOr<PgControlSummary> control = postgres_->ReadControlFile();
    if (control.ok()) {
      primary_control_ = *control;
      std::vector<std::string> raised = ApplyStandbyMinimums(*control, &config_.parameters);
      if (!raised.empty()) {
        LogInfo("Raised settings to the primary's, as a hot standby requires",
                {{"endpoint", config_.endpoint},
                 {"timeline", config_.timeline},
                 {"settings", absl::StrJoin(raised, ", ")}});
      }
    } else {
      LogWarning("Cannot read pg_control: the standby keeps its own settings",
                 {{"endpoint", config_.endpoint},
                  {"timeline", config_.timeline},
                  {"error", control.status().ToString()}});
    }
  }
  promotion_pending_ = promote;
  t = std::chrono::steady_clock::now();
  PGB_RETURN_IF_ERROR(postgres_->PrepareDataDir(promote));
  PGB_RETURN_IF_ERROR(postgres_->WriteConfigFiles());
  if (ShouldAbort()) return absl::CancelledError("stopped before PostgreSQL started");
  LogInfo("Starting PostgreSQL", {{"endpoint", config_.endpoint},
                                  {"timeline", config_.timeline},
                                  {"prepare_seconds", Seconds(SecondsSince(t))}});

  t = std::chrono::steady_clock::now();
  PGB_RETURN_IF_ERROR(postgres_->Start(promote));
  postgres_started_ = true;
  PGB_RETURN_IF_ERROR(postgres_->WaitReady(
      Remaining(), [this] { return ShouldAbort(); }, [this](milliseconds d) { Sleep(d); }));
  // Promoted: PostgreSQL has removed standby.signal itself.
  promotion_pending_ = false;
  postgres_seconds_ = SecondsSince(t);
  LogInfo(promote ? "PostgreSQL replayed the WAL, was promoted and accepts connections"
                  : "PostgreSQL accepts connections",
          {{"endpoint", config_.endpoint},
           {"timeline", config_.timeline},
           {"seconds", Seconds(postgres_seconds_)},
           {"spawned_ahead", postgres_->spawned_ahead() ? "true" : "false"}});
  // The activity sampler opens its connection (a new backend: tens of ms of cold catalog reads
  // on a new branch) in the background once the role step is done, and the start does not wait
  // for it: /status answers without blocking on it (TrySample), so the controller sees
  // "running" at once. Its first connection waits kFirstSampleDelay (SamplerLoop), out of the
  // way of the role step's backend and of the first client's (on 2 CPUs, a third cold backend
  // alongside them slowed both). It stays on the postgres database: a connection to the
  // endpoint's would block a DROP DATABASE of it.
  activity_ = std::make_unique<PgActivitySource>(
      absl::StrCat(postgres_->SocketConnInfo("postgres"), " options='-c statement_timeout=5000'"));
  absl::Status role = absl::OkStatus();
  if (config_.mode == ComputeMode::kReadWrite) {
    t = std::chrono::steady_clock::now();
    role = RunRoleStep();
    role_seconds_ = SecondsSince(t);
  }
  if (initialised && role.ok()) role = RestartToLearnStartReads();
  sampler_ = std::thread([this] { SamplerLoop(); });
  PGB_RETURN_IF_ERROR(role);
  return absl::OkStatus();
}

absl::Status ComputeAgent::RunRoleStep() {
  return SetUpRole(postgres_->SocketConnInfo(config_.database),
                   postgres_->SocketConnInfo("postgres"), config_.role, config_.database,
                   password_);
}

absl::Status ComputeAgent::RestartToLearnStartReads() {
  auto t = std::chrono::steady_clock::now();
  std::string how = postgres_->Stop(seconds(config_.stop_timeout_seconds));
  postgres_->KillOrphans();
  if (how != "fast") {
    return absl::InternalError(absl::StrCat(
        "PostgreSQL did not stop cleanly after initdb, for its restart on a fresh mount (", how,
        ")"));
  }
  postgres_started_ = false;
  PGB_RETURN_IF_ERROR(pagefs_->Unmount(seconds(5), seconds(30)));
  mounted_ = false;
  PGB_RETURN_IF_ERROR(pagefs_->Mount(
      Remaining(), [this] { return ShouldAbort(); }, [this](milliseconds d) { Sleep(d); }));
  mounted_ = true;
  if (ShouldAbort()) return absl::CancelledError("stopped before PostgreSQL restarted");
  PGB_RETURN_IF_ERROR(postgres_->Start(false));
  postgres_started_ = true;
  PGB_RETURN_IF_ERROR(postgres_->WaitReady(
      Remaining(), [this] { return ShouldAbort(); }, [this](milliseconds d) { Sleep(d); }));
  // What a branch's role step reads (the endpoint's database, the role): now through FUSE.
  PGB_RETURN_IF_ERROR(RunRoleStep());
  LogInfo("Restarted the new database on a fresh mount, so that its start is learned",
          {{"endpoint", config_.endpoint},
           {"timeline", config_.timeline},
           {"seconds", Seconds(SecondsSince(t))}});
  return absl::OkStatus();
}

std::optional<std::string> ComputeAgent::Monitor() {
  while (true) {
    Sleep(seconds(1));
    if (waiter_->stop_requested()) return std::nullopt;
    if (!postgres_->Alive()) {
      return absl::StrCat("PostgreSQL exited unexpectedly: ", postgres_->DescribeExit());
    }
    if (!pagefs_->Alive()) {
      return absl::StrCat("pagefs exited unexpectedly: ", pagefs_->DescribeExit());
    }
    if (waiter_->TakeReloadRequest()) {
      absl::Status s = ReloadParameters();
      if (!s.ok()) return std::string(s.message());
    }
  }
}

absl::Status ComputeAgent::ReloadParameters() {
  if (config_path_.empty()) {
    LogWarning("SIGHUP ignored: the configuration came from the environment",
               {{"endpoint", config_.endpoint}});
    return absl::OkStatus();
  }
  absl::StatusOr<ComputeConfig> fresh = LoadComputeConfig(config_path_);
  if (!fresh.ok()) {
    status_.SetParametersMessage(
        absl::StrCat("the new parameters were not applied: ", fresh.status().message()));
    LogWarning("Cannot re-read the configuration",
               {{"endpoint", config_.endpoint}, {"error", fresh.status().ToString()}});
    return absl::OkStatus();
  }
  // A standby keeps the primary's minimums (standby_settings.h) whatever the file says.
  if (primary_control_.has_value()) ApplyStandbyMinimums(*primary_control_, &fresh->parameters);
  if (fresh->parameters == config_.parameters) return absl::OkStatus();
  std::vector<std::string> changed;
  for (const auto& [k, v] : fresh->parameters) {
    auto it = config_.parameters.find(k);
    if (it == config_.parameters.end() || it->second != v) changed.push_back(k);
  }
  for (const auto& [k, v] : config_.parameters) {
    if (!fresh->parameters.count(k)) changed.push_back(k);
  }
  // Which of them PostgreSQL applies only at a start (pg_settings.context = 'postmaster').
  std::string names;
  for (const std::string& n : changed) absl::StrAppend(&names, names.empty() ? "" : ",", n);
  absl::StatusOr<std::vector<std::string>> restart_only = QueryColumn(
      postgres_->SocketConnInfo("postgres"),
      absl::StrCat("SELECT name FROM pg_settings WHERE context = 'postmaster' AND name = "
                   "ANY(string_to_array('",
                   names, "', ',')) ORDER BY name"));
  if (!restart_only.ok()) {
    status_.SetParametersMessage(
        absl::StrCat("the new parameters were not applied: ", restart_only.status().message()));
    return absl::OkStatus();
  }
  config_.parameters = fresh->parameters;
  PGB_RETURN_IF_ERROR(postgres_->WriteConfigFiles());
  const std::string changed_list = absl::StrJoin(changed, ", ");
  if (restart_only->empty()) {
    absl::Status s = ReloadPostgresConfig(postgres_->SocketConnInfo("postgres"));
    std::string message =
        s.ok() ? absl::StrCat("reloaded PostgreSQL's configuration to apply ", changed_list)
               : absl::StrCat("could not reload PostgreSQL's configuration: ", s.message());
    status_.SetParametersMessage(message);
    LogInfo("Applied changed parameters",
            {{"endpoint", config_.endpoint}, {"parameters", changed_list}, {"how", "reload"}});
    return absl::OkStatus();
  }
  const std::string restart_list = absl::StrJoin(*restart_only, ", ");
  LogInfo("Restarting PostgreSQL to apply changed parameters",
          {{"endpoint", config_.endpoint}, {"parameters", restart_list}});
  status_.SetParametersMessage(absl::StrCat("restarting PostgreSQL to apply ", restart_list,
                                            " (they take effect only at a start)"));
  status_.MarkRestarting();
  std::string how = postgres_->Stop(seconds(config_.stop_timeout_seconds));
  postgres_->KillOrphans();
  if (how != "fast" && how != "not running") {
    return absl::InternalError(
        absl::StrCat("PostgreSQL did not stop cleanly for a restart (", how, ")"));
  }
  PGB_RETURN_IF_ERROR(postgres_->Start(false));
  PGB_RETURN_IF_ERROR(postgres_->WaitReady(
      seconds(config_.start_timeout_seconds), [this] { return ShouldAbort(); },
      [this](milliseconds d) { Sleep(d); }));
  status_.MarkRunning();
  status_.SetParametersMessage(absl::StrCat(
      "restarted PostgreSQL to apply ", restart_list,
      restart_list == changed_list ? "" : absl::StrCat(" (changed: ", changed_list, ")")));
  LogInfo("Restarted PostgreSQL with the new parameters",
          {{"endpoint", config_.endpoint}, {"parameters", changed_list}});
  return absl::OkStatus();
}

absl::Status ComputeAgent::Shutdown() {
  if (sampler_.joinable()) {
    {
      std::lock_guard<std::mutex> lock(sampler_mu_);
      sampler_stop_ = true;
    }
    sampler_cv_.notify_all();
    sampler_.join();
  }
  if (activity_ != nullptr) activity_->Close();
  absl::Status result;
  if (postgres_started_) {
    auto t = std::chrono::steady_clock::now();
    std::string how = postgres_->Stop(seconds(config_.stop_timeout_seconds));
    LogInfo("Stopped PostgreSQL", {{"endpoint", config_.endpoint},
                                   {"timeline", config_.timeline},
                                   {"shutdown", how},
                                   {"seconds", Seconds(SecondsSince(t))}});
    postgres_->KillOrphans();
    if (how == "immediate" || how == "killed") {
      result = absl::DeadlineExceededError(
          absl::StrCat("PostgreSQL did not finish a fast shutdown within ",
                       config_.stop_timeout_seconds, " s (", how, ")"));
    }
  }
  // A start that failed before the promotion must not leave the branch a standby (the next
  // read-write start would remove the file anyway; a child branch taken meanwhile would not).
  if (promotion_pending_ && mounted_ && postgres_ != nullptr) postgres_->RemoveStandbySignal();
  if (mounted_) {
    auto t = std::chrono::steady_clock::now();
    absl::Status s = pagefs_->Unmount(seconds(5), seconds(30));
    LogInfo("Unmounted branch", {{"endpoint", config_.endpoint},
                                 {"timeline", config_.timeline},
                                 {"seconds", Seconds(SecondsSince(t))}});
    if (!s.ok() && result.ok()) result = s;
  }
  if (layout_.has_value() && layout_->socket_dir.rfind(layout_->workdir + "/", 0) != 0) {
    std::error_code ec;
    std::filesystem::remove_all(layout_->socket_dir, ec);  // the short one under /run
  }
  http_.Stop();
  if (!config_.status_port_file.empty()) unlink(config_.status_port_file.c_str());
  return result;
}

void ComputeAgent::RefreshActivity(bool wait) {
  if (status_.state() != ComputeState::kRunning || activity_ == nullptr) return;
  absl::StatusOr<ActivitySnapshot> a = wait ? activity_->Sample() : activity_->TrySample();
  if (a.ok()) {
    status_.Observe(*a);
  } else if (wait) {
    LogWarning("Cannot sample activity",
               {{"endpoint", config_.endpoint}, {"error", a.status().ToString()}});
  }
}

void ComputeAgent::SamplerLoop() {
  // The connection first (after kFirstSampleDelay), then a sample every second.
  std::unique_lock<std::mutex> lock(sampler_mu_);
  if (sampler_cv_.wait_for(lock, kFirstSampleDelay, [this] { return sampler_stop_; })) return;
  lock.unlock();
  absl::StatusOr<ActivitySnapshot> first = activity_->Sample();
  if (first.ok() && status_.state() == ComputeState::kRunning) status_.Observe(*first);
  lock.lock();
  while (!sampler_stop_) {
    sampler_cv_.wait_for(lock, seconds(1));
    if (sampler_stop_) break;
    lock.unlock();
    RefreshActivity(true);
    lock.lock();
  }
}

HttpResponse ComputeAgent::Handle(const std::string& method, const std::string& path) {
  if (path == "/status/wait-start") {
    // The local controller's poll while the compute starts: answered once the start ended (or
    // after 1 s) instead of polled every few ms (a connection, a thread wake-up and a JSON
    // document each, on the CPUs the start itself needs).
    auto hold_until = std::chrono::steady_clock::now() + seconds(1);
    while (status_.state() == ComputeState::kStarting &&
           std::chrono::steady_clock::now() < hold_until) {
      std::this_thread::sleep_for(milliseconds(1));
    }
  }
  if (path == "/status" || path == "/status/wait-start") {
    RefreshActivity(false);
    return {200, "application/json", ComputeStatus::ToJson(status_.View())};
  }
  if (path == "/metrics") {
    RefreshActivity(false);
    return {200, "text/plain; version=0.0.4", metrics_.Render(status_.View())};
  }
  if (path == "/readyz") {
    // The pod's readiness probe: ready once PostgreSQL accepts connections. While starting,
    // hold the probe up to 900 ms (under the kubelet's default 1 s probe timeout) for it: the
    // kubelet probes once at container start and then only every periodSeconds (>= 1 s), so
    // an immediate 503 at start made every wake from zero wait for the second probe (~0.8 s).
    auto hold_until = std::chrono::steady_clock::now() + milliseconds(900);
    while (status_.state() == ComputeState::kStarting &&
           std::chrono::steady_clock::now() < hold_until) {
      std::this_thread::sleep_for(milliseconds(5));
    }
    bool running = status_.state() == ComputeState::kRunning;
    return {running ? 200 : 503, "text/plain", running ? "ok\n" : "not running\n"};
  }
  if (path == "/checkpoint" && method == "POST") {
    // Asked before a branch of this one is taken (BranchReconciler::CheckpointParent): the
    // branch's first start then replays only what was written after it.
    if (status_.state() != ComputeState::kRunning || config_.mode != ComputeMode::kReadWrite ||
        activity_ == nullptr) {
      return {409, "application/json", "{\"message\":\"not a running read-write compute\"}"};
    }
    auto t = std::chrono::steady_clock::now();
    int64_t wal_bytes = 0;
    bool done = false;
    // On the activity sampler's connection: a new backend per request cost more than the
    // probe itself (tens of ms on a busy machine), on the branch's create path.
    absl::Status s = activity_->WithConnection(
        [&](PGconn* conn) { return CheckpointIfWorthIt(conn, &wal_bytes, &done); });
    if (!s.ok()) {
      LogWarning("CHECKPOINT on request failed",
                 {{"endpoint", config_.endpoint}, {"error", s.ToString()}});
      return {503, "application/json", "{\"message\":\"CHECKPOINT failed\"}"};
    }
    if (done) {
      LogInfo("Checkpointed on request", {{"endpoint", config_.endpoint},
                                          {"wal_bytes", std::to_string(wal_bytes)},
                                          {"seconds", Seconds(SecondsSince(t))}});
    }
    return {200, "application/json",
            absl::StrCat("{\"checkpointed\":", done ? "true" : "false", ",\"walBytes\":", wal_bytes,
                         "}")};
  }
  if (path == "/healthz") {
    bool failed = status_.state() == ComputeState::kFailed;
    return {failed ? 503 : 200, "text/plain", failed ? "failed\n" : "ok\n"};
  }
  return {
      404, "application/json",
      "{\"message\":\"not found: GET /status, /status/wait-start, /metrics, /readyz or /healthz, "
      "POST /checkpoint\"}"};
}

}  // namespace pgbranch::compute
