#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

// Where a compute keeps its files. Everything lives in the workdir, which belongs to the compute
// (never to the branch): a child branch must not inherit its parent's compute settings.
//
//   workdir/mnt/            pagefs mount of the timeline; mnt/pgdata is the data directory
//   workdir/run/            PostgreSQL's unix socket directory (0700, owned by postgres), or
//                           /run/pgbranch/<hash of workdir> when a socket path below workdir
//                           would not fit sockaddr_un (107 bytes: long state directories and
//                           63-character endpoint names)
//   workdir/postgresql.conf, pg_hba.conf, pg_ident.conf   written on every start
//   workdir/postgres.log, pagefs.log, initdb.log          appended to
namespace pgbranch::compute {

struct ComputeLayout {
  explicit ComputeLayout(const std::string& workdir)
      : workdir(workdir),
        mountpoint(workdir + "/mnt"),
        data_dir(mountpoint + "/pgdata"),
        initdb_dir(mountpoint + "/pgdata.initdb"),
        socket_dir(SocketDirFor(workdir)),
        postgresql_conf(workdir + "/postgresql.conf"),
        hba_conf(workdir + "/pg_hba.conf"),
        ident_conf(workdir + "/pg_ident.conf"),
        postgres_log(workdir + "/postgres.log"),
        pagefs_log(workdir + "/pagefs.log"),
        initdb_log(workdir + "/initdb.log") {}

  // The longest socket file PostgreSQL creates in its socket directory:
  // "/.s.PGSQL.65535.lock" (the lock file beside the socket).
  static constexpr size_t kSocketSuffix = 20;
  // sun_path holds 108 bytes including the terminating NUL.
  static constexpr size_t kMaxSocketPath = 107;

  // workdir/run if every socket path below it fits sun_path, else a short directory derived
  // from the workdir alone (stable across restarts, distinct per workdir).
  static std::string SocketDirFor(const std::string& workdir) {
    std::string dir = workdir + "/run";
    if (dir.size() + kSocketSuffix <= kMaxSocketPath) return dir;
    uint64_t h = 1469598103934665603ull;  // FNV-1a 64
    for (unsigned char c : workdir) h = (h ^ c) * 1099511628211ull;
    char buf[40];
    snprintf(buf, sizeof(buf), "/run/pgbranch/%016llx", static_cast<unsigned long long>(h));
    return buf;
  }

  std::string workdir;
  std::string mountpoint;
  std::string data_dir;
  // initdb of a new root branch runs here and is renamed to data_dir once complete, so a
  // data_dir that exists is always a whole cluster (an interrupted initdb is simply redone).
  std::string initdb_dir;
  std::string socket_dir;
  std::string postgresql_conf;
  std::string hba_conf;
  std::string ident_conf;
  std::string postgres_log;
  std::string pagefs_log;
  std::string initdb_log;
};

}  // namespace pgbranch::compute
