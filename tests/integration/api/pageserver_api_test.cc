// The gRPC API against a real pageserver process: status codes for bad input, auth, health,
// metrics, and a server that stays up through all of it.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <fstream>

#include "common/token_signer.h"
#include "gtest/gtest.h"
#include "tests/support/pageserver_process.h"

namespace pgbranch {
namespace {

namespace v1 = pageserver::v1;
using testing::PageserverProcess;
using testing::TempDir;

class PageserverApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<PageserverProcess>(dir_.path() + "/data");
    ASSERT_TRUE(server_->Start().ok());
    stub_ = server_->NewStub();
    grpc::ClientContext ctx;
    v1::CreateTenantRequest req;
    req.set_tenant_id("t1");
    req.set_root_timeline_id("main");
    ASSERT_TRUE(stub_->CreateTenant(&ctx, req, &tenant_).ok());
  }

  grpc::StatusCode Code(const grpc::Status& s) { return s.error_code(); }

  TempDir dir_;
  std::unique_ptr<PageserverProcess> server_;
  std::unique_ptr<v1::PageService::Stub> stub_;
  v1::Tenant tenant_;
};

TEST_F(PageserverApiTest, BadRequestsGetTheRightStatusAndTheServerStaysUp) {
  {
    grpc::ClientContext ctx;
    v1::ReadRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("nope");
    req.add_keys("k");
    v1::ReadResponse resp;
    grpc::Status s = stub_->Read(&ctx, req, &resp);
    EXPECT_EQ(Code(s), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(s.error_message().find("pagectl timeline list"), std::string::npos);
  }
  {
    grpc::ClientContext ctx;
    v1::ReadRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    req.set_lsn(42);
    req.add_keys("k");
    v1::ReadResponse resp;
    EXPECT_EQ(Code(stub_->Read(&ctx, req, &resp)), grpc::StatusCode::OUT_OF_RANGE);
  }
  {
    grpc::ClientContext ctx;
    v1::CommitRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    req.set_generation(7);
    req.add_mutations()->set_key("k");
    v1::CommitResponse resp;
    EXPECT_EQ(Code(stub_->Commit(&ctx, req, &resp)), grpc::StatusCode::FAILED_PRECONDITION);
  }
  {
    // Over the message size limit: rejected by gRPC, nothing written.
    grpc::ClientContext ctx;
    v1::CommitRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    req.set_generation(1);
    auto* m = req.add_mutations();
    m->set_key("big");
    m->set_value(std::string(80 << 20, 'x'));
    v1::CommitResponse resp;
    EXPECT_EQ(Code(stub_->Commit(&ctx, req, &resp)), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {
    grpc::ClientContext ctx;
    v1::CreateTimelineRequest req;
    req.set_tenant_id("t1");
    req.set_ancestor_timeline_id("main");
    req.set_ancestor_lsn(5);
    v1::Timeline resp;
    EXPECT_EQ(Code(stub_->CreateTimeline(&ctx, req, &resp)), grpc::StatusCode::OUT_OF_RANGE);
  }
  {
    grpc::ClientContext ctx;
    v1::CreateTimelineRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("has space");
    v1::Timeline resp;
    EXPECT_EQ(Code(stub_->CreateTimeline(&ctx, req, &resp)), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {
    grpc::ClientContext ctx;
    v1::ScanRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    req.set_limit(1'000'000);
    v1::ScanResponse resp;
    EXPECT_EQ(Code(stub_->Scan(&ctx, req, &resp)), grpc::StatusCode::INVALID_ARGUMENT);
  }
  // Still serving.
  grpc::ClientContext ctx;
  v1::ListTenantsResponse list;
  ASSERT_TRUE(stub_->ListTenants(&ctx, v1::ListTenantsRequest(), &list).ok());
  EXPECT_EQ(list.tenants_size(), 1);
}

// `branch restore`'s storage half over gRPC: ResetTimeline with rewind_lsn keeps the timeline's
// id, moves its current state to the backup, and survives a kill -9 of the pageserver.
TEST_F(PageserverApiTest, RewindOverGrpcSurvivesAKill) {
  uint64_t gen = 0;
  {
    grpc::ClientContext ctx;
    v1::AcquireWriterRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    v1::AcquireWriterResponse resp;
    ASSERT_TRUE(stub_->AcquireWriter(&ctx, req, &resp).ok());
    gen = resp.generation();
  }
  auto commit = [&](const std::string& value) {
    grpc::ClientContext ctx;
    v1::CommitRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    req.set_generation(gen);
    auto* m = req.add_mutations();
    m->set_key("k");
    m->set_value(value);
    v1::CommitResponse resp;
    EXPECT_TRUE(stub_->Commit(&ctx, req, &resp).ok());
    return resp.lsn();
  };
  auto read = [&](const std::string& timeline) {
    grpc::ClientContext ctx;
    v1::ReadRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id(timeline);
    req.add_keys("k");
    v1::ReadResponse resp;
    grpc::Status s = stub_->Read(&ctx, req, &resp);
    return s.ok() && resp.values_size() == 1 ? resp.values(0).data()
                                             : "<" + s.error_message() + ">";
  };
  const uint64_t l1 = commit("before");
  commit("promoted");
  auto rewind = [&](uint64_t lsn, const std::string& backup) {
    grpc::ClientContext ctx;
    v1::ResetTimelineRequest req;
    req.set_tenant_id("t1");
    req.set_timeline_id("main");
    req.set_backup_timeline_id(backup);
    req.set_rewind_lsn(lsn);
    v1::ResetTimelineResponse resp;
    grpc::Status s = stub_->ResetTimeline(&ctx, req, &resp);
    if (s.ok()) {
      EXPECT_EQ(resp.ancestor_lsn(), lsn);
    }
    return Code(s);
  };
  EXPECT_EQ(rewind(l1, ""), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(rewind(999, "main-old"), grpc::StatusCode::OUT_OF_RANGE);
  ASSERT_EQ(rewind(l1, "main-old"), grpc::StatusCode::OK);
  EXPECT_EQ(read("main"), "before");
  EXPECT_EQ(read("main-old"), "promoted");
  server_->Kill();
  ASSERT_TRUE(server_->Start().ok());
  stub_ = server_->NewStub();
  EXPECT_EQ(read("main"), "before");
  EXPECT_EQ(read("main-old"), "promoted");
  grpc::ClientContext ctx;
  v1::GetTimelineRequest req;
  req.set_tenant_id("t1");
  req.set_timeline_id("main");
  v1::Timeline tl;
  ASSERT_TRUE(stub_->GetTimeline(&ctx, req, &tl).ok());
  EXPECT_EQ(tl.ancestor_timeline_id(), "main-old");
  EXPECT_EQ(tl.ancestor_lsn(), l1);
}

TEST_F(PageserverApiTest, HealthServiceReportsServing) {
  auto channel = grpc::CreateChannel(server_->address(), grpc::InsecureChannelCredentials());
  grpc::ByteBuffer request_buf, response_buf;
  // grpc.health.v1.HealthCheckRequest{service=""} encodes to zero bytes.
  grpc::GenericStub generic(channel);
  grpc::ClientContext ctx;
  grpc::Slice empty("");
  request_buf = grpc::ByteBuffer(&empty, 1);
  grpc::CompletionQueue cq;
  auto call = generic.PrepareUnaryCall(&ctx, "/grpc.health.v1.Health/Check", request_buf, &cq);
  call->StartCall();
  grpc::Status status;
  call->Finish(&response_buf, &status, reinterpret_cast<void*>(1));
  void* tag;
  bool ok;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  ASSERT_TRUE(status.ok()) << status.error_message();
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response_buf.Dump(&slices).ok());
  std::string bytes;
  for (auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x01", 2));  // status: SERVING
}

TEST(PageserverAuthTest, RequestsWithoutAValidTokenAreRejected) {
  TempDir dir;
  std::string tokens = dir.path() + "/tokens.yaml";
  std::ofstream(tokens) << "tokens:\n  - {token: admin-secret-1, scope: admin}\n"
                           "  - {token: tenant-secret-1, tenant: t1}\n";
  PageserverProcess server(dir.path() + "/data", {"--token-file", tokens});
  ASSERT_TRUE(server.Start().ok());
  auto stub = server.NewStub();
  auto call = [&](const std::string& token, const std::string& tenant) {
    grpc::ClientContext ctx;
    if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
    v1::CreateTenantRequest req;
    req.set_tenant_id(tenant);
    v1::Tenant resp;
    return stub->CreateTenant(&ctx, req, &resp).error_code();
  };
  EXPECT_EQ(call("", "t1"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("bogus-token-1", "t1"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(call("tenant-secret-1", "t1"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(call("admin-secret-1", "t1"), grpc::StatusCode::OK);
  EXPECT_EQ(call("admin-secret-1", "t2"), grpc::StatusCode::OK);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer tenant-secret-1");
  v1::GetTimelineRequest req;
  req.set_tenant_id("t2");
  req.set_timeline_id("x");
  v1::Timeline resp;
  EXPECT_EQ(stub->GetTimeline(&ctx, req, &resp).error_code(), grpc::StatusCode::PERMISSION_DENIED);
}

// Signed tokens (--token-signing-key-file) next to a static token file: a tenant token reads
// its tenant and is refused on another; the admin token does everything.
TEST(PageserverAuthTest, SignedTenantTokensAreScopedToTheirTenant) {
  TempDir dir;
  const std::string key = "signing-key-0123456789abcdef0123456789";
  const std::string key_file = dir.path() + "/signing-key";
  std::ofstream(key_file) << key << "\n";
  const std::string tokens = dir.path() + "/tokens.yaml";
  std::ofstream(tokens) << "tokens:\n  - {token: static-admin-1, scope: admin}\n";
  PageserverProcess server(dir.path() + "/data",
                           {"--token-file", tokens, "--token-signing-key-file", key_file});
  ASSERT_TRUE(server.Start().ok());
  auto stub = server.NewStub();
  auto signer = TokenSigner::FromKey(key);
  ASSERT_TRUE(signer.ok());
  auto mint = [&](bool admin, const std::string& tenant) {
    TokenClaims c;
    c.admin = admin;
    c.tenant = tenant;
    return signer->Mint(c).value_or("");
  };
  auto create_tenant = [&](const std::string& token, const std::string& tenant) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    v1::CreateTenantRequest req;
    req.set_tenant_id(tenant);
    req.set_root_timeline_id("main");
    v1::Tenant resp;
    return stub->CreateTenant(&ctx, req, &resp);
  };
  auto get_timeline = [&](const std::string& token, const std::string& tenant) {
    grpc::ClientContext ctx;
    ctx.AddMetadata("authorization", "Bearer " + token);
    v1::GetTimelineRequest req;
    req.set_tenant_id(tenant);
    req.set_timeline_id("main");
    v1::Timeline resp;
    return stub->GetTimeline(&ctx, req, &resp);
  };
  const std::string admin = mint(true, "");
  const std::string team_a = mint(false, "team-a");
  ASSERT_TRUE(create_tenant(admin, "team-a").ok());
  ASSERT_TRUE(create_tenant("static-admin-1", "team-b").ok());  // the static token still works

  EXPECT_EQ(get_timeline(team_a, "team-a").error_code(), grpc::StatusCode::OK);
  grpc::Status other = get_timeline(team_a, "team-b");
  EXPECT_EQ(other.error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_NE(other.error_message().find("tenant team-b"), std::string::npos)
      << other.error_message();
  EXPECT_EQ(create_tenant(team_a, "team-a2").error_code(), grpc::StatusCode::PERMISSION_DENIED);

  auto other_key = TokenSigner::FromKey("another-key-0123456789abcdef012345");
  ASSERT_TRUE(other_key.ok());
  TokenClaims forged;
  forged.admin = true;
  grpc::Status bad = get_timeline(other_key->Mint(forged).value_or(""), "team-a");
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(bad.error_message().find("bad signature"), std::string::npos) << bad.error_message();

  TokenClaims expired;
  expired.tenant = "team-a";
  expired.expires_unix = 1;  // 1970
  grpc::Status late = get_timeline(signer->Mint(expired).value_or(""), "team-a");
  EXPECT_EQ(late.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_NE(late.error_message().find("expired"), std::string::npos) << late.error_message();
}

TEST(PageserverTlsTest, ServesOverTlsWithTheConfiguredCertificate) {
  TempDir dir;
  std::string cert = dir.path() + "/server.crt", key = dir.path() + "/server.key";
  std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
      "-addext subjectAltName=IP:127.0.0.1 -keyout " +
      key + " -out " + cert + " >/dev/null 2>&1";
  if (system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl is not available";
  PageserverProcess server(dir.path() + "/data", {"--tls-cert", cert, "--tls-key", key});
  ASSERT_TRUE(server.Start().ok());
  std::ifstream in(cert);
  std::string pem((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pem;
  auto stub =
      v1::PageService::NewStub(grpc::CreateChannel(server.address(), grpc::SslCredentials(ssl)));
  grpc::ClientContext ctx;
  v1::ListTenantsResponse list;
  grpc::Status s = stub->ListTenants(&ctx, v1::ListTenantsRequest(), &list);
  EXPECT_TRUE(s.ok()) << s.error_message();
  // A plaintext client cannot talk to it.
  auto plain = server.NewStub();
  grpc::ClientContext ctx2;
  ctx2.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  EXPECT_FALSE(plain->ListTenants(&ctx2, v1::ListTenantsRequest(), &list).ok());
}

TEST(PageserverMetricsTest, ServesPrometheusMetrics) {
  TempDir dir;
  // The metrics port is not reported back, so use a fixed high loopback port.
  PageserverProcess fixed(dir.path() + "/data2", {"--metrics-listen", "127.0.0.1:19467"});
  ASSERT_TRUE(fixed.Start().ok());
  auto stub = fixed.NewStub();
  grpc::ClientContext ctx;
  v1::ListTenantsResponse list;
  ASSERT_TRUE(stub->ListTenants(&ctx, v1::ListTenantsRequest(), &list).ok());
  FILE* p = popen("curl -s --max-time 5 http://127.0.0.1:19467/metrics", "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  EXPECT_NE(out.find("pgbranch_pageserver_requests_total{code=\"OK\",method=\"ListTenants\"}"),
            std::string::npos)
      << out.substr(0, 2000);
  EXPECT_NE(out.find("pgbranch_pageserver_request_duration_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace pgbranch
