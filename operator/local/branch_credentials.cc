#include "operator/local/branch_credentials.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/process_util.h"
#include "common/scram.h"
#include "common/text_util.h"

namespace pgbranch::cli {
namespace {

absl::Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  ::chmod(path.c_str(), 0700);
  return absl::OkStatus();
}

std::string FirstLine(const std::string& text) {
  return std::string(absl::StripAsciiWhitespace(text.substr(0, text.find('\n'))));
}

}  // namespace

BranchCredentials::BranchCredentials(std::string state_dir, std::string role)
    : dir_(std::move(state_dir) + "/credentials/branches"), role_(std::move(role)) {}

std::string BranchCredentials::PasswordFile(const std::string& branch_uid) const {
  return absl::StrCat(dir_, "/", branch_uid, ".password");
}

std::string BranchCredentials::VerifierFile(const std::string& branch_uid) const {
  return absl::StrCat(dir_, "/", branch_uid, ".scram");
}

absl::Status BranchCredentials::CheckUid(const std::string& branch_uid) const {
  bool ok = !branch_uid.empty() && branch_uid.size() <= 64;
  for (char c : branch_uid) {
    ok = ok && ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-');
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", branch_uid.substr(0, 64), "\" is not a branch uid"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> BranchCredentials::ReadOrCreate(
    const std::string& path, const std::function<std::string()>& make) const {
  std::string existing = FirstLine(ReadFileOrEmpty(path));
  if (!existing.empty()) return existing;
  std::string parent = dir_.substr(0, dir_.rfind('/'));
  if (auto s = MakeDir(parent); !s.ok()) return s;
  if (auto s = MakeDir(dir_); !s.ok()) return s;
  static std::atomic<int> counter{0};
  std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0) {
    return absl::InternalError(absl::StrCat("cannot create ", tmp, ": ", std::strerror(errno)));
  }
  std::string line = make() + "\n";
  bool written = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
                 ::fsync(fd) == 0;
  ::close(fd);
  // link() never replaces: when another process got there first, its file wins.
  int linked = written ? ::link(tmp.c_str(), path.c_str()) : -1;
  int link_errno = errno;
  ::unlink(tmp.c_str());
  if (!written || (linked != 0 && link_errno != EEXIST)) {
    return absl::InternalError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(written ? link_errno : errno)));
  }
  std::string stored = FirstLine(ReadFileOrEmpty(path));
  if (stored.empty()) return absl::InternalError(absl::StrCat(path, " is empty"));
  return stored;
}

absl::StatusOr<std::string> BranchCredentials::Password(const std::string& branch_uid) const {
  if (auto s = CheckUid(branch_uid); !s.ok()) return s;
  return ReadOrCreate(PasswordFile(branch_uid), [] { return RandomPassword(); });
}

absl::StatusOr<std::string> BranchCredentials::Verifier(const std::string& branch_uid) const {
  if (auto s = CheckUid(branch_uid); !s.ok()) return s;
  std::string existing = FirstLine(ReadFileOrEmpty(VerifierFile(branch_uid)));
  if (!existing.empty()) return existing;
  absl::StatusOr<std::string> password = Password(branch_uid);
  if (!password.ok()) return password.status();
  return ReadOrCreate(VerifierFile(branch_uid),
                      [&password] { return scram::FormatVerifier(scram::NewVerifier(*password)); });
}

absl::StatusOr<std::string> BranchCredentials::EnsureVerifierFile(
    const std::string& branch_uid) const {
  absl::StatusOr<std::string> verifier = Verifier(branch_uid);
  if (!verifier.ok()) return verifier.status();
  return VerifierFile(branch_uid);
}

void BranchCredentials::Remove(const std::string& branch_uid) const {
  if (!CheckUid(branch_uid).ok()) return;
  ::unlink(VerifierFile(branch_uid).c_str());
  ::unlink(PasswordFile(branch_uid).c_str());
}

}  // namespace pgbranch::cli
