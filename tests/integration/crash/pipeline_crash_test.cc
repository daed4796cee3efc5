// Kill -9 tests of pipelined commits (pagefs over a real pageserver; needs root and /dev/fuse).
//
// pagefs issues namespace changes in order without waiting for them to be durable; an fsync or
// fsyncdir waits for everything issued before it. Whatever a crash interrupts, what remains must
// be a state a real crash could have left: a prefix of the issued operations, containing at least
// everything an fsync acknowledged.
//  (a) kill -9 of pagefs after pipelined namespace operations, before the fsync that would make
//      them durable (with the pageserver stopped meanwhile, so that they are surely in flight);
//  (b) kill -9 of the pageserver with pipelined operations in flight: pagefs must report EIO at
//      the next fsync (never a silent success), refuse later changes, and after a restart and a
//      remount everything acknowledged by an fsync is there;
//  (c) kill -9 of pagefs with file data in the kernel's writeback cache and in pagefs's buffers:
//      what fsync and O_DSYNC writes acknowledged is there, and every unsynced page reads as
//      either its old or its new contents;
//  (d) kill -9 of pagefs after pipelined truncates (sent by the commit stream's writer thread, not
//      waited for) and before the fsync: a prefix of the files is truncated, each either whole or
//      empty, and no page of a truncated file comes back when it grows again;
//  (e) the same as (c) for PostgreSQL's WAL files (pg_wal/*), which pagefs opens with direct I/O:
//      each write(2) is a WRITE to pagefs, fdatasync an FSYNC, an O_DSYNC write durable when it
//      returns (the kernel does not fsync after a direct write: pagefs must);
//  (f) the commit path over a Unix domain socket (pageserver --listen-unix, pagefs --pageserver
//      unix:PATH): kill -9 of pagefs keeps what fsync acknowledged;
//  (g) WAL through the writeback cache, where each WAL WRITE issues its commit before the FSYNC
//      arrives: kill -9 of pagefs keeps what fdatasync acknowledged (data and size), and an
//      fdatasync whose commit was issued at the WRITE and lost to kill -9 of the pageserver fails;
//  (h) an fsync of a file with nothing buffered waits only for its own commits in flight, not for
//      unrelated ones: with the pageserver stopped and namespace operations in flight it returns
//      at once; an fsync of a file whose commits are in flight returns once they (and everything
//      before them) are durable; kill -9 of pagefs right after it leaves a prefix of the issued
//      operations holding everything acknowledged;
//  (i) new WAL segments zero-filled (pagefs commits only their size): kill -9 of pagefs or of the
//      pageserver keeps the synced segment's size, records and zeros; an unsynced one reads as
//      zeros, and an fsync whose commits were lost fails;
//  (j) a volatile file's fsync (--volatile-file) returns without waiting and keeps its place in
//      the order of the issued operations.
// (a)-(e), (g), (h), (i) and (j) run twice: commits over gRPC's CommitStream, and over the commit
// channel (pageserver --commit-socket, pagefs --commit-channel: a plain Unix socket, a thread per
// connection).
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/support/pagefs_server_fixture.h"

