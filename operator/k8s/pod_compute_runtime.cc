#include "operator/k8s/pod_compute_runtime.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/net_util.h"
#include "common/text_util.h"
#include "operator/kube/kube_object.h"
#include "operator/model/json.h"

namespace pgbranch::k8s {
namespace {

using control::ComputeObservation;
using control::ComputeState;
using web::json::value;

value Str(const std::string& s) { return value::string(s); }

value EndpointOwner(const std::string& endpoint, const std::string& uid) {
  value ref = value::object();
  ref["apiVersion"] = Str(control::kApiVersion);
  ref["kind"] = Str("Endpoint");
  ref["name"] = Str(endpoint);
  ref["uid"] = Str(uid);
  ref["controller"] = value::boolean(true);
  ref["blockOwnerDeletion"] = value::boolean(true);
  value refs = value::array();
  refs[0] = ref;
  return refs;
}

value Labels(const std::string& endpoint, const std::string& branch, const std::string& name) {
  value l = value::object();
  l["app.kubernetes.io/name"] = Str(name);
  l["app.kubernetes.io/managed-by"] = Str("pgbranch-operator");
  l["pgbranch.io/endpoint"] = Str(endpoint);
  if (!branch.empty()) l["pgbranch.io/branch"] = Str(branch);
  return l;
}

// An Opaque Secret the operator owns in the endpoint's namespace: labelled with the endpoint and
// `component`, owned by the Endpoint (when its UID is known), holding `string_data`.
value OwnedSecret(const std::string& ns, const std::string& name, const std::string& endpoint,
                  const std::string& endpoint_uid, const std::string& component,
                  value string_data) {
  value s = value::object();
  s["apiVersion"] = Str("v1");
  s["kind"] = Str("Secret");
  value meta = value::object();
  meta["name"] = Str(name);
  meta["namespace"] = Str(ns);
  meta["labels"] = Labels(endpoint, "", component);
  if (!endpoint_uid.empty()) meta["ownerReferences"] = EndpointOwner(endpoint, endpoint_uid);
  s["metadata"] = meta;
  s["type"] = Str("Opaque");
  s["stringData"] = std::move(string_data);
  return s;
}

value EnvVar(const std::string& name, const std::string& v) {
  value e = value::object();
  e["name"] = Str(name);
  e["value"] = Str(v);
  return e;
}

value Port(const std::string& name, int port) {
  value p = value::object();
  p["name"] = Str(name);
  p["containerPort"] = value::number(port);
  p["protocol"] = Str("TCP");
  return p;
}

// Why a pod cannot make progress, from its container statuses ("" when it can).
std::string StuckReason(const value& pod) {
  if (!pod.has_field("status") || !pod.at("status").has_field("containerStatuses")) return "";
  for (const value& cs : pod.at("status").at("containerStatuses").as_array()) {
    if (!cs.has_field("state")) continue;
    const value& state = cs.at("state");
    if (state.has_field("waiting")) {
      std::string reason = control::JsonString(state.at("waiting"), "reason");
      static const char* kStuck[] = {
          "ErrImagePull",     "ImagePullBackOff",           "ErrImageNeverPull",
          "InvalidImageName", "CreateContainerConfigError", "CreateContainerError",
          "RunContainerError"};
      for (const char* s : kStuck) {
        if (reason == s) {
          return absl::StrCat(reason, ": ", control::JsonString(state.at("waiting"), "message"));
        }
      }
    }
  }
  return "";
}

std::string TerminatedMessage(const value& pod) {
  if (!pod.has_field("status") || !pod.at("status").has_field("containerStatuses")) {
    return absl::StrCat("the compute pod ended (", control::JsonString(pod.at("status"), "reason"),
                        ")");
  }
  for (const value& cs : pod.at("status").at("containerStatuses").as_array()) {
    if (!cs.has_field("state") || !cs.at("state").has_field("terminated")) continue;
    const value& t = cs.at("state").at("terminated");
    std::string msg = control::JsonString(t, "message");
    return absl::StrCat("the compute exited (code ", control::JsonInt(t, "exitCode"), ", ",
                        control::JsonString(t, "reason"), ")", msg.empty() ? "" : ": ", msg,
                        "; see kubectl logs ", kube::NameOf(pod));
  }
  return "the compute pod ended";
}

// A Secret's value: `data` (base64, as the API server returns it) or `stringData` (as written).
std::string SecretValue(const value& secret, const std::string& key) {
  if (secret.has_field("data") && secret.at("data").has_field(key)) {
    std::string decoded;
    if (absl::Base64Unescape(control::JsonString(secret.at("data"), key), &decoded)) {
      return decoded;
    }
    return "";
  }
  if (secret.has_field("stringData")) return control::JsonString(secret.at("stringData"), key);
  return "";
}

value SecretVolume(const std::string& name, const std::string& secret_name,
                   const std::string& key) {
  value v = value::object();
  v["name"] = Str(name);
  value secret = value::object();
  secret["secretName"] = Str(secret_name);
  value items = value::array();
  value item = value::object();
  item["key"] = Str(key);
  item["path"] = Str(key);
  items[0] = item;
  secret["items"] = items;
  secret["defaultMode"] = value::number(0400);
  v["secret"] = secret;
  return v;
}

value ReadOnlyMount(const std::string& name, const std::string& path) {
  value m = value::object();
  m["name"] = Str(name);
  m["mountPath"] = Str(path);
  m["readOnly"] = value::boolean(true);
  return m;
}

bool PodReady(const value& pod) {
  if (!pod.has_field("status") || !pod.at("status").has_field("conditions")) return false;
  for (const value& c : pod.at("status").at("conditions").as_array()) {
    if (control::JsonString(c, "type") == "Ready")
      return control::JsonString(c, "status") == "True";
  }
  return false;
}

}  // namespace

bool PodComputeRuntime::PodServing(const value& pod) {
  if (!kube::MetaString(pod, "deletionTimestamp").empty() || !pod.has_field("status")) return false;
  const value& st = pod.at("status");
  return control::JsonString(st, "phase") == "Running" && PodReady(pod) &&
         !control::JsonString(st, "podIP").empty();
}

PodComputeRuntime::PodComputeRuntime(PodComputeOptions options, kube::KubeClient* client,
                                     PodLookup pods, StatusFetch fetch, AgentPost post)
    : options_(std::move(options)),
      client_(client),
      pods_(std::move(pods)),
      fetch_(fetch ? std::move(fetch)
                   : StatusFetch([](const std::string& host, int port, const std::string& path) {
                       return net::HttpRequestTo(host, "GET", port, path, "",
                                                 absl::Milliseconds(500));
                     })),
      post_(post ? std::move(post)
                 : AgentPost([](const std::string& host, int port, const std::string& path,
                                absl::Duration timeout) {
                     return net::HttpRequestTo(host, "POST", port, path, "", timeout);
                   })) {}

std::string PodComputeRuntime::ClientHost(const std::string& ns,
                                          const std::string& endpoint) const {
  if (!options_.proxy_host.empty()) return options_.proxy_host;
  return absl::StrCat(endpoint, ".", ns, ".svc");
}

std::string PodComputeRuntime::ClientUri(const std::string& ns, const std::string& endpoint,
                                         const std::string& password) const {
  // The proxy routes by options=endpoint=<endpoint>.<namespace> ("=" percent-encoded).
  return absl::StrCat("postgresql://", UriEscape(options_.role), ":", UriEscape(password), "@",
                      ClientHost(ns, endpoint), ":", options_.proxy_port, "/",
                      UriEscape(options_.database), "?options=endpoint%3D", endpoint, ".", ns);
}

value PodComputeRuntime::SecretManifest(const std::string& ns, const std::string& endpoint,
                                        const std::string& endpoint_uid) const {
  const std::string password = RandomPassword();
  value data = value::object();
  data["user"] = Str(options_.role);
  data["password"] = Str(password);
  data["dbname"] = Str(options_.database);
  data["host"] = Str(ClientHost(ns, endpoint));
  data["port"] = Str(std::to_string(options_.proxy_port));
  data["endpoint"] = Str(absl::StrCat(endpoint, ".", ns));
  data["uri"] = Str(ClientUri(ns, endpoint, password));
  return OwnedSecret(ns, SecretName(endpoint), endpoint, endpoint_uid, "pgbranch-credentials",
                     std::move(data));
}

std::string PodComputeRuntime::AgentConfig(const control::ComputeSpec& spec) const {
  std::string cfg = absl::StrCat(
      "endpoint: ", YamlQuote(spec.endpoint), "\n", "branch: ", YamlQuote(spec.branch), "\n",
      "pageserver: ", YamlQuote(options_.pageserver), "\n", "tenant: ", YamlQuote(spec.tenant_id),
      "\n", "timeline: ", YamlQuote(spec.timeline_id), "\n",
      "mode: ", spec.read_only ? "read-only" : "read-write", "\n",
      "workdir: \"/var/lib/pgbranch\"\n", "pg_port: ", options_.pg_port, "\n",
      "listen_address: \"*\"\n", "status_listen: \"0.0.0.0:", options_.status_port, "\"\n",
      "pagefs_bin: \"/usr/local/bin/pagefs\"\n", "role: ", YamlQuote(options_.role), "\n",
      "database: ", YamlQuote(options_.database), "\n",
      "password_file: \"/etc/pgbranch/credentials/password\"\n",
      "stop_timeout_seconds: ", std::max(5, options_.termination_grace_seconds - 5), "\n");
  if (options_.token_signer != nullptr) {
    absl::StrAppend(&cfg, "token_file: \"", kTokenDir, "/token\"\n");
  }
  absl::StrAppend(&cfg, "parameters:\n");
  for (const auto& [k, v] : spec.postgres_parameters) {
    absl::StrAppend(&cfg, "  ", YamlQuote(k), ": ", YamlQuote(v), "\n");
  }
  if (spec.postgres_parameters.empty()) absl::StrAppend(&cfg, "  {}\n");
  return cfg;
}

value PodComputeRuntime::PodManifest(const control::ComputeSpec& spec) const {
  value pod = value::object();
  pod["apiVersion"] = Str("v1");
  pod["kind"] = Str("Pod");
  value meta = value::object();
  meta["name"] = Str(PodName(spec.endpoint));
  meta["namespace"] = Str(spec.ns);
  meta["labels"] = Labels(spec.endpoint, spec.branch, "pgbranch-compute");
  value ann = value::object();
  ann["pgbranch.io/timeline"] = Str(spec.timeline_id);
  meta["annotations"] = ann;
  if (!spec.endpoint_uid.empty()) {
    meta["ownerReferences"] = EndpointOwner(spec.endpoint, spec.endpoint_uid);
  }
  pod["metadata"] = meta;

  value c = value::object();
  c["name"] = Str("compute");
  c["image"] = Str(spec.image.empty() ? options_.image : spec.image);
  c["imagePullPolicy"] = Str(options_.image_pull_policy);
  value cmd = value::array();
  cmd[0] = Str("/usr/local/bin/pgbranch-compute");
  c["command"] = cmd;
  value env = value::array();
  env[0] = EnvVar("PGBRANCH_COMPUTE_CONFIG", AgentConfig(spec));
  c["env"] = env;
  value ports = value::array();
  ports[0] = Port("postgres", options_.pg_port);
  ports[1] = Port("status", options_.status_port);
  c["ports"] = ports;
  value probe = value::object();
  value get = value::object();
  get["path"] = Str("/readyz");
  get["port"] = value::number(options_.status_port);
  probe["httpGet"] = get;
  probe["periodSeconds"] = value::number(1);
  probe["failureThreshold"] = value::number(1);
  c["readinessProbe"] = probe;

  value sc = value::object();
  value resources = value::object();
  std::string cpu = spec.cpu.empty() ? options_.default_cpu : spec.cpu;
  std::string memory = spec.memory.empty() ? options_.default_memory : spec.memory;
  value limits = value::object();
  value requests = value::object();
  if (!cpu.empty()) requests["cpu"] = Str(cpu);
  if (!memory.empty()) {
    requests["memory"] = Str(memory);
    limits["memory"] = Str(memory);
  }
  if (options_.fuse_device_resource.empty()) {
    sc["privileged"] = value::boolean(true);
  } else {
    limits[options_.fuse_device_resource] = Str("1");
    value caps = value::object();
    value add = value::array();
    add[0] = Str("SYS_ADMIN");
    caps["add"] = add;
    sc["capabilities"] = caps;
  }
  if (limits.size() > 0) resources["limits"] = limits;
  if (requests.size() > 0) resources["requests"] = requests;
  c["resources"] = resources;
  c["securityContext"] = sc;

  value mounts = value::array();
  mounts[0] = ReadOnlyMount("credentials", "/etc/pgbranch/credentials");
  value m1 = value::object();
  m1["name"] = Str("work");
  m1["mountPath"] = Str("/var/lib/pgbranch");
  mounts[1] = m1;
  if (options_.token_signer != nullptr) mounts[2] = ReadOnlyMount("pageserver-token", kTokenDir);
  c["volumeMounts"] = mounts;

  value podspec = value::object();
  value containers = value::array();
  containers[0] = c;
  podspec["containers"] = containers;
  podspec["restartPolicy"] = Str("Never");  // a failed compute is replaced by the operator
  podspec["terminationGracePeriodSeconds"] = value::number(options_.termination_grace_seconds);
  podspec["enableServiceLinks"] = value::boolean(false);
  podspec["automountServiceAccountToken"] = value::boolean(false);
  if (!options_.service_account.empty()) {
    podspec["serviceAccountName"] = Str(options_.service_account);
  }
  value vols = value::array();
  vols[0] = SecretVolume("credentials", SecretName(spec.endpoint), "password");
  value v1 = value::object();
  v1["name"] = Str("work");
  v1["emptyDir"] = value::object();
  vols[1] = v1;
  if (options_.token_signer != nullptr) {
    vols[2] = SecretVolume("pageserver-token", TokenSecretName(spec.endpoint), "token");
  }
  podspec["volumes"] = vols;
  pod["spec"] = podspec;
  return pod;
}

absl::Status PodComputeRuntime::EnsureSecret(const control::ComputeSpec& spec) {
  auto existing = client_->Get(kube::kSecrets, spec.ns, SecretName(spec.endpoint));
  if (existing.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(existing.status())) return existing.status();
  auto created = client_->Create(kube::kSecrets, spec.ns,
                                 SecretManifest(spec.ns, spec.endpoint, spec.endpoint_uid));
  if (created.ok() || absl::IsAlreadyExists(created.status())) return absl::OkStatus();
  return created.status();
}

absl::StatusOr<value> PodComputeRuntime::TokenSecretManifest(
    const control::ComputeSpec& spec) const {
  TokenClaims claims;
  claims.tenant = spec.tenant_id;
  absl::StatusOr<std::string> token = options_.token_signer->Mint(claims);
  if (!token.ok()) return token.status();
  value data = value::object();
  data["token"] = Str(*token);
  return OwnedSecret(spec.ns, TokenSecretName(spec.endpoint), spec.endpoint, spec.endpoint_uid,
                     "pgbranch-pageserver-token", std::move(data));
}

absl::Status PodComputeRuntime::EnsureTokenSecret(const control::ComputeSpec& spec) {
  if (options_.token_signer == nullptr) return absl::OkStatus();
  const std::string name = TokenSecretName(spec.endpoint);
  auto existing = client_->Get(kube::kSecrets, spec.ns, name);
  if (!existing.ok() && !absl::IsNotFound(existing.status())) return existing.status();
  if (existing.ok()) {
    // Still good: signed with the current key, for this tenant, not admin.
    auto claims = options_.token_signer->Verify(SecretValue(*existing, "token"), absl::Now());
    if (claims.ok() && !claims->admin && claims->tenant == spec.tenant_id) {
      return absl::OkStatus();
    }
  }
  auto manifest = TokenSecretManifest(spec);
  if (!manifest.ok()) return manifest.status();
  if (!existing.ok()) {
    auto created = client_->Create(kube::kSecrets, spec.ns, *manifest);
    if (created.ok() || absl::IsAlreadyExists(created.status())) return absl::OkStatus();
    return created.status();
  }
  (*manifest)["metadata"]["resourceVersion"] = Str(kube::ResourceVersionOf(*existing));
  auto updated = client_->Update(kube::kSecrets, spec.ns, *manifest);
  if (!updated.ok()) return updated.status();  // a conflict retries on the next pass
  LogInfo("Replaced the compute's pageserver token (the signing key changed)",
          {{"namespace", spec.ns}, {"endpoint", spec.endpoint}, {"secret", name}});
  return absl::OkStatus();
}

value PodComputeRuntime::ServiceManifest(const std::string& ns, const std::string& endpoint,
                                         const std::string& endpoint_uid) const {
  value s = value::object();
  s["apiVersion"] = Str("v1");
  s["kind"] = Str("Service");
  value meta = value::object();
  meta["name"] = Str(endpoint);
  meta["namespace"] = Str(ns);
  meta["labels"] = Labels(endpoint, "", "pgbranch-endpoint");
  if (!endpoint_uid.empty()) meta["ownerReferences"] = EndpointOwner(endpoint, endpoint_uid);
  s["metadata"] = meta;
  value spec = value::object();
  // A DNS alias of the proxy: clients connect to <endpoint>.<namespace>.svc whether the compute
  // runs or not; the routing key in the uri names the endpoint.
  spec["type"] = Str("ExternalName");
  spec["externalName"] = Str(options_.proxy_service);
  value ports = value::array();
  value port = value::object();
  port["name"] = Str("postgres");
  port["port"] = value::number(options_.proxy_port);
  port["protocol"] = Str("TCP");
  ports[0] = port;
  spec["ports"] = ports;
  s["spec"] = spec;
  return s;
}

absl::Status PodComputeRuntime::EnsureService(const control::ComputeSpec& spec) {
  if (!options_.proxy_host.empty()) return absl::OkStatus();
  auto existing = client_->Get(kube::kServices, spec.ns, spec.endpoint);
  if (existing.ok()) return absl::OkStatus();
  if (!absl::IsNotFound(existing.status())) return existing.status();
  auto created = client_->Create(kube::kServices, spec.ns,
                                 ServiceManifest(spec.ns, spec.endpoint, spec.endpoint_uid));
  if (created.ok() || absl::IsAlreadyExists(created.status())) return absl::OkStatus();
  return created.status();
}

absl::Status PodComputeRuntime::Start(const control::ComputeSpec& spec) {
  if (auto pod = pods_(spec.ns, PodName(spec.endpoint))) {
    // Running, starting or still terminating: Observe says which; a failed one is deleted by
    // Stop() first (the reconciler stops a failed compute before it starts a new one).
    return absl::OkStatus();
  }
  if (absl::Status s = EnsureSecret(spec); !s.ok()) return s;
  if (absl::Status s = EnsureService(spec); !s.ok()) return s;
  if (absl::Status s = EnsureTokenSecret(spec); !s.ok()) return s;
  auto created = client_->Create(kube::kPods, spec.ns, PodManifest(spec));
  if (created.ok()) {
    LogInfo("Created compute pod", {{"namespace", spec.ns},
                                    {"endpoint", spec.endpoint},
                                    {"pod", PodName(spec.endpoint)},
                                    {"timeline", spec.timeline_id}});
    return absl::OkStatus();
  }
  if (absl::IsAlreadyExists(created.status())) return absl::OkStatus();  // cache lags
  return created.status();
}

absl::Status PodComputeRuntime::Stop(const std::string& ns, const std::string& endpoint) {
  auto pod = pods_(ns, PodName(endpoint));
  if (pod && !kube::MetaString(*pod, "deletionTimestamp").empty()) return absl::OkStatus();
  absl::Status s = client_->Delete(kube::kPods, ns, PodName(endpoint));
  if (s.ok()) {
    LogInfo("Deleted compute pod", {{"namespace", ns}, {"endpoint", endpoint}});
  }
  return absl::IsNotFound(s) ? absl::OkStatus() : s;
}

absl::StatusOr<bool> PodComputeRuntime::Checkpoint(const std::string& ns,
                                                   const std::string& endpoint,
                                                   absl::Duration timeout) {
  std::optional<value> pod = pods_(ns, PodName(endpoint));
  if (!pod || !PodServing(*pod)) {
    return absl::FailedPreconditionError(
        absl::StrCat("endpoint ", endpoint, " has no serving compute pod"));
  }
  const std::string ip = control::JsonString(pod->at("status"), "podIP");
  absl::StatusOr<std::string> body = post_(ip, options_.status_port, "/checkpoint", timeout);
  if (!body.ok()) return body.status();
  try {
    return control::JsonBool(value::parse(*body), "checkpointed");
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat("the agent's /checkpoint answer: ", e.what()));
  }
}

