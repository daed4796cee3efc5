#include "compute/postmaster_status_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"

namespace pgbranch::compute {

namespace {
// Closes started by CloseInBackground and not finished yet.
std::atomic<int> pending_closes{0};
}  // namespace

void CloseInBackground(int fd) {
  if (fd < 0) return;
  pending_closes.fetch_add(1);
  try {
    std::thread([fd] {
      close(fd);
      pending_closes.fetch_sub(1);
    }).detach();
  } catch (const std::system_error&) {
    close(fd);
    pending_closes.fetch_sub(1);
  }
}

int PendingBackgroundCloses() { return pending_closes.load(); }

PostmasterStatusReader::PostmasterStatusReader(std::string path, pid_t pid)
    : path_(std::move(path)), pid_(std::to_string(pid)) {}

PostmasterStatusReader::~PostmasterStatusReader() { Drop(); }

void PostmasterStatusReader::Drop() {
  CloseInBackground(fd_);
  fd_ = -1;
}

std::string PostmasterStatusReader::Read() {
  if (fd_ < 0) {
    fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) return "";
  }
  // pid, data directory, start time, port, socket directory, listen address, shared memory
  // key, status: a few hundred bytes.
  char buf[4096];
  ssize_t n;
  do {
    n = pread(fd_, buf, sizeof(buf), 0);
  } while (n < 0 && errno == EINTR);
  if (n < 0) {
    Drop();
    return "";
  }
  std::vector<std::string> lines = absl::StrSplit(std::string(buf, n), '\n');
  if (lines.empty() || lines[0] != pid_) {
    // Written by another postmaster, or not written yet (the postmaster creates the file, then
    // writes it): look again, by path, next time.
    Drop();
    return "";
  }
  // A status line is complete once a newline follows it.
  if (lines.size() < 9) return "";
  std::string status = lines[7];
  while (!status.empty() && status.back() == ' ') status.pop_back();
  return status;
}

}  // namespace pgbranch::compute
