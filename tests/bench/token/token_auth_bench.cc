// token-auth-bench: what the pageserver's per-call authorisation (TokenAuth::Check) costs, per
// token kind, on 1 and 2 threads. Every gRPC call of an authenticated pageserver runs it once;
// a point read over loopback gRPC costs tens of microseconds, so sub-microsecond checks are noise.
//
//   token-auth-bench [--quick]
//
// Rows: a static token (YAML list), a signed token already verified (the cache: one map lookup
// under a mutex), and a signed token seen for the first time (HMAC-SHA256 + base64 + claims
// parse), and a token signed with another key (refused after the HMAC). Not run by ctest;
// scripts/bench.sh style output (a table).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_format.h"
#include "common/token_signer.h"
#include "pageserver/server/token_auth.h"
#include "tests/bench/common/bench_net.h"

namespace {

using pgbranch::TokenClaims;
using pgbranch::TokenSigner;
using pgbranch::pageserver::TokenAuth;

constexpr char kKey[] = "bench-signing-key-0123456789abcdef0123";

// ns per Check with `threads` threads doing `per_thread` checks each; token(i) picks the token.
double Measure(const TokenAuth& auth, int threads, int per_thread,
               const std::function<const std::string&(int thread, int i)>& token,
               bool expect_ok = true) {
  std::atomic<int> failures{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < per_thread; ++i) {
        if (auth.Check(token(t, i), false, "bench", "main").ok() != expect_ok) ++failures;
      }
    });
  }
  for (auto& w : workers) w.join();
  double ns =
      std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start).count();
  if (failures > 0) {
    std::fprintf(stderr, "token-auth-bench: %d checks gave the wrong answer\n", failures.load());
  }
  return ns / per_thread;  // wall time per check on each thread
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = argc > 1 && std::string(argv[1]) == "--quick";
  const int n = quick ? 20000 : 200000;
  char dir[] = "/tmp/token-auth-bench.XXXXXX";
  if (mkdtemp(dir) == nullptr) return 1;
  const std::string key_file = std::string(dir) + "/signing-key";
  std::ofstream(key_file) << kKey;
  auto auth = TokenAuth::FromYaml(
      "tokens:\n  - {token: static-bench-token-1, scope: admin}\n"
      "  - {token: static-bench-token-2, tenant: bench}\n");
  if (!auth.ok() || !auth->AddSigningKeyFile(key_file).ok()) return 1;
  unlink(key_file.c_str());  // loaded; a missing file keeps the key
  rmdir(dir);

  auto signer = TokenSigner::FromKey(kKey);
  TokenClaims claims;
  claims.tenant = "bench";
  const std::string signed_token = "Bearer " + *signer->Mint(claims);
  const std::string static_token = "Bearer static-bench-token-2";
  // Distinct tokens (distinct expiry) so none hits the cache: at most 4096 are cached, and the
  // cache is cleared when full, so a stream of new tokens measures the full verification.
  std::vector<std::vector<std::string>> fresh(2);
  for (int t = 0; t < 2; ++t) {
    for (int i = 0; i < n / 10; ++i) {
      claims.expires_unix = 4'000'000'000LL + t * 1'000'000 + i;
      fresh[t].push_back("Bearer " + *signer->Mint(claims));
    }
  }

  auto other = TokenSigner::FromKey("another-key-0123456789abcdef0123456789");
  const std::string forged_token = "Bearer " + *other->Mint(claims);

  std::vector<std::vector<std::string>> rows;
  for (int threads : {1, 2}) {
    double st =
        Measure(*auth, threads, n, [&](int, int) -> const std::string& { return static_token; });
    double cached =
        Measure(*auth, threads, n, [&](int, int) -> const std::string& { return signed_token; });
    double uncached = Measure(*auth, threads, n / 10,
                              [&](int t, int i) -> const std::string& { return fresh[t][i]; });
    double forged = Measure(
        *auth, threads, n, [&](int, int) -> const std::string& { return forged_token; },
        /*expect_ok=*/false);
    rows.push_back({absl::StrFormat("%d", threads), absl::StrFormat("%.0f", st),
                    absl::StrFormat("%.0f", cached), absl::StrFormat("%.0f", uncached),
                    absl::StrFormat("%.0f", forged)});
  }
  pgbranch::bench_common::PrintTable(
      "TokenAuth::Check per call (ns, wall time per check on each thread)",
      {"THREADS", "STATIC", "SIGNED (CACHED)", "SIGNED (FIRST SEEN)", "FORGED (REFUSED)"}, rows,
      {absl::StrFormat("%d checks per thread (first seen: %d); CPU: %s", n, n / 10,
                       pgbranch::bench_common::FirstMatch("/proc/cpuinfo", "model name"))});
  return 0;
}
