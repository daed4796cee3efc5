#include "compute/postgres_conf.h"

#include "absl/strings/str_cat.h"
#include "compute/storage_settings.h"

namespace pgbranch::compute {

std::string QuoteConfValue(std::string_view value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out.push_back(c == '\'' ? '\'' : '\\');
    out.push_back(c);
  }
  out.push_back('\'');
  return out;
}

std::string RenderPostgresqlConf(const ComputeConfig& config, const ComputeLayout& layout) {
  std::string out = absl::StrCat(
      "# Written by pgbranch-compute on every start (endpoint ", config.endpoint, ", branch ",
      config.branch, ", timeline ", config.timeline, ").\n",
      "# Lives outside the data directory so that branches never inherit it.\n",
      "data_directory = ", QuoteConfValue(layout.data_dir), "\n",
      "hba_file = ", QuoteConfValue(layout.hba_conf), "\n",
      "ident_file = ", QuoteConfValue(layout.ident_conf), "\n",
      "listen_addresses = ", QuoteConfValue(config.listen_address), "\n", "port = ", config.pg_port,
      "\n", "unix_socket_directories = ", QuoteConfValue(layout.socket_dir), "\n",
      "password_encryption = 'scram-sha-256'\n",
      // The branch's crash consistency depends on both (DESIGN.md section 3).
      "fsync = on\n", "full_page_writes = on\n",
      // Every start is on a fresh pagefs mount, where everything readable is already durable at
      // the pageserver: crash recovery need not fsync every file of the data directory first
      // (which costs a round trip per file through FUSE, seconds on a branch). syncfs is a no-op
      // on FUSE, which is only right because a crashed backend must never be recovered on the
      // same mount: PostgreSQL exits instead, the agent fails and a fresh compute replaces it.
      "recovery_init_sync_method = 'syncfs'\n", "restart_after_crash = off\n",
      // stderr is captured into workdir/postgres.log by the agent.
      "logging_collector = off\n", "log_destination = 'stderr'\n", "log_line_prefix = '%m [%p] '\n",
      "cluster_name = ",
      QuoteConfValue(config.endpoint.empty() ? config.timeline : config.endpoint), "\n",
      // Read by the DDL capture (compute/ddl_capture.h): which branch a statement ran on.
      "pgbranch.timeline = ", QuoteConfValue(config.timeline), "\n");
  // What pagefs needs rather than a local disk (compute/storage_settings.h).
  for (const StorageSetting& setting : kPagefsStorageSettings) {
    absl::StrAppend(&out, setting.name, " = ", setting.value, "\n");
  }
  if (config.mode == ComputeMode::kReadOnly) {
    // With standby.signal in the data directory: replay the branch's WAL, then serve reads.
    absl::StrAppend(&out, "hot_standby = on\n");
  }
  if (!config.parameters.empty()) {
    absl::StrAppend(&out, "\n# parameters of the endpoint\n");
    for (const auto& [name, value] : config.parameters) {
      absl::StrAppend(&out, name, " = ", QuoteConfValue(value), "\n");
    }
  }
  return out;
}

std::string RenderPgHbaConf(const std::string& listen_address) {
  std::string out =
      "# Written by pgbranch-compute on every start.\n"
      "# TYPE  DATABASE  USER  ADDRESS       METHOD\n"
      "local   all       all                 trust\n"
      "host    all       all   127.0.0.1/32  scram-sha-256\n"
      "host    all       all   ::1/128       scram-sha-256\n";
  if (listen_address != "127.0.0.1" && listen_address != "localhost") {
    out +=
        "host    all       all   0.0.0.0/0     scram-sha-256\n"
        "host    all       all   ::/0          scram-sha-256\n";
  }
  return out;
}

}  // namespace pgbranch::compute
