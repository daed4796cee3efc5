#pragma once

// 3.12: fuse_loop_cfg_* (the number of worker threads)
#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>

#include "pageserver/pagefs/pagefs.h"
#include "pageserver/pagefs/pagefs_metrics.h"

namespace pgbranch::pagefs {

// The libfuse low-level operations table for a PageFs; the session's userdata must point to a
// FuseContext. Handlers only convert between FUSE structures and PageFs calls.
struct FuseContext {
  PageFs* fs;
  PageFsMetrics* metrics;  // may be null
  double entry_timeout;    // seconds the kernel may cache names and attributes
};

const fuse_lowlevel_ops* PageFsOperations();

}  // namespace pgbranch::pagefs
