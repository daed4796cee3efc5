#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

// Structured logging in logfmt: `ts=... level=INFO msg="Created timeline" tenant=... timeline=...`.
// Messages read like Kubernetes events ("Created timeline"); fields carry the identifiers.
// ERROR means a person must act.
namespace pgbranch {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

using LogField = std::pair<std::string_view, std::string>;

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void Log(LogLevel level, std::string_view msg, std::initializer_list<LogField> fields = {});

inline void LogInfo(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kInfo, msg, fields);
}
inline void LogWarning(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kWarning, msg, fields);
}
inline void LogError(std::string_view msg, std::initializer_list<LogField> fields = {}) {
  Log(LogLevel::kError, msg, fields);
}

}  // namespace pgbranch
