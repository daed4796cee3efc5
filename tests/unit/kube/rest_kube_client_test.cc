#include "operator/kube/rest_kube_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/unit/kube/test_util.h"

namespace pgbranch::kube {
namespace {

using testing::Eventually;

// A tiny HTTP/1.1 server on 127.0.0.1:<ephemeral>: one request per connection, answered by
// `handler(method, target, body, fd)`, which writes the whole response itself.
class RawHttpServer {
 public:
  using Handler = std::function<void(const std::string& method, const std::string& target,
                                     const std::string& body, int fd)>;
  explicit RawHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    socklen_t len = sizeof(addr);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    listen(listen_fd_, 16);
    thread_ = std::thread([this] { Accept(); });
  }
  ~RawHttpServer() {
    stopping_ = true;
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    thread_.join();
    for (auto& t : conns_) t.join();
  }
  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  std::vector<std::string> targets() {
    std::lock_guard<std::mutex> lock(mu_);
    return targets_;
  }

  static void Reply(int fd, int code, const std::string& body) {
    std::string r =
        absl::StrCat("HTTP/1.1 ", code, " X\r\nContent-Type: application/json\r\n",
                     "Content-Length: ", body.size(), "\r\nConnection: close\r\n\r\n", body);
    Send(fd, r);
  }
  static void Send(int fd, const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += n;
    }
  }
  static void Chunk(int fd, const std::string& data) {
    char size[32];
    snprintf(size, sizeof(size), "%zx\r\n", data.size());
    Send(fd, absl::StrCat(size, data, "\r\n"));
  }

 private:
  void Accept() {
    while (!stopping_) {
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd < 0) return;
      std::lock_guard<std::mutex> lock(mu_);
      conns_.emplace_back([this, fd] { Serve(fd); });
    }
  }
  void Serve(int fd) {
    std::string data;
    char buf[4096];
    size_t header_end;
    while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        close(fd);
        return;
      }
      data.append(buf, n);
    }
    std::string head = data.substr(0, header_end);
    size_t content_length = 0;
    size_t p = head.find("Content-Length: ");
    if (p == std::string::npos) p = head.find("content-length: ");
    if (p != std::string::npos) {
      (void)absl::SimpleAtoi(head.substr(p + 16, head.find("\r\n", p) - p - 16), &content_length);
    }
    std::string body = data.substr(header_end + 4);
    while (body.size() < content_length) {
      ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      body.append(buf, n);
    }
    std::string line = head.substr(0, head.find("\r\n"));
    std::string method = line.substr(0, line.find(' '));
    std::string target = line.substr(method.size() + 1, line.rfind(' ') - method.size() - 1);
    {
      std::lock_guard<std::mutex> lock(mu_);
      targets_.push_back(method + " " + target);
    }
    handler_(method, target, body, fd);
    close(fd);
  }

  Handler handler_;
  int listen_fd_;
  int port_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::mutex mu_;
  std::vector<std::thread> conns_;
  std::vector<std::string> targets_;
};

std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return absl::StrCat(R"({"kind":"Status","apiVersion":"v1","status":"Failure","code":)", code,
                      R"(,"reason":")", reason, R"(","message":")", message, R"("})");
}

std::unique_ptr<RestKubeClient> ClientFor(const RawHttpServer& server) {
  KubeConfig config;
  config.server = server.url();
  config.token_provider = [] { return std::string("t0k3n"); };
  auto client = RestKubeClient::New(config);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(*client);
}

TEST(RestKubeClientTest, BuildsPaths) {
  EXPECT_EQ(RestKubeClient::Path(kPods, "ns1", "p"), "/api/v1/namespaces/ns1/pods/p");
  EXPECT_EQ(RestKubeClient::Path(kBranches, "ns1", "b", "status"),
            "/apis/pgbranch.io/v1alpha1/namespaces/ns1/branches/b/status");
  EXPECT_EQ(RestKubeClient::Path(kBranches, ""), "/apis/pgbranch.io/v1alpha1/branches");
}

