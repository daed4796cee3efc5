#pragma once

#include <string>
#include <string_view>

#include "compute/compute_config.h"
#include "compute/compute_layout.h"

// Renders the files PostgreSQL is started with (`postgres -c config_file=workdir/postgresql.conf`).
// Pure functions: the agent writes their output into the workdir.
namespace pgbranch::compute {

// postgresql.conf: paths into the workdir, 127.0.0.1:pg_port, the private socket directory,
// SCRAM, logging to stderr, hot_standby for read-only endpoints, then `config.parameters`
// (which win over the agent's defaults; managed settings are refused by the config parser).
std::string RenderPostgresqlConf(const ComputeConfig& config, const ComputeLayout& layout);

// pg_hba.conf: trust on the unix socket (its directory is 0700 postgres: only the agent and
// postgres reach it), scram-sha-256 over TCP on loopback, nothing else.
// Local sockets trust (the agent's own connections); TCP logins use SCRAM, from loopback only
// unless PostgreSQL listens beyond it (`listen_address` not 127.0.0.1).
std::string RenderPgHbaConf(const std::string& listen_address = "127.0.0.1");

// A postgresql.conf string literal: 'value' with ' and \ escaped.
std::string QuoteConfValue(std::string_view value);

}  // namespace pgbranch::compute
