#include "common/mutex_mode.h"

#include "absl/synchronization/mutex.h"

namespace pgbranch {

void UseReleaseMutexMode() { absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore); }

}  // namespace pgbranch
