// pgbranch-proxy end to end: a real PostgreSQL 15 listening on 127.0.0.1, the proxy binary, a
// fake controller (HTTP), and real clients (psql as the postgres user, libpq in-process).
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/net_util.h"
#include "tests/integration/proxy/fake_controller.h"
#include "tests/integration/proxy/proxy_process.h"
#include "tests/support/pageserver_process.h"
#include "tests/support/postgres_instance.h"

namespace pgbranch::proxy {
namespace {

using pgbranch::testing::CommandResult;
using pgbranch::testing::PostgresInstance;
using pgbranch::testing::RunAsPostgres;
using pgbranch::testing::TempDir;
using testing::FakeController;
using testing::ProxyProcess;

constexpr char kPsql[] = "/usr/lib/postgresql/15/bin/psql";

// A loopback port that was free a moment ago.
int FreePort() { return ::pgbranch::net::FreeLoopbackPort().value_or(0); }

// A raw TCP connection to the proxy for malformed-input tests; reads time out after 20 s so a
// proxy bug shows up as a failure, not a hang.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    timeval tv{20, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  }
  ~RawClient() { close(fd_); }
  bool connected() const { return connected_; }
  void Send(const std::string& data) { (void)!write(fd_, data.data(), data.size()); }
  // Everything until EOF (or the 20 s timeout: then `*eof` is false).
  std::string ReadAll(bool* eof) {
    std::string out;
    char buf[4096];
    while (true) {
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) {
        *eof = n == 0 || errno == ECONNRESET;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

std::string U32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}

// GET http://127.0.0.1:PORT/metrics (raw HTTP/1.0); "" on failure.
std::string FetchMetrics(int port) {
  RawClient c(port);
  if (!c.connected()) return "";
  c.Send("GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
  bool eof = false;
  return c.ReadAll(&eof);
}

// The value of the sample whose line starts with `series` (name plus labels, e.g.
// `pgbranch_proxy_spliced_connections` or `..._total{result="ok"}`), or -1 when absent.
double MetricValue(const std::string& metrics, const std::string& series) {
  size_t pos = 0;
  while ((pos = metrics.find(series + " ", pos)) != std::string::npos) {
    if (pos == 0 || metrics[pos - 1] == '\n') {
      return std::strtod(metrics.c_str() + pos + series.size() + 1, nullptr);
    }
    pos += series.size();
  }
  return -1;
}

// Polls `series` until it equals `want` (up to 15 s).
bool WaitForMetric(int port, const std::string& series, double want) {
  for (int i = 0; i < 300; ++i) {
    if (MetricValue(FetchMetrics(port), series) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// What a process's descriptors point at, one per line (for failure messages).
std::string FdList(pid_t pid) {
  std::string out;
  std::string dir = absl::StrCat("/proc/", pid, "/fd");
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code ec2;
    out += it->path().filename().string() + " -> " +
           std::filesystem::read_symlink(it->path(), ec2).string() + "\n";
  }
  return out;
}

constexpr char kDevConnections[] = "pgbranch_proxy_client_connections{endpoint=\"dev\"}";
constexpr char kSpliced[] = "pgbranch_proxy_spliced_connections";
constexpr char kSplicesOk[] = "pgbranch_proxy_splices_total{result=\"ok\"}";

class ProxyIntegrationTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    chmod(dir_->path().c_str(), 0755);
    PostgresInstance::Options o;
    o.data_dir = dir_->path() + "/pgdata";
    o.socket_dir = dir_->path() + "/sock";
    o.settings = {"listen_addresses=127.0.0.1", "max_connections=50", "fsync=off"};
    pg_ = new PostgresInstance(o);
    absl::Status s = pg_->InitDb(/*no_sync=*/true);
    if (s.ok()) s = pg_->Start();
    ASSERT_TRUE(s.ok()) << s;
    controller_ = new FakeController();
    ASSERT_TRUE(controller_->Start().ok());
    controller_->AddEndpoint("dev", {"127.0.0.1", pg_->port()});
    proxy_ = new ProxyProcess(controller_->url(), dir_->path() + "/proxy",
                              {"--startup-timeout", "2s", "--wake-timeout", "20s"});
    s = proxy_->Start();
    ASSERT_TRUE(s.ok()) << s;
  }

  static void TearDownTestSuite() {
    delete proxy_;
    delete controller_;
    delete pg_;
    delete dir_;
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << "proxy log:\n" << proxy_->LogTail() << "\n";
  }

  // psql as the postgres user with a keyword/value connection string.
  static CommandResult Psql(const std::string& conninfo, const std::string& sql) {
    return RunAsPostgres({kPsql, "-X", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql, conninfo}, "",
                         60);
  }

  static std::string Conninfo(int port, const std::string& extra = "") {
    return absl::StrCat("host=127.0.0.1 port=", port,
                        " user=postgres dbname=postgres connect_timeout=30 ", extra);
  }

  // A proxy of its own with a metrics port; `relay_args` e.g. {"--relay", "threads"}.
  struct MeteredProxy {
    std::unique_ptr<ProxyProcess> proxy;
    int metrics_port = 0;
  };
  static MeteredProxy StartMeteredProxy(const std::string& name,
                                        std::vector<std::string> relay_args) {
    MeteredProxy m;
    m.metrics_port = FreePort();
    relay_args.insert(relay_args.end(),
                      {"--metrics-listen", absl::StrCat("127.0.0.1:", m.metrics_port)});
    m.proxy =
        std::make_unique<ProxyProcess>(controller_->url(), dir_->path() + "/" + name, relay_args);
    absl::Status s = m.proxy->Start();
    EXPECT_TRUE(s.ok()) << s << m.proxy->LogTail();
    return m;
  }

  // Whether the proxy chose the kernel relay (false: this machine refuses BPF sockmap).
  static bool Spliced(const ProxyProcess& proxy) {
    return proxy.Log().find("BPF sockmap unavailable") == std::string::npos;
  }

  // COPY out of 30,000 rows and COPY in of 50,000 rows through `port`.
  static void LargeCopiesBothWays(int port) {
    CommandResult r = Psql(Conninfo(port, "options=endpoint=dev"),
                           "COPY (SELECT g, repeat('x', 40) FROM generate_series(1, 30000) g) TO "
                           "STDOUT");
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 30000);
    EXPECT_EQ(r.out.substr(r.out.size() - 47), "30000\t" + std::string(40, 'x') + "\n");
    std::string rows;
    for (int i = 0; i < 50000; ++i) rows += std::to_string(i) + "\tsome padding text\n";
    r = RunAsPostgres(
        {kPsql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", Conninfo(port, "options=endpoint=dev")},
        "CREATE TEMP TABLE t(i int, s text);\nCOPY t FROM STDIN;\n" + rows +
            "\\.\nSELECT sum(i), count(*) FROM t;\n",
        60);
    ASSERT_EQ(r.exit_code, 0) << r.Describe();
    EXPECT_EQ(r.out, "1249975000|50000\n");
  }

  static TempDir* dir_;
  static PostgresInstance* pg_;
  static FakeController* controller_;
  static ProxyProcess* proxy_;
};

TempDir* ProxyIntegrationTest::dir_ = nullptr;
PostgresInstance* ProxyIntegrationTest::pg_ = nullptr;
FakeController* ProxyIntegrationTest::controller_ = nullptr;
ProxyProcess* ProxyIntegrationTest::proxy_ = nullptr;

TEST_F(ProxyIntegrationTest, RoutesByEndpointOption) {
  CommandResult r = Psql(Conninfo(proxy_->port(), "options=endpoint=dev"), "SELECT 40 + 2");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "42\n");
  // The other options reach PostgreSQL; endpoint= does not (it would reject it).
  r = Psql(Conninfo(proxy_->port(), "options='--endpoint=dev -c work_mem=7MB'"), "SHOW work_mem");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "7MB\n");
  // URI form, as the proxy's hint shows it.
  r = Psql(absl::StrCat("postgresql://postgres@127.0.0.1:", proxy_->port(),
                        "/postgres?options=endpoint%3Ddev"),
           "SELECT current_user");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "postgres\n");
}

TEST_F(ProxyIntegrationTest, RoutesByEndpointPortFromTheRouteTable) {
  int port = FreePort();
  int64_t v = controller_->SetRoutes({{"dev", port}});
  ASSERT_TRUE(controller_->WaitForAck(v));
  CommandResult r = Psql(Conninfo(port), "SELECT 'via port'");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "via port\n");

