#pragma once

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "pageserver/proto/pageserver.grpc.pb.h"

namespace pgbranch::testing {

// Starts `args[0]` with `args` as a child that is SIGKILLed if the test process dies; -1 if fork
// failed.
pid_t SpawnChild(std::vector<std::string> args);

// Runs a real `pgbranch-pageserver` process on a loopback port chosen by the kernel.
// The binary is found in $PGBRANCH_BIN_DIR (default: the build's bin directory).
class PageserverProcess {
 public:
  // `data_dir` is kept across Kill()/Start() so tests can restart on the same state.
  explicit PageserverProcess(std::string data_dir, std::vector<std::string> extra_args = {});
  ~PageserverProcess();

  // Starts the process and waits (up to 30 s) until it serves.
  absl::Status Start();
  // SIGKILL: no shutdown path runs, as in a crash.
  void Kill();
  // SIGTERM and wait for a clean exit; returns the exit status.
  int Stop();
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& data_dir() const { return data_dir_; }
  std::unique_ptr<pageserver::v1::PageService::Stub> NewStub() const;

  static std::string BinDir();

 private:
  std::string data_dir_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
  int port_ = 0;
};

// A fresh temporary directory, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace pgbranch::testing
