#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"

// A minimal HTTP/1.1 server for GET /status and GET /metrics: one thread, one request per
// connection (Connection: close), bounded request size and read time. Plain sockets rather than
// cpprest's listener because the agent binds port 0 and must learn the port the kernel chose.
namespace pgbranch {

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

class HttpServer {
 public:
  // Called on the server thread for every request; `path` excludes the query string.
  using Handler = std::function<HttpResponse(const std::string& method, const std::string& path)>;

  // With a body: PUT and POST are accepted too (Content-Length bodies up to 64 KiB).
  using BodyHandler = std::function<HttpResponse(const std::string& method, const std::string& path,
                                                 const std::string& body)>;

  explicit HttpServer(Handler handler);
  explicit HttpServer(BodyHandler handler);
  ~HttpServer();  // Stop()

  // Binds `address` ("host:port", port 0 = kernel's choice) and starts serving. With port 0, the
  // kernel's choice is never `avoid_port` (a port someone chose the same way and released, to be
  // bound later: local mode's PostgreSQL port).
  absl::Status Start(const std::string& address, int avoid_port = 0);
  // Stops accepting and joins the thread (a request in progress completes first).
  void Stop();
  int port() const { return port_; }

 private:
  void Serve();
  void HandleConnection(int fd);

  BodyHandler handler_;
  bool accepts_bodies_ = false;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace pgbranch
