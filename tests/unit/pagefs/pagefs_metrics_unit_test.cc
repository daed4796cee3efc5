// PageFsMetrics::ObserveOp keeps each operation's counter and histogram after the first request
// (no label map per request): the series must stay exactly what they were.
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "pageserver/pagefs/pagefs_metrics.h"

namespace pgbranch::pagefs {
namespace {

bool Has(const std::string& text, const std::string& line) {
  return absl::StrContains(text, absl::StrCat("\n", line, "\n"));
}

TEST(PageFsMetricsTest, CountsEachOperationAndResult) {
  PageFsMetrics m;
  for (int i = 0; i < 3; ++i) m.ObserveOp("write", 0.00002, 0);
  m.ObserveOp("fsync", 0.002, 0);
  std::string text = m.Text();
  EXPECT_TRUE(Has(text, R"(pgbranch_pagefs_operations_total{op="write",result="ok"} 3)")) << text;
  EXPECT_TRUE(Has(text, R"(pgbranch_pagefs_operations_total{op="fsync",result="ok"} 1)")) << text;
  EXPECT_TRUE(Has(text, R"(pgbranch_pagefs_operation_duration_seconds_count{op="write"} 3)"))
      << text;
  EXPECT_TRUE(
      Has(text, R"(pgbranch_pagefs_operation_duration_seconds_bucket{op="write",le="5e-05"} 3)"))
      << text;
  EXPECT_TRUE(
      Has(text, R"(pgbranch_pagefs_operation_duration_seconds_bucket{op="fsync",le="0.001"} 0)"))
      << text;
  // No error series until an operation fails.
  EXPECT_FALSE(absl::StrContains(text, R"(result="error")")) << text;

  m.ObserveOp("write", 0.00002, 5);
  text = m.Text();
  EXPECT_TRUE(Has(text, R"(pgbranch_pagefs_operations_total{op="write",result="error"} 1)"))
      << text;
  EXPECT_TRUE(Has(text, R"(pgbranch_pagefs_operations_total{op="write",result="ok"} 3)")) << text;
  EXPECT_TRUE(Has(text, R"(pgbranch_pagefs_operation_duration_seconds_count{op="write"} 4)"))
      << text;
}

// The same name at another address (another translation unit's literal) is the same series.
TEST(PageFsMetricsTest, SameNameAtAnotherAddressIsOneSeries) {
  PageFsMetrics m;
  std::string a = "read", b = "read";
  m.ObserveOp(a.c_str(), 0.0001, 0);
  m.ObserveOp(b.c_str(), 0.0001, 0);
  EXPECT_TRUE(Has(m.Text(), R"(pgbranch_pagefs_operations_total{op="read",result="ok"} 2)"));
}

TEST(PageFsMetricsTest, ConcurrentObserversCountEveryRequest) {
  PageFsMetrics m;
  static const char* const kOps[] = {"write", "fsync", "getattr", "lookup", "setattr", "read"};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 6000; ++i) m.ObserveOp(kOps[i % 6], 0.0001, 0);
    });
  }
  for (std::thread& t : threads) t.join();
  std::string text = m.Text();
  for (const char* op : kOps) {
    EXPECT_TRUE(Has(text, absl::StrCat(R"(pgbranch_pagefs_operations_total{op=")", op,
                                       R"(",result="ok"} 4000)")))
        << op << "\n"
        << text;
  }
}

}  // namespace
}  // namespace pgbranch::pagefs
