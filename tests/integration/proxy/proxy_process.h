#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pgbranch::proxy::testing {

// A real `pgbranch-proxy` process (from $PGBRANCH_BIN_DIR) listening on a port the kernel
// picks. SIGKILLed on destruction if still running.
class ProxyProcess {
 public:
  ProxyProcess(std::string control_url, std::string work_dir, std::vector<std::string> extra_args);
  ~ProxyProcess();

  // Starts it and waits (up to 30 s) for its port file.
  absl::Status Start();
  // SIGTERM and wait; the exit status as from waitpid (or -1).
  int Stop();
  int port() const { return port_; }
  std::string log_path() const { return work_dir_ + "/proxy.log"; }
  std::string LogTail() const;
  // The whole log so far.
  std::string Log() const;
  pid_t pid() const { return pid_; }
  // Descriptors the running proxy has open (entries of /proc/PID/fd), -1 if unknown.
  int OpenFds() const;

 private:
  std::string control_url_;
  std::string work_dir_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace pgbranch::proxy::testing
