#pragma once

#include <chrono>
#include <string>

namespace pgbranch::compute {

// Waits for a change to the files directly in one directory (inotify: a write, a close after
// writing, a create, a rename into it) instead of polling it. On a FUSE mount inotify reports
// the changes made through this kernel's mount (PostgreSQL rewriting postmaster.pid), which is
// all a start waits for; Wait's timeout bounds the delay of anything it does not report.
//
// Without inotify (ok() false) Wait just sleeps its timeout. Not thread-safe.
class DirectoryChangeWaiter {
 public:
  explicit DirectoryChangeWaiter(const std::string& dir);
  // Returns at once: the descriptor is closed in the background (the close waits for the kernel
  // to retire the watch, milliseconds to tens of them).
  ~DirectoryChangeWaiter();
  DirectoryChangeWaiter(const DirectoryChangeWaiter&) = delete;
  DirectoryChangeWaiter& operator=(const DirectoryChangeWaiter&) = delete;

  bool ok() const { return fd_ >= 0; }

  // Returns once a change was reported since the previous call (at once if one was), or after
  // `timeout`. Consumes the reported changes.
  void Wait(std::chrono::milliseconds timeout);

 private:
  int fd_ = -1;
};

}  // namespace pgbranch::compute
