// Round trip through a real pageserver: `pagectl import` a directory tree into a timeline,
// `pagectl export` it again (also from a child timeline), and check that the copy is identical:
// contents (diff -r --no-dereference), modes, owners, mtimes, symlinks, hard links and holes.
//
// Needs the binaries `pgbranch-pageserver` and `pagectl`, found in $PGBRANCH_BIN_DIR (default: the
// build's bin directory). The PostgreSQL test needs /usr/lib/postgresql/15/bin/initdb (else
// skipped).

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/pageserver_process.h"

namespace {

constexpr char kInitdb[] = "/usr/lib/postgresql/15/bin/initdb";
constexpr char kPgControldata[] = "/usr/lib/postgresql/15/bin/pg_controldata";
constexpr char kTenant[] = "roundtrip";

using ::pgbranch::testing::PageserverProcess;

std::string PagectlPath() { return PageserverProcess::BinDir() + "/pagectl"; }

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
  ASSERT_TRUE(out.good()) << path;
}

// A directory under $TMPDIR (default /tmp), removed with its contents at the end.
class ScratchDir {
 public:
  ScratchDir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl =
        std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/pagectl_test.XXXXXX";
    char* made = mkdtemp(tmpl.data());
    if (made == nullptr) std::abort();
    path_ = made;
  }
  ~ScratchDir() {
    std::error_code ec;
    // Read-only directories from the trees would stop remove_all; make everything writable.
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    for (auto it = std::filesystem::recursive_directory_iterator(path_, ec);
         it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      if (it->is_directory(ec) && !it->is_symlink(ec)) {
        std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                     std::filesystem::perm_options::add, ec);
      }
    }
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string Sub(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Runs argv[0] (a path) with stdout and stderr captured.
CommandResult RunCommand(const std::vector<std::string>& argv) {
  ScratchDir io;
  std::string out_path = io.Sub("out"), err_path = io.Sub("err");
  pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(out, STDOUT_FILENO);
    dup2(err, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::perror("exec");
    _exit(127);
  }
  CommandResult result;
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  return result;
}

std::string Describe(const CommandResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\nstdout:\n" + r.out + "\nstderr:\n" + r.err;
}

class PagectlRoundTripTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    work_ = new ScratchDir();
    server_ = new PageserverProcess(work_->Sub("data"));
    absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
    CommandResult r = Pagectl({"tenant", "create", "--id", kTenant, "--root-timeline", "unused"});
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }

  static void TearDownTestSuite() {
    delete server_;  // kills the process
    delete work_;
  }

  static CommandResult Pagectl(std::vector<std::string> args) {
    std::vector<std::string> argv = {PagectlPath(), "--pageserver", server_->address(), "-q"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv);
  }

  static void CreateTimeline(const std::string& id, const std::string& parent = "") {
    std::vector<std::string> args = {"timeline", "create", "--tenant", kTenant, "--id", id};
    if (!parent.empty()) args.insert(args.end(), {"--parent", parent});
    CommandResult r = Pagectl(args);
    ASSERT_EQ(r.exit_code, 0) << Describe(r);
  }

  static CommandResult Import(const std::string& timeline, const std::string& dir) {
    return Pagectl({"import", "--tenant", kTenant, "--timeline", timeline, "-o", "json", dir});
  }

  static CommandResult Export(const std::string& timeline, const std::string& dir,
                              uint64_t lsn = 0) {
    return Pagectl(
        {"export", "--tenant", kTenant, "--timeline", timeline, "--lsn", std::to_string(lsn), dir});
  }

  // Type, mode, size (not for directories, whose size depends on the host filesystem), owner,
  // mtime with nanoseconds and symlink target of every path under `dir`, sorted.
  static std::vector<std::string> StatListing(const std::string& dir) {
    CommandResult dirs =
        RunCommand({"find", dir, "-type", "d", "-printf", "%P|%y|%m|%U|%G|%T@\\n"});
    CommandResult others =
        RunCommand({"find", dir, "!", "-type", "d", "-printf", "%P|%y|%m|%s|%U|%G|%T@|%l\\n"});
    EXPECT_EQ(dirs.exit_code, 0) << Describe(dirs);
    EXPECT_EQ(others.exit_code, 0) << Describe(others);
    std::vector<std::string> lines;
    std::istringstream in(dirs.out + others.out);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
  }

  static void ExpectSameTree(const std::string& want, const std::string& got) {
    CommandResult diff = RunCommand({"diff", "-r", "--no-dereference", want, got});
    EXPECT_EQ(diff.exit_code, 0) << Describe(diff).substr(0, 4000);
    std::vector<std::string> want_lines = StatListing(want);
    std::vector<std::string> got_lines = StatListing(got);
    EXPECT_GT(want_lines.size(), 1u);
    std::vector<std::string> missing, extra;
    std::set_difference(want_lines.begin(), want_lines.end(), got_lines.begin(), got_lines.end(),
                        std::back_inserter(missing));
    std::set_difference(got_lines.begin(), got_lines.end(), want_lines.begin(), want_lines.end(),
                        std::back_inserter(extra));
    std::string report;
    for (size_t i = 0; i < missing.size() && i < 10; ++i) report += "  want: " + missing[i] + "\n";
    for (size_t i = 0; i < extra.size() && i < 10; ++i) report += "  got:  " + extra[i] + "\n";
    EXPECT_TRUE(missing.empty() && extra.empty())
        << missing.size() << " paths differ in type, mode, size, owner, mtime or target "
        << "(path|type|mode|size|uid|gid|mtime|target):\n"
        << report;
  }

  static ScratchDir* work_;
  static PageserverProcess* server_;
};

