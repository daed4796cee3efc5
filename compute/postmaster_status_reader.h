#pragma once

#include <sys/types.h>

#include <string>

namespace pgbranch::compute {

// Reads the status line of a postmaster's postmaster.pid (line 8: "starting", "stopping",
// "ready", "standby"), as `pg_ctl -w` does, for the agent's wait for a start.
//
// It keeps one descriptor on the file between reads and pread()s it: the postmaster rewrites
// the file in place (open, write, fsync), so every status it writes is seen through the same
// descriptor. The descriptor is reopened when the file does not name `pid` (not written yet,
// a leftover, replaced). Nothing is closed on the caller's path: on a FUSE mount a close sends
// a FLUSH that first writes back the file's dirty pages and waits for the inode's lock, which
// the postmaster holds while it fsyncs the same file right after writing "ready" (the close
// measured 9-20 ms on a loaded 2-vCPU machine, between "ready" and the role step). Closes
// happen in the background (CloseInBackground).
//
// Not thread-safe.
class PostmasterStatusReader {
 public:
  PostmasterStatusReader(std::string path, pid_t pid);
  // Returns at once; the descriptor is closed in the background.
  ~PostmasterStatusReader();
  PostmasterStatusReader(const PostmasterStatusReader&) = delete;
  PostmasterStatusReader& operator=(const PostmasterStatusReader&) = delete;

  // The status line (trailing spaces removed), or "" when the file is absent, not complete yet
  // or names another process.
  std::string Read();

 private:
  void Drop();

  const std::string path_;
  const std::string pid_;
  int fd_ = -1;
};

// close(fd) on a short-lived thread of its own (on this thread when no thread can be had):
// for descriptors whose close may wait (a FUSE FLUSH, an inotify watch's retirement) and whose
// closing nothing waits for.
void CloseInBackground(int fd);
// How many CloseInBackground calls have not closed their descriptor yet (tests count open
// descriptors once it is 0).
int PendingBackgroundCloses();

}  // namespace pgbranch::compute
