#include "operator/kube/leader_elector.h"

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "operator/kube/kube_object.h"

namespace pgbranch::kube {

using web::json::value;

LeaderElector::LeaderElector(KubeClient* client, Options options)
    : client_(client), options_(std::move(options)) {}

LeaderElector::~LeaderElector() { Stop(); }

absl::Time LeaderElector::Now() const { return absl::FromUnixMicros(options_.clock->NowMicros()); }

void LeaderElector::Start() {
  thread_ = std::thread([this] { Run(); });
}

void LeaderElector::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool LeaderElector::IsLeader() {
  absl::MutexLock lock(&mu_);
  return leading_;
}

bool LeaderElector::Done() {
  absl::MutexLock lock(&mu_);
  return done_;
}

bool LeaderElector::SleepFor(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopped_), d);
  return !stopped_;
}

void LeaderElector::Run() {
  // Real time for the renew deadline: how long since WE last renewed.
  absl::Time last_renew = absl::InfinitePast();
  bool leading = false;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stopped_) break;
    }
    bool ok = TryAcquireOrRenew();
    absl::Time now = absl::Now();
    if (ok) {
      last_renew = now;
      if (!leading) {
        leading = true;
        {
          absl::MutexLock lock(&mu_);
          leading_ = true;
        }
        LogInfo("Became leader", {{"lease", options_.lease_name}, {"identity", options_.identity}});
        if (options_.on_started_leading) options_.on_started_leading();
      }
    } else if (leading &&
               (now - last_renew >= options_.renew_deadline || last_holder_ != options_.identity)) {
      {
        absl::MutexLock lock(&mu_);
        leading_ = false;
        done_ = true;
      }
      LogError("Lost the leader lease, stopping", {{"lease", options_.lease_name},
                                                   {"identity", options_.identity},
                                                   {"holder", last_holder_}});
      if (options_.on_stopped_leading) options_.on_stopped_leading();
      return;
    }
    if (!SleepFor(options_.retry_period)) break;
  }
  if (leading) {
    Release();
    {
      absl::MutexLock lock(&mu_);
      leading_ = false;
    }
    if (options_.on_stopped_leading) options_.on_stopped_leading();
  }
  absl::MutexLock lock(&mu_);
  done_ = true;
}

namespace {

value LeaseSpec(const std::string& holder, int64_t duration_seconds, const std::string& acquire,
                const std::string& renew, int64_t transitions) {
  value spec = value::object();
  spec["holderIdentity"] = value::string(holder);
  spec["leaseDurationSeconds"] = value::number(duration_seconds);
  spec["acquireTime"] = value::string(acquire);
  spec["renewTime"] = value::string(renew);
  spec["leaseTransitions"] = value::number(transitions);
  return spec;
}

}  // namespace

bool LeaderElector::TryAcquireOrRenew() {
  absl::Time now = Now();
  std::string now_text = FormatKubeMicroTime(now);
  int64_t duration_s = absl::ToInt64Seconds(options_.lease_duration);
  auto lease = client_->Get(kLeases, options_.lease_namespace, options_.lease_name);
  if (absl::IsNotFound(lease.status())) {
    value obj = value::object();
    obj["apiVersion"] = value::string("coordination.k8s.io/v1");
    obj["kind"] = value::string("Lease");
    obj["metadata"] = value::object();
    obj["metadata"]["name"] = value::string(options_.lease_name);
    obj["metadata"]["namespace"] = value::string(options_.lease_namespace);
    obj["spec"] = LeaseSpec(options_.identity, duration_s, now_text, now_text, 0);
    auto created = client_->Create(kLeases, options_.lease_namespace, obj);
    if (!created.ok()) return false;
    observed_record_ = ResourceVersionOf(*created);
    observed_time_ = now;
    last_holder_ = options_.identity;
    return true;
  }
  if (!lease.ok()) {
    LogWarning("Cannot read the leader lease",
               {{"lease", options_.lease_name}, {"error", std::string(lease.status().message())}});
    return false;
  }
  value spec = lease->has_field("spec") ? lease->at("spec") : value::object();
  std::string holder = StringField(spec, "holderIdentity");
  std::string record = absl::StrCat(holder, "|", StringField(spec, "renewTime"), "|",
                                    IntField(spec, "leaseDurationSeconds", 0));
  if (record != observed_record_) {
    observed_record_ = record;
    observed_time_ = now;
  }
  if (holder != last_holder_) {
    last_holder_ = holder;
    if (!holder.empty() && options_.on_new_leader) options_.on_new_leader(holder);
  }
  absl::Duration held_for = absl::Seconds(IntField(spec, "leaseDurationSeconds", duration_s));
  bool ours = holder == options_.identity;
  if (!holder.empty() && !ours && observed_time_ + held_for > now) return false;  // held

  value next = *lease;
  int64_t transitions = IntField(spec, "leaseTransitions", 0);
  std::string acquire = StringField(spec, "acquireTime");
  if (!ours) {
    transitions++;
    acquire = now_text;
  }
  next["spec"] = LeaseSpec(options_.identity, duration_s, acquire, now_text, transitions);
  auto updated = client_->Update(kLeases, options_.lease_namespace, next);  // carries the rv
  if (!updated.ok()) {
    if (!absl::IsAborted(updated.status())) {
      LogWarning(
          "Cannot update the leader lease",
          {{"lease", options_.lease_name}, {"error", std::string(updated.status().message())}});
    }
    return false;
  }
  observed_record_ = absl::StrCat(options_.identity, "|", now_text, "|", duration_s);
  observed_time_ = now;
  last_holder_ = options_.identity;
  return true;
}

void LeaderElector::Release() {
  auto lease = client_->Get(kLeases, options_.lease_namespace, options_.lease_name);
  if (!lease.ok()) return;
  value spec = lease->has_field("spec") ? lease->at("spec") : value::object();
  if (StringField(spec, "holderIdentity") != options_.identity) return;
  std::string now_text = FormatKubeMicroTime(Now());
  value next = *lease;
  next["spec"] = LeaseSpec("", 1, now_text, now_text, IntField(spec, "leaseTransitions", 0));
  auto updated = client_->Update(kLeases, options_.lease_namespace, next);
  if (updated.ok()) {
    LogInfo("Released the leader lease", {{"lease", options_.lease_name}});
  } else {
    LogWarning(
        "Cannot release the leader lease",
        {{"lease", options_.lease_name}, {"error", std::string(updated.status().message())}});
  }
}

}  // namespace pgbranch::kube