ScratchDir* PagectlRoundTripTest::work_ = nullptr;
PageserverProcess* PagectlRoundTripTest::server_ = nullptr;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng());
  return s;
}

void SetMtime(const std::string& path, time_t sec, long nsec) {
  struct timespec times[2] = {{sec, nsec}, {sec, nsec}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), times, AT_SYMLINK_NOFOLLOW), 0) << path;
}

// A tree with the awkward cases: empty and page-boundary sizes, holes, zero pages, a file large
// enough for several commits, a directory of more entries than one Scan returns, symlinks
// (relative, absolute, dangling, to a directory), hard links, odd names, read-only directories.
void MakeSyntheticTree(const std::string& root) {
  namespace fsys = std::filesystem;
  fsys::create_directories(root + "/a/b/c/d");
  fsys::create_directories(root + "/empty dir");
  fsys::create_directories(root + "/many");
  fsys::create_directories(root + "/read-only/inner");
  WriteFile(root + "/empty", "");
  WriteFile(root + "/f8191", RandomBytes(8191, 1));
  WriteFile(root + "/f8192", RandomBytes(8192, 2));
  WriteFile(root + "/f8193", RandomBytes(8193, 3));
  WriteFile(root + "/one byte", "x");
  WriteFile(root + "/big", RandomBytes(9 * 1024 * 1024 + 17, 4));  // several commits
  // Zero pages in the middle and a page whose second half is zeros.
  std::string mixed = RandomBytes(8192, 5) + std::string(3 * 8192, '\0') + RandomBytes(4096, 6) +
                      std::string(4096, '\0') + RandomBytes(10, 7);
  WriteFile(root + "/zero pages", mixed);
  WriteFile(root + "/trailing zeros", RandomBytes(100, 8) + std::string(20000, '\0'));
  {
    int fd = open((root + "/sparse").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(pwrite(fd, "head", 4, 0), 4);
    ASSERT_EQ(pwrite(fd, "tail", 4, 5 * 1024 * 1024 + 3), 4);
    close(fd);
  }
  WriteFile(root + "/a/b/c/d/deep", "deep file\n");
  WriteFile(root + "/a/b/file", "in b\n");
  WriteFile(root + "/ünïcödé 日本語.txt", "unicode name\n");
  WriteFile(root + "/with space", "spaces\n");
  WriteFile(root + "/tab\tname", "tab\n");
  WriteFile(root + "/read-only/inner/file", "protected\n");
  for (int i = 0; i < 2500; ++i) WriteFile(root + "/many/file" + std::to_string(i), "");
  ASSERT_EQ(symlink("a/b/file", (root + "/link to file").c_str()), 0);
  ASSERT_EQ(symlink("a/b", (root + "/link to dir").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/target", (root + "/dangling").c_str()), 0);
  ASSERT_EQ(symlink("../../..", (root + "/a/b/up").c_str()), 0);
  WriteFile(root + "/hard1", "linked\n");
  ASSERT_EQ(link((root + "/hard1").c_str(), (root + "/a/hard2").c_str()), 0);
  chmod((root + "/f8191").c_str(), 0600);
  chmod((root + "/f8192").c_str(), 0755);
  chmod((root + "/f8193").c_str(), 0640);
  chmod((root + "/a/b/c").c_str(), 0750);
  SetMtime(root + "/f8193", 981173106, 123456789);
  SetMtime(root + "/dangling", 1000000000, 42);
  chmod((root + "/read-only/inner").c_str(), 0555);
  chmod((root + "/read-only").c_str(), 0500);
  // Last: creating entries changes a directory's mtime.
  SetMtime(root + "/a/b", 1234567890, 987654321);
}

ino_t InodeOf(const std::string& path) {
  struct stat st;
  return lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

uint64_t LsnFromJson(const std::string& json) {
  size_t at = json.find("\"lsn\": ");
  return at == std::string::npos ? 0 : std::strtoull(json.c_str() + at + 7, nullptr, 10);
}

TEST_F(PagectlRoundTripTest, SyntheticTreeRoundTrips) {
  ScratchDir dir;
  std::string src = dir.Sub("src");
  MakeSyntheticTree(src);
  CreateTimeline("synthetic");

  CommandResult imported = Import("synthetic", src);
  ASSERT_EQ(imported.exit_code, 0) << Describe(imported);
  uint64_t lsn = LsnFromJson(imported.out);
  ASSERT_GT(lsn, 1u) << "a 9 MiB file needs several commits: " << imported.out;

  CommandResult exported = Export("synthetic", dir.Sub("out"));
  ASSERT_EQ(exported.exit_code, 0) << Describe(exported);
  ExpectSameTree(src, dir.Sub("out"));
  EXPECT_EQ(InodeOf(dir.Sub("out/hard1")), InodeOf(dir.Sub("out/a/hard2")));
  struct stat st;
  ASSERT_EQ(stat(dir.Sub("out/sparse").c_str(), &st), 0);
  EXPECT_LT(st.st_blocks * 512, st.st_size) << "the hole was not kept";

  // A child branch sees the same tree.
  CreateTimeline("synthetic-child", "synthetic");
  CommandResult child = Export("synthetic-child", dir.Sub("child"));
  ASSERT_EQ(child.exit_code, 0) << Describe(child);
  ExpectSameTree(src, dir.Sub("child"));

  // The same LSN, given explicitly, exports the same tree.
  CommandResult at_lsn = Export("synthetic", dir.Sub("at-lsn"), lsn);
  ASSERT_EQ(at_lsn.exit_code, 0) << Describe(at_lsn);
  ExpectSameTree(src, dir.Sub("at-lsn"));

  // Before the last commit the superblock is missing: there is no filesystem yet.
  CommandResult partial = Export("synthetic", dir.Sub("partial"), lsn - 1);
  EXPECT_EQ(partial.exit_code, 1) << Describe(partial);
  EXPECT_NE(partial.err.find("FAILED_PRECONDITION"), std::string::npos) << partial.err;

  // Import only writes into an empty timeline; the child holds its parent's tree.
  CommandResult again = Import("synthetic-child", src);
  EXPECT_EQ(again.exit_code, 1) << Describe(again);
  EXPECT_NE(again.err.find("FAILED_PRECONDITION"), std::string::npos) << again.err;

  // Export only writes into an empty directory.
  CommandResult not_empty = Export("synthetic", src);
  EXPECT_EQ(not_empty.exit_code, 1) << Describe(not_empty);
  EXPECT_NE(not_empty.err.find("not empty"), std::string::npos) << not_empty.err;
}

TEST_F(PagectlRoundTripTest, SkipsSpecialFilesWithAWarning) {
  ScratchDir dir;
  std::string src = dir.Sub("src");
  std::filesystem::create_directories(src);
  WriteFile(src + "/regular", "data\n");
  ASSERT_EQ(mkfifo((src + "/fifo").c_str(), 0600), 0);
  CreateTimeline("special");
  CommandResult imported = Import("special", src);
  ASSERT_EQ(imported.exit_code, 0) << Describe(imported);
  EXPECT_NE(imported.err.find("warning: skipping fifo"), std::string::npos) << imported.err;
  CommandResult exported = Export("special", dir.Sub("out"));
  ASSERT_EQ(exported.exit_code, 0) << Describe(exported);
  EXPECT_EQ(ReadFile(dir.Sub("out/regular")), "data\n");
  EXPECT_FALSE(std::filesystem::exists(dir.Sub("out/fifo")));
}

TEST_F(PagectlRoundTripTest, ReportsErrorsWithTheirCode) {
  CommandResult missing = Pagectl({"timeline", "info", "--tenant", kTenant, "no-such-timeline"});
  EXPECT_EQ(missing.exit_code, 1) << Describe(missing);
  EXPECT_NE(missing.err.find("error: "), std::string::npos);
  EXPECT_NE(missing.err.find("NOT_FOUND"), std::string::npos) << missing.err;
  CommandResult usage = Pagectl({"timeline", "info", "--tenant"});
  EXPECT_EQ(usage.exit_code, 2) << Describe(usage);
  EXPECT_NE(usage.err.find("usage: pagectl"), std::string::npos) << usage.err;
  CommandResult json = Pagectl({"tenant", "list", "-o", "json"});
  EXPECT_EQ(json.exit_code, 0) << Describe(json);
  EXPECT_NE(json.out.find("\"tenant_id\": \"roundtrip\""), std::string::npos) << json.out;
}

TEST_F(PagectlRoundTripTest, PostgresDataDirectoryRoundTrips) {
  if (access(kInitdb, X_OK) != 0) GTEST_SKIP() << kInitdb << " is not installed";
  ScratchDir dir;
  std::string pgdata = dir.Sub("pgdata");
  std::vector<std::string> initdb = {kInitdb, "-D", pgdata, "-U", "postgres", "--no-sync"};
  if (geteuid() == 0) {
    // initdb refuses to run as root: run it as the postgres user in a directory it owns.
    CommandResult chown = RunCommand({"chown", "postgres:postgres", dir.path()});
    ASSERT_EQ(chown.exit_code, 0) << Describe(chown);
    initdb.insert(initdb.begin(), {"runuser", "-u", "postgres", "--"});
  }
  CommandResult init = RunCommand(initdb);
  ASSERT_EQ(init.exit_code, 0) << Describe(init);

  CreateTimeline("postgres");
  CommandResult imported = Import("postgres", pgdata);
  ASSERT_EQ(imported.exit_code, 0) << Describe(imported);
  CommandResult exported = Export("postgres", dir.Sub("out"));
  ASSERT_EQ(exported.exit_code, 0) << Describe(exported);
  ExpectSameTree(pgdata, dir.Sub("out"));
  CommandResult control = RunCommand({kPgControldata, dir.Sub("out")});
  EXPECT_EQ(control.exit_code, 0) << Describe(control);
  EXPECT_NE(control.out.find("Database cluster state:               shut down"), std::string::npos)
      << control.out;

  CreateTimeline("postgres-child", "postgres");
  CommandResult child = Export("postgres-child", dir.Sub("child"));
  ASSERT_EQ(child.exit_code, 0) << Describe(child);
  ExpectSameTree(pgdata, dir.Sub("child"));
}

TEST(PagectlAuthTest, SendsTheBearerToken) {
  ScratchDir dir;
  WriteFile(dir.Sub("tokens.yaml"), "tokens:\n  - token: \"admin-secret\"\n    scope: admin\n");
  WriteFile(dir.Sub("token"), "admin-secret\n");
  WriteFile(dir.Sub("wrong"), "wrong-secret\n");
  PageserverProcess server(dir.Sub("data"), {"--token-file", dir.Sub("tokens.yaml")});
  absl::Status started = server.Start();
  ASSERT_TRUE(started.ok()) << started;
  std::string pagectl = PagectlPath();

  CommandResult ok = RunCommand({pagectl, "--pageserver", server.address(), "--token-file",
                                 dir.Sub("token"), "tenant", "list"});
  EXPECT_EQ(ok.exit_code, 0) << Describe(ok);
  CommandResult wrong = RunCommand({pagectl, "--pageserver", server.address(), "--token-file",
                                    dir.Sub("wrong"), "tenant", "list"});
  EXPECT_EQ(wrong.exit_code, 1) << Describe(wrong);
  EXPECT_NE(wrong.err.find("UNAUTHENTICATED"), std::string::npos) << wrong.err;
  CommandResult none = RunCommand({pagectl, "--pageserver", server.address(), "tenant", "list"});
  EXPECT_EQ(none.exit_code, 1) << Describe(none);
  // The token from the environment.
  setenv("PGBRANCH_TOKEN", "admin-secret", 1);
  CommandResult env = RunCommand({pagectl, "--pageserver", server.address(), "tenant", "list"});
  unsetenv("PGBRANCH_TOKEN");
  EXPECT_EQ(env.exit_code, 0) << Describe(env);
}

// `pagectl token mint` against a pageserver with --token-signing-key-file: an admin token creates
// tenants, a tenant token lists its own tenant's timelines and is refused on another.
TEST(PagectlAuthTest, MintedTokensAreAcceptedWithinTheirScope) {
  ScratchDir dir;
  WriteFile(dir.Sub("signing-key"), "pagectl-test-key-0123456789abcdef0123\n");
  WriteFile(dir.Sub("other-key"), "pagectl-other-key-0123456789abcdef012\n");
  PageserverProcess server(dir.Sub("data"), {"--token-signing-key-file", dir.Sub("signing-key")});
  absl::Status started = server.Start();
  ASSERT_TRUE(started.ok()) << started;
  const std::string pagectl = PagectlPath();
  auto mint = [&](std::vector<std::string> args, const std::string& out_file) {
    std::vector<std::string> cmd = {pagectl, "token", "mint"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    CommandResult r = RunCommand(cmd);
    EXPECT_EQ(r.exit_code, 0) << Describe(r);
    EXPECT_EQ(r.out.rfind("pgb1.", 0), 0u) << r.out;
    WriteFile(dir.Sub(out_file), r.out);
  };
  mint({"--signing-key-file", dir.Sub("signing-key"), "--scope", "admin", "--ttl", "1h"}, "admin");
  mint({"--signing-key-file", dir.Sub("signing-key"), "--tenant", "team-a"}, "team-a");
  mint({"--signing-key-file", dir.Sub("other-key"), "--scope", "admin"}, "forged");
  auto run = [&](const std::string& token, std::vector<std::string> args) {
    std::vector<std::string> cmd = {pagectl, "--pageserver", server.address(), "--token-file",
                                    dir.Sub(token)};
    cmd.insert(cmd.end(), args.begin(), args.end());
    return RunCommand(cmd);
  };
  for (const char* tenant : {"team-a", "team-b"}) {
    CommandResult created = run("admin", {"tenant", "create", "--id", tenant});
    ASSERT_EQ(created.exit_code, 0) << Describe(created);
  }
  CommandResult own = run("team-a", {"timeline", "list", "--tenant", "team-a"});
  EXPECT_EQ(own.exit_code, 0) << Describe(own);
  CommandResult other = run("team-a", {"timeline", "list", "--tenant", "team-b"});
  EXPECT_EQ(other.exit_code, 1) << Describe(other);
  EXPECT_NE(other.err.find("PERMISSION_DENIED"), std::string::npos) << other.err;
  CommandResult forged = run("forged", {"tenant", "list"});
  EXPECT_EQ(forged.exit_code, 1) << Describe(forged);
  EXPECT_NE(forged.err.find("bad signature"), std::string::npos) << forged.err;

  // Bad mint requests say what to write instead.
  CommandResult no_tenant = RunCommand({pagectl, "token", "mint", "--signing-key-file",
                                        dir.Sub("signing-key"), "--scope", "tenant"});
  EXPECT_NE(no_tenant.exit_code, 0);
  EXPECT_NE(no_tenant.err.find("--tenant"), std::string::npos) << no_tenant.err;
  CommandResult bad_ttl = RunCommand({pagectl, "token", "mint", "--signing-key-file",
                                      dir.Sub("signing-key"), "--tenant", "t", "--ttl", "soon"});
  EXPECT_NE(bad_ttl.exit_code, 0);
  EXPECT_NE(bad_ttl.err.find("--ttl"), std::string::npos) << bad_ttl.err;
}

}  // namespace
