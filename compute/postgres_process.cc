#include "compute/postgres_process.h"

#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/status_macros.h"
#include "compute/directory_change_waiter.h"
#include "compute/gated_child.h"
#include "compute/postgres_conf.h"
#include "compute/postmaster_status_reader.h"

namespace pgbranch::compute {
namespace {

namespace fs = std::filesystem;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

absl::Status WriteFileAtomically(const std::string& path, const std::string& content) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << content;
    out.close();
    if (!out) return absl::InternalError(absl::StrCat("cannot write ", tmp));
  }
  if (chmod(tmp.c_str(), 0644) != 0 || rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("cannot write ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status CreateEmptyFile(const std::string& path, const OsUser& user) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", strerror(errno)));
  close(fd);
  return ChownTo(user, path, 0600);
}

int32_t ReadInt32(std::string_view bytes, size_t offset) {
  int32_t v;
  memcpy(&v, bytes.data() + offset, sizeof(v));
  return v;
}

}  // namespace

std::string PgControlSummary::StateName() const {
  static const char* const kNames[] = {
      "starting up",       "shut down",           "shut down in recovery", "shutting down",
      "in crash recovery", "in archive recovery", "in production"};
  if (state < 0 || state > 6) return absl::StrCat("unknown (", state, ")");
  return kNames[state];
}

absl::StatusOr<PgControlSummary> ParsePgControl(std::string_view bytes) {
  // ControlFileData of PostgreSQL 13 to 16 (pg_control version 1300): system_identifier (8),
  // pg_control_version (4) at 8, catalog_version_no (4), state (4) at 16, time, checkPoint,
  // checkPointCopy (88 bytes at 40), unloggedLSN, minRecoveryPoint, minRecoveryPointTLI,
  // backupStartPoint, backupEndPoint, backupEndRequired, wal_level (4) at 172, wal_log_hints
  // (1, padded), MaxConnections, max_worker_processes, max_wal_senders, max_prepared_xacts,
  // max_locks_per_xact (4 each) from 180, ..., xlog_seg_size (4) at 228. checkPointCopy starts
  // with redo (8) at 40 and ThisTimeLineID (4) at 48.
  constexpr size_t kVersionOffset = 8, kStateOffset = 16, kWalLevelOffset = 172;
  constexpr size_t kMaxConnectionsOffset = 180, kSettingsEnd = 200;
  constexpr size_t kRedoOffset = 40, kTimelineOffset = 48, kSegSizeOffset = 228;
  if (bytes.size() < kWalLevelOffset + 4) {
    return absl::DataLossError(absl::StrCat("pg_control is too short (", bytes.size(), " bytes)"));
  }
  int32_t version = ReadInt32(bytes, kVersionOffset);
  if (version != 1300) {
    return absl::FailedPreconditionError(
        absl::StrCat("unsupported pg_control version ", version, " (expected 1300)"));
  }
  PgControlSummary out;
  out.state = ReadInt32(bytes, kStateOffset);
  out.wal_level = ReadInt32(bytes, kWalLevelOffset);
  if (out.state < 0 || out.state > 6 || out.wal_level < 0 || out.wal_level > 2) {
    return absl::DataLossError(absl::StrCat("pg_control holds an unknown state (", out.state,
                                            ") or wal_level (", out.wal_level, ")"));
  }
  if (bytes.size() >= kSettingsEnd) {
    out.max_connections = ReadInt32(bytes, kMaxConnectionsOffset);
    out.max_worker_processes = ReadInt32(bytes, kMaxConnectionsOffset + 4);
    out.max_wal_senders = ReadInt32(bytes, kMaxConnectionsOffset + 8);
    out.max_prepared_xacts = ReadInt32(bytes, kMaxConnectionsOffset + 12);
    out.max_locks_per_xact = ReadInt32(bytes, kMaxConnectionsOffset + 16);
  }
  if (bytes.size() >= kSegSizeOffset + 4) {
    memcpy(&out.redo_lsn, bytes.data() + kRedoOffset, sizeof(out.redo_lsn));
    out.timeline = static_cast<uint32_t>(ReadInt32(bytes, kTimelineOffset));
    out.wal_segment_size = static_cast<uint32_t>(ReadInt32(bytes, kSegSizeOffset));
  }
  return out;
}

PostgresProcess::PostgresProcess(const ComputeConfig& config, const ComputeLayout& layout,
                                 const OsUser& user)
    : config_(config), layout_(layout), user_(user) {}

