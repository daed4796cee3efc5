#include "operator/kube/fake_kube_api.h"

#include <condition_variable>
#include <random>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "operator/kube/json_patch.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::kube {

using web::json::value;

namespace {

// One term of a label selector.
struct Requirement {
  enum Op { kEq, kNotEq, kExists, kNotExists, kIn, kNotIn } op;
  std::string key;
  std::vector<std::string> values;
};

// Splits at commas outside parentheses: "a in (x,y),b=c".
std::vector<std::string> SplitTerms(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  int depth = 0;
  for (char c : s) {
    if (c == '(') depth++;
    if (c == ')') depth--;
    if (c == ',' && depth == 0) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur.push_back(c);
    }
  }
  out.push_back(cur);
  return out;
}

absl::StatusOr<std::vector<Requirement>> ParseSelector(const std::string& selector) {
  std::vector<Requirement> out;
  if (absl::StripAsciiWhitespace(selector).empty()) return out;
  for (const std::string& raw : SplitTerms(selector)) {
    std::string t(absl::StripAsciiWhitespace(raw));
    Requirement r;
    size_t pos;
    if (t.empty()) continue;
    if (t[0] == '!') {
      r.op = Requirement::kNotExists;
      r.key = std::string(absl::StripAsciiWhitespace(t.substr(1)));
    } else if ((pos = t.find("!=")) != std::string::npos) {
      r.op = Requirement::kNotEq;
      r.key = std::string(absl::StripAsciiWhitespace(t.substr(0, pos)));
      r.values.push_back(std::string(absl::StripAsciiWhitespace(t.substr(pos + 2))));
    } else if ((pos = t.find('=')) != std::string::npos) {
      r.op = Requirement::kEq;
      size_t skip = (pos + 1 < t.size() && t[pos + 1] == '=') ? 2 : 1;
      r.key = std::string(absl::StripAsciiWhitespace(t.substr(0, pos)));
      r.values.push_back(std::string(absl::StripAsciiWhitespace(t.substr(pos + skip))));
    } else if ((pos = t.find(" notin ")) != std::string::npos ||
               (pos = t.find(" in ")) != std::string::npos) {
      bool notin = t.compare(pos, 7, " notin ") == 0;
      r.op = notin ? Requirement::kNotIn : Requirement::kIn;
      r.key = std::string(absl::StripAsciiWhitespace(t.substr(0, pos)));
      std::string rest(absl::StripAsciiWhitespace(t.substr(pos + (notin ? 7 : 4))));
      if (rest.size() < 2 || rest.front() != '(' || rest.back() != ')') {
        return absl::InvalidArgumentError(absl::StrCat("bad label selector \"", selector, "\""));
      }
      for (absl::string_view v : absl::StrSplit(rest.substr(1, rest.size() - 2), ',')) {
        r.values.push_back(std::string(absl::StripAsciiWhitespace(v)));
      }
    } else {
      r.op = Requirement::kExists;
      r.key = t;
    }
    out.push_back(std::move(r));
  }
  return out;
}

bool Matches(const std::vector<Requirement>& reqs, const value& obj) {
  auto labels = LabelsOf(obj);
  for (const Requirement& r : reqs) {
    auto it = labels.find(r.key);
    bool has = it != labels.end();
    auto in = [&] {
      return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    switch (r.op) {
      case Requirement::kEq:
      case Requirement::kIn:
        if (!in()) return false;
        break;
      case Requirement::kNotEq:
      case Requirement::kNotIn:
        if (in()) return false;
        break;
      case Requirement::kExists:
        if (!has) return false;
        break;
      case Requirement::kNotExists:
        if (has) return false;
        break;
    }
  }
  return true;
}

// field selectors: metadata.name=x, metadata.namespace=y (== and != too).
bool FieldsMatch(const std::string& selector, const value& obj) {
  for (absl::string_view term : absl::StrSplit(selector, ',', absl::SkipEmpty())) {
    std::string t(term);
    bool neg = t.find("!=") != std::string::npos;
    std::vector<std::string> kv = absl::StrSplit(t, absl::ByAnyChar("!="), absl::SkipEmpty());
    if (kv.size() != 2) continue;
    std::string got = kv[0] == "metadata.name"        ? NameOf(obj)
                      : kv[0] == "metadata.namespace" ? NamespaceOf(obj)
                                                      : "";
    if ((got == kv[1]) == neg) return false;
  }
  return true;
}

bool IsTerminalFinalize(const value& obj) {
  if (!obj.has_field("metadata")) return false;
  const value& m = obj.at("metadata");
  if (!m.has_field("deletionTimestamp")) return false;
  return !m.has_field("finalizers") || !m.at("finalizers").is_array() ||
         m.at("finalizers").size() == 0;
}

value WithoutMetaAndStatus(value obj) {
  if (obj.is_object()) {
    if (obj.has_field("metadata")) obj.erase("metadata");
    if (obj.has_field("status")) obj.erase("status");
  }
  return obj;
}

value StatusObject(int code, const std::string& reason, const std::string& message) {
  value s = value::object();
  s["kind"] = value::string("Status");
  s["apiVersion"] = value::string("v1");
  s["status"] = value::string("Failure");
  s["code"] = value::number(code);
  s["reason"] = value::string(reason);
  s["message"] = value::string(message);
  return s;
}

}  // namespace

