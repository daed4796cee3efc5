#pragma once

#include <sys/types.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Small POSIX helpers for import and export: errno as a Status, full reads and writes.
namespace pgbranch::pagectl {

// `errno` as a Status: "<what> <path>: <strerror>".
absl::Status PosixError(const std::string& what, const std::string& path);

// Reads up to `n` bytes, retrying short reads and EINTR; returns fewer only at end of file.
absl::StatusOr<size_t> ReadFull(int fd, char* buf, size_t n, const std::string& path);
// Writes all `n` bytes at `offset`.
absl::Status PwriteFull(int fd, const char* buf, size_t n, off_t offset, const std::string& path);

// Joins a directory path and a name.
std::string JoinPath(const std::string& dir, const std::string& name);

}  // namespace pgbranch::pagectl
