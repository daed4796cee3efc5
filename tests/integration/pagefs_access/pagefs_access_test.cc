// pagefs checks permissions itself (the mount has no default_permissions, so the kernel needs no
// GETATTR of a directory before each change in it; pageserver/pagefs/access_check.h). On a real
// mount, a process of another user (a forked child that drops to uid/gid 65534) must meet the
// POSIX rules: search and write on a directory to create, delete or rename in it, the sticky bit,
// read or write permission to open, truncate by path, chmod/chown by the owner only, access(2).
// Also: an unlink or rename by a writer of the directory who does not own the file succeeds and
// leaves no error on the file (the kernel then writes back the file's ctime with that process's
// credentials), and a name unlinked or renamed through the mount is never served stale.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/support/pagefs_mount.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch::testing {
namespace {

namespace v1 = pageserver::v1;

constexpr uid_t kNobody = 65534;

// Runs `body` in a forked child as uid/gid kNobody; the child's exit code is body's result
// (0: every expectation held; otherwise the number of the first failed check).
int AsNobody(const std::function<int()>& body) {
  pid_t pid = fork();
  if (pid == 0) {
    if (setgroups(0, nullptr) != 0 || setresgid(kNobody, kNobody, kNobody) != 0 ||
        setresuid(kNobody, kNobody, kNobody) != 0) {
      _exit(100);
    }
    _exit(body());
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
}

// errno of a call that returned -1, 0 if it succeeded.
int Err(int rc) { return rc < 0 ? errno : 0; }

int OpenErr(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags, 0644);
  if (fd < 0) return errno;
  close(fd);
  return 0;
}

void WriteFile(const std::string& path, mode_t mode) {
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, mode);
  ASSERT_GE(fd, 0) << path << ": " << strerror(errno);
  ASSERT_EQ(write(fd, "data", 4), 4);
  ASSERT_EQ(fsync(fd), 0);
  close(fd);
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

// mkdir and then chmod: the mode exactly, whatever the umask.
void MakeDir(const std::string& path, mode_t mode) {
  ASSERT_EQ(mkdir(path.c_str(), 0700), 0) << path << ": " << strerror(errno);
  ASSERT_EQ(chmod(path.c_str(), mode), 0);
}

class PagefsAccessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(chmod(dir_.path().c_str(), 0755), 0);  // nobody must reach the mount point
    server_ = std::make_unique<PageserverProcess>(dir_.path() + "/pageserver");
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    auto stub = server_->NewStub();
    grpc::ClientContext ctx;
    v1::CreateTenantRequest req;
    req.set_tenant_id("t1");
    req.set_root_timeline_id("main");
    v1::Tenant tenant;
    grpc::Status gs = stub->CreateTenant(&ctx, req, &tenant);
    ASSERT_TRUE(gs.ok()) << gs.error_message();
    PagefsMount::Options o;
    o.pageserver = server_->address();
    o.tenant = "t1";
    o.timeline = "main";
    o.mountpoint = dir_.path() + "/mnt";
    mount_ = std::make_unique<PagefsMount>(o);
    s = mount_->Mount();
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_EQ(chmod(M("").c_str(), 0755), 0);
  }
  void TearDown() override {
    if (mount_) {
      EXPECT_EQ(mount_->Unmount(), 0);
    }
  }
  std::string M(const std::string& name) const { return dir_.path() + "/mnt/" + name; }

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
  std::unique_ptr<PagefsMount> mount_;
};

