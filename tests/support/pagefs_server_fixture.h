#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/pagefs_mount.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch::testing {

// The fixture of the tests that run pagefs over a real pageserver (they need root and
// /dev/fuse): a pageserver on a fresh temporary directory, with tenant kTenant whose root
// timeline is kTimeline, mounted read-write at <dir>/mnt on demand.
class PagefsServerTest : public ::testing::Test {
 protected:
  static constexpr char kTenant[] = "t1";
  static constexpr char kTimeline[] = "main";

  // Starts the pageserver and creates the tenant (a fatal failure if either fails).
  void SetUp() override;

  // Mounts the timeline read-write at <dir>/mnt, pagefs run with `extra_args`; null (and a test
  // failure) when the mount does not come up.
  std::unique_ptr<PagefsMount> Mount(const std::vector<std::string>& extra_args = {});
  // `rel` under the mount point.
  std::string Path(const std::string& rel) const { return dir_.path() + "/mnt/" + rel; }

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
};

}  // namespace pgbranch::testing
