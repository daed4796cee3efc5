#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace pgbranch::testing {

// Runs a real `pagefs` process (in the foreground mode, as a child) mounted on `mountpoint`.
// The binary is found in $PGBRANCH_BIN_DIR like PageserverProcess.
class PagefsMount {
 public:
  struct Options {
    std::string pageserver;  // host:port
    std::string tenant;
    std::string timeline;
    std::string mountpoint;  // created if missing
    bool read_only = false;
    uint64_t lsn = 0;  // read-only at this LSN
    std::string at;    // read-only as of this RFC 3339 time
    std::vector<std::string> extra_args;
  };

  explicit PagefsMount(Options options);
  ~PagefsMount();  // unmounts (or kills) if still mounted

  // Starts pagefs and waits (up to 30 s) until the mount is live.
  absl::Status Mount();
  // Clean unmount (fusermount3 -u) and waits for the process: its exit code.
  int Unmount();
  // SIGTERM: pagefs flushes, unmounts and exits; returns its exit code.
  int Terminate();
  // SIGKILL of the pagefs process, then a lazy unmount of the dead mount point.
  void Kill();
  pid_t pid() const { return pid_; }
  const std::string& mountpoint() const { return options_.mountpoint; }
  // Whether the kernel lists a pagefs mount at the mount point.
  bool IsMounted() const;

 private:
  int Wait();
  Options options_;
  pid_t pid_ = -1;
};

}  // namespace pgbranch::testing
