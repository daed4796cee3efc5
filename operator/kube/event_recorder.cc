#include "operator/kube/event_recorder.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::kube {

using web::json::value;

ObjectReference ObjectReference::From(const value& obj) {
  ObjectReference r;
  r.api_version = StringField(obj, "apiVersion");
  r.kind = StringField(obj, "kind");
  r.name_space = NamespaceOf(obj);
  r.name = NameOf(obj);
  r.uid = UidOf(obj);
  return r;
}

EventRecorder::EventRecorder(KubeClient* client, Options options)
    : client_(client), options_(std::move(options)) {}

void EventRecorder::Remember(const std::string& key, Seen seen) {
  auto it = seen_.find(key);
  if (it != seen_.end()) lru_.erase(it->second.lru);
  lru_.push_front(key);
  seen.lru = lru_.begin();
  seen_[key] = seen;
  while (seen_.size() > options_.max_tracked) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
}

void EventRecorder::Record(const ObjectReference& object, Type type, const std::string& reason,
                           const std::string& message) {
  std::string type_name = type == Type::kNormal ? "Normal" : "Warning";
  std::string key = absl::StrCat(object.uid, "\x1f", object.kind, "\x1f", object.name_space, "\x1f",
                                 object.name, "\x1f", type_name, "\x1f", reason, "\x1f", message);
  absl::Time now = absl::FromUnixMicros(options_.clock->NowMicros());
  std::string now_text = FormatKubeTime(now);
  absl::MutexLock lock(&mu_);

  auto it = seen_.find(key);
  if (it != seen_.end() && now - it->second.last < options_.aggregation_window) {
    Seen s = it->second;
    value patch = value::object();
    patch["count"] = value::number(s.count + 1);
    patch["lastTimestamp"] = value::string(now_text);
    auto patched =
        client_->Patch(kCoreEvents, s.event_namespace, s.event_name, PatchType::kMerge, patch);
    if (patched.ok()) {
      s.count++;
      s.last = now;
      Remember(key, s);
      return;
    }
    if (!absl::IsNotFound(patched.status())) {
      LogWarning("Cannot update event", {{"reason", reason},
                                         {"object", object.name},
                                         {"error", std::string(patched.status().message())}});
      return;
    }
    // The Event expired (the API server deletes them after an hour): create a new one.
  }

  // Events of cluster-scoped objects live in "default", as client-go does.
  std::string ns = object.name_space.empty() ? "default" : object.name_space;
  std::string name =
      absl::StrFormat("%s.%x%04x", object.name, absl::ToUnixNanos(now), sequence_++ & 0xffff);
  value ev = value::object();
  ev["apiVersion"] = value::string("v1");
  ev["kind"] = value::string("Event");
  ev["metadata"] = value::object();
  ev["metadata"]["name"] = value::string(name);
  ev["metadata"]["namespace"] = value::string(ns);
  value involved = value::object();
  involved["apiVersion"] = value::string(object.api_version);
  involved["kind"] = value::string(object.kind);
  involved["name"] = value::string(object.name);
  if (!object.name_space.empty()) involved["namespace"] = value::string(object.name_space);
  if (!object.uid.empty()) involved["uid"] = value::string(object.uid);
  ev["involvedObject"] = involved;
  ev["type"] = value::string(type_name);
  ev["reason"] = value::string(reason);
  ev["message"] = value::string(message.substr(0, 1024));
  ev["count"] = value::number(1);
  ev["firstTimestamp"] = value::string(now_text);
  ev["lastTimestamp"] = value::string(now_text);
  ev["source"] = value::object();
  ev["source"]["component"] = value::string(options_.reporting_controller);
  ev["reportingComponent"] = value::string(options_.reporting_controller);
  if (!options_.reporting_instance.empty()) {
    ev["source"]["host"] = value::string(options_.reporting_instance);
    ev["reportingInstance"] = value::string(options_.reporting_instance);
  }
  auto created = client_->Create(kCoreEvents, ns, ev);
  if (!created.ok()) {
    LogWarning("Cannot record event", {{"reason", reason},
                                       {"object", object.name},
                                       {"error", std::string(created.status().message())}});
    return;
  }
  Remember(key, Seen{ns, name, 1, now, {}});
}

}  // namespace pgbranch::kube
