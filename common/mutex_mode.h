#pragma once

namespace pgbranch {

// Debian builds abseil without NDEBUG, so every absl::Mutex acquisition -- the storage engine's
// and, through grpc_core::Mutex, every gRPC lock -- runs abseil's debug-only deadlock detection:
// a walk of a global lock-order graph under one global lock, and an abort on a suspected cycle.
// Long-running daemons call this first in main(): it turns the detection off, as a release
// build of abseil does. Tests keep it (they do not call this), so a lock-order inversion still
// fails them.
void UseReleaseMutexMode();

}  // namespace pgbranch
