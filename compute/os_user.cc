#include "compute/os_user.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace pgbranch::compute {

absl::StatusOr<OsUser> LookupOsUser(const std::string& name) {
  passwd pw;
  passwd* result = nullptr;
  std::vector<char> buf(16384);
  if (getpwnam_r(name.c_str(), &pw, buf.data(), buf.size(), &result) != 0 || result == nullptr) {
    return absl::FailedPreconditionError(
        absl::StrCat("no `", name, "` operating-system user (install postgresql-15)"));
  }
  OsUser u;
  u.name = name;
  u.uid = pw.pw_uid;
  u.gid = pw.pw_gid;
  u.home = pw.pw_dir;
  int ngroups = 64;
  u.groups.resize(ngroups);
  if (getgrouplist(name.c_str(), pw.pw_gid, u.groups.data(), &ngroups) < 0) {
    u.groups.resize(ngroups);
    getgrouplist(name.c_str(), pw.pw_gid, u.groups.data(), &ngroups);
  }
  u.groups.resize(ngroups);
  return u;
}

absl::Status CheckUserCanTraverse(const OsUser& user, const std::string& dir) {
  pid_t pid = fork();
  if (pid < 0) return absl::InternalError(absl::StrCat("fork: ", strerror(errno)));
  if (pid == 0) {
    // Async-signal-safe calls only.
    if (setgroups(user.groups.size(), user.groups.data()) != 0 || setgid(user.gid) != 0 ||
        setuid(user.uid) != 0) {
      _exit(2);
    }
    _exit(access(dir.c_str(), X_OK) == 0 ? 0 : 1);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the ", user.name, " user cannot reach ", dir, " (PostgreSQL runs as ", user.name,
      "): make every parent directory searchable by it (chmod o+x) or use a workdir elsewhere"));
}

absl::Status ChownTo(const OsUser& user, const std::string& path, mode_t mode) {
  // On pagefs every change is a commit: skip what is already right.
  struct stat st;
  if (stat(path.c_str(), &st) == 0 && st.st_uid == user.uid && st.st_gid == user.gid &&
      (st.st_mode & 07777) == mode) {
    return absl::OkStatus();
  }
  if (chown(path.c_str(), user.uid, user.gid) != 0) {
    return absl::InternalError(absl::StrCat("chown ", user.name, " ", path, ": ", strerror(errno)));
  }
  if (chmod(path.c_str(), mode) != 0) {
    return absl::InternalError(absl::StrCat("chmod ", path, ": ", strerror(errno)));
  }
  return absl::OkStatus();
}

}  // namespace pgbranch::compute
