#include "proxy/backend_message_scanner.h"

#include <gtest/gtest.h>

#include <string>

namespace pgbranch::proxy {
namespace {

std::string Message(char type, const std::string& body) {
  std::string m(1, type);
  uint32_t len = static_cast<uint32_t>(body.size() + 4);
  for (int i = 0; i < 4; ++i) m.push_back(static_cast<char>(len >> (24 - 8 * i)));
  return m + body;
}

// What PostgreSQL sends after a trust login: AuthenticationOk, ParameterStatus...,
// BackendKeyData, ReadyForQuery.
std::string StartupReply() {
  return Message('R', std::string(4, '\0')) +
         Message('S', std::string("client_encoding\0UTF8\0", 21)) +
         Message('S', std::string("server_version\0"
                                  "15.18\0",
                                  21)) +
         Message('K', std::string("\x00\x00\x10\x92\xca\xfe\xba\xbe", 8)) + Message('Z', "I");
}

TEST(BackendMessageScannerTest, FindsKeyAndReadyInOneChunk) {
  BackendMessageScanner scanner;
  std::string reply = StartupReply();
  ASSERT_TRUE(scanner.Feed(reply.data(), reply.size()).ok());
  EXPECT_TRUE(scanner.ready());
  ASSERT_TRUE(scanner.has_key());
  EXPECT_EQ(scanner.backend_pid(), 0x1092u);
  EXPECT_EQ(scanner.cancel_key(), 0xcafebabeu);
}

TEST(BackendMessageScannerTest, HandlesEverySplitPoint) {
  std::string reply = StartupReply();
  for (size_t cut1 = 0; cut1 <= reply.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= reply.size(); cut2 += 3) {
      BackendMessageScanner scanner;
      ASSERT_TRUE(scanner.Feed(reply.data(), cut1).ok());
      ASSERT_TRUE(scanner.Feed(reply.data() + cut1, cut2 - cut1).ok());
      ASSERT_TRUE(scanner.Feed(reply.data() + cut2, reply.size() - cut2).ok());
      EXPECT_TRUE(scanner.ready()) << cut1 << "," << cut2;
      EXPECT_TRUE(scanner.has_key()) << cut1 << "," << cut2;
      EXPECT_EQ(scanner.cancel_key(), 0xcafebabeu);
    }
  }
}

TEST(BackendMessageScannerTest, ByteByByte) {
  std::string reply = StartupReply();
  BackendMessageScanner scanner;
  // Ready once ReadyForQuery's header is complete (its status byte is the last byte).
  for (size_t i = 0; i < reply.size(); ++i) {
    EXPECT_EQ(scanner.ready(), i == reply.size() - 1) << i;
    ASSERT_TRUE(scanner.Feed(reply.data() + i, 1).ok());
  }
  EXPECT_TRUE(scanner.ready());
  EXPECT_EQ(scanner.backend_pid(), 0x1092u);
}

TEST(BackendMessageScannerTest, ErrorBeforeReadyIsNotReady) {
  BackendMessageScanner scanner;
  std::string reply = Message('E', std::string("SFATAL\0C28P01\0Mbad password\0", 29));
  ASSERT_TRUE(scanner.Feed(reply.data(), reply.size()).ok());
  EXPECT_FALSE(scanner.ready());
  EXPECT_FALSE(scanner.has_key());
}

TEST(BackendMessageScannerTest, RejectsMalformedLength) {
  BackendMessageScanner scanner;
  std::string bad("R\0\0\0\x02", 5);
  EXPECT_FALSE(scanner.Feed(bad.data(), bad.size()).ok());
  EXPECT_FALSE(scanner.Feed("Z", 1).ok()) << "stays failed";
}

TEST(BackendMessageScannerTest, IgnoresBytesAfterReady) {
  BackendMessageScanner scanner;
  std::string reply = StartupReply() + "garbage that is not a message";
  ASSERT_TRUE(scanner.Feed(reply.data(), reply.size()).ok());
  EXPECT_TRUE(scanner.ready());
}

}  // namespace
}  // namespace pgbranch::proxy
