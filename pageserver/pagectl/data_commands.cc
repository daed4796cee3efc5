#include "pageserver/pagectl/data_commands.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"
#include "pageserver/pagectl/progress.h"
#include "pageserver/pagectl/tree_exporter.h"
#include "pageserver/pagectl/tree_importer.h"

namespace pgbranch::pagectl {
namespace {

struct Target {
  std::string tenant_id;
  std::string timeline_id;
  std::string dir;
};

Target ParseTarget(const CommandContext& ctx) {
  return Target{ctx.options->tenant, ctx.options->timeline, ctx.options->target};
}

}  // namespace

absl::Status RunImportCommand(const CommandContext& ctx) {
  Target target = ParseTarget(ctx);
  Progress progress("imported", !ctx.quiet);
  TreeImporter importer(ctx.client, target.tenant_id, target.timeline_id, &progress);
  PGB_ASSIGN_OR_RETURN(ImportStats stats, importer.Import(target.dir));
  if (ctx.format == OutputFormat::kJson) {
    *ctx.out << absl::StrFormat(
        "{\n  \"tenant_id\": %s,\n  \"timeline_id\": %s,\n  \"lsn\": %d,\n  \"files\": %d,\n"
        "  \"directories\": %d,\n  \"symlinks\": %d,\n  \"hard_links\": %d,\n  \"skipped\": %d,\n"
        "  \"bytes\": %d,\n  \"pages_stored\": %d,\n  \"commits\": %d\n}\n",
        JsonQuote(target.tenant_id), JsonQuote(target.timeline_id), stats.lsn, stats.files,
        stats.directories, stats.symlinks, stats.hard_links, stats.skipped, stats.bytes,
        stats.pages_stored, stats.commits);
    return absl::OkStatus();
  }
  *ctx.out << absl::StrFormat(
      "Imported %d files, %d directories, %d symlinks (%s, %d pages stored) into timeline %s in "
      "%d commits; the tree is at LSN %d\n",
      stats.files, stats.directories, stats.symlinks, HumanBytes(stats.bytes), stats.pages_stored,
      target.timeline_id, stats.commits, stats.lsn);
  return absl::OkStatus();
}

absl::Status RunExportCommand(const CommandContext& ctx) {
  Target target = ParseTarget(ctx);
  const uint64_t lsn = ctx.options->lsn.value_or(0);
  Progress progress("exported", !ctx.quiet);
  TreeExporter exporter(ctx.client, target.tenant_id, target.timeline_id, lsn, &progress);
  PGB_ASSIGN_OR_RETURN(ExportStats stats, exporter.Export(target.dir));
  if (ctx.format == OutputFormat::kJson) {
    *ctx.out << absl::StrFormat(
        "{\n  \"tenant_id\": %s,\n  \"timeline_id\": %s,\n  \"lsn\": %d,\n  \"files\": %d,\n"
        "  \"directories\": %d,\n  \"symlinks\": %d,\n  \"hard_links\": %d,\n  \"skipped\": %d,\n"
        "  \"bytes\": %d\n}\n",
        JsonQuote(target.tenant_id), JsonQuote(target.timeline_id), stats.lsn, stats.files,
        stats.directories, stats.symlinks, stats.hard_links, stats.skipped, stats.bytes);
    return absl::OkStatus();
  }
  *ctx.out << absl::StrFormat(
      "Exported %d files, %d directories, %d symlinks (%s) of timeline %s at LSN %d to %s\n",
      stats.files, stats.directories, stats.symlinks, HumanBytes(stats.bytes), target.timeline_id,
      stats.lsn, target.dir);
  return absl::OkStatus();
}

}  // namespace pgbranch::pagectl
