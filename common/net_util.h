#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

// Small loopback helpers for talking to our own processes (status pages, metrics).
namespace pgbranch::net {

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> FreeLoopbackPort();
// The body of `GET path` from 127.0.0.1:port (HTTP/1.0). UNAVAILABLE when nothing answers;
// FAILED_PRECONDITION with the body when the status is not 2xx.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path,
                                    absl::Duration timeout = absl::Seconds(2));
// Any method, with a body (HTTP/1.0, Content-Length); the same results as HttpGet.
absl::StatusOr<std::string> HttpRequest(const std::string& method, int port,
                                        const std::string& path, const std::string& body,
                                        absl::Duration timeout = absl::Seconds(2));

// The same against an IPv4 address (a pod's address, for the operator's status polls).
absl::StatusOr<std::string> HttpRequestTo(const std::string& host, const std::string& method,
                                          int port, const std::string& path,
                                          const std::string& body,
                                          absl::Duration timeout = absl::Seconds(2));

}  // namespace pgbranch::net