TEST(RestKubeClientTest, MapsErrorsAndKeepsTheServerMessage) {
  const std::string cel =
      R"(Branch.pgbranch.io \"b\" is invalid: spec: Invalid value: \"object\": exactly one of ttl, expireTime or noExpiry may be set)";
  RawHttpServer server([&](const std::string& m, const std::string& target, const std::string&,
                           int fd) {
    if (target.find("/missing") != std::string::npos) {
      RawHttpServer::Reply(fd, 404, StatusBody(404, "NotFound", "branches \"missing\" not found"));
    } else if (m == "POST") {
      RawHttpServer::Reply(fd, 409, StatusBody(409, "AlreadyExists", "already exists"));
    } else if (m == "PUT") {
      RawHttpServer::Reply(fd, 409, StatusBody(409, "Conflict", "the object has been modified"));
    } else if (target.find("watch") != std::string::npos) {
      RawHttpServer::Reply(fd, 410, StatusBody(410, "Expired", "too old resource version"));
    } else if (m == "PATCH") {
      RawHttpServer::Reply(fd, 422, StatusBody(422, "Invalid", cel));
    } else if (m == "DELETE") {
      RawHttpServer::Reply(fd, 503, "upstream down");
    } else {
      RawHttpServer::Reply(fd, 403, StatusBody(403, "Forbidden", "forbidden"));
    }
  });
  auto client = ClientFor(server);
  auto b = testing::Branch("ns", "b");
  EXPECT_EQ(client->Get(kBranches, "ns", "missing").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(client->Create(kBranches, "ns", b).status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(client->Update(kBranches, "ns", b).status().code(), absl::StatusCode::kAborted);
  auto patched = client->Patch(kBranches, "ns", "b", PatchType::kMerge, b);
  EXPECT_EQ(patched.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(patched.status().message().find("exactly one of ttl, expireTime or noExpiry"),
            std::string::npos)
      << patched.status();
  EXPECT_EQ(client->Delete(kBranches, "ns", "b", "Foreground").code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(client->Get(kBranches, "ns", "x").status().code(), absl::StatusCode::kPermissionDenied);
  auto watch = client->StartWatch(
      kBranches, "ns", {.resource_version = "5"}, [](auto&) {}, [](auto&) {});
  EXPECT_EQ(watch.status().code(), absl::StatusCode::kOutOfRange);
  bool saw_patch_query = false;
  for (const auto& t : server.targets()) {
    if (t.find("PATCH") == 0 && t.find("fieldManager=pgbranch-operator") != std::string::npos) {
      saw_patch_query = true;
    }
  }
  EXPECT_TRUE(saw_patch_query);
}

TEST(RestKubeClientTest, TransportErrorIsUnavailable) {
  KubeConfig config;
  config.server = "http://127.0.0.1:1";
  auto client = RestKubeClient::New(config);
  ASSERT_TRUE(client.ok());
  EXPECT_EQ((*client)->Get(kPods, "ns", "p").status().code(), absl::StatusCode::kUnavailable);
}

TEST(RestKubeClientTest, ListFollowsContinue) {
  RawHttpServer server([](const std::string&, const std::string& target, const std::string&,
                          int fd) {
    if (target.find("continue=page2") != std::string::npos) {
      RawHttpServer::Reply(
          fd, 200,
          R"({"kind":"BranchList","metadata":{"resourceVersion":"77"},"items":[{"metadata":{"name":"b"}}]})");
    } else {
      RawHttpServer::Reply(
          fd, 200,
          R"({"kind":"BranchList","metadata":{"resourceVersion":"70","continue":"page2"},"items":[{"metadata":{"name":"a"}}]})");
    }
  });
  auto client = ClientFor(server);
  auto list = client->List(kBranches, "ns", {.label_selector = "app=db", .limit = 1});
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->items.size(), 2u);
  EXPECT_EQ(list->resource_version, "77");
  auto targets = server.targets();
  ASSERT_EQ(targets.size(), 2u);
  EXPECT_NE(targets[0].find("labelSelector=app%3Ddb"), std::string::npos) << targets[0];
  EXPECT_NE(targets[0].find("limit=1"), std::string::npos);
}

TEST(RestKubeClientTest, WatchDeliversEventsBeforeTheStreamEnds) {
  absl::Notification first_seen, release;
  RawHttpServer server([&](const std::string&, const std::string& target, const std::string&,
                           int fd) {
    RawHttpServer::Send(fd,
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        "Transfer-Encoding: chunked\r\n\r\n");
    RawHttpServer::Chunk(
        fd, R"({"type":"ADDED","object":{"metadata":{"name":"a","resourceVersion":"11"}}})"
            "\n");
    release.WaitForNotificationWithTimeout(absl::Seconds(10));
    // An event split across two chunks, then a bookmark.
    RawHttpServer::Chunk(fd, R"({"type":"DELETED","object":{"metadata":)");
    RawHttpServer::Chunk(fd, R"({"name":"a","resourceVersion":"12"}}})"
                             "\n"
                             R"({"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"13"}}})"
                             "\n");
    RawHttpServer::Send(fd, "0\r\n\r\n");
  });
  auto client = ClientFor(server);
  std::mutex mu;
  std::vector<WatchEvent> events;
  std::atomic<int> ends{0};
  absl::Status end_status = absl::UnknownError("not ended");
  auto watch = client->StartWatch(
      kBranches, "ns", {.resource_version = "10"},
      [&](const WatchEvent& ev) {
        std::lock_guard<std::mutex> lock(mu);
        events.push_back(ev);
        if (!first_seen.HasBeenNotified()) first_seen.Notify();
      },
      [&](const absl::Status& s) {
        std::lock_guard<std::mutex> lock(mu);
        end_status = s;
        ends++;
      });
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(first_seen.WaitForNotificationWithTimeout(absl::Seconds(5)))
      << "the first event must arrive while the stream is still open";
  EXPECT_EQ(ends.load(), 0);
  release.Notify();
  ASSERT_TRUE(Eventually([&] { return ends.load() == 1; }));
  std::lock_guard<std::mutex> lock(mu);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].type, WatchEventType::kAdded);
  EXPECT_EQ(events[1].type, WatchEventType::kDeleted);
  EXPECT_EQ(events[2].type, WatchEventType::kBookmark);
  EXPECT_TRUE(end_status.ok()) << end_status;
  auto targets = server.targets();
  ASSERT_EQ(targets.size(), 1u);
  EXPECT_NE(targets[0].find("watch=1"), std::string::npos);
  EXPECT_NE(targets[0].find("resourceVersion=10"), std::string::npos);
  EXPECT_NE(targets[0].find("allowWatchBookmarks=true"), std::string::npos);
}

TEST(RestKubeClientTest, CancelEndsABlockedWatchPromptly) {
  absl::Notification done;
  RawHttpServer server([&](const std::string&, const std::string&, const std::string&, int fd) {
    RawHttpServer::Send(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
    done.WaitForNotificationWithTimeout(absl::Seconds(10));  // never sends a byte more
  });
  auto client = ClientFor(server);
  std::atomic<int> ends{0};
  auto watch = client->StartWatch(
      kBranches, "ns", {}, [](const WatchEvent&) {},
      [&](const absl::Status& s) {
        EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
        ends++;
      });
  ASSERT_TRUE(watch.ok()) << watch.status();
  absl::Time start = absl::Now();
  (*watch)->Cancel();
  watch->reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(ends.load(), 1);
  done.Notify();
}

}  // namespace
}  // namespace pgbranch::kube
