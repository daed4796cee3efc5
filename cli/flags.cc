#include "cli/flags.h"

#include <iostream>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "cli/lsn.h"

namespace pgbranch::cli {
namespace {

std::vector<std::string> VisibleSubcommands(const CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* sub : app->get_subcommands([](const CLI::App* s) {
         return !s->get_group().empty();  // an empty group hides a subcommand
       })) {
    names.push_back(sub->get_name());
  }
  return names;
}

bool HasPositionals(const CLI::App* app) {
  return !app->get_options([](const CLI::Option* o) { return o->get_positional(); }).empty();
}

// CLI11's messages, reworded to say what is wrong in the user's words.
std::string UsageMessage(const CLI::App& root, const CLI::ParseError& e) {
  const CLI::App* selected = SelectedCommand(root);
  std::string what = e.what();
  std::string kind = e.get_name();
  if (dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
    std::vector<std::string> extras = root.remaining(true);
    std::string first = extras.empty() ? what : extras.front();
    if (absl::StartsWith(first, "-")) {
      return absl::StrCat("unknown flag ", first.substr(0, first.find('=')));
    }
    if (!selected->get_subcommands({}).empty() && !HasPositionals(selected)) {
      return absl::StrCat("unknown command \"", first, "\" (", CommandPath(selected),
                          " has: ", absl::StrJoin(VisibleSubcommands(selected), ", "), ")");
    }
    return absl::StrCat("unexpected argument \"", first, "\"");
  }
  if (kind == "ArgumentMismatch" && absl::StrContains(what, "missing")) {
    return absl::StrCat(what.substr(0, what.find(':')), " needs a value");
  }
  if (kind == "ConversionError" && absl::StartsWith(what, "Could not convert: ")) {
    std::string rest = what.substr(std::string("Could not convert: ").size());
    size_t eq = rest.find(" = ");
    if (eq != std::string::npos) {
      return absl::StrCat(rest.substr(0, eq), ": \"", rest.substr(eq + 3),
                          "\" is not a valid value (a number is expected)");
    }
  }
  if (kind == "ExcludesError") {
    size_t at = what.find(" excludes ");
    if (at != std::string::npos) {
      return absl::StrCat("give only one of ", what.substr(0, at), " and ", what.substr(at + 10));
    }
  }
  return what;
}

// CLI11's layout without its type annotations ("TEXT:{a,b} Needs: --x"): the value's name, and
// descriptions wrapped to fit 100 columns.
class HouseFormatter : public CLI::Formatter {
 public:
  std::string make_option_opts(const CLI::Option* opt) const override {
    if (opt->get_positional() || opt->get_type_size() == 0) return "";
    std::string type = opt->get_type_name();
    type = type.substr(0, type.find(':'));
    return type.empty() ? "" : " " + type;
  }

  std::string make_option_name(const CLI::Option* opt, bool positional) const override {
    // Without CLI11's "{false}" after a negated flag.
    std::string name = CLI::Formatter::make_option_name(opt, positional);
    for (size_t open = name.find('{'); open != std::string::npos; open = name.find('{')) {
      name.erase(open, name.find('}', open) - open + 1);
    }
    return name;
  }

  std::string make_subcommand(const CLI::App* sub) const override {
    std::stringstream out;
    CLI::detail::format_help(out, sub->get_name(),
                             Wrap(sub->get_description(), 100 - get_column_width()),
                             get_column_width());
    return out.str();
  }

  std::string make_option_desc(const CLI::Option* opt) const override {
    std::string desc = opt->get_description();
    if (opt->get_required() && !opt->get_positional()) desc += " (required)";
    return Wrap(desc, 100 - get_column_width());
  }

 private:
  static std::string Wrap(const std::string& text, size_t width) {
    std::string out, line;
    for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
      if (!line.empty() && line.size() + 1 + word.size() > width) {
        absl::StrAppend(&out, line, "\n");
        line.clear();
      }
      absl::StrAppend(&line, line.empty() ? "" : " ", word);
    }
    return out + line;
  }
};

}  // namespace

