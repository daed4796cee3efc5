#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns early from the enclosing function when `expr` is not OK.
#define PGB_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::absl::Status _pgb_status = (expr);       \
    if (!_pgb_status.ok()) return _pgb_status; \
  } while (0)

#define PGB_CONCAT_INNER(a, b) a##b
#define PGB_CONCAT(a, b) PGB_CONCAT_INNER(a, b)

// Assigns the value of a StatusOr expression to `lhs` or returns its error.
#define PGB_ASSIGN_OR_RETURN(lhs, expr) \
  PGB_ASSIGN_OR_RETURN_IMPL(PGB_CONCAT(_pgb_statusor_, __LINE__), lhs, expr)
#define PGB_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()