struct FakeKubeApi::WatchState {
  Resource resource;
  std::string ns;
  std::vector<Requirement> selector;
  std::string field_selector;
  bool bookmarks = true;
  absl::Time deadline = absl::InfiniteFuture();
  std::function<void(const WatchEvent&)> on_event;
  std::function<void(const absl::Status&)> on_end;

  std::mutex mu;
  std::condition_variable cv;
  std::deque<WatchEvent> queue;
  bool closing = false;  // deliver what is queued, then end
  bool cancelled = false;
  absl::Status end;

  bool Wants(const Resource& r, const value& obj) const {
    return r == resource && (ns.empty() || NamespaceOf(obj) == ns) && Matches(selector, obj) &&
           FieldsMatch(field_selector, obj);
  }
  void Push(WatchEvent ev) {
    std::lock_guard<std::mutex> lock(mu);
    if (closing || cancelled) return;
    queue.push_back(std::move(ev));
    cv.notify_all();
  }
  void Close(absl::Status status, bool drain) {
    std::lock_guard<std::mutex> lock(mu);
    if (closing || cancelled) return;
    end = std::move(status);
    if (drain) {
      closing = true;
    } else {
      cancelled = true;
      queue.clear();
    }
    cv.notify_all();
  }
  bool Ended() {
    std::lock_guard<std::mutex> lock(mu);
    return closing || cancelled;
  }
  void Run() {
    while (true) {
      WatchEvent ev;
      {
        std::unique_lock<std::mutex> lock(mu);
        auto deadline = absl::ToChronoTime(deadline_or_far());
        while (queue.empty() && !closing && !cancelled) {
          if (cv.wait_until(lock, deadline) == std::cv_status::timeout && queue.empty() &&
              !closing && !cancelled) {
            closing = true;  // server-side timeout: a clean end
          }
        }
        if (cancelled || queue.empty()) break;
        ev = std::move(queue.front());
        queue.pop_front();
      }
      on_event(ev);
    }
    absl::Status status;
    {
      std::lock_guard<std::mutex> lock(mu);
      status = end;
    }
    on_end(status);
  }
  absl::Time deadline_or_far() const {
    return deadline == absl::InfiniteFuture() ? absl::Now() + absl::Hours(24 * 365) : deadline;
  }
};

namespace {

class FakeWatch : public Watch {
 public:
  explicit FakeWatch(std::shared_ptr<FakeKubeApi::WatchState> state) : state_(std::move(state)) {
    thread_ = std::thread([s = state_] { s->Run(); });
  }
  ~FakeWatch() override {
    Cancel();
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else if (thread_.joinable()) {
      thread_.join();
    }
  }
  void Cancel() override { state_->Close(absl::CancelledError("watch cancelled"), false); }

 private:
  std::shared_ptr<FakeKubeApi::WatchState> state_;
  std::thread thread_;
};

}  // namespace

FakeKubeApi::FakeKubeApi(Clock* clock) : clock_(clock) {}

FakeKubeApi::~FakeKubeApi() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : watches_) w->Close(absl::CancelledError("the fake API is going away"), false);
}

absl::Status FakeKubeApi::CheckFault(Verb verb) {
  std::lock_guard<std::mutex> lock(mu_);
  calls_[verb]++;
  auto& q = faults_[verb];
  if (q.empty()) return absl::OkStatus();
  absl::Status s = q.front();
  q.pop_front();
  return s;
}

void FakeKubeApi::FailNext(Verb verb, int times, absl::Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  for (int i = 0; i < times; ++i) faults_[verb].push_back(status);
}

int FakeKubeApi::Calls(Verb verb) {
  std::lock_guard<std::mutex> lock(mu_);
  return calls_[verb];
}

