#include "proxy/pg_protocol.h"

#include <gtest/gtest.h>

#include <random>

namespace pgbranch::proxy {
namespace {

std::string Body(const std::string& packet) { return packet.substr(4); }

std::string U32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}

TEST(PgProtocolTest, StartupMessageRoundTrips) {
  StartupParameters params = {{"user", "app"}, {"database", "db"}, {"options", "-c a=b"}};
  std::string packet = BuildStartupMessage(kProtocolVersion3, params);
  auto len = ParseInitialPacketLength(reinterpret_cast<const unsigned char*>(packet.data()));
  ASSERT_TRUE(len.ok()) << len.status();
  EXPECT_EQ(*len, packet.size() - 4);
  auto parsed = ParseInitialPacket(Body(packet));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->kind, InitialPacket::Kind::kStartup);
  EXPECT_EQ(parsed->protocol_version, kProtocolVersion3);
  EXPECT_EQ(parsed->parameters, params);
  ASSERT_NE(FindParameter(parsed->parameters, "database"), nullptr);
  EXPECT_EQ(*FindParameter(parsed->parameters, "database"), "db");
  EXPECT_EQ(FindParameter(parsed->parameters, "nope"), nullptr);
}

TEST(PgProtocolTest, ParsesSslGssAndCancelRequests) {
  auto ssl = ParseInitialPacket(U32(kSslRequestCode));
  ASSERT_TRUE(ssl.ok());
  EXPECT_EQ(ssl->kind, InitialPacket::Kind::kSslRequest);
  auto gss = ParseInitialPacket(U32(kGssEncRequestCode));
  ASSERT_TRUE(gss.ok());
  EXPECT_EQ(gss->kind, InitialPacket::Kind::kGssEncRequest);
  std::string cancel = BuildCancelRequest(4242, 0xdeadbeef);
  ASSERT_EQ(cancel.size(), 16u);
  auto parsed = ParseInitialPacket(Body(cancel));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->kind, InitialPacket::Kind::kCancelRequest);
  EXPECT_EQ(parsed->cancel_pid, 4242u);
  EXPECT_EQ(parsed->cancel_key, 0xdeadbeefu);
}

TEST(PgProtocolTest, RejectsBadLengths) {
  for (uint32_t len : {0u, 4u, 7u, 10001u, 0xffffffffu}) {
    std::string h = U32(len);
    EXPECT_FALSE(ParseInitialPacketLength(reinterpret_cast<const unsigned char*>(h.data())).ok())
        << len;
  }
  std::string h = U32(8);
  EXPECT_TRUE(ParseInitialPacketLength(reinterpret_cast<const unsigned char*>(h.data())).ok());
}

TEST(PgProtocolTest, RejectsMalformedPackets) {
  EXPECT_FALSE(ParseInitialPacket("").ok());
  EXPECT_FALSE(ParseInitialPacket("ab").ok());
  EXPECT_FALSE(ParseInitialPacket(U32(kSslRequestCode) + "x").ok());
  EXPECT_FALSE(ParseInitialPacket(U32(kCancelRequestCode) + "short").ok());
  std::string v3 = U32(kProtocolVersion3);
  EXPECT_FALSE(ParseInitialPacket(v3).ok()) << "missing terminator";
  EXPECT_FALSE(ParseInitialPacket(v3 + std::string("user")).ok());
  EXPECT_FALSE(ParseInitialPacket(v3 + std::string("user\0app", 8)).ok());
  EXPECT_FALSE(ParseInitialPacket(v3 + std::string("user\0app\0", 9)).ok());
  EXPECT_FALSE(ParseInitialPacket(v3 + std::string("\0junk", 5)).ok());
  EXPECT_TRUE(ParseInitialPacket(v3 + std::string("\0", 1)).ok());
  EXPECT_TRUE(ParseInitialPacket(v3 + std::string("user\0\0\0", 7)).ok()) << "empty value is ok";
}

TEST(PgProtocolTest, RejectsOtherProtocolVersions) {
  auto v2 = ParseInitialPacket(U32(2 << 16) + std::string("\0", 1));
  EXPECT_EQ(v2.status().code(), absl::StatusCode::kUnimplemented);
  auto v4 = ParseInitialPacket(U32(4 << 16) + std::string("\0", 1));
  EXPECT_EQ(v4.status().code(), absl::StatusCode::kUnimplemented);
  // 3.x minor versions go to PostgreSQL, which negotiates them.
  EXPECT_TRUE(ParseInitialPacket(U32((3 << 16) | 2) + std::string("\0", 1)).ok());
}

