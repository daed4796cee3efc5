#include "common/hop_trace.h"

#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace pgbranch {
namespace {

struct TraceFile {
  std::mutex mu;
  FILE* f = nullptr;  // guarded by mu
};

// Null when tracing is off. Opened once, never closed (flushed at exit).
TraceFile* Open() {
  const char* prefix = getenv("PGBRANCH_HOP_TRACE");
  if (prefix == nullptr || *prefix == '\0') return nullptr;
  std::string path = std::string(prefix) + "." + std::to_string(getpid());
  FILE* f = fopen(path.c_str(), "a");
  if (f == nullptr) {
    fprintf(stderr, "PGBRANCH_HOP_TRACE: cannot open %s; tracing is off\n", path.c_str());
    return nullptr;
  }
  setvbuf(f, nullptr, _IOFBF, 1 << 20);
  auto* t = new TraceFile;
  t->f = f;
  atexit([] { HopTrace::Flush(); });
  return t;
}

TraceFile* Get() {
  static TraceFile* trace = Open();
  return trace;
}

}  // namespace

bool HopTrace::Enabled() { return Get() != nullptr; }

void HopTrace::Mark(const char* hop, uint64_t id, const char* detail) {
  TraceFile* t = Get();
  if (t == nullptr) return;
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  long long ns = static_cast<long long>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
  long tid = syscall(SYS_gettid);
  std::lock_guard<std::mutex> lock(t->mu);
  fprintf(t->f, "%lld %ld %s%s%s %llu\n", ns, tid, hop, detail ? ":" : "", detail ? detail : "",
          static_cast<unsigned long long>(id));
}

void HopTrace::Flush() {
  TraceFile* t = Get();
  if (t == nullptr) return;
  std::lock_guard<std::mutex> lock(t->mu);
  fflush(t->f);
}

}  // namespace pgbranch