namespace pgbranch::testing {
namespace {

// The operations of step i: create f<i>, rename it to g<i>, then unlink g<i-2> (or, for the first
// two steps, mkdir m<i>). Every prefix of the sequence leaves a different set of names.
constexpr int kOpsPerStep = 3;

std::set<std::string> ModelAfter(int ops) {
  std::set<std::string> names;
  for (int op = 0; op < ops; ++op) {
    int i = op / kOpsPerStep;
    switch (op % kOpsPerStep) {
      case 0:
        names.insert(absl::StrCat("f", i));
        break;
      case 1:
        names.erase(absl::StrCat("f", i));
        names.insert(absl::StrCat("g", i));
        break;
      default:
        if (i >= 2) {
          names.erase(absl::StrCat("g", i - 2));
        } else {
          names.insert(absl::StrCat("m", i));
        }
    }
  }
  return names;
}

// Runs operation `op` in `dir`; 0 or errno.
int RunOp(const std::string& dir, int op) {
  int i = op / kOpsPerStep;
  int rc = 0;
  switch (op % kOpsPerStep) {
    case 0: {
      int fd = open(absl::StrCat(dir, "/f", i).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd < 0) return errno;
      close(fd);
      return 0;
    }
    case 1:
      rc = rename(absl::StrCat(dir, "/f", i).c_str(), absl::StrCat(dir, "/g", i).c_str());
      break;
    default:
      rc = i >= 2 ? unlink(absl::StrCat(dir, "/g", i - 2).c_str())
                  : mkdir(absl::StrCat(dir, "/m", i).c_str(), 0755);
  }
  return rc == 0 ? 0 : errno;
}

int FsyncPath(const std::string& path, int flags) {
  int fd = open(path.c_str(), flags);
  if (fd < 0) return errno;
  int rc = fsync(fd);
  int err = rc == 0 ? 0 : errno;
  close(fd);
  return err;
}

// Stops process `pid` (SIGSTOP) and waits until each of its threads is stopped. kill() returns
// once the signal is queued, and only one thread is woken to take it: until that thread runs and
// stops the others, they go on (on a loaded machine, for milliseconds -- time enough for the
// pageserver to answer a commit issued after kill returned).
void StopProcess(pid_t pid) {
  ASSERT_EQ(kill(pid, SIGSTOP), 0) << strerror(errno);
  for (int attempt = 0; attempt < 5000; ++attempt) {
    bool all = true;
    std::error_code ec;
    for (const auto& t :
         std::filesystem::directory_iterator(absl::StrCat("/proc/", pid, "/task"), ec)) {
      std::ifstream in(t.path() / "stat");
      std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      size_t paren = stat.rfind(')');  // "pid (comm) S ...": comm may hold spaces and parens
      if (paren == std::string::npos || paren + 2 >= stat.size()) continue;  // thread gone
      char state = stat[paren + 2];
      if (state != 'T' && state != 't') all = false;
    }
    ASSERT_FALSE(ec) << ec.message();
    if (all) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  FAIL() << "process " << pid << " did not stop";
}

std::set<std::string> Listing(const std::string& dir) {
  std::set<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    names.insert(e.path().filename().string());
  }
  EXPECT_FALSE(ec) << ec.message();
  return names;
}

class PipelineCrashTest : public PagefsServerTest, public ::testing::WithParamInterface<bool> {
 protected:
  // With the commit channel: the pageserver restarted on the same data serving it too.
  void SetUp() override {
    PagefsServerTest::SetUp();
    if (!channel()) return;
    ASSERT_EQ(server_->Stop(), 0);
    server_ = std::make_unique<PageserverProcess>(
        dir_.path() + "/pageserver", std::vector<std::string>{"--commit-socket", sock()});
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }
  bool channel() const { return GetParam(); }
  std::string sock() const { return dir_.path() + "/commit.sock"; }
  // PagefsServerTest::Mount, over the commit channel when the test runs with it.
  std::unique_ptr<PagefsMount> Mount(std::vector<std::string> extra_args = {}) {
    if (channel()) extra_args.insert(extra_args.end(), {"--commit-channel", "unix:" + sock()});
    return PagefsServerTest::Mount(extra_args);
  }

  // The state after the crash must be the model after some prefix of `issued` operations that
  // holds at least the `acknowledged` ones. Returns that prefix's length (-1: none matches).
  int MatchPrefix(const std::set<std::string>& seen, int acknowledged, int issued) {
    for (int k = acknowledged; k <= issued; ++k) {
      if (ModelAfter(k) == seen) return k;
    }
    ADD_FAILURE() << "the directory holds {" << absl::StrJoin(seen, ", ")
                  << "}: no prefix of the issued operations (" << acknowledged << " acknowledged, "
                  << issued << " issued) leaves that";
    return -1;
  }

  // Writes `data` to `name` and fsyncs it; 0 or errno.
  int WriteAndFsync(const std::string& name, const std::string& data) {
    int fd = open(Path(name).c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd < 0) return errno;
    int err = write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()) ? 0 : errno;
    if (err == 0 && fsync(fd) != 0) err = errno;
    close(fd);
    return err;
  }
  // The whole content of `name` under the mount ("" and a failure if it cannot be opened).
  std::string ReadFile(const std::string& name) {
    std::string out;
    int rfd = open(Path(name).c_str(), O_RDONLY);
    EXPECT_GE(rfd, 0) << name << ": " << strerror(errno);
    if (rfd < 0) return out;
    char buf[65536];
    ssize_t n;
    while ((n = read(rfd, buf, sizeof(buf))) > 0) out.append(buf, static_cast<size_t>(n));
    close(rfd);
    return out;
  }
};

// (a) kill -9 of pagefs between pipelined namespace commits and the fsync that depends on them.
TEST_P(PipelineCrashTest, KillOfPagefsBeforeTheFsyncLeavesAPrefixOfTheIssuedOperations) {
  for (int round = 0; round < 3; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    std::string d = absl::StrCat("d", round);
    auto mount = Mount();
    ASSERT_NE(mount, nullptr);
    ASSERT_EQ(mkdir(Path(d).c_str(), 0755), 0) << strerror(errno);
    int acknowledged = 30 * kOpsPerStep;
    for (int op = 0; op < acknowledged; ++op) ASSERT_EQ(RunOp(Path(d), op), 0) << "op " << op;
    ASSERT_EQ(FsyncPath(Path(d), O_RDONLY | O_DIRECTORY), 0);
    int issued = acknowledged + 30 * kOpsPerStep;
    // Round 0 and 1: the pageserver is stopped (SIGSTOP) while the operations are issued, so they
    // are in flight (round 1 lets it go on before pagefs dies, round 0 after); round 2: full
    // speed, killed at once.
    if (round < 2) {
      ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));
    }
    for (int op = acknowledged; op < issued; ++op) {
      ASSERT_EQ(RunOp(Path(d), op), 0) << "op " << op << " did not return at once";
    }
    if (round == 1) {
      ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
    }
    mount->Kill();
    if (round == 0) {
      ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
    }
    mount = Mount();
    ASSERT_NE(mount, nullptr);
    int k = MatchPrefix(Listing(Path(d)), acknowledged, issued);
    std::cerr << "round " << round << ": " << k - acknowledged << " of " << issued - acknowledged
              << " unsynced operations survived the kill\n";
    // The remounted tree is a working one: it keeps going from that state.
    ASSERT_EQ(WriteAndFsync(d + "/after", "x"), 0);
    EXPECT_EQ(mount->Unmount(), 0);
  }
}

