#include "compute/gated_child.h"
#include "tests/unit/compute/scratch_dir.h"

#include <gtest/gtest.h>

#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

namespace pgbranch::compute {
namespace {

using std::chrono::seconds;

// PGBRANCH_START_GATE_LIB: the library's path in the build tree (CMake).
const std::string kLibrary = PGBRANCH_START_GATE_LIB;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A shell that writes its arguments (after the gate stripped their prefix) and its environment's
// gate variables to `out`.
SpawnOptions Shell(const std::string& out) {
  SpawnOptions o;
  o.argv = {"/bin/sh",
            "-c",
            "echo \"$0 $1 [${LD_PRELOAD:-}] [${PGBRANCH_START_GATE_FD:-}]\" > \"$2\"",
            std::string(kGatedPrefix) + "config_file=x",
            "plain",
            out};
  o.env = {"PATH=/usr/bin:/bin"};
  return o;
}

TEST(GatedChildTest, HeldUntilOpenedThenRunsWithItsArgumentsRestored) {
  ScratchDir dir("gate");
  const std::string out = dir.path() + "/out";
  absl::StatusOr<GatedChild> gated = GatedChild::Spawn(Shell(out), kLibrary);
  ASSERT_TRUE(gated.ok()) << gated.status();
  ASSERT_TRUE(gated->held());
  // Held before main(): the shell has not run.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_FALSE(std::filesystem::exists(out));
  absl::StatusOr<ChildProcess> child = gated->Open(seconds(30));
  ASSERT_TRUE(child.ok()) << child.status();
  EXPECT_FALSE(gated->held());
  ASSERT_TRUE(child->WaitFor(seconds(30)));
  EXPECT_EQ(child->exit_code(), 0);
  // The prefix is gone, other arguments are unchanged, and the gate's variables are not passed
  // on to what the program starts.
  EXPECT_EQ(ReadAll(out), "config_file=x plain [] []\n");
}

TEST(GatedChildTest, DiscardedChildExitsWithoutRunning) {
  ScratchDir dir("gate");
  const std::string out = dir.path() + "/out";
  absl::StatusOr<GatedChild> gated = GatedChild::Spawn(Shell(out), kLibrary);
  ASSERT_TRUE(gated.ok()) << gated.status();
  gated->Discard();
  EXPECT_FALSE(gated->held());
  EXPECT_FALSE(std::filesystem::exists(out));
  EXPECT_FALSE(gated->Open(seconds(1)).ok());
}

TEST(GatedChildTest, ChildTheLibraryDidNotReachIsNotOpened) {
  ScratchDir dir("gate");
  const std::string out = dir.path() + "/out";
  // Not loadable: the loader ignores it and the program runs ungated (here it just exits).
  SpawnOptions o;
  o.argv = {"/bin/true"};
  o.env = {"PATH=/usr/bin:/bin"};
  absl::StatusOr<GatedChild> gated = GatedChild::Spawn(o, dir.path() + "/missing.so");
  ASSERT_TRUE(gated.ok()) << gated.status();
  absl::StatusOr<ChildProcess> child = gated->Open(seconds(30));
  EXPECT_FALSE(child.ok());
  EXPECT_FALSE(gated->held());
}

TEST(GatedChildTest, StartGateLibraryIsLookedUpNextToTheExecutable) {
  // The test binary's directory holds no such library.
  EXPECT_EQ(StartGateLibraryNextToExecutable(), "");
}

}  // namespace
}  // namespace pgbranch::compute