  v = controller_->SetRoutes({});
  ASSERT_TRUE(controller_->WaitForAck(v));
  r = Psql(Conninfo(port), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("Connection refused"), std::string::npos) << r.err;
}

TEST_F(ProxyIntegrationTest, MainPortWithoutEndpointExplainsHowToNameOne) {
  CommandResult r = Psql(Conninfo(proxy_->port()), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("no endpoint named"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("options=endpoint%3DNAME"), std::string::npos) << r.err;
}

TEST_F(ProxyIntegrationTest, UnknownEndpoint) {
  CommandResult r = Psql(Conninfo(proxy_->port(), "options=endpoint=nope"), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("endpoint \"nope\" does not exist"), std::string::npos) << r.err;
}

TEST_F(ProxyIntegrationTest, WakeFailureReachesTheClient) {
  controller_->AddEndpoint("broken", {"127.0.0.1", pg_->port()});
  controller_->FailWake("broken", 503, "compute failed to start: pagefs mount failed");
  CommandResult r = Psql(Conninfo(proxy_->port(), "options=endpoint=broken"), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("endpoint \"broken\" could not be woken up"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("compute failed to start: pagefs mount failed"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("HINT"), std::string::npos) << r.err;
}

TEST_F(ProxyIntegrationTest, DelayedWakeHoldsEveryClientUntilReady) {
  controller_->AddEndpoint("sleepy", {"127.0.0.1", pg_->port()});
  controller_->DelayWake("sleepy", std::chrono::milliseconds(1500));
  auto connect = [&] {
    return Psql(Conninfo(proxy_->port(), "options=endpoint=sleepy"), "SELECT 'awake'");
  };
  auto first = std::async(std::launch::async, connect);
  auto second = std::async(std::launch::async, connect);
  CommandResult a = first.get();
  CommandResult b = second.get();
  ASSERT_EQ(a.exit_code, 0) << a.Describe();
  ASSERT_EQ(b.exit_code, 0) << b.Describe();
  EXPECT_EQ(a.out, "awake\n");
  EXPECT_EQ(b.out, "awake\n");
  EXPECT_EQ(controller_->wake_calls("sleepy"), 2) << "every connection asks for a wake";
}

TEST_F(ProxyIntegrationTest, WakeTimeoutGivesAClearError) {
  controller_->AddEndpoint("slow", {"127.0.0.1", pg_->port()});
  controller_->DelayWake("slow", std::chrono::milliseconds(8000));
  ProxyProcess proxy(controller_->url(), dir_->path() + "/proxy-timeout", {"--wake-timeout", "1s"});
  ASSERT_TRUE(proxy.Start().ok());
  CommandResult r = Psql(Conninfo(proxy.port(), "options=endpoint=slow"), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("did not wake up within 1s"), std::string::npos) << r.err;
  EXPECT_EQ(proxy.Stop(), 0);
}

TEST_F(ProxyIntegrationTest, ControllerDownGivesAClearError) {
  ProxyProcess proxy(absl::StrCat("http://127.0.0.1:", FreePort()), dir_->path() + "/proxy-down",
                     {});
  ASSERT_TRUE(proxy.Start().ok());
  CommandResult r = Psql(Conninfo(proxy.port(), "options=endpoint=dev"), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  // Waking needs the controller: the error says to start it (an endpoint already running
  // stays reachable through its last address, which this one never had).
  EXPECT_NE(r.err.find("could not be woken up: the pgbranch controller is not running; run "
                       "`pgbranch local up`"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(proxy.Stop(), 0);
}

TEST_F(ProxyIntegrationTest, SslRequiredWithoutTlsConfiguredFailsCleanly) {
  CommandResult r =
      Psql(Conninfo(proxy_->port(), "sslmode=require options=endpoint=dev"), "SELECT 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("server does not support SSL"), std::string::npos) << r.err;
  // sslmode=prefer falls back to plain text after the 'N'.
  r = Psql(Conninfo(proxy_->port(), "sslmode=prefer options=endpoint=dev"), "SELECT 'plain'");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
}

TEST_F(ProxyIntegrationTest, TlsWithSelfSignedCertificateAndSniRouting) {
  std::string cert = dir_->path() + "/cert.pem";
  std::string key = dir_->path() + "/key.pem";
  std::string cmd = absl::StrCat("openssl req -x509 -newkey rsa:2048 -nodes -keyout ", key,
                                 " -out ", cert, " -days 1 -subj /CN=localhost 2>/dev/null");
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  ProxyProcess proxy(controller_->url(), dir_->path() + "/proxy-tls",
                     {"--tls-cert", cert, "--tls-key", key});
  ASSERT_TRUE(proxy.Start().ok()) << proxy.LogTail();
  CommandResult r =
      Psql(Conninfo(proxy.port(), "sslmode=require options=endpoint=dev"), "SELECT 'over tls'");
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << proxy.LogTail();
  EXPECT_EQ(r.out, "over tls\n");
  // The SNI name's first label names the endpoint (hostaddr keeps resolution out of it).
  r = Psql(absl::StrCat("host=dev.localhost hostaddr=127.0.0.1 port=", proxy.port(),
                        " user=postgres dbname=postgres sslmode=require"),
           "SELECT 'by sni'");
  ASSERT_EQ(r.exit_code, 0) << r.Describe() << proxy.LogTail();
  EXPECT_EQ(r.out, "by sni\n");
  // Plain text still works on a TLS-enabled proxy.
  r = Psql(Conninfo(proxy.port(), "sslmode=disable options=endpoint=dev"), "SELECT 'plain'");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  // A large result crosses the TLS relay intact.
  r = Psql(Conninfo(proxy.port(), "sslmode=require options=endpoint=dev"),
           "SELECT sum(length(repeat('x', g))) FROM generate_series(1, 3000) g");
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "4501500\n");
  EXPECT_EQ(proxy.Stop(), 0);
}

TEST_F(ProxyIntegrationTest, CancelRequestReachesPostgres) {
  std::string conninfo = Conninfo(proxy_->port(), "options=endpoint=dev application_name=victim");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  ASSERT_EQ(PQsendQuery(conn, "SELECT pg_sleep(30)"), 1);
  // Wait until the query runs, so the cancel has something to cancel.
  bool running = false;
  for (int i = 0; i < 200 && !running; ++i) {
    auto n = pg_->QueryInt(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'victim' AND "
        "state = 'active' AND query LIKE 'SELECT pg_sleep%'");
    running = n.ok() && *n == 1;
    if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(running);
  PGcancel* cancel = PQgetCancel(conn);
  char err[256] = {};
  ASSERT_EQ(PQcancel(cancel, err, sizeof(err)), 1) << err;
  PQfreeCancel(cancel);
  PGresult* res = PQgetResult(conn);
  ASSERT_NE(res, nullptr);
  EXPECT_EQ(PQresultStatus(res), PGRES_FATAL_ERROR);
  EXPECT_NE(std::string(PQresultErrorMessage(res)).find("canceling statement due to user request"),
            std::string::npos)
      << PQresultErrorMessage(res);
  PQclear(res);
  while ((res = PQgetResult(conn)) != nullptr) PQclear(res);
  // The session survives the cancel.
  res = PQexec(conn, "SELECT 1");
  EXPECT_EQ(PQresultStatus(res), PGRES_TUPLES_OK);
  PQclear(res);
  PQfinish(conn);
}

TEST_F(ProxyIntegrationTest, ReportsOpenConnectionsToTheController) {
  ASSERT_TRUE(controller_->WaitForActivity("dev", 0));
  std::string conninfo = Conninfo(proxy_->port(), "options=endpoint=dev");
  PGconn* a = PQconnectdb(conninfo.c_str());
  PGconn* b = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(a), CONNECTION_OK) << PQerrorMessage(a);
  ASSERT_EQ(PQstatus(b), CONNECTION_OK) << PQerrorMessage(b);
  EXPECT_TRUE(controller_->WaitForActivity("dev", 2));
  PQfinish(a);
  EXPECT_TRUE(controller_->WaitForActivity("dev", 1));
  PQfinish(b);
  EXPECT_TRUE(controller_->WaitForActivity("dev", 0));
}

TEST_F(ProxyIntegrationTest, MalformedStartupPacketsGetAnErrorResponse) {
  {
    RawClient c(proxy_->port());
    ASSERT_TRUE(c.connected());
    c.Send(U32(0x7fffffff) + "xxxx");  // absurd length
    bool eof = false;
    std::string reply = c.ReadAll(&eof);
    EXPECT_TRUE(eof);
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(reply[0], 'E');
    EXPECT_NE(reply.find("invalid length of startup packet"), std::string::npos);
  }
  {
    RawClient c(proxy_->port());
    c.Send(U32(9) + U32(2 << 16) + std::string(1, '\0'));  // protocol 2.0
    bool eof = false;
    std::string reply = c.ReadAll(&eof);
    EXPECT_TRUE(eof);
    ASSERT_FALSE(reply.empty());
    EXPECT_EQ(reply[0], 'E');
    EXPECT_NE(reply.find("unsupported frontend protocol 2.0"), std::string::npos) << reply;
  }
  {
    RawClient c(proxy_->port());
    c.Send(U32(8) + U32(80877104));  // GSSENCRequest: 'N', then garbage parameters
    c.Send(U32(12) + U32(3 << 16) + "bad!");
    bool eof = false;
    std::string reply = c.ReadAll(&eof);
    EXPECT_TRUE(eof);
    ASSERT_GE(reply.size(), 2u);
    EXPECT_EQ(reply[0], 'N');
    EXPECT_EQ(reply[1], 'E');
  }
  {
    // A client that never sends its startup packet is dropped (--startup-timeout 2s).
    RawClient c(proxy_->port());
    bool eof = false;
    std::string reply = c.ReadAll(&eof);
    EXPECT_TRUE(eof) << "the proxy kept a silent client";
    EXPECT_NE(reply.find("timed out waiting for the startup packet"), std::string::npos);
  }
  {
    // An unknown cancel key is ignored quietly, as PostgreSQL does.
    RawClient c(proxy_->port());
    c.Send(U32(16) + U32(80877102) + U32(1) + U32(2));
    bool eof = false;
    EXPECT_EQ(c.ReadAll(&eof), "");
    EXPECT_TRUE(eof);
  }
  // The proxy still serves.
  CommandResult r = Psql(Conninfo(proxy_->port(), "options=endpoint=dev"), "SELECT 1");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
}

TEST_F(ProxyIntegrationTest, EpollRelayMode) {
  ProxyProcess proxy(controller_->url(), dir_->path() + "/proxy-epoll",
                     {"--relay", "epoll", "--relay-threads", "2"});
  ASSERT_TRUE(proxy.Start().ok()) << proxy.LogTail();
  auto query = [&](const std::string& sql) {
    return Psql(Conninfo(proxy.port(), "options=endpoint=dev"), sql);
  };
  // Several sessions at once, each with a result larger than the relay's buffers.
  std::vector<std::future<CommandResult>> runs;
  for (int i = 0; i < 4; ++i) {
    runs.push_back(std::async(std::launch::async, [&] {
      return query("SELECT sum(length(repeat('x', g))) FROM generate_series(1, 3000) g");
    }));
  }
  for (auto& f : runs) {
    CommandResult r = f.get();
    ASSERT_EQ(r.exit_code, 0) << r.Describe() << proxy.LogTail();
    EXPECT_EQ(r.out, "4501500\n");
  }
  // A large upload (COPY FROM STDIN) crosses the client-to-server direction.
  std::string rows;
  for (int i = 0; i < 20000; ++i) rows += std::to_string(i) + "\n";
  CommandResult r = RunAsPostgres(
      {kPsql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
       Conninfo(proxy.port(), "options=endpoint=dev")},
      "CREATE TEMP TABLE t(i int);\nCOPY t FROM STDIN;\n" + rows + "\\.\nSELECT sum(i) FROM t;\n",
      60);
  ASSERT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(r.out, "199990000\n");
  EXPECT_EQ(proxy.Stop(), 0);
}

TEST_F(ProxyIntegrationTest, DefaultRelaySplicesSessionsInTheKernel) {
  MeteredProxy m = StartMeteredProxy("proxy-sockmap", {"--relay", "auto"});
  if (!Spliced(*m.proxy)) GTEST_SKIP() << "no BPF sockmap here: " << m.proxy->LogTail();
  std::string conninfo = Conninfo(m.proxy->port(), "options=endpoint=dev");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kSpliced, 1)) << FetchMetrics(m.metrics_port);
  PGresult* res = PQexec(conn, "SELECT 'through the kernel'");
  ASSERT_EQ(PQresultStatus(res), PGRES_TUPLES_OK) << PQerrorMessage(conn);
  EXPECT_STREQ(PQgetvalue(res, 0, 0), "through the kernel");
  PQclear(res);
  PQfinish(conn);
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kSpliced, 0));
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 0));

  LargeCopiesBothWays(m.proxy->port());
  // Spliced bytes are counted when the session ends.
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kSpliced, 0));
  std::string metrics = FetchMetrics(m.metrics_port);
  EXPECT_GE(MetricValue(metrics, kSplicesOk), 3) << metrics;
  EXPECT_GT(
      MetricValue(metrics, "pgbranch_proxy_relayed_bytes_total{direction=\"server_to_client\"}"),
      1.5e6)
      << metrics;
  EXPECT_GT(
      MetricValue(metrics, "pgbranch_proxy_relayed_bytes_total{direction=\"client_to_server\"}"),
      1e6)
      << metrics;
  EXPECT_EQ(m.proxy->Stop(), 0);
}