// (b) kill -9 of the pageserver with pipelined commits in flight.
TEST_P(PipelineCrashTest, KillOfThePageserverWithCommitsInFlightPoisonsPagefs) {
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);
  ASSERT_EQ(mkdir(Path("d").c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(WriteAndFsync("synced", "durable data"), 0);
  int acknowledged = 20 * kOpsPerStep;
  for (int op = 0; op < acknowledged; ++op) ASSERT_EQ(RunOp(Path("d"), op), 0) << "op " << op;
  ASSERT_EQ(FsyncPath(Path("d"), O_RDONLY | O_DIRECTORY), 0);
  // In flight: issued while the pageserver is stopped, then it is killed.
  int issued = acknowledged + 20 * kOpsPerStep;
  ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));
  for (int op = acknowledged; op < issued; ++op) ASSERT_EQ(RunOp(Path("d"), op), 0) << "op " << op;
  server_->Kill();
  // Never a silent success: the fsync that depends on them fails, and so does every later one.
  EXPECT_EQ(FsyncPath(Path("d"), O_RDONLY | O_DIRECTORY), EIO);
  EXPECT_EQ(FsyncPath(Path("synced"), O_RDONLY), EIO);
  EXPECT_NE(RunOp(Path("d"), issued), 0) << "a change after a lost commit was accepted";
  mount->Kill();  // poisoned: it could not flush at unmount

  absl::Status s = server_->Start();  // on the same data, at a new address
  ASSERT_TRUE(s.ok()) << s;
  mount = Mount();
  ASSERT_NE(mount, nullptr);
  int k = MatchPrefix(Listing(Path("d")), acknowledged, issued);
  std::cerr << k - acknowledged << " of " << issued - acknowledged
            << " in-flight operations were applied before the kill\n";
  std::string content(64, '\0');
  int fd = open(Path("synced").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0) << strerror(errno);
  ssize_t n = read(fd, content.data(), content.size());
  close(fd);
  ASSERT_GE(n, 0);
  content.resize(static_cast<size_t>(n));
  EXPECT_EQ(content, "durable data");
  ASSERT_EQ(WriteAndFsync("after", "x"), 0);
  EXPECT_EQ(mount->Unmount(), 0);
}

