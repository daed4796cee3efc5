#include "operator/control/conditions.h"

#include <algorithm>

namespace pgbranch::control {

void SetCondition(std::vector<Condition>* conditions, const std::string& type, bool status,
                  const std::string& reason, const std::string& message, int64_t generation,
                  absl::Time now) {
  const std::string value = status ? "True" : "False";
  auto it = std::find_if(conditions->begin(), conditions->end(),
                         [&](const Condition& c) { return c.type == type; });
  if (it == conditions->end()) {
    Condition c;
    c.type = type;
    c.status = value;
    c.last_transition_time = now;
    // "Ready" first: printers and people look there.
    it = type == "Ready" ? conditions->insert(conditions->begin(), c)
                         : conditions->insert(conditions->end(), c);
  } else if (it->status != value) {
    it->status = value;
    it->last_transition_time = now;
  }
  it->reason = reason;
  it->message = message;
  it->observed_generation = generation;
}

void RemoveCondition(std::vector<Condition>* conditions, const std::string& type) {
  conditions->erase(std::remove_if(conditions->begin(), conditions->end(),
                                   [&](const Condition& c) { return c.type == type; }),
                    conditions->end());
}

const Condition* FindCondition(const std::vector<Condition>& conditions, const std::string& type) {
  for (const Condition& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

bool IsConditionTrue(const std::vector<Condition>& conditions, const std::string& type) {
  const Condition* c = FindCondition(conditions, type);
  return c != nullptr && c->status == "True";
}

}  // namespace pgbranch::control
