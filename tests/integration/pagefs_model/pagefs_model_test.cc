// Model test of pagefs (DESIGN.md section 3): random file operations applied in lockstep to a real
// pagefs mount (a real pageserver behind it) and to a directory on the local filesystem must give
// the same results, before and after a remount by a fresh pagefs process; after a SIGKILL of
// pagefs (following an fsync of a directory, which makes every namespace change durable), every
// fsynced file must still hold its fsynced content.
//
// PGBRANCH_PAGEFS_MODEL_OPS (default 1500) sets the operations per seed;
// PGBRANCH_PAGEFS_MODEL_SEED runs that one seed instead of the fixed ones;
// PGBRANCH_PAGEFS_MODEL_RDONLY_TRUNC=0 leaves open(O_RDONLY | O_TRUNC) out and
// PGBRANCH_PAGEFS_MODEL_DIR_NLINK=0 the link count of directories seen through open handles (to
// look past those known differences while hunting for others).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/integration/pagefs_model/lockstep_runner.h"
#include "tests/support/pagefs_mount.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch::pagefs_model {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;
using pgbranch::testing::PagefsMount;
using pgbranch::testing::PageserverProcess;
using pgbranch::testing::TempDir;

constexpr size_t kLogTail = 60;

uint64_t EnvNumber(const char* name, uint64_t fallback) {
  const char* v = getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  return strtoull(v, nullptr, 10);
}

std::vector<uint64_t> Seeds(std::vector<uint64_t> fixed) {
  uint64_t seed = EnvNumber("PGBRANCH_PAGEFS_MODEL_SEED", 0);
  return seed != 0 ? std::vector<uint64_t>{seed} : fixed;
}

class PagefsModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    umask(022);
    server_ = std::make_unique<PageserverProcess>(dir_.path() + "/pageserver");
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    stub_ = server_->NewStub();
  }

  // A new tenant whose root timeline "main" holds no filesystem yet.
  void CreateTenant(const std::string& tenant) {
    v1::CreateTenantRequest req;
    req.set_tenant_id(tenant);
    req.set_root_timeline_id("main");
    v1::Tenant resp;
    grpc::ClientContext ctx;
    grpc::Status s = stub_->CreateTenant(&ctx, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();
  }

  std::unique_ptr<PagefsMount> NewMount(const std::string& tenant) {
    PagefsMount::Options o;
    o.pageserver = server_->address();
    o.tenant = tenant;
    o.timeline = "main";
    o.mountpoint = absl::StrCat(dir_.path(), "/mnt-", tenant);
    return std::make_unique<PagefsMount>(o);
  }

  // The compared tree sits two levels below each side's top so that a symlink "../x" moved up
  // to the tree's root still resolves inside that side (to model/x, the same on both sides).
  static std::string TreeRoot(const std::string& top) {
    std::string root = top + "/model/tree";
    std::filesystem::create_directories(root);
    return root;
  }

  static std::string Report(const LockstepRunner& runner) {
    return absl::StrCat(runner.failure(), "\nlast operations (pagefs / local):\n",
                        runner.LogTail(kLogTail));
  }

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
  std::unique_ptr<v1::PageService::Stub> stub_;
};