// (c) kill -9 of pagefs while written data sits in the kernel's writeback cache (never sent to
// pagefs), in pagefs's buffers (sent, not committed) and in flight. Written 8 KiB at a time, as
// PostgreSQL writes.
TEST_P(PipelineCrashTest, KillOfPagefsKeepsWhatFsyncAndODsyncWritesAcknowledged) {
  constexpr int kPage = 8192, kPages = 512;  // 4 MiB
  auto page = [](char c) { return std::string(kPage, c); };
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);
  int fd = open(Path("synced").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(fd, 0) << strerror(errno);
  for (int i = 0; i < kPages; ++i) {
    ASSERT_EQ(pwrite(fd, page(static_cast<char>('a' + i % 26)).data(), kPage, off_t{i} * kPage),
              kPage);
  }
  ASSERT_EQ(fsync(fd), 0) << strerror(errno);
  int dfd = open(Path("dsync").c_str(), O_CREAT | O_WRONLY | O_DSYNC, 0644);
  ASSERT_GE(dfd, 0) << strerror(errno);
  for (int i = 0; i < 64; ++i) {
    ASSERT_EQ(pwrite(dfd, page('d').data(), kPage, off_t{i} * kPage), kPage) << strerror(errno);
  }
  // Unsynced: the first half of "synced" overwritten, and a new file (its name made durable by
  // an fsync of the directory, its data not), some of it pushed to pagefs by sync_file_range.
  for (int i = 0; i < kPages / 2; ++i) {
    ASSERT_EQ(pwrite(fd, page('Z').data(), kPage, off_t{i} * kPage), kPage);
  }
  int ufd = open(Path("unsynced").c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_GE(ufd, 0) << strerror(errno);
  ASSERT_EQ(FsyncPath(dir_.path() + "/mnt", O_RDONLY | O_DIRECTORY), 0);
  for (int i = 0; i < 128; ++i) {
    ASSERT_EQ(pwrite(ufd, page('u').data(), kPage, off_t{i} * kPage), kPage);
  }
  ASSERT_EQ(sync_file_range(fd, 0, kPage * kPages / 4, SYNC_FILE_RANGE_WRITE), 0);
  mount->Kill();
  close(fd);
  close(dfd);
  close(ufd);

  mount = Mount();
  ASSERT_NE(mount, nullptr);
  std::string synced = ReadFile("synced");
  ASSERT_EQ(synced.size(), size_t{kPage} * kPages);
  int overwritten = 0;
  for (int i = 0; i < kPages; ++i) {
    std::string got = synced.substr(size_t{kPage} * i, kPage);
    std::string old_page = page(static_cast<char>('a' + i % 26));
    if (i < kPages / 2 && got == page('Z')) {
      ++overwritten;
      continue;
    }
    ASSERT_EQ(got, old_page) << "page " << i << " is neither what was fsync'd nor the later write";
  }
  EXPECT_EQ(ReadFile("dsync"), std::string(size_t{kPage} * 64, 'd'));
  std::string unsynced = ReadFile("unsynced");
  EXPECT_LE(unsynced.size(), size_t{kPage} * 128);
  EXPECT_EQ(unsynced.find_first_not_of('u'), std::string::npos);
  std::cerr << overwritten << " of " << kPages / 2 << " unsynced overwrites and "
            << unsynced.size() / kPage << " of 128 unsynced pages survived the kill\n";
  EXPECT_EQ(mount->Unmount(), 0);
}

// (d) kill -9 of pagefs between pipelined truncates and the fsync that would make them durable.
TEST_P(PipelineCrashTest, KillOfPagefsAfterPipelinedTruncatesLeavesAPrefixOfThem) {
  constexpr int kFiles = 40;
  const std::string data(3 * 8192, 'k');
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_EQ(WriteAndFsync(absl::StrCat("t", i), data), 0) << "file " << i;
  }
  ASSERT_EQ(FsyncPath(dir_.path() + "/mnt", O_RDONLY | O_DIRECTORY), 0);
  ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));  // the truncates stay in flight
  for (int i = 0; i < kFiles; ++i) {
    ASSERT_EQ(truncate(Path(absl::StrCat("t", i)).c_str(), 0), 0) << "file " << i;
  }
  // Half of them reach the pageserver before pagefs dies, maybe.
  ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
  mount->Kill();
  mount = Mount();
  ASSERT_NE(mount, nullptr);
  int truncated = 0;
  for (int i = 0; i < kFiles; ++i) {
    struct stat st;
    ASSERT_EQ(stat(Path(absl::StrCat("t", i)).c_str(), &st), 0) << strerror(errno);
    if (st.st_size == 0) {
      EXPECT_EQ(truncated, i) << "file " << i << " is truncated but an earlier one is not";
      ++truncated;
      // Grown again, it reads as zeros: none of its old pages is left behind.
      ASSERT_EQ(truncate(Path(absl::StrCat("t", i)).c_str(), off_t{3} * 8192), 0);
      int fd = open(Path(absl::StrCat("t", i)).c_str(), O_RDONLY);
      ASSERT_GE(fd, 0) << strerror(errno);
      std::string got(data.size(), 'x');
      ASSERT_EQ(read(fd, got.data(), got.size()), static_cast<ssize_t>(got.size()));
      close(fd);
      EXPECT_EQ(got, std::string(data.size(), '\0')) << "file " << i;
    } else {
      ASSERT_EQ(st.st_size, static_cast<off_t>(data.size())) << "file " << i;
    }
  }
  std::cerr << truncated << " of " << kFiles << " unsynced truncates survived the kill\n";
  EXPECT_EQ(mount->Unmount(), 0);
}