TEST_F(ProxyIntegrationTest, ManySplicedSessionsLeakNothing) {
  MeteredProxy m = StartMeteredProxy("proxy-leak", {"--relay", "auto"});
  if (!Spliced(*m.proxy)) GTEST_SKIP() << "no BPF sockmap here";
  std::string conninfo = Conninfo(m.proxy->port(), "options=endpoint=dev");
  auto session = [&] {
    PGconn* conn = PQconnectdb(conninfo.c_str());
    EXPECT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
    PGresult* res = PQexec(conn, "SELECT 1");
    EXPECT_EQ(PQresultStatus(res), PGRES_TUPLES_OK) << PQerrorMessage(conn);
    PQclear(res);
    PQfinish(conn);
  };
  // Warms up what is created lazily (threads, the controller client's pooled connections).
  for (int i = 0; i < 10; ++i) session();
  ASSERT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 0));
  int before = m.proxy->OpenFds();
  ASSERT_GT(before, 0);
  std::string fds_before = FdList(m.proxy->pid());
  for (int i = 0; i < 150; ++i) session();
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 0));
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kSpliced, 0));
  EXPECT_GE(MetricValue(FetchMetrics(m.metrics_port), kSplicesOk), 160);
  // Sessions end asynchronously: give the last ones a moment to close their sockets.
  int after = -1;
  for (int i = 0; i < 100 && (after = m.proxy->OpenFds()) > before + 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  // A leak would be one or two descriptors per session; the HTTP client to the controller may
  // keep a pooled connection more than during the warm-up.
  EXPECT_LE(after, before + 2) << "before:\n" << fds_before << "after:\n" << FdList(m.proxy->pid());
  EXPECT_EQ(m.proxy->Stop(), 0);
}

