#include "common/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace pgbranch::compute {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

std::string Request(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return "connect failed";
  }
  (void)!send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string out;
  char buf[1024];
  ssize_t n;
  while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

TEST(HttpServerTest, ServesTheHandlerOnAKernelChosenPort) {
  HttpServer server([](const std::string& method, const std::string& path) {
    if (path == "/status") return HttpResponse{200, "application/json", "{\"ok\":true}"};
    return HttpResponse{404, "application/json", "{}"};
  });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  ASSERT_GT(server.port(), 0);
  std::string r = Request(server.port(), "GET /status?x=1 HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_THAT(r, StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(r, HasSubstr("Content-Length: 11\r\n"));
  EXPECT_THAT(r, HasSubstr("\r\n\r\n{\"ok\":true}"));
  EXPECT_THAT(Request(server.port(), "GET /nope HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 404"));
  EXPECT_THAT(Request(server.port(), "POST /status HTTP/1.1\r\n\r\n"), StartsWith("HTTP/1.1 405"));
  EXPECT_THAT(Request(server.port(), "garbage\r\n\r\n"), StartsWith("HTTP/1.1 400"));
  server.Stop();
  EXPECT_EQ(Request(server.port(), "GET /status HTTP/1.1\r\n\r\n"), "connect failed");
}

TEST(HttpServerTest, RejectsABadAddress) {
  HttpServer server([](const std::string&, const std::string&) { return HttpResponse{}; });
  EXPECT_FALSE(server.Start("no-port").ok());
}

TEST(HttpServerTest, PassesRequestBodiesToABodyHandler) {
  std::string seen;
  HttpServer server(
      [&](const std::string& method, const std::string& path, const std::string& body) {
        seen = method + " " + path + " " + body;
        return HttpResponse{202, "application/json", "{}"};
      });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  std::string resp =
      Request(server.port(), "PUT /config HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world");
  EXPECT_THAT(resp, StartsWith("HTTP/1.1 202"));
  EXPECT_EQ(seen, "PUT /config hello world");
  server.Stop();
}

TEST(HttpServerTest, RefusesBodiesWithoutABodyHandler) {
  HttpServer server([](const std::string&, const std::string&) { return HttpResponse{}; });
  ASSERT_TRUE(server.Start("127.0.0.1:0").ok());
  EXPECT_THAT(Request(server.port(), "PUT /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nx"),
              StartsWith("HTTP/1.1 405"));
  server.Stop();
}

}  // namespace
}  // namespace pgbranch::compute