// (e) kill -9 of pagefs with WAL written as PostgreSQL writes it: 8 KiB pages, each fdatasync'd
// (wal_sync_method=fdatasync), or through an O_DSYNC descriptor (open_datasync), then unsynced
// pages, on a mount with --wal-direct-io (pg_wal/* opened with direct I/O: no page cache, a shared
// mapping is refused).
TEST_P(PipelineCrashTest, KillOfPagefsKeepsAcknowledgedWalWritesUnderDirectIo) {
  constexpr int kPage = 8192, kPages = 64;
  auto page = [](char c) { return std::string(kPage, c); };
  auto mount = Mount({"--wal-direct-io"});
  ASSERT_NE(mount, nullptr);
  ASSERT_EQ(mkdir(Path("pg_wal").c_str(), 0700), 0) << strerror(errno);
  ASSERT_EQ(FsyncPath(dir_.path() + "/mnt", O_RDONLY | O_DIRECTORY), 0);
  int fd = open(Path("pg_wal/000000010000000000000001").c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << strerror(errno);
  int dfd = open(Path("pg_wal/000000010000000000000002").c_str(), O_CREAT | O_RDWR | O_DSYNC, 0600);
  ASSERT_GE(dfd, 0) << strerror(errno);
  ASSERT_EQ(FsyncPath(Path("pg_wal"), O_RDONLY | O_DIRECTORY), 0);
  // Direct I/O: the kernel cannot keep a shared mapping coherent and refuses it.
  ASSERT_EQ(ftruncate(fd, kPage), 0);
  void* map = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  EXPECT_EQ(map, MAP_FAILED) << "pg_wal/* should be opened with direct I/O";
  if (map != MAP_FAILED) munmap(map, kPage);
  for (int i = 0; i < kPages; ++i) {
    ASSERT_EQ(pwrite(fd, page(static_cast<char>('a' + i % 26)).data(), kPage, off_t{i} * kPage),
              kPage);
    ASSERT_EQ(fdatasync(fd), 0) << strerror(errno);
    ASSERT_EQ(pwrite(dfd, page('d').data(), kPage, off_t{i} * kPage), kPage) << strerror(errno);
  }
  // Unsynced: the second half overwritten (each page either old or new after the crash).
  for (int i = kPages / 2; i < kPages; ++i) {
    ASSERT_EQ(pwrite(fd, page('Z').data(), kPage, off_t{i} * kPage), kPage);
  }
  mount->Kill();
  close(fd);
  close(dfd);

  mount = Mount({"--wal-direct-io"});
  ASSERT_NE(mount, nullptr);
  std::string wal = ReadFile("pg_wal/000000010000000000000001");
  ASSERT_EQ(wal.size(), size_t{kPage} * kPages);
  for (int i = 0; i < kPages; ++i) {
    std::string got = wal.substr(size_t{kPage} * i, kPage);
    if (i >= kPages / 2 && got == page('Z')) continue;
    ASSERT_EQ(got, page(static_cast<char>('a' + i % 26)))
        << "page " << i << " is neither what was fdatasync'd nor the later write";
  }
  EXPECT_EQ(ReadFile("pg_wal/000000010000000000000002"), std::string(size_t{kPage} * kPages, 'd'));
  EXPECT_EQ(mount->Unmount(), 0);
}

// (h) kill -9 of pagefs right after an fsync that had nothing of its file to wait for, and right
// after one that waited only for its file's commits.
TEST_P(PipelineCrashTest, KillOfPagefsAfterAnFsyncOfACleanFileLeavesAPrefix) {
  // Round 0: pagefs is killed right after the fsync of the clean file, with everything else still
  // in flight (the pageserver stopped). Round 1: right after the fsync of the file that waited.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string d = absl::StrCat("d", round), clean_name = absl::StrCat("clean", round),
                      late_name = absl::StrCat("late", round);
    auto mount = Mount();
    ASSERT_NE(mount, nullptr);
    ASSERT_EQ(mkdir(Path(d).c_str(), 0755), 0) << strerror(errno);
    ASSERT_EQ(WriteAndFsync(clean_name, "durable data"), 0);
    int acknowledged = 10 * kOpsPerStep;
    for (int op = 0; op < acknowledged; ++op) ASSERT_EQ(RunOp(Path(d), op), 0) << "op " << op;
    ASSERT_EQ(FsyncPath(Path(d), O_RDONLY | O_DIRECTORY), 0);
    int fd = open(Path(clean_name).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << strerror(errno);
    // In flight while the pageserver is stopped: operations in d, a new file with data, more
    // operations in d.
    ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));
    int before_late = acknowledged + 10 * kOpsPerStep;
    for (int op = acknowledged; op < before_late; ++op) {
      ASSERT_EQ(RunOp(Path(d), op), 0) << "op " << op;
    }
    int lfd = open(Path(late_name).c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    ASSERT_GE(lfd, 0) << strerror(errno);
    ASSERT_EQ(write(lfd, "late data", 9), 9);
    int issued = before_late + 10 * kOpsPerStep;
    for (int op = before_late; op < issued; ++op) {
      ASSERT_EQ(RunOp(Path(d), op), 0) << "op " << op;
    }
    // Nothing of the clean file is in flight: its fsync does not wait for the stopped pageserver.
    auto clean = std::async(std::launch::async, [fd] { return fsync(fd) == 0 ? 0 : errno; });
    bool returned = clean.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
    if (!returned) kill(server_->pid(), SIGCONT);
    ASSERT_TRUE(returned) << "an fsync with nothing of its file in flight waited for others";
    EXPECT_EQ(clean.get(), 0);
    if (round == 0) {
      mount->Kill();  // the other operations may or may not have reached the pageserver
      ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
    } else {
      // The new file's flush goes behind everything issued so far: its fsync waits for all.
      auto late = std::async(std::launch::async, [lfd] { return fsync(lfd) == 0 ? 0 : errno; });
      ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);
      EXPECT_EQ(late.get(), 0);
      mount->Kill();  // right after it
    }
    close(fd);
    close(lfd);

    mount = Mount();
    ASSERT_NE(mount, nullptr);
    int k = MatchPrefix(Listing(Path(d)), round == 0 ? acknowledged : issued, issued);
    std::cerr << "round " << round << ": " << k - acknowledged << " of " << issued - acknowledged
              << " operations after the last fsyncdir survived the kill\n";
    EXPECT_EQ(ReadFile(clean_name), "durable data");
    struct stat st;
    if (round == 1) {
      EXPECT_EQ(ReadFile(late_name), "late data");
    } else if (stat(Path(late_name).c_str(), &st) == 0) {
      // Its create was issued after op before_late-1 and before op before_late: present only if
      // the surviving prefix reaches it; its unsynced data may be lost.
      EXPECT_GE(k, before_late) << "the new file survived but an operation before it did not";
      std::string got = ReadFile(late_name);
      EXPECT_TRUE(got.empty() || got == "late data") << got;
    } else {
      EXPECT_LE(k, before_late) << "an operation after the new file's create survived, it did not";
    }
    EXPECT_EQ(mount->Unmount(), 0);
  }
}