ComputeObservation PodComputeRuntime::Observe(const std::string& ns, const std::string& endpoint) {
  ComputeObservation obs;
  std::optional<value> pod = pods_(ns, PodName(endpoint));
  const std::string key = absl::StrCat(ns, "/", endpoint);
  if (!pod) {
    std::lock_guard<std::mutex> l(mu_);
    activity_.erase(key);
    return obs;  // kAbsent
  }
  if (!kube::MetaString(*pod, "deletionTimestamp").empty()) {
    obs.state = ComputeState::kStopping;
    return obs;
  }
  const value status = pod->has_field("status") ? pod->at("status") : value::object();
  const std::string phase = control::JsonString(status, "phase");
  if (phase == "Failed" || phase == "Succeeded") {
    obs.state = ComputeState::kFailed;
    obs.message = TerminatedMessage(*pod);
    return obs;
  }
  if (std::string stuck = StuckReason(*pod); !stuck.empty()) {
    obs.state = ComputeState::kFailed;
    obs.message = absl::StrCat("the compute pod cannot start: ", stuck);
    return obs;
  }
  const std::string ip = control::JsonString(status, "podIP");
  if (phase != "Running" || !PodReady(*pod) || ip.empty()) {
    obs.state = ComputeState::kStarting;
    return obs;
  }
  obs.state = ComputeState::kRunning;
  obs.host = ip;
  obs.port = options_.pg_port;

  // Activity from the agent, at most every status_poll_interval (and at once for a new pod).
  const std::string uid = kube::UidOf(*pod);
  const absl::Time now = absl::Now();
  Activity cached;
  {
    std::lock_guard<std::mutex> l(mu_);
    cached = activity_[key];
  }
  if (cached.pod_uid != uid || now - cached.polled >= options_.status_poll_interval) {
    auto body = fetch_(ip, options_.status_port, "/status");
    Activity fresh;
    fresh.pod_uid = uid;
    fresh.polled = now;
    if (body.ok()) {
      try {
        value v = value::parse(*body);
        fresh.busy = control::JsonBool(v, "busy");
        if (auto t = control::ParseRfc3339(control::JsonString(v, "last_active")); t.ok()) {
          fresh.last_active = *t;
        }
      } catch (const std::exception&) {
        fresh.busy = true;  // unreadable: never suspend on a guess
      }
    } else {
      // Not answering is not idleness: keep the last reading (a new pod counts as busy).
      fresh.busy = cached.pod_uid == uid ? cached.busy : true;
      fresh.last_active = cached.pod_uid == uid ? cached.last_active : std::nullopt;
    }
    std::lock_guard<std::mutex> l(mu_);
    activity_[key] = fresh;
    cached = fresh;
  }
  obs.busy = cached.busy;
  obs.last_active = cached.last_active;
  return obs;
}

}  // namespace pgbranch::k8s