int64_t FakeKubeApi::CurrentResourceVersion() {
  std::lock_guard<std::mutex> lock(mu_);
  return rv_;
}

size_t FakeKubeApi::OpenWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (auto& w : watches_) n += w->Ended() ? 0 : 1;
  return n;
}

void FakeKubeApi::DropWatches() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : watches_) w->Close(absl::UnavailableError("watch connection dropped"), false);
  watches_.clear();
}

void FakeKubeApi::Compact() {
  std::lock_guard<std::mutex> lock(mu_);
  history_.clear();
  compacted_rv_ = rv_;
}

void FakeKubeApi::SendBookmarks() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& w : watches_) {
    if (!w->bookmarks) continue;
    value obj = value::object();
    obj["metadata"] = value::object();
    obj["metadata"]["resourceVersion"] = value::string(std::to_string(rv_));
    w->Push(WatchEvent{WatchEventType::kBookmark, obj});
  }
}

void FakeKubeApi::EmitLocked(const Resource& r, WatchEventType type, const value& obj) {
  history_.push_back(HistoryEvent{rv_, r, type, obj});
  std::erase_if(watches_, [](const auto& w) { return w->Ended(); });
  for (auto& w : watches_) {
    if (w->Wants(r, obj)) w->Push(WatchEvent{type, obj});
  }
}

value FakeKubeApi::NewMetaLocked(const value& object, const std::string& ns) {
  value obj = object;
  if (!obj.has_field("metadata") || !obj.at("metadata").is_object()) {
    obj["metadata"] = value::object();
  }
  value& m = obj["metadata"];
  if (!ns.empty()) m["namespace"] = value::string(ns);
  uint64_t n = ++uid_counter_;
  m["uid"] = value::string(absl::StrFormat("00000000-0000-4000-8000-%012x", n));
  m["creationTimestamp"] = value::string(FormatKubeTime(absl::FromUnixMicros(clock_->NowMicros())));
  m["generation"] = value::number(1);
  if (m.has_field("deletionTimestamp")) m.erase("deletionTimestamp");
  return obj;
}