// (f) pagefs connected over the pageserver's Unix socket: commits go over it, and what fsync
// acknowledged survives kill -9 of pagefs (read back over TCP).
TEST_P(PipelineCrashTest, KillOfPagefsOverAUnixSocketKeepsWhatFsyncAcknowledged) {
  if (channel()) GTEST_SKIP() << "a gRPC transport test";
  ASSERT_EQ(server_->Stop(), 0);
  const std::string sock = dir_.path() + "/pageserver.sock";
  server_ = std::make_unique<PageserverProcess>(dir_.path() + "/pageserver",
                                                std::vector<std::string>{"--listen-unix", sock});
  absl::Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s;
  PagefsMount::Options o;
  o.pageserver = "unix:" + sock;
  o.tenant = "t1";
  o.timeline = "main";
  o.mountpoint = dir_.path() + "/mnt";
  auto over_unix = std::make_unique<PagefsMount>(o);
  s = over_unix->Mount();
  ASSERT_TRUE(s.ok()) << s;
  ASSERT_EQ(mkdir(Path("pg_wal").c_str(), 0700), 0) << strerror(errno);
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(WriteAndFsync(absl::StrCat("pg_wal/f", i), std::string(8192, 'a' + i)), 0) << i;
  }
  ASSERT_EQ(FsyncPath(Path("pg_wal"), O_RDONLY | O_DIRECTORY), 0);
  over_unix->Kill();

  auto mount = Mount();  // over TCP
  ASSERT_NE(mount, nullptr);
  for (int i = 0; i < 20; ++i) {
    std::string got(8192, '\0');
    int fd = open(Path(absl::StrCat("pg_wal/f", i)).c_str(), O_RDONLY);
    ASSERT_GE(fd, 0) << i << ": " << strerror(errno);
    ASSERT_EQ(read(fd, got.data(), got.size()), 8192) << i;
    close(fd);
    EXPECT_EQ(got, std::string(8192, 'a' + i)) << i;
  }
  EXPECT_EQ(mount->Unmount(), 0);
}

