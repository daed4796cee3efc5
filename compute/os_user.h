#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// The operating-system user PostgreSQL runs as (it refuses to run as root).
namespace pgbranch::compute {

struct OsUser {
  std::string name;
  uid_t uid = 0;
  gid_t gid = 0;
  std::vector<gid_t> groups;  // supplementary groups, as initgroups() would set them
  std::string home;
};

// Looks `name` up in the user database (call before any fork: NSS is not fork-safe).
absl::StatusOr<OsUser> LookupOsUser(const std::string& name);

// Whether `user` can search (traverse) `dir`, checked by a forked child that really switches to
// the user (so ACLs and every ancestor count). A clear error naming the directory if not.
absl::Status CheckUserCanTraverse(const OsUser& user, const std::string& dir);

// chown `path` to the user and chmod it to `mode`.
absl::Status ChownTo(const OsUser& user, const std::string& path, mode_t mode);

}  // namespace pgbranch::compute
