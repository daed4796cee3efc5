#include "operator/kube/json_patch.h"

#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"

namespace pgbranch::kube {

using web::json::value;

value ApplyMergePatch(const value& target, const value& patch) {
  if (!patch.is_object()) return patch;
  value out = target.is_object() ? target : value::object();
  for (const auto& [k, v] : patch.as_object()) {
    if (v.is_null()) {
      if (out.has_field(k)) out.erase(k);
    } else {
      out[k] = ApplyMergePatch(out.has_field(k) ? out.at(k) : value::null(), v);
    }
  }
  return out;
}

namespace {

absl::StatusOr<std::vector<std::string>> ParsePointer(const std::string& path) {
  std::vector<std::string> tokens;
  if (path.empty()) return tokens;
  if (path[0] != '/') return absl::InvalidArgumentError(absl::StrCat("bad path \"", path, "\""));
  for (absl::string_view t : absl::StrSplit(path.substr(1), '/')) {
    tokens.push_back(absl::StrReplaceAll(t, {{"~1", "/"}, {"~0", "~"}}));
  }
  return tokens;
}

// The parent container of the pointer's last token, or an error.
absl::StatusOr<value*> Parent(value& doc, const std::vector<std::string>& tokens,
                              const std::string& path) {
  value* cur = &doc;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    if (cur->is_object()) {
      if (!cur->has_field(t)) {
        return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
      }
      cur = &cur->at(t);
    } else if (cur->is_array()) {
      size_t idx;
      if (!absl::SimpleAtoi(t, &idx) || idx >= cur->size()) {
        return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
      }
      cur = &cur->at(idx);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
    }
  }
  return cur;
}

absl::StatusOr<value> GetAt(value& doc, const std::string& path) {
  auto tokens = ParsePointer(path);
  if (!tokens.ok()) return tokens.status();
  if (tokens->empty()) return doc;
  auto parent = Parent(doc, *tokens, path);
  if (!parent.ok()) return parent.status();
  const std::string& last = tokens->back();
  value* p = *parent;
  if (p->is_object() && p->has_field(last)) return p->at(last);
  size_t idx;
  if (p->is_array() && absl::SimpleAtoi(last, &idx) && idx < p->size()) return p->at(idx);
  return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
}

absl::Status RemoveAt(value& doc, const std::string& path) {
  auto tokens = ParsePointer(path);
  if (!tokens.ok()) return tokens.status();
  if (tokens->empty()) return absl::InvalidArgumentError("cannot remove the root");
  auto parent = Parent(doc, *tokens, path);
  if (!parent.ok()) return parent.status();
  const std::string& last = tokens->back();
  value* p = *parent;
  if (p->is_object() && p->has_field(last)) {
    p->erase(last);
    return absl::OkStatus();
  }
  size_t idx;
  if (p->is_array() && absl::SimpleAtoi(last, &idx) && idx < p->size()) {
    p->erase(idx);
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
}

// add (insert into arrays) or replace (must exist).
absl::Status SetAt(value& doc, const std::string& path, const value& v, bool replace) {
  auto tokens = ParsePointer(path);
  if (!tokens.ok()) return tokens.status();
  if (tokens->empty()) {
    doc = v;
    return absl::OkStatus();
  }
  auto parent = Parent(doc, *tokens, path);
  if (!parent.ok()) return parent.status();
  const std::string& last = tokens->back();
  value* p = *parent;
  if (p->is_object()) {
    if (replace && !p->has_field(last)) {
      return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
    }
    (*p)[last] = v;
    return absl::OkStatus();
  }
  if (!p->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat("path \"", path, "\" does not exist"));
  }
  size_t n = p->size();
  size_t idx = n;
  if (last != "-" && (!absl::SimpleAtoi(last, &idx) || idx > n || (replace && idx == n))) {
    return absl::InvalidArgumentError(absl::StrCat("index out of range in \"", path, "\""));
  }
  if (replace) {
    (*p)[idx] = v;
    return absl::OkStatus();
  }
  std::vector<value> items;
  for (size_t i = 0; i < n; ++i) {
    if (i == idx) items.push_back(v);
    items.push_back(p->at(i));
  }
  if (idx == n) items.push_back(v);
  *p = value::array(items);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<value> ApplyJsonPatch(const value& target, const value& ops) {
  if (!ops.is_array()) return absl::InvalidArgumentError("a JSON patch must be an array");
  value doc = target;
  for (const value& op : ops.as_array()) {
    if (!op.is_object() || !op.has_field("op") || !op.has_field("path")) {
      return absl::InvalidArgumentError("a JSON patch operation needs \"op\" and \"path\"");
    }
    std::string name = op.at("op").as_string();
    std::string path = op.at("path").as_string();
    absl::Status s;
    if (name == "add" || name == "replace") {
      if (!op.has_field("value")) return absl::InvalidArgumentError(name + " needs a value");
      s = SetAt(doc, path, op.at("value"), name == "replace");
    } else if (name == "remove") {
      s = RemoveAt(doc, path);
    } else if (name == "test") {
      auto got = GetAt(doc, path);
      if (!got.ok() || !op.has_field("value") || !(*got == op.at("value"))) {
        return absl::InvalidArgumentError(
            absl::StrCat("testing value ", path, " failed: test failed"));
      }
    } else if (name == "move" || name == "copy") {
      std::string from = op.has_field("from") ? op.at("from").as_string() : "";
      auto got = GetAt(doc, from);
      if (!got.ok()) return got.status();
      value v = *got;
      if (name == "move") s = RemoveAt(doc, from);
      if (s.ok()) s = SetAt(doc, path, v, false);
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown JSON patch op \"", name, "\""));
    }
    if (!s.ok()) return s;
  }
  return doc;
}

}  // namespace pgbranch::kube
