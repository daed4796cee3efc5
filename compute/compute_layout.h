#pragma once

#include <string>

// Where a compute keeps its files. Everything lives in the workdir, which belongs to the compute
// (never to the branch): a child branch must not inherit its parent's compute settings.
//
//   workdir/mnt/            pagefs mount of the timeline; mnt/pgdata is the data directory
//   workdir/run/            PostgreSQL's unix socket directory (0700, owned by postgres)
//   workdir/postgresql.conf, pg_hba.conf, pg_ident.conf   written on every start
//   workdir/postgres.log, pagefs.log, initdb.log          appended to
namespace pgbranch::compute {

struct ComputeLayout {
  explicit ComputeLayout(const std::string& workdir)
      : workdir(workdir),
        mountpoint(workdir + "/mnt"),
        data_dir(mountpoint + "/pgdata"),
        initdb_dir(mountpoint + "/pgdata.initdb"),
        socket_dir(workdir + "/run"),
        postgresql_conf(workdir + "/postgresql.conf"),
        hba_conf(workdir + "/pg_hba.conf"),
        ident_conf(workdir + "/pg_ident.conf"),
        postgres_log(workdir + "/postgres.log"),
        pagefs_log(workdir + "/pagefs.log"),
        initdb_log(workdir + "/initdb.log") {}

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