// (g) WAL written as PostgreSQL writes it, through the writeback cache (the default mount): each
// commit's records appended to the current 8 KiB page, the page rewritten and fdatasync'd. The
// kernel sends each fdatasync as WRITE, maybe SETATTR (times), FSYNC; pagefs issues the commit at
// the WRITE and the FSYNC waits for it.
TEST_P(PipelineCrashTest, WalCommitsIssuedAtTheWriteKeepWhatFdatasyncAcknowledged) {
  constexpr int kPage = 8192, kPages = 24, kRecords = 4, kRecord = kPage / kRecords;
  const std::string seg = "pg_wal/000000010000000000000001";
  auto mount = Mount();
  ASSERT_NE(mount, nullptr);
  ASSERT_EQ(mkdir(Path("pg_wal").c_str(), 0700), 0) << strerror(errno);
  ASSERT_EQ(FsyncPath(dir_.path() + "/mnt", O_RDONLY | O_DIRECTORY), 0);
  int fd = open(Path(seg).c_str(), O_CREAT | O_RDWR, 0600);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_EQ(FsyncPath(Path("pg_wal"), O_RDONLY | O_DIRECTORY), 0);
  std::string acknowledged;  // the file as the last fdatasync left it
  for (int r = 0; r < kPages * kRecords; ++r) {
    std::string rec(kRecord, static_cast<char>('a' + r % 26));
    ASSERT_EQ(pwrite(fd, rec.data(), kRecord, off_t{r} * kRecord), kRecord);
    ASSERT_EQ(fdatasync(fd), 0) << "record " << r << ": " << strerror(errno);
    acknowledged += rec;
  }
  // Unsynced: one more page past the end.
  ASSERT_EQ(pwrite(fd, std::string(kPage, 'Z').data(), kPage, off_t{kPages} * kPage), kPage);
  mount->Kill();
  close(fd);

  mount = Mount();
  ASSERT_NE(mount, nullptr);
  std::string wal = ReadFile(seg);
  ASSERT_GE(wal.size(), acknowledged.size()) << "the size an fdatasync acknowledged was lost";
  EXPECT_EQ(wal.substr(0, acknowledged.size()), acknowledged);
  if (wal.size() > acknowledged.size()) {
    EXPECT_EQ(wal.substr(acknowledged.size()), std::string(kPage, 'Z'));
  }

  // A WAL WRITE's commit in flight when the pageserver dies: its fdatasync fails, never succeeds.
  fd = open(Path(seg).c_str(), O_RDWR);
  ASSERT_GE(fd, 0) << strerror(errno);
  ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));
  ASSERT_EQ(pwrite(fd, std::string(kRecord, 'Q').data(), kRecord, 0), kRecord);
  auto synced = std::async(std::launch::async, [fd] { return fdatasync(fd) == 0 ? 0 : errno; });
  EXPECT_EQ(synced.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
      << "fdatasync returned while its commit could not be durable";
  server_->Kill();
  EXPECT_EQ(synced.get(), EIO);
  close(fd);
  mount->Kill();  // poisoned: it could not flush at unmount
  absl::Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s;
  mount = Mount();
  ASSERT_NE(mount, nullptr);
  wal = ReadFile(seg);
  ASSERT_GE(wal.size(), acknowledged.size());
  std::string first = wal.substr(0, kRecord);
  EXPECT_TRUE(first == acknowledged.substr(0, kRecord) || first == std::string(kRecord, 'Q'));
  EXPECT_EQ(wal.substr(kRecord, acknowledged.size() - kRecord), acknowledged.substr(kRecord));
  EXPECT_EQ(mount->Unmount(), 0);
}

// (i) a new WAL segment zero-filled as PostgreSQL makes one (a temporary file written with zeros
// 8 KiB at a time, fsync'd, renamed, the directory fsync'd; pagefs commits only its size: no
// page of a new file was ever stored), then records fdatasync'd into it; another one zero-filled
// and not synced. Round 0: kill -9 of pagefs; round 1: kill -9 of the pageserver with the
// second zero-fill in flight, whose fsync must fail. Either way the synced segment keeps its
// size, its acknowledged records and zeros elsewhere, and the other file (if its name survived)
// reads as zeros at a size it had.
TEST_P(PipelineCrashTest, KillAfterZeroFillingNewWalSegmentsKeepsWhatWasAcknowledged) {
  constexpr int kPage = 8192, kSegPages = 256;  // 2 MiB
  const std::string zeros(kPage, '\0');
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE(absl::StrCat("round ", round));
    const std::string wal = absl::StrCat("pg_wal", round);
    const std::string seg = wal + "/000000010000000000000001";
    auto mount = Mount();
    ASSERT_NE(mount, nullptr);
    ASSERT_EQ(mkdir(Path(wal).c_str(), 0700), 0) << strerror(errno);
    ASSERT_EQ(FsyncPath(dir_.path() + "/mnt", O_RDONLY | O_DIRECTORY), 0);
    auto zero_fill = [&](const std::string& name) {
      int fd = open(Path(name).c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
      EXPECT_GE(fd, 0) << strerror(errno);
      for (int i = 0; fd >= 0 && i < kSegPages; ++i) {
        EXPECT_EQ(pwrite(fd, zeros.data(), kPage, off_t{i} * kPage), kPage) << strerror(errno);
      }
      return fd;
    };
    int fd = zero_fill(wal + "/xlogtemp.1");
    ASSERT_GE(fd, 0);
    ASSERT_EQ(fsync(fd), 0) << strerror(errno);
    ASSERT_EQ(rename(Path(wal + "/xlogtemp.1").c_str(), Path(seg).c_str()), 0) << strerror(errno);
    ASSERT_EQ(FsyncPath(Path(wal), O_RDONLY | O_DIRECTORY), 0);
    // Records, each fdatasync'd, in the middle of the segment.
    std::string acknowledged;
    for (int i = 0; i < 8; ++i) {
      std::string rec(kPage, static_cast<char>('a' + i));
      ASSERT_EQ(pwrite(fd, rec.data(), kPage, off_t{100 + i} * kPage), kPage);
      ASSERT_EQ(fdatasync(fd), 0) << strerror(errno);
      acknowledged += rec;
    }
    close(fd);
    if (round == 1) {
      ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));
    }
    int tfd = zero_fill(wal + "/xlogtemp.2");
    ASSERT_GE(tfd, 0);
    if (round == 1) {
      auto synced = std::async(std::launch::async, [tfd] { return fsync(tfd) == 0 ? 0 : errno; });
      EXPECT_EQ(synced.wait_for(std::chrono::milliseconds(300)), std::future_status::timeout)
          << "fsync returned while its commits could not be durable";
      server_->Kill();
      EXPECT_EQ(synced.get(), EIO);
    }
    mount->Kill();
    close(tfd);
    if (round == 1) {
      absl::Status s = server_->Start();
      ASSERT_TRUE(s.ok()) << s;
    }
    mount = Mount();
    ASSERT_NE(mount, nullptr);
    std::string got = ReadFile(seg);
    ASSERT_EQ(got.size(), size_t{kPage} * kSegPages);
    EXPECT_EQ(got.substr(size_t{kPage} * 100, acknowledged.size()), acknowledged);
    got.erase(size_t{kPage} * 100, acknowledged.size());
    EXPECT_EQ(got.find_first_not_of('\0'), std::string::npos) << "a byte that was never written";
    struct stat st;
    if (stat(Path(wal + "/xlogtemp.2").c_str(), &st) == 0) {
      std::string temp = ReadFile(wal + "/xlogtemp.2");
      EXPECT_LE(temp.size(), size_t{kPage} * kSegPages);
      EXPECT_EQ(temp.find_first_not_of('\0'), std::string::npos);
    }
    EXPECT_EQ(mount->Unmount(), 0);
  }
}