static std::shared_ptr<HouseFormatter> MakeFormatter() {
  auto formatter = std::make_shared<HouseFormatter>();
  formatter->label("Usage", "usage");
  formatter->label("OPTIONS", "FLAGS");
  formatter->label("Options", "Flags");
  formatter->label("SUBCOMMAND", "COMMAND");
  formatter->label("Subcommands", "Commands");
  formatter->label("Positionals", "Arguments");
  formatter->column_width(32);
  return formatter;
}

void ConfigureApp(CLI::App& app) {
  app.formatter(MakeFormatter());
  app.option_defaults()->always_capture_default(false)->group("Flags");
  app.set_help_flag("-h,--help", "print this help and exit");
}

const CLI::App* SelectedCommand(const CLI::App& app) {
  const CLI::App* cur = &app;
  for (;;) {
    std::vector<const CLI::App*> subs;
    for (const CLI::App* s : cur->get_subcommands({})) {
      if (s->parsed()) subs.push_back(s);
    }
    if (subs.empty()) return cur;
    cur = subs.front();
  }
}

std::string CommandPath(const CLI::App* app) {
  std::vector<std::string> names;
  for (const CLI::App* a = app; a != nullptr; a = a->get_parent()) {
    names.insert(names.begin(), a->get_name());
  }
  return absl::StrJoin(names, " ");
}

std::string HelpText(const CLI::App* app) {
  return app->get_formatter()->make_help(app, CommandPath(app), CLI::AppFormatMode::Normal);
}

void FinishCommands(CLI::App* app) {
  for (CLI::App* sub : app->get_subcommands([](CLI::App*) { return true; })) {
    sub->set_help_flag("-h,--help", "print this help and exit");
    if (sub->get_group() == "Subcommands") sub->group("Commands");
    FinishCommands(sub);
  }
}

std::optional<int> ParseCommandLine(CLI::App& app, int argc, const char* const* argv) {
  const std::string tool = app.get_name();
  FinishCommands(&app);
  const CLI::App* selected = &app;
  std::string message;
  try {
    app.parse(argc, argv);
    selected = SelectedCommand(app);
    // A command group (`pgbranch branch`) needs one of its commands.
    if (!selected->get_subcommands({}).empty() && !HasPositionals(selected)) {
      if (selected == &app) {
        std::cerr << HelpText(&app);
        return 2;
      }
      message =
          absl::StrCat(CommandPath(selected).substr(tool.size() + 1),
                       " needs a command: ", absl::StrJoin(VisibleSubcommands(selected), ", "));
    }
  } catch (const CLI::CallForHelp&) {
    std::cout << HelpText(SelectedCommand(app));
    return 0;
  } catch (const CLI::CallForAllHelp&) {
    std::cout << HelpText(SelectedCommand(app));
    return 0;
  } catch (const CLI::CallForVersion& e) {
    std::cout << e.what() << "\n";
    return 0;
  } catch (const CLI::ParseError& e) {
    selected = SelectedCommand(app);
    message = UsageMessage(app, e);
  }
  if (message.empty()) return std::nullopt;
  std::string usage = MakeFormatter()->make_usage(selected, CommandPath(selected));
  while (!usage.empty() && usage.back() == '\n') usage.pop_back();
  std::cerr << tool << ": " << message << "\n"
            << usage << "; run `" << CommandPath(selected) << " --help`\n";
  return 2;
}

CLI::Validator LsnValidator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        absl::StatusOr<uint64_t> lsn = ParseLsn(value);
        if (!lsn.ok()) return std::string(lsn.status().message());
        value = std::to_string(*lsn);
        return "";
      },
      "LSN", "LSN");
}

CLI::Validator Rfc3339Validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        absl::Time t;
        std::string error;
        if (absl::ParseTime(absl::RFC3339_full, value, &t, &error)) return "";
        return absl::StrCat("\"", value,
                            "\" is not an RFC 3339 time (like 2026-11-21T10:42:00Z): ", error);
      },
      "RFC3339", "RFC3339");
}

}  // namespace pgbranch::cli
