// FrameReader: a non-blocking Next after a read that drained the socket asks it for nothing.
#include "common/frame_io.h"

#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "gtest/gtest.h"

namespace pgbranch {
namespace {

class FrameReaderTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv_), 0); }
  void TearDown() override {
    for (int fd : sv_) {
      if (fd >= 0) ::close(fd);
    }
  }
  void Send(std::initializer_list<std::string_view> payloads) {
    std::string bytes;
    for (std::string_view p : payloads) AppendFrame(p, &bytes);
    ASSERT_TRUE(WriteAll(sv_[1], bytes));
  }
  int sv_[2] = {-1, -1};
};

TEST_F(FrameReaderTest, NonBlockingNextTakesOnlyWhatTheLastReadsFound) {
  FrameReader in(sv_[0]);
  std::string_view frame;
  Send({"a", "b"});
  ASSERT_TRUE(in.Next(true, &frame).ok());  // one short read: both frames, the socket drained
  EXPECT_EQ(frame, "a");
  ASSERT_TRUE(in.Next(false, &frame).ok());  // buffered
  EXPECT_EQ(frame, "b");
  // Sent after the read that drained the socket: a non-blocking Next does not read again (the
  // server commits its round without waiting for a recv() that, on the commit path, finds
  // nothing), and the next blocking Next takes it.
  Send({"c"});
  ASSERT_TRUE(absl::IsUnavailable(in.Next(false, &frame)));
  ASSERT_TRUE(in.Next(true, &frame).ok());
  EXPECT_EQ(frame, "c");
  // A blocking Next that returns a buffered frame reads nothing, and time has passed since the
  // last read: the non-blocking Next after it reads again.
  Send({"d", "e"});
  ASSERT_TRUE(in.Next(true, &frame).ok());
  EXPECT_EQ(frame, "d");
  ASSERT_TRUE(in.Next(false, &frame).ok());
  EXPECT_EQ(frame, "e");
  Send({"f"});
  Send({"g"});
  ASSERT_TRUE(in.Next(true, &frame).ok());  // reads f and g in one go
  EXPECT_EQ(frame, "f");
  ASSERT_TRUE(in.Next(false, &frame).ok());
  EXPECT_EQ(frame, "g");
  EXPECT_TRUE(absl::IsUnavailable(in.Next(false, &frame)));
}

TEST_F(FrameReaderTest, NonBlockingNextReadsWhenNoReadDrainedTheSocket) {
  FrameReader in(sv_[0]);
  std::string_view frame;
  EXPECT_TRUE(absl::IsUnavailable(in.Next(false, &frame)));  // nothing sent: EAGAIN
  Send({"a"});
  ASSERT_TRUE(in.Next(false, &frame).ok());  // read now
  EXPECT_EQ(frame, "a");
  ::close(sv_[1]);
  sv_[1] = -1;
  EXPECT_TRUE(absl::IsCancelled(in.Next(true, &frame)));  // the peer left
}

// Held frames stay valid while the reader grows its buffer for more; a buffer that a large frame
// grew is given back once only small frames have come for a while.
TEST_F(FrameReaderTest, HeldFramesOutliveTheBufferGrowingAndReleaseShrinksIt) {
  FrameReader in(sv_[0]);
  std::string_view a, b, big;
  Send({"first", "second"});
  ASSERT_TRUE(in.NextHeld(true, &a).ok());
  ASSERT_TRUE(in.NextHeld(true, &b).ok());
  const std::string payload(3 << 20, 'p');
  std::thread sender([&] { Send({payload, "after"}); });
  ASSERT_TRUE(in.NextHeld(true, &big).ok());
  EXPECT_EQ(big, payload);
  EXPECT_EQ(a, "first");  // still valid: the old buffer is kept until Release
  EXPECT_EQ(b, "second");
  std::string_view next;
  ASSERT_TRUE(in.NextHeld(true, &next).ok());
  EXPECT_EQ(next, "after");
  in.Unread();  // the next round's
  sender.join();
  EXPECT_GT(in.BufferBytesForTest(), FrameReader::kKeepBytes);
  in.Release();
  ASSERT_TRUE(in.NextHeld(false, &next).ok());
  EXPECT_EQ(next, "after");
  in.Release();
  // Rounds of small frames only: the buffer is given back after kShrinkAfterRounds of them.
  EXPECT_GT(in.BufferBytesForTest(), FrameReader::kKeepBytes);
  for (int i = 0; i < FrameReader::kShrinkAfterRounds; ++i) {
    Send({"small"});
    ASSERT_TRUE(in.NextHeld(true, &next).ok());
    EXPECT_EQ(next, "small");
    in.Release();
  }
  EXPECT_LE(in.BufferBytesForTest(), FrameReader::kKeepBytes);
}

}  // namespace
}  // namespace pgbranch