TEST_F(ProxyIntegrationTest, ClientVanishingMidQueryEndsTheSplicedSession) {
  MeteredProxy m = StartMeteredProxy("proxy-vanish", {"--relay", "auto"});
  std::string conninfo =
      Conninfo(m.proxy->port(), "options=endpoint=dev application_name=vanishing");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  // A result far larger than every socket buffer, so the kernel is mid-forwarding.
  ASSERT_EQ(PQsendQuery(conn, "SELECT repeat('x', 1000) FROM generate_series(1, 200000)"), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(PQconsumeInput(conn), 1);
  // Abortive close (RST): the descriptor is replaced by /dev/null, which PQfinish closes later.
  int fd = PQsocket(conn);
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  int null_fd = open("/dev/null", O_RDONLY);
  ASSERT_GE(dup2(null_fd, fd), 0);
  close(null_fd);
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 0)) << m.proxy->LogTail();
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kSpliced, 0));
  // PostgreSQL notices too: its backend goes away.
  bool gone = false;
  for (int i = 0; i < 200 && !gone; ++i) {
    auto n =
        pg_->QueryInt("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'vanishing'");
    gone = n.ok() && *n == 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(gone);
  PQfinish(conn);
  // The proxy still serves.
  CommandResult r = Psql(Conninfo(m.proxy->port(), "options=endpoint=dev"), "SELECT 1");
  EXPECT_EQ(r.exit_code, 0) << r.Describe();
  EXPECT_EQ(m.proxy->Stop(), 0);
}