// (j) a volatile file (--volatile-file: PostgreSQL's postmaster.pid in a compute): its fsync
// issues its data in order and returns without waiting for the pageserver, so it returns while
// the pageserver is stopped with other operations in flight; kill -9 of pagefs then leaves a
// prefix of the issued operations, in which the file's new data is present only if every
// operation issued before its fsync is. Its directory is renamed into place first (as initdb's
// data directory is), which the kernel does without a LOOKUP.
TEST_P(PipelineCrashTest, AVolatileFilesFsyncDoesNotWaitAndKeepsItsPlaceInTheOrder) {
  auto mount = Mount({"--volatile-file", "data/lock"});
  ASSERT_NE(mount, nullptr);
  ASSERT_EQ(mkdir(Path("data.new").c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(rename(Path("data.new").c_str(), Path("data").c_str()), 0) << strerror(errno);
  ASSERT_EQ(mkdir(Path("d").c_str(), 0755), 0) << strerror(errno);
  ASSERT_EQ(WriteAndFsync("data/lock", "old"), 0);
  int acknowledged = 10 * kOpsPerStep;
  for (int op = 0; op < acknowledged; ++op) ASSERT_EQ(RunOp(Path("d"), op), 0) << "op " << op;
  ASSERT_EQ(FsyncPath(Path("d"), O_RDONLY | O_DIRECTORY), 0);
  int fd = open(Path("data/lock").c_str(), O_WRONLY);
  ASSERT_GE(fd, 0) << strerror(errno);

  ASSERT_NO_FATAL_FAILURE(StopProcess(server_->pid()));
  int before_lock = acknowledged + 10 * kOpsPerStep;
  for (int op = acknowledged; op < before_lock; ++op) {
    ASSERT_EQ(RunOp(Path("d"), op), 0) << "op " << op;
  }
  ASSERT_EQ(pwrite(fd, "new", 3, 0), 3);
  // With the pageserver stopped, an fsync that waited for its commit could never return.
  auto synced = std::async(std::launch::async, [fd] { return fsync(fd) == 0 ? 0 : errno; });
  bool returned = synced.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  if (!returned) kill(server_->pid(), SIGCONT);
  ASSERT_TRUE(returned) << "the volatile file's fsync waited for the pageserver";
  EXPECT_EQ(synced.get(), 0);
  int issued = before_lock + 10 * kOpsPerStep;
  for (int op = before_lock; op < issued; ++op) {
    ASSERT_EQ(RunOp(Path("d"), op), 0) << "op " << op;
  }
  mount->Kill();
  close(fd);
  ASSERT_EQ(kill(server_->pid(), SIGCONT), 0);

  mount = Mount();
  ASSERT_NE(mount, nullptr);
  int k = MatchPrefix(Listing(Path("d")), acknowledged, issued);
  std::string lock = ReadFile("data/lock");
  std::cerr << k - acknowledged << " of " << issued - acknowledged
            << " operations after the last fsyncdir survived the kill; the file holds \"" << lock
            << "\"\n";
  EXPECT_TRUE(lock == "old" || lock == "new") << lock;
  if (lock == "new") {
    EXPECT_GE(k, before_lock) << "the file's new data survived but an operation before it did not";
  }
  if (k > before_lock) {
    EXPECT_EQ(lock, "new") << "an operation after the file's fsync survived";
  }
  EXPECT_EQ(mount->Unmount(), 0);
}

INSTANTIATE_TEST_SUITE_P(Transports, PipelineCrashTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& info) {
                           return info.param ? "CommitChannel" : "CommitStream";
                         });

}  // namespace
}  // namespace pgbranch::testing
