#include "compute/compute_status.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace pgbranch::compute {

const char* StateName(ComputeState state) {
  switch (state) {
    case ComputeState::kStarting:
      return "starting";
    case ComputeState::kRunning:
      return "running";
    case ComputeState::kStopping:
      return "stopping";
    case ComputeState::kFailed:
      return "failed";
  }
  return "failed";
}

std::string FormatRfc3339(int64_t micros) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::FromUnixMicros(micros),
                          absl::UTCTimeZone());
}

std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
  return out;
}

ComputeStatus::ComputeStatus(Clock* clock, int pg_port) : clock_(clock) {
  view_.pg_port = pg_port;
  view_.started_at_micros = clock_->NowMicros();
  view_.last_active_micros = view_.started_at_micros;
}

void ComputeStatus::MarkRunning() {
  int64_t now = clock_->NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  if (view_.state == ComputeState::kFailed) return;
  view_.state = ComputeState::kRunning;
  if (view_.startup_seconds == 0) {
    view_.startup_seconds = static_cast<double>(now - view_.started_at_micros) / 1e6;
  }
  view_.message = "";
}

void ComputeStatus::MarkStopping() {
  std::lock_guard<std::mutex> lock(mu_);
  if (view_.state == ComputeState::kFailed) return;
  view_.state = ComputeState::kStopping;
}

void ComputeStatus::MarkRestarting() {
  std::lock_guard<std::mutex> lock(mu_);
  if (view_.state != ComputeState::kRunning) return;
  view_.state = ComputeState::kStarting;
}

void ComputeStatus::MarkFailed(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  view_.state = ComputeState::kFailed;
  view_.message = message;
}

void ComputeStatus::SetEndpoint(const std::string& endpoint) {
  std::lock_guard<std::mutex> lock(mu_);
  view_.endpoint = endpoint;
}

void ComputeStatus::SetParametersMessage(const std::string& message) {
  std::lock_guard<std::mutex> lock(mu_);
  view_.parameters_message = message;
}

void ComputeStatus::Observe(const ActivitySnapshot& activity) {
  int64_t now = clock_->NowMicros();
  std::lock_guard<std::mutex> lock(mu_);
  view_.activity = activity;
  if (activity.busy() && now > view_.last_active_micros) view_.last_active_micros = now;
}

ComputeState ComputeStatus::state() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_.state;
}

StatusView ComputeStatus::View() const {
  std::lock_guard<std::mutex> lock(mu_);
  return view_;
}

std::string ComputeStatus::ToJson(const StatusView& v) {
  const ActivitySnapshot& a = v.activity;
  char startup[32];
  snprintf(startup, sizeof(startup), "%.3f", v.startup_seconds);
  return absl::StrCat("{\"state\":\"", StateName(v.state), "\",\"pg_port\":", v.pg_port,
                      ",\"sessions\":{\"active\":", a.active, ",\"idle\":", a.idle,
                      ",\"idle_in_transaction\":", a.idle_in_transaction,
                      "},\"client_sessions\":", a.client_sessions,
                      ",\"autovacuum_workers\":", a.autovacuum_workers,
                      ",\"busy\":", a.busy() ? "true" : "false",
                      ",\"last_active\":", JsonString(FormatRfc3339(v.last_active_micros)),
                      ",\"started_at\":", JsonString(FormatRfc3339(v.started_at_micros)),
                      ",\"startup_seconds\":", startup, ",\"message\":", JsonString(v.message),
                      ",\"endpoint\":", JsonString(v.endpoint),
                      ",\"parameters_message\":", JsonString(v.parameters_message), "}");
}

}  // namespace pgbranch::compute
