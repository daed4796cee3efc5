#include "cli/yaml_json.h"

#include <yaml-cpp/yaml.h>

#include <regex>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace pgbranch::cli {
namespace {

using web::json::value;

value Scalar(const YAML::Node& n) {
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") return value::string(s);  // quoted: always a string
  if (s == "true" || s == "True" || s == "TRUE") return value::boolean(true);
  if (s == "false" || s == "False" || s == "FALSE") return value::boolean(false);
  if (s.empty() || s == "null" || s == "Null" || s == "NULL" || s == "~") return value::null();
  static const std::regex kInt("[-+]?[0-9]+");
  static const std::regex kFloat("[-+]?([0-9]+\\.[0-9]*|\\.[0-9]+)([eE][-+]?[0-9]+)?");
  if (std::regex_match(s, kInt)) {
    int64_t i;
    uint64_t u;
    if (absl::SimpleAtoi(s, &i)) return value::number(i);
    if (absl::SimpleAtoi(s, &u)) return value::number(u);
  }
  if (std::regex_match(s, kFloat)) {
    double d;
    if (absl::SimpleAtod(s, &d)) return value::number(d);
  }
  return value::string(s);
}

value Convert(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      value v = value::object();
      for (const auto& kv : n) v[kv.first.as<std::string>()] = Convert(kv.second);
      return v;
    }
    case YAML::NodeType::Sequence: {
      value v = value::array();
      size_t i = 0;
      for (const auto& item : n) v[i++] = Convert(item);
      return v;
    }
    case YAML::NodeType::Scalar:
      return Scalar(n);
    default:
      return value::null();
  }
}

}  // namespace

absl::StatusOr<std::vector<value>> YamlDocumentsToJson(const std::string& text) {
  std::vector<value> out;
  try {
    for (const YAML::Node& doc : YAML::LoadAll(text)) {
      if (!doc || doc.IsNull()) continue;
      out.push_back(Convert(doc));
    }
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("not valid YAML: ", e.what()));
  }
  return out;
}

}  // namespace pgbranch::cli