absl::StatusOr<value> FakeKubeApi::Get(const Resource& r, const std::string& ns,
                                       const std::string& name) {
  if (auto s = CheckFault(Verb::kGet); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto& objs = objects_[r];
  auto it = objs.find(ObjectKey(ns, name));
  if (it == objs.end()) {
    return absl::NotFoundError(absl::StrCat(r.plural, " \"", name, "\" not found"));
  }
  return it->second;
}

absl::StatusOr<ObjectList> FakeKubeApi::List(const Resource& r, const std::string& ns,
                                             const ListOptions& options) {
  if (auto s = CheckFault(Verb::kList); !s.ok()) return s;
  auto selector = ParseSelector(options.label_selector);
  if (!selector.ok()) return selector.status();
  std::lock_guard<std::mutex> lock(mu_);
  ObjectList out;
  out.resource_version = std::to_string(rv_);
  for (const auto& [key, obj] : objects_[r]) {
    if (!ns.empty() && NamespaceOf(obj) != ns) continue;
    if (!Matches(*selector, obj) || !FieldsMatch(options.field_selector, obj)) continue;
    out.items.push_back(obj);
  }
  return out;
}

absl::StatusOr<value> FakeKubeApi::Create(const Resource& r, const std::string& ns,
                                          const value& object) {
  if (auto s = CheckFault(Verb::kCreate); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  value obj = NewMetaLocked(object, ns);
  if (obj.has_field("status")) obj.erase("status");
  value& m = obj["metadata"];
  if (StringField(m, "name").empty()) {
    std::string prefix = StringField(m, "generateName");
    if (prefix.empty()) return absl::InvalidArgumentError("metadata.name: Required value");
    static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    std::mt19937 rng(static_cast<uint32_t>(uid_counter_ * 7919));
    std::string suffix;
    for (int i = 0; i < 5; ++i) suffix.push_back(kAlphabet[rng() % (sizeof(kAlphabet) - 1)]);
    m["name"] = value::string(prefix + suffix);
  }
  std::string key = ObjectKey(ns, StringField(m, "name"));
  auto& objs = objects_[r];
  if (objs.count(key)) {
    return absl::AlreadyExistsError(
        absl::StrCat(r.plural, " \"", StringField(m, "name"), "\" already exists"));
  }
  m["resourceVersion"] = value::string(std::to_string(++rv_));
  objs[key] = obj;
  EmitLocked(r, WatchEventType::kAdded, obj);
  return obj;
}

absl::StatusOr<value> FakeKubeApi::Put(const Resource& r, const value& object) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string ns = NamespaceOf(object);
  std::string key = ObjectKey(ns, NameOf(object));
  auto& objs = objects_[r];
  auto it = objs.find(key);
  if (it == objs.end()) {
    value obj = NewMetaLocked(object, ns);
    obj["metadata"]["resourceVersion"] = value::string(std::to_string(++rv_));
    objs[key] = obj;
    EmitLocked(r, WatchEventType::kAdded, obj);
    return obj;
  }
  value obj = object;
  obj["metadata"]["resourceVersion"] = value::string("");
  return WriteLocked(r, ns, obj, WriteMode::kRaw, false);
}

absl::StatusOr<value> FakeKubeApi::WriteLocked(const Resource& r, const std::string& ns,
                                               value incoming, WriteMode mode, bool check_rv) {
  std::string name = NameOf(incoming);
  auto& objs = objects_[r];
  auto it = objs.find(ObjectKey(ns, name));
  if (it == objs.end()) {
    return absl::NotFoundError(absl::StrCat(r.plural, " \"", name, "\" not found"));
  }
  const value& old = it->second;
  std::string want_rv = ResourceVersionOf(incoming);
  if (check_rv && !want_rv.empty() && want_rv != ResourceVersionOf(old)) {
    return absl::AbortedError(absl::StrCat(
        "Operation cannot be fulfilled on ", r.plural, " \"", name,
        "\": the object has been modified; please apply your changes to the latest version "
        "and try again"));
  }
  value next;
  if (mode == WriteMode::kStatus) {
    next = old;
    if (incoming.has_field("status")) {
      next["status"] = incoming.at("status");
    } else if (next.has_field("status")) {
      next.erase("status");
    }
  } else {
    next = incoming;
    if (!next.has_field("metadata") || !next.at("metadata").is_object()) {
      next["metadata"] = value::object();
    }
    if (mode == WriteMode::kSpec) {
      if (old.has_field("status")) {
        next["status"] = old.at("status");
      } else if (next.has_field("status")) {
        next.erase("status");
      }
    }
    // Fields the server owns.
    const value& om = old.at("metadata");
    value& nm = next["metadata"];
    for (const char* f :
         {"uid", "creationTimestamp", "generation", "deletionTimestamp", "namespace", "name"}) {
      if (om.has_field(f)) {
        nm[f] = om.at(f);
      } else if (nm.has_field(f)) {
        nm.erase(f);
      }
    }
    if (!(WithoutMetaAndStatus(old) == WithoutMetaAndStatus(next))) {
      nm["generation"] = value::number(IntField(om, "generation", 1) + 1);
    }
  }
  next["metadata"]["resourceVersion"] = old.at("metadata").at("resourceVersion");
  if (next == old) return old;  // no-op: no new resourceVersion, no event
  next["metadata"]["resourceVersion"] = value::string(std::to_string(++rv_));
  if (IsTerminalFinalize(next)) {
    objs.erase(it);
    EmitLocked(r, WatchEventType::kDeleted, next);
    return next;
  }
  it->second = next;
  EmitLocked(r, WatchEventType::kModified, next);
  return next;
}

absl::StatusOr<value> FakeKubeApi::Update(const Resource& r, const std::string& ns,
                                          const value& object) {
  if (auto s = CheckFault(Verb::kUpdate); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  return WriteLocked(r, ns, object, WriteMode::kSpec, true);
}

absl::StatusOr<value> FakeKubeApi::UpdateStatus(const Resource& r, const std::string& ns,
                                                const value& object) {
  if (auto s = CheckFault(Verb::kUpdateStatus); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  return WriteLocked(r, ns, object, WriteMode::kStatus, true);
}

absl::StatusOr<value> FakeKubeApi::Patch(const Resource& r, const std::string& ns,
                                         const std::string& name, PatchType type,
                                         const value& patch, const std::string& field_manager,
                                         const std::string& subresource) {
  if (auto s = CheckFault(Verb::kPatch); !s.ok()) return s;
  WriteMode mode = subresource == "status" ? WriteMode::kStatus : WriteMode::kSpec;
  value current;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto& objs = objects_[r];
    auto it = objs.find(ObjectKey(ns, name));
    if (it == objs.end()) {
      if (type != PatchType::kApply) {
        return absl::NotFoundError(absl::StrCat(r.plural, " \"", name, "\" not found"));
      }
    } else {
      current = it->second;
    }
  }
  if (current.is_null()) {  // server-side apply of a new object
    value obj = patch;
    if (!obj.has_field("metadata")) obj["metadata"] = value::object();
    obj["metadata"]["name"] = value::string(name);
    auto created = Create(r, ns, obj);
    if (!created.ok() || mode != WriteMode::kStatus) return created;
    current = *created;
  }
  std::lock_guard<std::mutex> lock(mu_);
  value next;
  if (type == PatchType::kJson) {
    auto patched = ApplyJsonPatch(current, patch);
    if (!patched.ok()) return patched.status();
    next = *patched;
  } else {
    next = ApplyMergePatch(current, patch);
  }
  // A patch that names a resourceVersion is a precondition; otherwise patch the latest.
  bool check = ResourceVersionOf(next) != ResourceVersionOf(current);
  if (!check) next["metadata"]["resourceVersion"] = value::string("");
  return WriteLocked(r, ns, next, mode, check);
}

absl::Status FakeKubeApi::Delete(const Resource& r, const std::string& ns, const std::string& name,
                                 const std::string& propagation) {
  if (auto s = CheckFault(Verb::kDelete); !s.ok()) return s;
  std::lock_guard<std::mutex> lock(mu_);
  auto& objs = objects_[r];
  auto it = objs.find(ObjectKey(ns, name));
  if (it == objs.end()) {
    return absl::NotFoundError(absl::StrCat(r.plural, " \"", name, "\" not found"));
  }
  value obj = it->second;
  const value& m = obj.at("metadata");
  bool has_finalizers =
      m.has_field("finalizers") && m.at("finalizers").is_array() && m.at("finalizers").size() > 0;
  if (has_finalizers) {
    if (m.has_field("deletionTimestamp")) return absl::OkStatus();
    obj["metadata"]["deletionTimestamp"] =
        value::string(FormatKubeTime(absl::FromUnixMicros(clock_->NowMicros())));
    obj["metadata"]["resourceVersion"] = value::string(std::to_string(++rv_));
    it->second = obj;
    EmitLocked(r, WatchEventType::kModified, obj);
    return absl::OkStatus();
  }
  obj["metadata"]["resourceVersion"] = value::string(std::to_string(++rv_));
  objs.erase(it);
  EmitLocked(r, WatchEventType::kDeleted, obj);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Watch>> FakeKubeApi::StartWatch(
    const Resource& r, const std::string& ns, const WatchOptions& options,
    std::function<void(const WatchEvent&)> on_event,
    std::function<void(const absl::Status&)> on_end) {
  if (auto s = CheckFault(Verb::kWatch); !s.ok()) return s;
  auto selector = ParseSelector(options.label_selector);
  if (!selector.ok()) return selector.status();
  auto state = std::make_shared<WatchState>();
  state->resource = r;
  state->ns = ns;
  state->selector = *selector;
  state->field_selector = options.field_selector;
  state->bookmarks = options.allow_bookmarks;
  if (options.timeout_seconds > 0) {
    state->deadline = absl::Now() + absl::Seconds(options.timeout_seconds);
  }
  state->on_event = std::move(on_event);
  state->on_end = std::move(on_end);
  {
    std::lock_guard<std::mutex> lock(mu_);
    int64_t from = 0;
    if (options.resource_version.empty() || options.resource_version == "0") {
      for (const auto& [key, obj] : objects_[r]) {
        if (state->Wants(r, obj)) state->Push(WatchEvent{WatchEventType::kAdded, obj});
      }
      from = rv_;
    } else if (!absl::SimpleAtoi(options.resource_version, &from)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad resourceVersion \"", options.resource_version, "\""));
    }
    if (from < compacted_rv_) {
      // What the API server does: 200, then one ERROR event, then the end of the stream.
      state->Push(WatchEvent{WatchEventType::kError,
                             StatusObject(410, "Expired",
                                          absl::StrCat("too old resource version: ", from, " (",
                                                       compacted_rv_, ")"))});
      state->Close(absl::OkStatus(), true);
    } else {
      for (const HistoryEvent& ev : history_) {
        if (ev.rv > from && state->Wants(ev.resource, ev.object)) {
          state->Push(WatchEvent{ev.type, ev.object});
        }
      }
      watches_.push_back(state);
    }
  }
  return std::unique_ptr<Watch>(new FakeWatch(std::move(state)));
}

}  // namespace pgbranch::kube