TEST(PgProtocolTest, RandomInputNeverCrashes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 20000; ++i) {
    std::string s(rng() % 64, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 4 == 0 ? 0 : rng());
    if (i % 3 == 0 && s.size() >= 4) {
      std::string v = U32(kProtocolVersion3);
      std::copy(v.begin(), v.end(), s.begin());
    }
    (void)ParseInitialPacket(s);
    (void)ExtractEndpointOption(s);
  }
}

TEST(PgProtocolTest, BuildsErrorResponse) {
  std::string e = BuildErrorResponse({"FATAL", "3D000", "endpoint \"x\" does not exist", "", "h"});
  ASSERT_GE(e.size(), 6u);
  EXPECT_EQ(e[0], 'E');
  uint32_t len = (uint32_t(uint8_t(e[1])) << 24) | (uint32_t(uint8_t(e[2])) << 16) |
                 (uint32_t(uint8_t(e[3])) << 8) | uint32_t(uint8_t(e[4]));
  EXPECT_EQ(len, e.size() - 1);
  EXPECT_EQ(e.back(), '\0');
  EXPECT_NE(e.find(std::string("SFATAL\0", 7)), std::string::npos);
  EXPECT_NE(e.find(std::string("C3D000\0", 7)), std::string::npos);
  EXPECT_NE(e.find(std::string("Hh\0", 3)), std::string::npos);
  EXPECT_EQ(e.find(std::string("\0D", 2)), std::string::npos) << "empty detail is left out";
  // A NUL inside a field would end it early.
  std::string nul = BuildErrorResponse({"FATAL", "08P01", std::string("a\0b", 3), "", ""});
  EXPECT_NE(nul.find("Ma b"), std::string::npos);
}

TEST(PgProtocolTest, ExtractsEndpointFromOptions) {
  struct Case {
    std::string in, endpoint, rest;
  } cases[] = {
      {"endpoint=dev", "dev", ""},
      {"--endpoint=dev", "dev", ""},
      {"  endpoint=dev  ", "dev", ""},
      {"-c search_path=x endpoint=dev", "dev", "-c search_path=x"},
      {"endpoint=dev -c statement_timeout=5s --work_mem=64MB", "dev",
       "-c statement_timeout=5s --work_mem=64MB"},
      {"-c application_name=a\\ b endpoint=main", "main", "-c application_name=a\\ b"},
      {"-c x=y", "", "-c x=y"},
      {"", "", ""},
      {"endpoint=dev endpoint=dev", "dev", ""},
      {"-c endpoints=3", "", "-c endpoints=3"},
      {"xendpoint=dev", "", "xendpoint=dev"},
  };
  for (const Case& c : cases) {
    auto r = ExtractEndpointOption(c.in);
    ASSERT_TRUE(r.ok()) << c.in << ": " << r.status();
    EXPECT_EQ(r->endpoint, c.endpoint) << c.in;
    EXPECT_EQ(r->options, c.rest) << c.in;
  }
}

TEST(PgProtocolTest, RejectsAmbiguousEndpointOptions) {
  EXPECT_FALSE(ExtractEndpointOption("endpoint=a endpoint=b").ok());
  EXPECT_FALSE(ExtractEndpointOption("endpoint=").ok());
  EXPECT_FALSE(ExtractEndpointOption("--endpoint=").ok());
  // A trailing backslash escapes nothing and is kept.
  auto r = ExtractEndpointOption("endpoint=dev x\\");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->options, "x\\");
}

TEST(PgProtocolTest, ValidatesEndpointNames) {
  EXPECT_TRUE(IsValidEndpointName("dev"));
  EXPECT_TRUE(IsValidEndpointName("pr-123.preview"));
  EXPECT_TRUE(IsValidEndpointName("0"));
  EXPECT_FALSE(IsValidEndpointName(""));
  EXPECT_FALSE(IsValidEndpointName("Dev"));
  EXPECT_FALSE(IsValidEndpointName("-dev"));
  EXPECT_FALSE(IsValidEndpointName("dev-"));
  EXPECT_FALSE(IsValidEndpointName("../etc"));
  EXPECT_FALSE(IsValidEndpointName("a/b"));
  EXPECT_FALSE(IsValidEndpointName(std::string(254, 'a')));
}

TEST(PgProtocolTest, EndpointFromSni) {
  EXPECT_EQ(EndpointFromSni("dev.localhost"), "dev");
  EXPECT_EQ(EndpointFromSni("Dev.db.example.com"), "dev");
  EXPECT_EQ(EndpointFromSni("localhost"), "");
  EXPECT_EQ(EndpointFromSni(""), "");
  EXPECT_EQ(EndpointFromSni(".x"), "");
}

}  // namespace
}  // namespace pgbranch::proxy
