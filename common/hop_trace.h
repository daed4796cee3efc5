#pragma once

#include <cstdint>

namespace pgbranch {

// Per-hop timestamps of the commit path, for latency analysis (scripts/hop-trace.py joins the
// files of pagefs and the pageserver into one timeline per commit).
//
// Off (one predictable branch per Mark) unless the environment variable PGBRANCH_HOP_TRACE names
// a file prefix when the process starts; each process then appends lines
// "<CLOCK_MONOTONIC ns> <thread id> <hop> <id>" to <prefix>.<pid>. CLOCK_MONOTONIC is shared by
// all processes of a machine, so the files of pagefs and the pageserver merge into one order.
// Lines are buffered and written when the buffer fills and at exit. Thread-safe.
class HopTrace {
 public:
  static bool Enabled();
  // Records `hop` (a string literal; `detail`, if given, is appended as "hop:detail") for item
  // `id` (a commit sequence number, ...).
  static void Mark(const char* hop, uint64_t id = 0, const char* detail = nullptr);
  // Writes the buffered lines out.
  static void Flush();
};

}  // namespace pgbranch
