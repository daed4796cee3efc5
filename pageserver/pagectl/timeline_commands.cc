#include "pageserver/pagectl/timeline_commands.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"

namespace pgbranch::pagectl {
namespace {

using Stub = v1::PageService::StubInterface;

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string RetentionText(const v1::Retention& r) {
  std::vector<std::string> parts;
  if (r.history_seconds() > 0) parts.push_back(absl::StrCat(r.history_seconds(), " s"));
  if (r.history_bytes() > 0) parts.push_back(HumanBytes(r.history_bytes()));
  return parts.empty() ? "-" : absl::StrJoin(parts, " or ");
}

absl::Status PrintTimeline(const CommandContext& ctx, const v1::Timeline& t) {
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, t);
  Table table({"FIELD", "VALUE"});
  table.AddRow({"tenant", t.tenant_id()});
  table.AddRow({"timeline", t.timeline_id()});
  table.AddRow({"parent", OrDash(t.ancestor_timeline_id())});
  table.AddRow(
      {"parent lsn", t.ancestor_timeline_id().empty() ? "-" : absl::StrCat(t.ancestor_lsn())});
  table.AddRow({"head lsn", absl::StrCat(t.head_lsn())});
  table.AddRow({"oldest readable lsn", absl::StrCat(t.oldest_readable_lsn())});
  table.AddRow({"logical size", HumanBytes(static_cast<uint64_t>(t.logical_size()))});
  table.AddRow({"diverged", HumanBytes(t.diverged_bytes())});
  table.AddRow({"writer generation", absl::StrCat(t.writer_generation())});
  table.AddRow({"created", FormatMicros(t.created_micros())});
  table.AddRow({"last commit", FormatMicros(t.head_time_micros())});
  table.AddRow({"retention", RetentionText(t.retention())});
  table.AddRow({"children", t.children().empty() ? "-" : absl::StrJoin(t.children(), ", ")});
  table.AddRow({"layer files", absl::StrCat(t.layer_files())});
  table.Print(*ctx.out);
  return absl::OkStatus();
}

// --history-seconds / --history-bytes into `retention`; false if neither was given.
bool ParseRetention(const CommandContext& ctx, v1::Retention* retention) {
  retention->set_history_seconds(ctx.options->history_seconds.value_or(0));
  retention->set_history_bytes(ctx.options->history_bytes.value_or(0));
  return ctx.options->history_seconds || ctx.options->history_bytes;
}

absl::Status Create(const CommandContext& ctx) {
  v1::CreateTimelineRequest request;
  request.set_tenant_id(ctx.options->tenant);
  request.set_timeline_id(ctx.options->id);
  request.set_ancestor_timeline_id(ctx.options->parent);
  request.set_ancestor_lsn(ctx.options->lsn.value_or(0));
  if (ctx.options->at_micros) request.set_ancestor_time_micros(*ctx.options->at_micros);
  v1::Retention retention;
  if (ParseRetention(ctx, &retention)) *request.mutable_retention() = retention;
  v1::Timeline timeline;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::CreateTimeline, request, &timeline));
  return PrintTimeline(ctx, timeline);
}

absl::Status List(const CommandContext& ctx) {
  v1::ListTimelinesRequest request;
  request.set_tenant_id(ctx.options->tenant);
  v1::ListTimelinesResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::ListTimelines, request, &response));
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, response);
  Table table(
      {"TIMELINE", "PARENT", "PARENT LSN", "HEAD LSN", "LOGICAL SIZE", "DIVERGED", "LAST COMMIT"});
  for (const v1::Timeline& t : response.timelines()) {
    table.AddRow({t.timeline_id(), OrDash(t.ancestor_timeline_id()),
                  t.ancestor_timeline_id().empty() ? "-" : absl::StrCat(t.ancestor_lsn()),
                  absl::StrCat(t.head_lsn()), HumanBytes(static_cast<uint64_t>(t.logical_size())),
                  HumanBytes(t.diverged_bytes()), FormatMicros(t.head_time_micros())});
  }
  table.Print(*ctx.out);
  return absl::OkStatus();
}

absl::Status Info(const CommandContext& ctx) {
  v1::GetTimelineRequest request;
  request.set_tenant_id(ctx.options->tenant);
  request.set_timeline_id(ctx.options->target);
  v1::Timeline timeline;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::GetTimeline, request, &timeline));
  return PrintTimeline(ctx, timeline);
}

absl::Status Delete(const CommandContext& ctx) {
  v1::DeleteTimelineRequest request;
  request.set_tenant_id(ctx.options->tenant);
  request.set_timeline_id(ctx.options->target);
  v1::DeleteTimelineResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::DeleteTimeline, request, &response));
  *ctx.out << "Deleted timeline " << request.timeline_id() << "\n";
  return absl::OkStatus();
}

absl::Status Reset(const CommandContext& ctx) {
  v1::ResetTimelineRequest request;
  request.set_tenant_id(ctx.options->tenant);
  request.set_backup_timeline_id(ctx.options->backup);
  request.set_timeline_id(ctx.options->target);
  v1::ResetTimelineResponse response;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::ResetTimeline, request, &response));
  if (ctx.format == OutputFormat::kJson) return PrintJson(ctx, response);
  *ctx.out << "Reset timeline " << request.timeline_id() << " to its parent at LSN "
           << response.ancestor_lsn();
  if (!response.backup_timeline_id().empty()) {
    *ctx.out << "; the old state is timeline " << response.backup_timeline_id();
  }
  *ctx.out << "\n";
  return absl::OkStatus();
}

absl::Status SetRetention(const CommandContext& ctx) {
  v1::SetRetentionRequest request;
  request.set_tenant_id(ctx.options->tenant);
  ParseRetention(ctx, request.mutable_retention());  // main.cc requires one of the two
  request.set_timeline_id(ctx.options->target);
  v1::Timeline timeline;
  PGB_RETURN_IF_ERROR(ctx.client->Call(&Stub::SetRetention, request, &timeline));
  return PrintTimeline(ctx, timeline);
}

}  // namespace

absl::Status RunTimelineCommand(const CommandContext& ctx, const std::string& verb) {
  if (verb == "create") return Create(ctx);
  if (verb == "list") return List(ctx);
  if (verb == "info") return Info(ctx);
  if (verb == "delete") return Delete(ctx);
  if (verb == "reset") return Reset(ctx);
  if (verb == "retention") return SetRetention(ctx);
  return absl::InvalidArgumentError(absl::StrCat("unknown timeline command \"", verb, "\""));
}

}  // namespace pgbranch::pagectl
