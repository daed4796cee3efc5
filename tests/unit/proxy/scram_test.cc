// SCRAM-SHA-256 math and the two exchanges against RFC 7677's example (section 3):
// user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations.
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "common/scram.h"
#include "proxy/pg_protocol.h"
#include "proxy/scram_client.h"
#include "proxy/scram_server.h"

namespace pgbranch::proxy {
namespace {

constexpr char kPassword[] = "pencil";
constexpr char kClientNonce[] = "rOprNGfwEbeRWgbNEkqO";
constexpr char kServerNonce[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
constexpr char kClientFirst[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
constexpr char kServerFirst[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
constexpr char kClientFinal[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
constexpr char kServerFinal[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

std::string Salt() {
  std::string salt;
  EXPECT_TRUE(absl::Base64Unescape("W22ZaJ0SNY7soEsUEjb6gQ==", &salt));
  return salt;
}

scram::Verifier Rfc7677Verifier() { return scram::MakeVerifier(kPassword, Salt(), 4096); }

std::string Rfc7677ClientKey() {
  return scram::ClientKeyOf(scram::SaltedPassword(kPassword, Salt(), 4096));
}

TEST(ScramTest, VerifierRoundTripsAndMatchesItsPassword) {
  scram::Verifier v = Rfc7677Verifier();
  std::string text = scram::FormatVerifier(v);
  EXPECT_EQ(text.rfind("SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$", 0), 0u) << text;
  absl::StatusOr<scram::Verifier> parsed = scram::ParseVerifier(text);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->salt, v.salt);
  EXPECT_EQ(parsed->stored_key, v.stored_key);
  EXPECT_EQ(parsed->server_key, v.server_key);
  EXPECT_TRUE(scram::VerifierMatches(text, kPassword));
  EXPECT_FALSE(scram::VerifierMatches(text, "pencil2"));
  EXPECT_FALSE(scram::ParseVerifier("md5abcdef").ok());
  EXPECT_FALSE(scram::ParseVerifier("SCRAM-SHA-256$x:salt$a:b").ok());
  EXPECT_FALSE(scram::ParseVerifier("SCRAM-SHA-256$4096:c2FsdA==$YQ==:Yg==").ok());
}

TEST(ScramTest, NewVerifiersHaveFreshSalts) {
  scram::Verifier a = scram::NewVerifier("pw");
  scram::Verifier b = scram::NewVerifier("pw");
  EXPECT_NE(a.salt, b.salt);
  EXPECT_TRUE(scram::VerifierMatches(scram::FormatVerifier(a), "pw"));
}

TEST(ScramServerTest, Rfc7677Exchange) {
  ScramServer server(Rfc7677Verifier(), kServerNonce);
  absl::StatusOr<std::string> first = server.HandleClientFirst(kClientFirst);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(*first, kServerFirst);
  absl::StatusOr<std::string> final_message = server.HandleClientFinal(kClientFinal);
  ASSERT_TRUE(final_message.ok()) << final_message.status();
  EXPECT_EQ(*final_message, kServerFinal);
  EXPECT_EQ(server.client_key(), Rfc7677ClientKey());
}

TEST(ScramServerTest, WrongPasswordIsPermissionDenied) {
  ScramServer server(scram::MakeVerifier("not pencil", Salt(), 4096), kServerNonce);
  ASSERT_TRUE(server.HandleClientFirst(kClientFirst).ok());
  absl::StatusOr<std::string> final_message = server.HandleClientFinal(kClientFinal);
  EXPECT_TRUE(absl::IsPermissionDenied(final_message.status())) << final_message.status();
  EXPECT_TRUE(server.client_key().empty());
}

TEST(ScramServerTest, RefusesMalformedAndReplayedMessages) {
  {
    ScramServer server(Rfc7677Verifier(), kServerNonce);
    EXPECT_TRUE(absl::IsInvalidArgument(server.HandleClientFirst("x,,n=user,r=abc").status()));
  }
  {
    ScramServer server(Rfc7677Verifier(), kServerNonce);
    EXPECT_FALSE(server.HandleClientFirst("p=tls-server-end-point,,n=,r=abc").ok());
  }
  {
    ScramServer server(Rfc7677Verifier(), kServerNonce);
    EXPECT_FALSE(server.HandleClientFirst("n,,n=user").ok());  // no nonce
  }
  {
    // A proof for another server nonce (a replay) does not pass.
    ScramServer server(Rfc7677Verifier(), "another-nonce");
    ASSERT_TRUE(server.HandleClientFirst(kClientFirst).ok());
    EXPECT_TRUE(absl::IsInvalidArgument(server.HandleClientFinal(kClientFinal).status()));
  }
  {
    // The channel-binding attribute must repeat the gs2 header.
    ScramServer server(Rfc7677Verifier(), kServerNonce);
    ASSERT_TRUE(server.HandleClientFirst("y,,n=user,r=rOprNGfwEbeRWgbNEkqO").ok());
    EXPECT_TRUE(absl::IsInvalidArgument(server.HandleClientFinal(kClientFinal).status()));
  }
  {
    ScramServer server(Rfc7677Verifier(), kServerNonce);
    ASSERT_TRUE(server.HandleClientFirst(kClientFirst).ok());
    EXPECT_FALSE(server.HandleClientFinal("c=biws,r=x,p=!!!").ok());
  }
}

TEST(ScramClientTest, Rfc7677ExchangeFromTheClientKey) {
  ScramClient client(Rfc7677ClientKey(), Rfc7677Verifier(), kClientNonce, "user");
  EXPECT_EQ(client.ClientFirst(), kClientFirst);
  absl::StatusOr<std::string> final_message = client.HandleServerFirst(kServerFirst);
  ASSERT_TRUE(final_message.ok()) << final_message.status();
  EXPECT_EQ(*final_message, kClientFinal);
  EXPECT_TRUE(client.HandleServerFinal(kServerFinal).ok());
  EXPECT_TRUE(absl::IsPermissionDenied(
      client.HandleServerFinal("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")));
  EXPECT_TRUE(absl::IsPermissionDenied(client.HandleServerFinal("e=invalid-proof")));
}

TEST(ScramClientTest, AServerWithAnotherSaltIsRefused) {
  ScramClient client(Rfc7677ClientKey(), scram::MakeVerifier(kPassword, "other salt", 4096),
                     kClientNonce);
  client.ClientFirst();
  EXPECT_TRUE(absl::IsFailedPrecondition(client.HandleServerFirst(kServerFirst).status()));
}

TEST(ScramPassThroughTest, TheProxyLogsInWithTheKeyTheClientProved) {
  // client --(password)--> proxy's ScramServer --(ClientKey)--> ScramClient --> PostgreSQL
  // (played by a second ScramServer holding the same verifier).
  scram::Verifier verifier = scram::NewVerifier("s3cret");
  ScramClient user(
      scram::ClientKeyOf(scram::SaltedPassword("s3cret", verifier.salt, verifier.iterations)),
      verifier, scram::RandomNonce());
  ScramServer proxy(verifier, scram::RandomNonce());
  auto server_first = proxy.HandleClientFirst(user.ClientFirst());
  ASSERT_TRUE(server_first.ok());
  auto client_final = user.HandleServerFirst(*server_first);
  ASSERT_TRUE(client_final.ok());
  auto server_final = proxy.HandleClientFinal(*client_final);
  ASSERT_TRUE(server_final.ok()) << server_final.status();
  EXPECT_TRUE(user.HandleServerFinal(*server_final).ok());

  ScramClient proxy_as_client(proxy.client_key(), verifier, scram::RandomNonce());
  ScramServer postgres(verifier, scram::RandomNonce());
  auto pg_first = postgres.HandleClientFirst(proxy_as_client.ClientFirst());
  ASSERT_TRUE(pg_first.ok());
  auto proxy_final = proxy_as_client.HandleServerFirst(*pg_first);
  ASSERT_TRUE(proxy_final.ok());
  auto pg_final = postgres.HandleClientFinal(*proxy_final);
  ASSERT_TRUE(pg_final.ok()) << pg_final.status();
  EXPECT_TRUE(proxy_as_client.HandleServerFinal(*pg_final).ok());
}

TEST(SaslMessagesTest, BuildAndParse) {
  std::string sasl = BuildAuthenticationSasl({"SCRAM-SHA-256"});
  EXPECT_EQ(sasl, std::string("R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0", 24));
  auto request = ParseAuthenticationRequest(sasl.substr(5));
  ASSERT_TRUE(request.ok());
  EXPECT_EQ(request->code, kAuthSasl);
  EXPECT_EQ(ParseSaslMechanisms(request->data), std::vector<std::string>{"SCRAM-SHA-256"});

  std::string initial = BuildSaslInitialResponse("SCRAM-SHA-256", kClientFirst);
  EXPECT_EQ(initial[0], 'p');
  auto parsed = ParseSaslInitialResponse(initial.substr(5));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(parsed->mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(parsed->data, kClientFirst);
  EXPECT_FALSE(ParseSaslInitialResponse(std::string("SCRAM\0\0\0\0\x09"
                                                    "abc",
                                                    13))
                   .ok());
  EXPECT_FALSE(ParseSaslInitialResponse("no terminator").ok());
  EXPECT_EQ(BuildAuthenticationOk(), std::string("R\0\0\0\x08\0\0\0\0", 9));
}

}  // namespace
}  // namespace pgbranch::proxy
