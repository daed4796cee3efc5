#pragma once

// How our servers stop: SIGTERM or SIGINT, received by the main thread with sigwait().
namespace pgbranch {

// Blocks SIGTERM and SIGINT in the calling thread and every thread started after it (call it
// first in main), and ignores SIGPIPE (a peer that goes away is an error return, not a death).
void BlockStopSignals();
// Waits for SIGTERM or SIGINT (blocked by BlockStopSignals) and returns which one came.
int WaitForStopSignal();

}  // namespace pgbranch
