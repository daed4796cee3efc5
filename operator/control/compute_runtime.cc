#include "operator/control/compute_runtime.h"

namespace pgbranch::control {

const char* ComputeStateName(ComputeState s) {
  switch (s) {
    case ComputeState::kAbsent:
      return "absent";
    case ComputeState::kStarting:
      return "starting";
    case ComputeState::kRunning:
      return "running";
    case ComputeState::kStopping:
      return "stopping";
    case ComputeState::kFailed:
      return "failed";
  }
  return "unknown";
}

}  // namespace pgbranch::control
