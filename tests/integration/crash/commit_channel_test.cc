// The pageserver's commit channel (--commit-socket) at the byte level, against a real
// pageserver: commits are answered in order with increasing LSNs and are readable over gRPC;
// bad input -- a wrong hello, a frame that is not a CommitRequest, a frame over the limit, a
// request for another timeline, a fenced generation -- is answered with a clear error, nothing
// after it is applied, and the connection closes (the requests before it stay committed).
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/frame_io.h"
#include "gtest/gtest.h"
#include "pageserver/proto/pageserver.grpc.pb.h"
#include "tests/support/pagefs_server_fixture.h"

namespace pgbranch::testing {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;

class CommitChannelTest : public PagefsServerTest {
 protected:
  void SetUp() override {
    PagefsServerTest::SetUp();
    ASSERT_EQ(server_->Stop(), 0);
    sock_ = dir_.path() + "/commit.sock";
    server_ = std::make_unique<PageserverProcess>(
        dir_.path() + "/pageserver", std::vector<std::string>{"--commit-socket", sock_});
    absl::Status s = server_->Start();
    ASSERT_TRUE(s.ok()) << s;
    stub_ = server_->NewStub();
    generation_ = AcquireWriter();
    ASSERT_GT(generation_, 0u);
  }
  uint64_t AcquireWriter() {
    grpc::ClientContext ctx;
    v1::AcquireWriterRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(kTimeline);
    v1::AcquireWriterResponse resp;
    EXPECT_TRUE(stub_->AcquireWriter(&ctx, req, &resp).ok());
    return resp.generation();
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // Connects; sends `hello` (the right one by default) as the first frame.
  void Connect(const std::string& hello = std::string(kCommitHello)) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(fd_, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, sock_.data(), sock_.size());
    ASSERT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
        << strerror(errno);
    SendRaw(Frame(hello));
    reader_ = std::make_unique<FrameReader>(fd_);
  }
  static std::string Frame(const std::string& payload) {
    std::string out;
    AppendFrame(payload, &out);
    return out;
  }
  void SendRaw(const std::string& bytes) { ASSERT_TRUE(WriteAll(fd_, bytes)); }
  v1::CommitRequest Request(const std::string& key, const std::string& value,
                            const std::string& timeline = kTimeline) {
    v1::CommitRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(timeline);
    req.set_generation(generation_);
    v1::Mutation* m = req.add_mutations();
    m->set_key(key);
    m->set_value(value);
    return req;
  }
  void Send(const v1::CommitRequest& req) { SendRaw(Frame(req.SerializeAsString())); }
  // The next answer (a failure if the connection ends first).
  v1::CommitResponse Answer() {
    std::string_view frame;
    absl::Status s = reader_->Next(true, &frame);
    v1::CommitResponse resp;
    EXPECT_TRUE(s.ok()) << s;
    if (s.ok()) {
      EXPECT_TRUE(resp.ParseFromArray(frame.data(), static_cast<int>(frame.size())));
    }
    return resp;
  }
  // The connection ends after the error answer.
  void ExpectClosed() {
    std::string_view frame;
    absl::Status s = reader_->Next(true, &frame);
    EXPECT_TRUE(absl::IsCancelled(s)) << s;
  }
  bool Found(const std::string& key) {
    grpc::ClientContext ctx;
    v1::ReadRequest req;
    req.set_tenant_id(kTenant);
    req.set_timeline_id(kTimeline);
    req.add_keys(key);
    v1::ReadResponse resp;
    EXPECT_TRUE(stub_->Read(&ctx, req, &resp).ok());
    return resp.values_size() == 1 && resp.values(0).found();
  }

  std::string sock_;
  std::unique_ptr<v1::PageService::Stub> stub_;
  uint64_t generation_ = 0;
  int fd_ = -1;
  std::unique_ptr<FrameReader> reader_;
};

TEST_F(CommitChannelTest, PipelinedCommitsAreAnsweredInOrderAndReadable) {
  Connect();
  for (int i = 0; i < 50; ++i) Send(Request(absl::StrCat("k", i), absl::StrCat("v", i)));
  uint64_t last = 0;
  for (int i = 0; i < 50; ++i) {
    v1::CommitResponse r = Answer();
    EXPECT_EQ(r.error_code(), 0) << r.error_message();
    EXPECT_GT(r.lsn(), last) << "answer " << i;
    last = r.lsn();
  }
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(Found(absl::StrCat("k", i))) << i;
}

TEST_F(CommitChannelTest, AWrongHelloIsRefused) {
  Connect("GET / HTTP/1.1\r\n");
  Send(Request("never", "x"));
  v1::CommitResponse r = Answer();
  EXPECT_EQ(r.error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(r.error_message(), "hello")) << r.error_message();
  ExpectClosed();
  EXPECT_FALSE(Found("never"));
}

TEST_F(CommitChannelTest, AFrameThatIsNotACommitRequestFailsAfterTheOnesBefore) {
  Connect();
  std::string bytes = Frame(Request("before", "x").SerializeAsString()) +
                      Frame(std::string("\xff\xff\xff\xff garbage", 13)) +
                      Frame(Request("after", "x").SerializeAsString());
  SendRaw(bytes);
  EXPECT_EQ(Answer().error_code(), 0);
  v1::CommitResponse r = Answer();
  EXPECT_EQ(r.error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(r.error_message(), "not a CommitRequest")) << r.error_message();
  ExpectClosed();
  EXPECT_TRUE(Found("before"));
  EXPECT_FALSE(Found("after")) << "applied after a failure";
}

TEST_F(CommitChannelTest, AFrameOverTheLimitIsRefused) {
  Connect();
  SendRaw(std::string("\xff\xff\xff\x7f", 4));
  v1::CommitResponse r = Answer();
  EXPECT_EQ(r.error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(r.error_message(), "over the limit")) << r.error_message();
  ExpectClosed();
}

TEST_F(CommitChannelTest, OneConnectionServesOneTimeline) {
  Connect();
  Send(Request("first", "x"));
  Send(Request("other", "x", "elsewhere"));
  EXPECT_EQ(Answer().error_code(), 0);
  v1::CommitResponse r = Answer();
  EXPECT_EQ(r.error_code(), static_cast<int>(absl::StatusCode::kInvalidArgument));
  EXPECT_TRUE(absl::StrContains(r.error_message(), "serves one timeline")) << r.error_message();
  ExpectClosed();
}

TEST_F(CommitChannelTest, AFencedGenerationCommitsNothing) {
  Connect();
  v1::CommitRequest req = Request("fenced", "x");  // under generation_, which the next fences
  ASSERT_GT(AcquireWriter(), generation_);
  Send(req);
  v1::CommitResponse r = Answer();
  EXPECT_EQ(r.error_code(), static_cast<int>(absl::StatusCode::kFailedPrecondition))
      << r.error_message();
  ExpectClosed();
  EXPECT_FALSE(Found("fenced"));
}

}  // namespace
}  // namespace pgbranch::testing
