// AppendCommitFrame writes, byte for byte, the frame of the CommitRequest protobuf would.
#include "pageserver/pagefs/commit_frame.h"

#include "common/frame_io.h"
#include "gtest/gtest.h"
#include "pageserver/pagefs/page_store.h"
#include "pageserver/proto/pageserver.pb.h"

namespace pgbranch::pagefs {
namespace {

namespace v1 = ::pgbranch::pageserver::v1;

// As GrpcPageStore builds the message for CommitStream.
std::string ProtobufFrame(const std::string& tenant, const std::string& timeline,
                          uint64_t generation, const std::vector<PageMutation>& mutations) {
  v1::CommitRequest req;
  req.set_tenant_id(tenant);
  req.set_timeline_id(timeline);
  req.set_generation(generation);
  for (const auto& m : mutations) {
    v1::Mutation* pm = req.add_mutations();
    pm->set_key(m.key);
    if (m.tombstone) {
      pm->set_tombstone(true);
    } else {
      pm->set_value(m.value);
    }
  }
  std::string out;
  AppendFrame(req.SerializeAsString(), &out);
  return out;
}

TEST(CommitFrameTest, SameBytesAsTheProtobufMessage) {
  std::string page(8192, 'x');
  page[0] = '\0';
  std::vector<std::vector<PageMutation>> cases = {
      {},
      {{"k", "v", false}},
      {{"page", page, false}, {"gone", "", true}, {"empty", "", false}, {"", "no key", false}},
      {{std::string(200, 'k'), std::string(70000, 'v'), false}, {"", "", false}},
  };
  for (uint64_t generation : {uint64_t{0}, uint64_t{1}, uint64_t{300}, ~uint64_t{0}}) {
    for (size_t i = 0; i < cases.size(); ++i) {
      for (const auto& [tenant, timeline] :
           std::vector<std::pair<std::string, std::string>>{{"t", "tl"}, {"", ""}}) {
        std::string got = "prefix";
        AppendCommitFrame(tenant, timeline, generation, cases[i], &got);
        EXPECT_EQ(got, "prefix" + ProtobufFrame(tenant, timeline, generation, cases[i]))
            << "case " << i << " generation " << generation << " tenant '" << tenant << "'";
      }
    }
  }
}

}  // namespace
}  // namespace pgbranch::pagefs
