#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace pgbranch::testing {

// What a finished command printed and how it ended.
struct CommandResult {
  int exit_code = -1;  // 128 + signal when killed; -1 when it could not run
  bool timed_out = false;
  std::string out;
  std::string err;
  // "exit code 2; stderr: ..." for error messages.
  std::string Describe() const;
};

// Runs `argv` (argv[0] is a path) as the `postgres` user (as root: setgid/initgroups/setuid in
// the child, which is what `runuser -u postgres --` does minus PAM), feeding `input` to stdin and
// capturing stdout and stderr. The child runs in its own process group; after `timeout_seconds`
// the whole group is SIGKILLed. Safe to call from several threads at once.
CommandResult RunAsPostgres(const std::vector<std::string>& argv, const std::string& input = "",
                            int timeout_seconds = 300);

// Like RunAsPostgres, as the current user (root in the tests), with its environment.
CommandResult RunCommand(const std::vector<std::string>& argv, const std::string& input = "",
                         int timeout_seconds = 300);

// A child process running as `postgres` with a pipe to its stdin and one from its stdout (stderr
// goes to `stderr_path`, or /dev/null). Killed (the whole process group) on destruction.
// For interactive clients such as a long-running `psql` fed statement by statement.
class PostgresPipe {
 public:
  PostgresPipe() = default;
  ~PostgresPipe();
  PostgresPipe(const PostgresPipe&) = delete;
  PostgresPipe& operator=(const PostgresPipe&) = delete;

  absl::Status Start(const std::vector<std::string>& argv, const std::string& stderr_path = "");
  // Writes all of `data` to the child's stdin.
  absl::Status Write(const std::string& data);
  // Reads one line (without the newline) from the child's stdout; NOT_FOUND at EOF,
  // DEADLINE_EXCEEDED after `timeout_seconds`.
  absl::StatusOr<std::string> ReadLine(int timeout_seconds);
  // Closes stdin and waits (up to `timeout_seconds`, then SIGKILL) for the exit code.
  int Finish(int timeout_seconds);
  // SIGKILL of the child's process group, closes the pipes and reaps the child. Not to be called
  // while another thread is in ReadLine()/Write(): use pid() and kill() for that.
  void Kill();
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  std::string buffer_;
};

// One PostgreSQL 15 server run by the test as a direct child process (so that it is reaped and
// SIGKILLed if the test dies: its parent-death signal is bound to the thread that calls Start(),
// which must therefore outlive the server). Unix sockets only (listen_addresses='').
//
// Not thread-safe except Query/Pgbench/AmCheck/RunClient, which only read the configuration and
// may run concurrently with each other.
class PostgresInstance {
 public:
  struct Options {
    std::string data_dir;
    // Unix socket directory, created (mode 0777) if missing; also holds the server log. Keep the
    // path short: a socket path must fit in 107 bytes.
    std::string socket_dir;
    int port = 0;  // 0: a free TCP port number (it also names the socket file)
    // `name=value` settings added to every Start() as -c options (after the defaults below).
    std::vector<std::string> settings;
    std::string bin_dir = "/usr/lib/postgresql/15/bin";
  };

  enum class StopMode { kSmart, kFast, kImmediate };

  explicit PostgresInstance(Options options);
  ~PostgresInstance();  // Kill9() if still running
  PostgresInstance(const PostgresInstance&) = delete;
  PostgresInstance& operator=(const PostgresInstance&) = delete;

  // Creates the data directory (owned by postgres, mode 0700) if missing and runs initdb
  // (trust auth, C locale, UTF8). `no_sync` skips initdb's final fsync of everything: tests of a
  // filesystem's durability want those fsyncs, so it is off by default.
  absl::Status InitDb(bool no_sync = false);

  // Starts the postmaster and waits until it accepts connections (crash recovery included), up
  // to `timeout_seconds`. Defaults: shared_buffers=32MB, fsync=on, full_page_writes=on;
  // `extra_settings` (`name=value`) come last and win.
  absl::Status Start(const std::vector<std::string>& extra_settings = {},
                     int timeout_seconds = 120);
  // Signals the postmaster (smart: SIGTERM, fast: SIGINT, immediate: SIGQUIT) and waits for it
  // to exit; an error if it does not exit cleanly (or had already died).
  absl::Status Stop(StopMode mode = StopMode::kFast, int timeout_seconds = 120);
  // SIGKILL of the postmaster and every process of its process group and every child of it, as
  // in a machine crash of the compute (shared memory and the postmaster.pid file are left
  // behind, as PostgreSQL expects after a crash). Waits until all of them are dead.
  void Kill9();
  bool running() const { return pid_ > 0; }
  pid_t postmaster_pid() const { return pid_; }
  // Whether the postmaster has exited on its own (e.g. after a PANIC); reaps it.
  bool HasExited();

  // Removes `postmaster.pid`. A branch of a running database is a copy of its data directory,
  // including the parent's postmaster.pid whose PID may well be alive (the parent's postmaster):
  // PostgreSQL would refuse to start. A new compute on a branch owns it alone (the writer
  // generation guarantees that), so the file is stale by construction.
  absl::Status RemoveStalePidFile();

  // Runs `sql` with `psql -X -At -v ON_ERROR_STOP=1` and returns its output, trailing newline
  // removed; an error (with psql's stderr and the server log's tail) if psql fails.
  absl::StatusOr<std::string> Query(const std::string& sql, const std::string& db = "postgres",
                                    int timeout_seconds = 300) const;
  // Like Query() for a single value parsed as an integer.
  absl::StatusOr<int64_t> QueryInt(const std::string& sql,
                                   const std::string& db = "postgres") const;
  // Runs pgbench against this server with `args` (connection options are added).
  absl::StatusOr<std::string> Pgbench(const std::vector<std::string>& args,
                                      int timeout_seconds = 600) const;
  // pg_amcheck --heapallindexed on every database (installing the amcheck extension where it
  // is missing); an error listing what it reported if anything is corrupt.
  absl::Status AmCheck(int timeout_seconds = 600) const;
  // Runs one of the client programs of bin_dir (psql, pgbench...) as postgres with the
  // connection options (-h, -p, -U postgres) added after `program`.
  CommandResult RunClient(const std::string& program, const std::vector<std::string>& args,
                          const std::string& input = "", int timeout_seconds = 300) const;
  // argv of `psql` connected to this server, for a PostgresPipe.
  std::vector<std::string> PsqlArgv(const std::string& db = "postgres") const;

  // The last `lines` lines of the server log.
  std::string LogTail(int lines = 40) const;
  const std::string& log_path() const { return log_path_; }
  const std::string& data_dir() const { return options_.data_dir; }
  const std::string& socket_dir() const { return options_.socket_dir; }
  int port() const { return options_.port; }

 private:
  // Waits for the postmaster (our child) to exit, up to `timeout_seconds`: its wait status, or
  // -1 on timeout.
  int WaitPostmaster(int timeout_seconds);
  absl::Status Error(const std::string& what, const CommandResult& result) const;

  Options options_;
  std::string log_path_;
  pid_t pid_ = -1;
};

}  // namespace pgbranch::testing