TEST_F(ProxyIntegrationTest, TerminatedBackendReachesTheClient) {
  MeteredProxy m = StartMeteredProxy("proxy-terminate", {"--relay", "auto"});
  std::string conninfo = Conninfo(m.proxy->port(), "options=endpoint=dev application_name=doomed");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 1));
  auto killed = pg_->QueryInt(
      "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
      "application_name = 'doomed') t");
  ASSERT_TRUE(killed.ok()) << killed.status();
  ASSERT_EQ(*killed, 1);
  // The proxy ends the session once PostgreSQL has closed ...
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 0)) << m.proxy->LogTail();
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kSpliced, 0));
  // ... after delivering PostgreSQL's last words.
  PGresult* res = PQexec(conn, "SELECT 1");
  EXPECT_NE(PQresultStatus(res), PGRES_TUPLES_OK);
  std::string error = PQerrorMessage(conn);
  EXPECT_NE(error.find("terminating connection due to administrator command"), std::string::npos)
      << error;
  PQclear(res);
  PQfinish(conn);
  EXPECT_EQ(m.proxy->Stop(), 0);
}

TEST_F(ProxyIntegrationTest, ThreadsRelayWhenForced) {
  MeteredProxy m = StartMeteredProxy("proxy-threads", {"--relay", "threads"});
  LargeCopiesBothWays(m.proxy->port());
  std::string metrics = FetchMetrics(m.metrics_port);
  EXPECT_LE(MetricValue(metrics, kSplicesOk), 0) << "nothing spliced with --relay threads";
  EXPECT_GT(
      MetricValue(metrics, "pgbranch_proxy_relayed_bytes_total{direction=\"server_to_client\"}"),
      1.5e6)
      << metrics;
  EXPECT_TRUE(WaitForMetric(m.metrics_port, kDevConnections, 0));
  EXPECT_EQ(m.proxy->Stop(), 0);
}

TEST_F(ProxyIntegrationTest, SigtermWithOpenConnectionsExitsZero) {
  ProxyProcess proxy(controller_->url(), dir_->path() + "/proxy-stop", {});
  ASSERT_TRUE(proxy.Start().ok());
  std::string conninfo = Conninfo(proxy.port(), "options=endpoint=dev");
  PGconn* conn = PQconnectdb(conninfo.c_str());
  ASSERT_EQ(PQstatus(conn), CONNECTION_OK) << PQerrorMessage(conn);
  int status = proxy.Stop();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status << proxy.LogTail();
  PGresult* res = PQexec(conn, "SELECT 1");
  EXPECT_NE(PQresultStatus(res), PGRES_TUPLES_OK) << "the connection was cut";
  PQclear(res);
  PQfinish(conn);
}

}  // namespace
}  // namespace pgbranch::proxy
