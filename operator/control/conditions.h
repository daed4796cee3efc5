#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"
#include "operator/model/resources.h"

// Kubernetes API conventions for conditions: one entry per type, `Ready` first,
// lastTransitionTime changes only when the status flips.
namespace pgbranch::control {

void SetCondition(std::vector<Condition>* conditions, const std::string& type, bool status,
                  const std::string& reason, const std::string& message, int64_t generation,
                  absl::Time now);
void RemoveCondition(std::vector<Condition>* conditions, const std::string& type);
const Condition* FindCondition(const std::vector<Condition>& conditions, const std::string& type);
bool IsConditionTrue(const std::vector<Condition>& conditions, const std::string& type);

}  // namespace pgbranch::control
