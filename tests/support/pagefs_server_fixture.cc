#include "tests/support/pagefs_server_fixture.h"

#include <grpcpp/grpcpp.h>

namespace pgbranch::testing {

void PagefsServerTest::SetUp() {
  server_ = std::make_unique<PageserverProcess>(dir_.path() + "/pageserver");
  absl::Status s = server_->Start();
  ASSERT_TRUE(s.ok()) << s;
  auto stub = server_->NewStub();
  grpc::ClientContext ctx;
  pageserver::v1::CreateTenantRequest req;
  req.set_tenant_id(kTenant);
  req.set_root_timeline_id(kTimeline);
  pageserver::v1::Tenant tenant;
  grpc::Status gs = stub->CreateTenant(&ctx, req, &tenant);
  ASSERT_TRUE(gs.ok()) << gs.error_message();
}

std::unique_ptr<PagefsMount> PagefsServerTest::Mount(const std::vector<std::string>& extra_args) {
  PagefsMount::Options o;
  o.pageserver = server_->address();
  o.tenant = kTenant;
  o.timeline = kTimeline;
  o.mountpoint = dir_.path() + "/mnt";
  o.extra_args = extra_args;
  auto mount = std::make_unique<PagefsMount>(o);
  absl::Status s = mount->Mount();
  EXPECT_TRUE(s.ok()) << s;
  return s.ok() ? std::move(mount) : nullptr;
}

}  // namespace pgbranch::testing
