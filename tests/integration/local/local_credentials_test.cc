// Credentials in local mode, end to end through the CLI with real processes: each branch has its
// own role password (a child of a protected branch too), the proxy checks it with SCRAM-SHA-256
// BEFORE it wakes anything (a wrong password gets 28P01 and leaves a suspended endpoint
// suspended), connection strings survive a reset, TLS verify-full against the instance's CA is
// the default, and `local up --no-tls` gives plain connections.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "common/scram.h"
#include "common/text_util.h"
#include "proxy/pg_protocol.h"
#include "tests/integration/local/local_mode_fixture.h"

namespace pgbranch::testing {
namespace {

namespace fs = std::filesystem;

// A blocking client socket with the few reads and writes a login needs.
class RawConnection {
 public:
  explicit RawConnection(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{30, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  bool Write(const std::string& data) {
    return ::write(fd_, data.data(), data.size()) == static_cast<ssize_t>(data.size());
  }
  bool ReadFull(char* buf, size_t n) {
    for (size_t got = 0; got < n;) {
      ssize_t r = ::read(fd_, buf + got, n - got);
      if (r <= 0) return false;
      got += static_cast<size_t>(r);
    }
    return true;
  }
  // One typed message; false at EOF.
  bool ReadMessage(char* type, std::string* body) {
    char header[5];
    if (!ReadFull(header, 5)) return false;
    auto b = reinterpret_cast<unsigned char*>(header + 1);
    uint32_t len = (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
    if (len < 4 || len > 1 << 20) return false;
    *type = header[0];
    body->assign(len - 4, '\0');
    return ReadFull(body->data(), body->size());
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

// Logs in over plain TCP speaking the protocol itself (SCRAM-SHA-256 with `password`) and
// returns "OK" after AuthenticationOk, or the SQLSTATE of the ErrorResponse, or what went wrong.
std::string LogIn(int port, const std::string& user, const std::string& password,
                  const std::string& options = "") {
  RawConnection c(port);
  if (!c.connected()) return "cannot connect";
  proxy::StartupParameters params = {{"user", user}, {"database", "app"}};
  if (!options.empty()) params.emplace_back("options", options);
  if (!c.Write(proxy::BuildStartupMessage(proxy::kProtocolVersion3, params))) return "write";
  const std::string nonce = scram::RandomNonce();
  const std::string client_first_bare = "n=,r=" + nonce;
  for (int i = 0; i < 10; ++i) {
    char type;
    std::string body;
    if (!c.ReadMessage(&type, &body)) return "closed";
    if (type == 'E') {
      for (size_t pos = 0; pos < body.size();) {
        size_t end = body.find('\0', pos + 1);
        if (body[pos] == 'C') return body.substr(pos + 1, end - pos - 1);
        if (end == std::string::npos) break;
        pos = end + 1;
      }
      return "error without SQLSTATE";
    }
    if (type != 'R') return absl::StrCat("unexpected message ", std::string(1, type));
    auto request = proxy::ParseAuthenticationRequest(body);
    if (!request.ok()) return "bad auth request";
    if (request->code == proxy::kAuthOk) return "OK";
    if (request->code == proxy::kAuthSasl) {
      c.Write(proxy::BuildSaslInitialResponse("SCRAM-SHA-256", "n,," + client_first_bare));
    } else if (request->code == proxy::kAuthSaslContinue) {
      std::string server_first = request->data, combined, salt;
      int iterations = 0;
      for (absl::string_view a : absl::StrSplit(server_first, ',')) {
        if (absl::StartsWith(a, "r=")) combined = std::string(a.substr(2));
        if (absl::StartsWith(a, "s=")) absl::Base64Unescape(a.substr(2), &salt);
        if (absl::StartsWith(a, "i=")) iterations = std::atoi(std::string(a.substr(2)).c_str());
      }
      std::string without_proof = "c=biws,r=" + combined;
      std::string auth_message =
          absl::StrCat(client_first_bare, ",", server_first, ",", without_proof);
      std::string client_key =
          scram::ClientKeyOf(scram::SaltedPassword(password, salt, iterations));
      std::string proof =
          scram::Xor(client_key, scram::HmacSha256(scram::Sha256(client_key), auth_message));
      c.Write(
          proxy::BuildSaslResponse(absl::StrCat(without_proof, ",p=", absl::Base64Escape(proof))));
    }
  }
  return "too many messages";
}

// The agent processes of `endpoint`: pgbranch-compute --config STATE/computes/NAME/compute.yaml,
// or a spare (--spare-under STATE/computes/) handed that compute, which writes to its log.
bool ComputeProcessRuns(const LocalMode& local, const std::string& endpoint) {
  const std::string workdir = local.state_dir() + "/computes/" + endpoint;
  const std::string needle = workdir + "/compute.yaml";
  for (const auto& p : fs::directory_iterator("/proc")) {
    std::ifstream in(p.path() / "cmdline");
    std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (cmd.find(needle) != std::string::npos) return true;
    std::error_code ec;
    if (cmd.find("--spare-under") != std::string::npos &&
        fs::read_symlink(p.path() / "fd" / "1", ec) ==
            fs::weakly_canonical(fs::path(workdir) / "compute.log", ec)) {
      return true;
    }
  }
  return false;
}

std::string WithPassword(std::string uri, const std::string& from, const std::string& to) {
  return absl::StrReplaceAll(uri, {{":" + from + "@", ":" + to + "@"}});
}

class LocalCredentialsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    local_ = new LocalMode();
    absl::Status s = local_->Up();
    ASSERT_TRUE(s.ok()) << s;
    CommandResult r =
        local_->Cli({"branch", "create", "main", "--protected", "--suspend-timeout", "2s"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    local_->Query(local_->Connstr("main"), "CREATE TABLE t (v int); INSERT INTO t VALUES (1)");
    r = local_->Cli({"branch", "create", "dev", "--parent", "main", "--suspend-timeout", "2s"});
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
  }
  static void TearDownTestSuite() {
    delete local_;
    local_ = nullptr;
  }
  static LocalMode* local_;
};

LocalMode* LocalCredentialsTest::local_ = nullptr;

TEST_F(LocalCredentialsTest, EachBranchHasItsOwnPassword) {
  web::json::value main = local_->CliJson({"connstr", "main"});
  web::json::value dev = local_->CliJson({"connstr", "dev"});
  const std::string main_pw = main.at("password").as_string();
  const std::string dev_pw = dev.at("password").as_string();
  EXPECT_NE(main_pw, dev_pw) << "a child of a protected branch has its own password";
  EXPECT_EQ(local_->Query(main.at("uri").as_string(), "SELECT v FROM t"), "1");
  EXPECT_EQ(local_->Query(dev.at("uri").as_string(), "SELECT v FROM t"), "1");
  // Neither password opens the other branch: on its own port or through the shared one.
  for (const char* field : {"uri", "proxyUri"}) {
    CommandResult r =
        local_->Psql(WithPassword(main.at(field).as_string(), main_pw, dev_pw), "SELECT 1");
    EXPECT_NE(r.exit_code, 0) << field;
    EXPECT_TRUE(absl::StrContains(r.err, "password authentication failed for user \"app\""))
        << field << ": " << r.err;
    r = local_->Psql(WithPassword(dev.at(field).as_string(), dev_pw, main_pw), "SELECT 1");
    EXPECT_NE(r.exit_code, 0) << field;
    EXPECT_TRUE(absl::StrContains(r.err, "password authentication failed")) << r.err;
  }
  // `branch create` printed the branch's own password too.
  CommandResult created =
      local_->Cli({"branch", "create", "other", "--parent", "main", "--suspend-timeout", "2s"});
  ASSERT_EQ(created.exit_code, 0) << created.Describe();
  web::json::value other = local_->CliJson({"connstr", "other"});
  EXPECT_TRUE(absl::StrContains(created.out, other.at("password").as_string())) << created.out;
  EXPECT_NE(other.at("password").as_string(), main_pw);
  // Stored 0600, keyed by the branch's uid.
  web::json::value branch = local_->CliJson({"branch", "get", "dev"});
  std::string file = absl::StrCat(local_->state_dir(), "/credentials/branches/",
                                  branch.at("metadata").at("uid").as_string(), ".password");
  struct stat st;
  ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST_F(LocalCredentialsTest, WrongPasswordGets28P01AndDoesNotWake) {
  web::json::value main = local_->CliJson({"connstr", "main"});
  const int port = main.at("port").as_integer();
  const std::string pw = main.at("password").as_string();
  // Every endpoint idle: no PostgreSQL runs at all.
  ASSERT_TRUE(local_->WaitPhase("main", "Suspended"));
  ASSERT_TRUE(local_->WaitPhase("dev", "Suspended"));
  ASSERT_TRUE(local_->WaitPhase("other", "Suspended"));
  ASSERT_FALSE(ComputeProcessRuns(*local_, "main"));
  EXPECT_EQ(LogIn(port, "app", "wrong"), "28P01");
  EXPECT_EQ(LogIn(local_->proxy_port(), "app", "wrong", "endpoint=main"), "28P01");
  EXPECT_EQ(LogIn(port, "postgres", pw), "28P01") << "only the branch's role logs in";
  CommandResult r = local_->Psql(WithPassword(main.at("uri").as_string(), pw, "wrong"), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "password authentication failed for user \"app\"")) << r.err;
  // Nothing woke up: no compute process was started, the endpoint stays suspended.
  EXPECT_FALSE(ComputeProcessRuns(*local_, "main"));
  EXPECT_EQ(local_->PostmastersRunning(), 0);
  web::json::value e = local_->CliJson({"endpoint", "get", "main"});
  EXPECT_EQ(e.at("status").at("phase").as_string(), "Suspended");
  // The right password wakes it.
  EXPECT_EQ(LogIn(port, "app", pw), "OK");
  EXPECT_EQ(local_->Query(main.at("uri").as_string(), "SELECT v FROM t"), "1");
  EXPECT_TRUE(local_->WaitPhase("main", "Running", absl::Seconds(1)) ||
              local_->WaitPhase("main", "Suspended"));
}

TEST_F(LocalCredentialsTest, ConnstrKeepsWorkingAcrossReset) {
  const std::string uri = local_->Connstr("dev");
  local_->Query(uri, "INSERT INTO t VALUES (2)");
  EXPECT_EQ(local_->Query(uri, "SELECT count(*) FROM t"), "2");
  CommandResult reset = local_->Cli({"branch", "reset", "dev"});
  ASSERT_EQ(reset.exit_code, 0) << reset.Describe();
  EXPECT_EQ(local_->Connstr("dev"), uri);
  EXPECT_EQ(local_->Query(uri, "SELECT count(*) FROM t"), "1") << "reset to main's data";
}

TEST_F(LocalCredentialsTest, DeletingABranchDeletesItsCredentials) {
  CommandResult r = local_->Cli({"branch", "create", "gone", "--parent", "main"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  std::string uid = local_->CliJson({"branch", "get", "gone"}).at("metadata").at("uid").as_string();
  std::string file = absl::StrCat(local_->state_dir(), "/credentials/branches/", uid, ".password");
  ASSERT_TRUE(fs::exists(file));
  ASSERT_EQ(local_->Cli({"endpoint", "delete", "gone"}).exit_code, 0);
  ASSERT_EQ(local_->Cli({"branch", "delete", "gone"}).exit_code, 0);
  for (int i = 0; i < 600 && fs::exists(file); ++i) ::usleep(100'000);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_FALSE(
      fs::exists(absl::StrCat(local_->state_dir(), "/credentials/branches/", uid, ".scram")));
}

TEST_F(LocalCredentialsTest, VerifyFullConnectsAndAnotherCaFails) {
  web::json::value main = local_->CliJson({"connstr", "main"});
  const std::string uri = main.at("uri").as_string();
  const std::string ca = local_->state_dir() + "/tls/ca.crt";
  EXPECT_TRUE(absl::StrContains(uri, "sslmode=verify-full")) << uri;
  EXPECT_EQ(main.at("sslrootcert").as_string(), ca);
  CommandResult r = local_->Psql(uri, "\\conninfo");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_TRUE(absl::StrContains(r.out, "SSL connection")) << r.out;
  // The certificate names localhost as well as 127.0.0.1.
  std::string by_name = absl::StrReplaceAll(uri, {{"@127.0.0.1:", "@localhost:"}});
  EXPECT_EQ(local_->Query(by_name, "SELECT 1"), "1");
  // The shared port too.
  EXPECT_EQ(local_->Query(main.at("proxyUri").as_string(), "SELECT 2"), "2");
  // A CA that did not sign the proxy's certificate is refused.
  const std::string other_dir = local_->state_dir() + "/other-ca";
  fs::create_directories(other_dir);
  CommandResult made =
      RunCommand({"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                  "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=other", "-days", "1",
                  "-keyout", other_dir + "/ca.key", "-out", other_dir + "/ca.crt"});
  ASSERT_EQ(made.exit_code, 0) << made.Describe();
  std::string wrong = absl::StrReplaceAll(uri, {{UriEscape(ca), other_dir + "/ca.crt"}});
  ASSERT_NE(wrong, uri);
  r = local_->Psql(wrong, "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "certificate verify failed")) << r.err;
}

// `local up --no-tls`: the proxy answers SSLRequest with 'N' and connection strings carry no
// sslmode; the proxy still authenticates before it wakes.
TEST(LocalPlainConnectionsTest, NoTlsGivesPlainConnections) {
  LocalMode local;
  absl::Status s = local.Up({"--no-tls"});
  ASSERT_TRUE(s.ok()) << s;
  CommandResult r = local.Cli({"branch", "create", "main"});
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  web::json::value main = local.CliJson({"connstr", "main"});
  const std::string uri = main.at("uri").as_string();
  EXPECT_FALSE(absl::StrContains(uri, "sslmode")) << uri;
  EXPECT_FALSE(main.has_field("sslmode"));
  r = local.Psql(uri, "\\conninfo");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_FALSE(absl::StrContains(r.out, "SSL connection")) << r.out;
  r = local.Psql(uri + "?sslmode=require", "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(r.err, "does not support SSL")) << r.err;
  EXPECT_EQ(LogIn(main.at("port").as_integer(), "app", "wrong"), "28P01");
}

}  // namespace
}  // namespace pgbranch::testing
