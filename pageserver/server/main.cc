// pgbranch-pageserver: the gRPC server that stores every branch's pages copy-on-write.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/mutex_mode.h"
#include "common/stop_signals.h"
#include "pageserver/server/commit_socket_server.h"
#include "pageserver/server/config.h"
#include "pageserver/server/page_service.h"
#include "pageserver/server/server_metrics.h"
#include "pageserver/server/token_auth.h"
#include "pageserver/storage/engine.h"

namespace {

using pgbranch::LogError;
using pgbranch::LogInfo;

std::string ReadFile(const std::string& path, bool* ok) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  *ok = static_cast<bool>(in);
  return ss.str();
}

pgbranch::LogLevel ParseLevel(const std::string& s) {
  if (s == "debug") return pgbranch::LogLevel::kDebug;
  if (s == "warning") return pgbranch::LogLevel::kWarning;
  if (s == "error") return pgbranch::LogLevel::kError;
  return pgbranch::LogLevel::kInfo;
}

int Run(const pgbranch::pageserver::ServerConfig& config) {
  pgbranch::SetLogLevel(ParseLevel(config.log_level));

  pgbranch::pageserver::TokenAuth auth;
  if (!config.token_file.empty()) {
    auto loaded = pgbranch::pageserver::TokenAuth::LoadFile(config.token_file);
    if (!loaded.ok()) {
      LogError("Cannot load the token file", {{"error", loaded.status().ToString()}});
      return 1;
    }
    auth = std::move(*loaded);
  }
  if (!config.signing_key_file.empty()) {
    if (absl::Status s = auth.AddSigningKeyFile(config.signing_key_file); !s.ok()) {
      LogError("Cannot load the token signing key", {{"error", s.ToString()}});
      return 1;
    }
  }

  pgbranch::storage::EngineOptions options;
  options.data_dir = config.data_dir;
  options.default_retention = config.retention;
  options.memtable_flush_bytes = config.memtable_flush_mb << 20;
  options.gc_interval_seconds = config.gc_interval_seconds;
  auto engine = pgbranch::storage::Engine::Open(options);
  if (!engine.ok()) {
    LogError("Cannot open the data directory",
             {{"data_dir", config.data_dir}, {"error", engine.status().ToString()}});
    return 1;
  }

  pgbranch::pageserver::ServerMetrics metrics;
  if (!config.metrics_listen.empty()) {
    absl::Status s = metrics.Expose(config.metrics_listen);
    if (!s.ok()) {
      LogError("Cannot serve metrics", {{"error", s.ToString()}});
      return 1;
    }
  }

  pgbranch::pageserver::PageServiceImpl service(engine->get(), &auth, &metrics);
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (!config.tls_cert_file.empty()) {
    bool ok_cert, ok_key;
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back(
        {ReadFile(config.tls_key_file, &ok_key), ReadFile(config.tls_cert_file, &ok_cert)});
    if (!ok_cert || !ok_key) {
      LogError("Cannot read the TLS certificate or key",
               {{"cert", config.tls_cert_file}, {"key", config.tls_key_file}});
      return 1;
    }
    creds = grpc::SslServerCredentials(ssl);
  }
  int port = 0;
  builder.AddListeningPort(config.listen, creds, &port);
  int unix_port = 0;  // gRPC reports 1 for a bound Unix socket
  if (!config.listen_unix.empty()) {
    builder.AddListeningPort("unix:" + config.listen_unix, creds, &unix_port);
  }
  builder.RegisterService(&service);
  int max_bytes = static_cast<int>(config.max_message_mb << 20);
  builder.SetMaxReceiveMessageSize(max_bytes);
  builder.SetMaxSendMessageSize(max_bytes);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  // gRPC builds no server if any address fails, so name both.
  if (!server || port == 0 || (!config.listen_unix.empty() && unix_port == 0)) {
    LogError(
        "Cannot listen: is the port in use, or the Unix socket's directory missing or "
        "not writable?",
        {{"listen", config.listen},
         {"listen_unix", config.listen_unix.empty() ? "-" : config.listen_unix}});
    return 1;
  }
  // The commit channel, after gRPC (a failure to listen on either fails the start) and before
  // the port file says the pageserver serves.
  pgbranch::pageserver::CommitSocketServer commit_socket(engine->get(), &auth, &metrics);
  if (!config.commit_socket.empty()) {
    absl::Status s = commit_socket.Start(config.commit_socket);
    if (!s.ok()) {
      LogError("Cannot serve the commit channel", {{"error", s.ToString()}});
      return 1;
    }
  }
  server->GetHealthCheckService()->SetServingStatus(true);
  if (!config.port_file.empty()) {
    std::string tmp = config.port_file + ".tmp";
    std::ofstream(tmp) << port << "\n";
    std::rename(tmp.c_str(), config.port_file.c_str());
  }
  LogInfo("Serving",
          {{"listen", config.listen},
           {"port", std::to_string(port)},
           {"listen_unix", config.listen_unix},
           {"commit_socket", config.commit_socket},
           {"data_dir", config.data_dir},
           {"auth", config.signing_key_file.empty()
                        ? (auth.enabled() ? "tokens" : "disabled")
                        : (config.token_file.empty() ? "signed tokens" : "tokens + signed tokens")},
           {"tls", config.tls_cert_file.empty() ? "off" : "on"},
           {"metrics", config.metrics_listen}});

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::condition_variable cv;
  std::thread refresher([&] {
    std::unique_lock<std::mutex> lock(mu);
    while (!stop) {
      metrics.Refresh((*engine)->Stats());
      cv.wait_for(lock, std::chrono::seconds(2));
    }
  });

  int sig = ::pgbranch::WaitForStopSignal();
  LogInfo("Shutting down", {{"signal", std::to_string(sig)}});
  server->GetHealthCheckService()->SetServingStatus(false);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  commit_socket.Shutdown();  // before the engine closes: no commit runs after it
  {
    std::lock_guard<std::mutex> lock(mu);
    stop = true;
  }
  cv.notify_all();
  refresher.join();
  engine->reset();  // checkpoints, so the next start replays no log
  LogInfo("Stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  pgbranch::UseReleaseMutexMode();
  // Block the stop signals in every thread; main waits for them.
  pgbranch::BlockStopSignals();

  std::vector<std::string> args(argv + 1, argv + argc);
  auto config = pgbranch::pageserver::ParseServerConfig(args);
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kNotFound) {
      fprintf(stdout, "%s", std::string(config.status().message()).c_str());
      return 0;
    }
    fprintf(stderr, "error: %s\n", std::string(config.status().message()).c_str());
    return 2;
  }
  return Run(*config);
}