std::vector<std::string> PostgresProcess::Environment() const {
  return {absl::StrCat("PATH=", config_.pg_bin_dir, ":/usr/bin:/bin"),
          absl::StrCat("HOME=", user_.home),
          "USER=postgres",
          "LOGNAME=postgres",
          "LC_ALL=C",
          "LANG=C"};
}

std::string PostgresProcess::SocketConnInfo(const std::string& dbname) const {
  // Values are quoted for libpq: the workdir may hold spaces.
  auto quote = [](const std::string& v) {
    std::string out = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    return out + "'";
  };
  return absl::StrCat("host=", quote(layout_.socket_dir), " port=", config_.pg_port,
                      " user=postgres dbname=", quote(dbname),
                      " connect_timeout=10 application_name=pgbranch-compute");
}

bool PostgresProcess::HasCluster() const { return Exists(layout_.data_dir + "/PG_VERSION"); }

absl::Status PostgresProcess::InitDb(const ShouldAbort& should_abort) {
  std::error_code ec;
  if (Exists(layout_.data_dir)) {
    // Never delete a data directory: only an empty one (created by hand) is initialised.
    if (!fs::is_empty(layout_.data_dir, ec)) {
      return absl::FailedPreconditionError(
          absl::StrCat(layout_.data_dir,
                       " exists without PG_VERSION and is not empty: not a PostgreSQL data "
                       "directory, refusing to initialise over it"));
    }
    fs::remove(layout_.data_dir, ec);
  }
  if (Exists(layout_.initdb_dir)) {
    LogWarning("Removing an interrupted initdb", {{"dir", layout_.initdb_dir}});
    fs::remove_all(layout_.initdb_dir, ec);
    if (ec)
      return absl::InternalError(absl::StrCat("remove ", layout_.initdb_dir, ": ", ec.message()));
  }
  if (mkdir(layout_.initdb_dir.c_str(), 0700) != 0) {
    return absl::InternalError(absl::StrCat("mkdir ", layout_.initdb_dir, ": ", strerror(errno)));
  }
  PGB_RETURN_IF_ERROR(ChownTo(user_, layout_.initdb_dir, 0700));

  struct stat st;
  off_t offset = stat(layout_.initdb_log.c_str(), &st) == 0 ? st.st_size : 0;
  SpawnOptions o;
  o.argv = {config_.pg_bin_dir + "/initdb", "-D", layout_.initdb_dir, "-U", "postgres",
            "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8",
            "--locale=C.UTF-8",
            // Byte-order collation: indexes never depend on the C library's collation version.
            "--lc-collate=C",
            // 1 MB WAL segments (default 16 MB): promoting a branch of a running database (see
            // Start) copies the WAL segment holding the end of WAL to the new timeline, through
            // FUSE: up to 16 MB (~250 ms) with the default, up to 1 MB (~15 ms) with this.
            "--wal-segsize=1"};
  o.env = Environment();
  o.user = &user_;
  o.output_path = layout_.initdb_log;
  o.parent_death_signal = SIGKILL;
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(o);
  if (!child.ok()) return child.status();
  while (!child->WaitFor(std::chrono::milliseconds(20))) {
    if (should_abort()) {
      child->Signal(SIGKILL);
      child->WaitFor(std::chrono::seconds(10));
      return absl::CancelledError("stopped during initdb");
    }
  }
  if (child->exit_code() != 0) {
    return absl::InternalError(absl::StrCat("initdb failed (", child->DescribeExit(),
                                            "): ", TailOfFile(layout_.initdb_log, 5, offset)));
  }
  // The new cluster appears whole or not at all.
  if (rename(layout_.initdb_dir.c_str(), layout_.data_dir.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", layout_.initdb_dir, " to ", layout_.data_dir,
                                            ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

absl::StatusOr<PgControlSummary> PostgresProcess::ReadControlFile() const {
  std::string path = layout_.data_dir + "/global/pg_control";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", path, ": ", strerror(errno)));
  char buf[512];
  size_t got = 0;
  while (got < sizeof(buf)) {
    ssize_t n = read(fd, buf + got, sizeof(buf) - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return absl::InternalError(absl::StrCat("read ", path, ": ", strerror(e)));
    }
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  close(fd);
  return ParsePgControl(std::string_view(buf, got));
}

void PostgresProcess::RemoveStandbySignal() {
  for (const char* name : {"/standby.signal", "/promote"}) {
    std::string path = layout_.data_dir + name;
    if (unlink(path.c_str()) == 0) {
      LogInfo("Removed the signal file of an unfinished promotion",
              {{"timeline", config_.timeline}, {"file", path}});
    }
  }
}

absl::Status PostgresProcess::PrepareDataDir(bool promote) {
  std::string pid_file = layout_.data_dir + "/postmaster.pid";
  if (unlink(pid_file.c_str()) == 0) {
    LogInfo("Removed a stale postmaster.pid", {{"timeline", config_.timeline}});
  } else if (errno != ENOENT) {
    return absl::InternalError(absl::StrCat("remove ", pid_file, ": ", strerror(errno)));
  }
  std::string standby = layout_.data_dir + "/standby.signal";
  if (config_.mode == ComputeMode::kReadOnly || promote) {
    if (!Exists(standby)) PGB_RETURN_IF_ERROR(CreateEmptyFile(standby, user_));
  } else if (unlink(standby.c_str()) == 0) {
    LogWarning("Removed standby.signal: the endpoint is read-write",
               {{"timeline", config_.timeline}});
  }
  // PostgreSQL refuses a data directory with group/other access.
  return ChownTo(user_, layout_.data_dir, 0700);
}

absl::Status PostgresProcess::WriteConfigFiles() const {
  PGB_RETURN_IF_ERROR(
      WriteFileAtomically(layout_.postgresql_conf, RenderPostgresqlConf(config_, layout_)));
  PGB_RETURN_IF_ERROR(
      WriteFileAtomically(layout_.hba_conf, RenderPgHbaConf(config_.listen_address)));
  return WriteFileAtomically(layout_.ident_conf, "# Written by pgbranch-compute (empty).\n");
}

SpawnOptions PostgresProcess::PostmasterSpawnOptions(bool promote, bool gated) const {
  SpawnOptions o;
  // Gated: config_file carries kGatedPrefix, an unknown parameter to a postmaster the start gate
  // did not reach (it then exits before looking at its data directory).
  o.argv = {config_.pg_bin_dir + "/postgres", "-D", layout_.data_dir, "-c",
            absl::StrCat(gated ? kGatedPrefix : "", "config_file=", layout_.postgresql_conf)};
  if (promote) {
    // Nobody may connect to the transient standby (and it never waits for a hot-standby
    // snapshot, which a crash image with an overflowed subtransaction cache never completes).
    o.argv.insert(o.argv.end(), {"-c", "hot_standby=off"});
  }
  o.env = Environment();
  o.user = &user_;
  o.output_path = layout_.postgres_log;
  // If the agent dies, immediate shutdown: no server may outlive the agent on its mount.
  o.parent_death_signal = SIGQUIT;
  return o;
}

void PostgresProcess::Prespawn(const std::string& gate_library) {
  if (gate_library.empty() || gated_.held()) return;
  absl::StatusOr<GatedChild> gated =
      GatedChild::Spawn(PostmasterSpawnOptions(/*promote=*/false, /*gated=*/true), gate_library);
  if (!gated.ok()) {
    LogWarning("Cannot spawn PostgreSQL ahead of its start",
               {{"error", gated.status().ToString()}});
    return;
  }
  gated_ = std::move(*gated);
}

absl::Status PostgresProcess::Start(bool promote) {
  struct stat st;
  log_offset_ = stat(layout_.postgres_log.c_str(), &st) == 0 ? st.st_size : 0;
  promote_ = promote;
  promote_file_written_ = false;
  spawned_ahead_ = false;
  // The postmaster spawned ahead (Prespawn) has the arguments of a start without a promotion.
  if (gated_.held() && !promote) {
    absl::StatusOr<ChildProcess> opened = gated_.Open(std::chrono::seconds(10));
    if (opened.ok()) {
      postmaster_ = std::move(*opened);
      spawned_ahead_ = true;
      return absl::OkStatus();
    }
    LogWarning("The postmaster spawned ahead cannot start: spawning another",
               {{"error", opened.status().ToString()}});
  }
  gated_.Discard();
  absl::StatusOr<ChildProcess> child = ChildProcess::Spawn(PostmasterSpawnOptions(promote, false));
  if (!child.ok()) return child.status();
  postmaster_ = std::move(*child);
  return absl::OkStatus();
}

void PostgresProcess::RequestPromotion() {
  // As pg_ctl promote: the file says what SIGUSR1 means. Written once: the startup process
  // removes it when it acts on it, and a second copy would outlive the promotion (harmless, the
  // postmaster removes it at its next start, but untidy).
  if (!promote_file_written_) {
    absl::Status s = CreateEmptyFile(layout_.data_dir + "/promote", user_);
    if (!s.ok()) {
      LogWarning("Cannot request the promotion", {{"error", s.ToString()}});
      return;
    }
    promote_file_written_ = true;
  }
  postmaster_.Signal(SIGUSR1);
}

absl::Status PostgresProcess::WaitReady(std::chrono::milliseconds timeout,
                                        const ShouldAbort& should_abort, const Sleep& sleep) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto next_promote_request = std::chrono::steady_clock::time_point::min();
  // Woken by the postmaster's rewrites of postmaster.pid rather than polling it through FUSE
  // (each look is an open, read and release at pagefs, hundreds per start, on the CPUs the
  // start itself needs); the timeout bounds the time to notice an exit, a stop signal or a
  // change inotify did not report.
  DirectoryChangeWaiter changes(layout_.data_dir);
  // One descriptor on postmaster.pid for the whole wait, closed in the background: a close on
  // the mount waits for the postmaster's fsync of the file that follows "ready".
  PostmasterStatusReader status_reader(layout_.data_dir + "/postmaster.pid", postmaster_.pid());
  while (true) {
    // The status line says when PostgreSQL accepts connections: the postmaster writes "ready"
    // (or "standby") once it listens and admits them, as `pg_ctl start -w` relies on. No ping:
    // it would cost a backend start, and the role step connects right after.
    std::string status = status_reader.Read();
    if (status == "ready" || (!promote_ && status == "standby")) return absl::OkStatus();
    // The status line appears once the postmaster has removed old promote files and is about to
    // start the startup process; it takes SIGUSR1 once it serves (earlier ones stay pending).
    // The request is repeated: one that reached a postmaster not yet ready for it is lost.
    if (promote_ && !status.empty() && status != "ready" &&
        std::chrono::steady_clock::now() >= next_promote_request) {
      RequestPromotion();
      next_promote_request = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    }
    if (postmaster_.Poll()) {
      return absl::UnavailableError(
          absl::StrCat("PostgreSQL exited during start: ", DescribeExit()));
    }
    if (should_abort()) return absl::CancelledError("stopped while PostgreSQL was starting");
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("PostgreSQL did not accept connections within ",
                       std::chrono::duration_cast<std::chrono::seconds>(timeout).count(),
                       " s: ", TailOfFile(layout_.postgres_log, 3, log_offset_)));
    }
    if (changes.ok()) {
      changes.Wait(std::chrono::milliseconds(20));
    } else {
      sleep(std::chrono::milliseconds(2));
    }
  }
}

bool PostgresProcess::Alive() { return postmaster_.running() && !postmaster_.Poll(); }

std::string PostgresProcess::DescribeExit() {
  std::string tail = TailOfFile(layout_.postgres_log, 4, log_offset_);
  std::string out = postmaster_.DescribeExit();
  if (!tail.empty()) absl::StrAppend(&out, "; log: ", tail);
  return out;
}

int PostgresProcess::KillOrphans() {
  int found = 0;
  for (int round = 0; round < 50; ++round) {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator("/proc", ec)) {
      pid_t pid = atoi(entry.path().filename().c_str());
      if (pid <= 0) continue;
      struct stat st;
      if (stat(entry.path().c_str(), &st) != 0 || st.st_uid != user_.uid) continue;
      char cwd[PATH_MAX];
      ssize_t n = readlink((entry.path() / "cwd").c_str(), cwd, sizeof(cwd) - 1);
      if (n <= 0) continue;
      cwd[n] = '\0';
      if (layout_.data_dir == cwd) pids.push_back(pid);
    }
    if (pids.empty()) break;
    for (pid_t pid : pids) kill(pid, SIGKILL);
    if (round == 0) found = static_cast<int>(pids.size());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (found > 0) {
    LogWarning("Killed orphaned PostgreSQL processes",
               {{"timeline", config_.timeline}, {"count", std::to_string(found)}});
  }
  return found;
}

std::string PostgresProcess::Stop(std::chrono::milliseconds fast_timeout) {
  if (!Alive()) return "not running";
  postmaster_.Signal(SIGINT);
  if (postmaster_.WaitFor(fast_timeout)) return "fast";
  LogWarning("Fast shutdown timed out: immediate shutdown", {{"timeline", config_.timeline}});
  postmaster_.Signal(SIGQUIT);
  if (postmaster_.WaitFor(std::chrono::seconds(5))) return "immediate";
  postmaster_.Signal(SIGKILL);
  postmaster_.WaitFor(std::chrono::seconds(10));
  return "killed";
}

}  // namespace pgbranch::compute