TEST_F(PagefsAccessTest, AnotherUserMeetsThePosixRules) {
  MakeDir(M("closed"), 0755);   // root's, others may only search
  MakeDir(M("open"), 0777);     // anyone may create and delete
  MakeDir(M("sticky"), 01777);  // like /tmp
  MakeDir(M("private"), 0700);  // PostgreSQL's data directory
  WriteFile(M("closed/public"), 0644);
  WriteFile(M("closed/secret"), 0600);
  WriteFile(M("sticky/roots"), 0666);
  WriteFile(M("private/f"), 0666);
  WriteFile(M("open/roots"), 0644);
  WriteFile(M("open/renamed"), 0644);
  EXPECT_EQ(AsNobody([&] {
              if (OpenErr(M("closed/new"), O_CREAT | O_WRONLY | O_EXCL) != EACCES) return 1;
              if (Err(mkdir(M("closed/d").c_str(), 0755)) != EACCES) return 2;
              if (Err(unlink(M("closed/public").c_str())) != EACCES) return 3;
              if (Err(rename(M("closed/public").c_str(), M("open/x").c_str())) != EACCES) return 4;
              if (OpenErr(M("closed/public"), O_RDONLY) != 0) return 5;
              if (OpenErr(M("closed/public"), O_WRONLY) != EACCES) return 6;
              if (OpenErr(M("closed/public"), O_RDONLY | O_TRUNC) != EACCES) return 7;
              if (OpenErr(M("closed/secret"), O_RDONLY) != EACCES) return 8;
              if (Err(truncate(M("closed/public").c_str(), 0)) != EACCES) return 9;
              if (Err(chmod(M("closed/public").c_str(), 0666)) != EPERM) return 10;
              if (Err(chown(M("closed/public").c_str(), kNobody, -1)) != EPERM) return 11;
              if (Err(access(M("closed/public").c_str(), R_OK)) != 0) return 12;
              if (Err(access(M("closed/public").c_str(), W_OK)) != EACCES) return 13;
              if (Err(utimes(M("closed/public").c_str(), nullptr)) != EACCES) return 14;
              if (OpenErr(M("private"), O_RDONLY | O_DIRECTORY) != EACCES) return 15;
              // Sticky: only one's own entries go.
              if (Err(unlink(M("sticky/roots").c_str())) != EPERM) return 16;
              if (OpenErr(M("sticky/mine"), O_CREAT | O_WRONLY | O_EXCL) != 0) return 17;
              if (Err(unlink(M("sticky/mine").c_str())) != 0) return 18;
              // A writable directory: one's own files, and deleting and renaming root's.
              if (OpenErr(M("open/mine"), O_CREAT | O_WRONLY | O_EXCL) != 0) return 19;
              if (Err(chmod(M("open/mine").c_str(), 0600)) != 0) return 20;
              if (Err(truncate(M("open/mine").c_str(), 0)) != 0) return 21;
              if (Err(unlink(M("open/roots").c_str())) != 0) return 22;
              if (Err(rename(M("open/renamed").c_str(), M("open/moved").c_str())) != 0) return 23;
              return 0;
            }),
            0);
  // Nobody's file is nobody's; root's renamed file kept its data and reports no error.
  struct stat st;
  ASSERT_EQ(stat(M("open/mine").c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, kNobody);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  EXPECT_NE(access(M("open/roots").c_str(), F_OK), 0);
  int fd = open(M("open/moved").c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  EXPECT_EQ(fsync(fd), 0);
  char buf[8] = {};
  EXPECT_EQ(pread(fd, buf, sizeof(buf), 0), 4);
  close(fd);
  // Root may do anything a mode allows it (and search without x bits).
  EXPECT_EQ(OpenErr(M("closed/secret"), O_RDWR), 0);
  EXPECT_EQ(OpenErr(M("private/f"), O_RDONLY), 0);
  EXPECT_EQ(Err(unlink(M("sticky/roots").c_str())), 0);
  // The owner of a file that is not writable to it may chmod it back.
  ASSERT_EQ(chown(M("open/moved").c_str(), kNobody, kNobody), 0);
  ASSERT_EQ(chmod(M("open/moved").c_str(), 0400), 0);
  EXPECT_EQ(AsNobody([&] {
              if (OpenErr(M("open/moved"), O_WRONLY) != EACCES) return 1;
              if (Err(chmod(M("open/moved").c_str(), 0600)) != 0) return 2;
              if (OpenErr(M("open/moved"), O_WRONLY) != 0) return 3;
              return 0;
            }),
            0);
}

// Executing needs execute permission of the caller's class, not read: an execute-only program
// runs for others, one only its owner may execute does not.
TEST_F(PagefsAccessTest, ExecuteNeedsExecutePermission) {
  std::string prog = "/bin/true";
  if (access(prog.c_str(), X_OK) != 0) prog = "/usr/bin/true";
  {
    int in = open(prog.c_str(), O_RDONLY);
    ASSERT_GE(in, 0);
    int out = open(M("true").c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0700);
    ASSERT_GE(out, 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0) ASSERT_EQ(write(out, buf, n), n);
    ASSERT_EQ(fsync(out), 0);
    close(out);
    close(in);
  }
  auto run = [&] {
    pid_t pid = fork();
    if (pid == 0) {
      execl(M("true").c_str(), "true", static_cast<char*>(nullptr));
      _exit(errno == EACCES ? 13 : 99);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 200;
  };
  ASSERT_EQ(chmod(M("true").c_str(), 0711), 0);
  EXPECT_EQ(AsNobody(run), 0);
  EXPECT_EQ(AsNobody([&] { return OpenErr(M("true"), O_RDONLY) == EACCES ? 0 : 1; }), 0);
  ASSERT_EQ(chmod(M("true").c_str(), 0700), 0);
  EXPECT_EQ(AsNobody(run), 13);
  EXPECT_EQ(run(), 0);  // root
}

// The kernel caches names and attributes for a day (pagefs is the only writer of its mount):
// every change made through the mount updates its cache, so nothing is served stale.
TEST_F(PagefsAccessTest, NamesChangedThroughTheMountAreNeverStale) {
  struct stat st;
  WriteFile(M("a"), 0644);
  ASSERT_EQ(stat(M("a").c_str(), &st), 0);
  ASSERT_NE(stat(M("b").c_str(), &st), 0);  // a cached negative entry
  ASSERT_EQ(rename(M("a").c_str(), M("b").c_str()), 0);
  EXPECT_NE(stat(M("a").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  ASSERT_EQ(stat(M("b").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 4);
  ASSERT_EQ(unlink(M("b").c_str()), 0);
  EXPECT_NE(stat(M("b").c_str(), &st), 0);
  EXPECT_EQ(errno, ENOENT);
  // A new file under a name that was just unlinked is the new file.
  int fd = open(M("b").c_str(), O_CREAT | O_EXCL | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_EQ(stat(M("b").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  // Directory modes and owners changed by root hold at once for another user.
  MakeDir(M("d"), 0777);
  EXPECT_EQ(AsNobody([&] { return OpenErr(M("d/x"), O_CREAT | O_WRONLY) == 0 ? 0 : 1; }), 0);
  ASSERT_EQ(chmod(M("d").c_str(), 0755), 0);
  EXPECT_EQ(AsNobody([&] { return OpenErr(M("d/y"), O_CREAT | O_WRONLY) == EACCES ? 0 : 1; }), 0);
}

}  // namespace
}  // namespace pgbranch::testing