TEST_F(PagefsModelTest, RandomOperationsMatchLocalDirectoryAndSurviveRemount) {
  int ops = static_cast<int>(EnvNumber("PGBRANCH_PAGEFS_MODEL_OPS", 1500));
  for (uint64_t seed : Seeds({1, 2, 3, 4})) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::string tenant = absl::StrCat("model-", seed);
    ASSERT_NO_FATAL_FAILURE(CreateTenant(tenant));
    TempDir local;
    std::unique_ptr<PagefsMount> mount = NewMount(tenant);
    absl::Status s = mount->Mount();
    ASSERT_TRUE(s.ok()) << s;

    LockstepRunner::Options options;
    options.seed = seed;
    options.rdonly_trunc = EnvNumber("PGBRANCH_PAGEFS_MODEL_RDONLY_TRUNC", 1) != 0;
    options.removed_dir_nlink = EnvNumber("PGBRANCH_PAGEFS_MODEL_DIR_NLINK", 1) != 0;
    LockstepRunner runner(TreeRoot(mount->mountpoint()), TreeRoot(local.path()), options);
    ASSERT_TRUE(runner.Run(ops)) << Report(runner);
    std::cerr << "seed " << seed << " (succeeded/ran): " << runner.Stats() << "\n";
    ASSERT_TRUE(runner.CloseAll()) << Report(runner);
    ASSERT_TRUE(runner.CompareTrees()) << "before the remount: " << Report(runner);

    EXPECT_EQ(mount->Unmount(), 0) << "pagefs exit code at unmount";
    mount = NewMount(tenant);
    s = mount->Mount();
    ASSERT_TRUE(s.ok()) << s;
    ASSERT_TRUE(runner.CompareTrees()) << "after the remount: " << Report(runner);
    EXPECT_EQ(mount->Unmount(), 0);
  }
}

TEST_F(PagefsModelTest, FsyncedFilesSurviveKill) {
  int ops = static_cast<int>(EnvNumber("PGBRANCH_PAGEFS_MODEL_OPS", 1500)) / 2;
  for (uint64_t seed : Seeds({101, 102})) {
    SCOPED_TRACE(absl::StrCat("seed ", seed));
    std::string tenant = absl::StrCat("crash-", seed);
    ASSERT_NO_FATAL_FAILURE(CreateTenant(tenant));
    TempDir local;
    std::unique_ptr<PagefsMount> mount = NewMount(tenant);
    absl::Status s = mount->Mount();
    ASSERT_TRUE(s.ok()) << s;

    LockstepRunner::Options options;
    options.seed = seed;
    options.rdonly_trunc = EnvNumber("PGBRANCH_PAGEFS_MODEL_RDONLY_TRUNC", 1) != 0;
    options.removed_dir_nlink = EnvNumber("PGBRANCH_PAGEFS_MODEL_DIR_NLINK", 1) != 0;
    options.crash_mode = true;
    LockstepRunner runner(TreeRoot(mount->mountpoint()), TreeRoot(local.path()), options);
    ASSERT_TRUE(runner.Run(ops)) << Report(runner);
    // Then every open file is fsynced and a few more operations modify some of them again.
    ASSERT_TRUE(runner.FillHandles()) << Report(runner);
    ASSERT_TRUE(runner.Run(30)) << Report(runner);
    ASSERT_TRUE(runner.FsyncAll()) << Report(runner);
    ASSERT_TRUE(runner.Run(15)) << Report(runner);
    // Namespace changes are pipelined, durable at the next fsync or fsyncdir of anything: one
    // fsync of a directory makes them all durable (the kill -9 tests of the pipeline in
    // tests/integration/crash check what a kill before it leaves). Handles stay open and unsynced
    // writes stay buffered: the kill loses them.
    {
      int dfd = open(TreeRoot(mount->mountpoint()).c_str(), O_RDONLY | O_DIRECTORY);
      ASSERT_GE(dfd, 0) << strerror(errno);
      EXPECT_EQ(fsync(dfd), 0) << strerror(errno);
      close(dfd);
    }
    mount->Kill();
    runner.AbandonHandles();
    mount = NewMount(tenant);
    s = mount->Mount();
    ASSERT_TRUE(s.ok()) << s;
    int checked = 0;
    ASSERT_TRUE(runner.CompareAfterCrash(&checked)) << "after the kill: " << Report(runner);
    EXPECT_GT(checked, 0) << "no fsynced file was left to check (" << runner.fsyncs() << " fsyncs)";
    std::cerr << "seed " << seed << ": " << runner.fsyncs() << " fsyncs, " << checked
              << " fsynced files checked after the kill\n";
    EXPECT_EQ(mount->Unmount(), 0);
  }
}

}  // namespace
}  // namespace pgbranch::pagefs_model
