// PqSession over the lazily loaded libpq (cli/libpq_api.h): the library loads, every call is
// bound, and a failed connect is a clear error rather than a crash.
#include "cli/pq_session.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "cli/libpq_api.h"

namespace pgbranch::cli {
namespace {

TEST(LibpqApiTest, LoadsEveryCall) {
  absl::StatusOr<const LibpqApi*> api = LibpqApi::Get();
  ASSERT_TRUE(api.ok()) << api.status();
  const LibpqApi& pq = **api;
  for (const void* fn :
       {reinterpret_cast<const void*>(pq.connectdb_params),
        reinterpret_cast<const void*>(pq.status), reinterpret_cast<const void*>(pq.error_message),
        reinterpret_cast<const void*>(pq.finish),
        reinterpret_cast<const void*>(pq.set_notice_processor),
        reinterpret_cast<const void*>(pq.send_query), reinterpret_cast<const void*>(pq.get_result),
        reinterpret_cast<const void*>(pq.result_status), reinterpret_cast<const void*>(pq.ntuples),
        reinterpret_cast<const void*>(pq.nfields), reinterpret_cast<const void*>(pq.getisnull),
        reinterpret_cast<const void*>(pq.getvalue),
        reinterpret_cast<const void*>(pq.result_error_field),
        reinterpret_cast<const void*>(pq.clear)}) {
    EXPECT_NE(fn, nullptr);
  }
  // Loaded once: the same table every time.
  EXPECT_EQ(*LibpqApi::Get(), *api);
}

TEST(PqSessionTest, ConnectToNothingIsAnError) {
  // Port 1 on the loopback: nothing listens, the kernel refuses at once.
  auto s =
      PqSession::Connect("postgresql://app@127.0.0.1:1/app?sslmode=disable", "pq_session_test");
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(absl::IsUnavailable(s.status())) << s.status();
  EXPECT_THAT(std::string(s.status().message()), testing::HasSubstr("cannot connect"));
}

}  // namespace
}  // namespace pgbranch::cli
