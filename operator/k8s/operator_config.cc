#include "operator/k8s/operator_config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace pgbranch::k8s {
namespace {

using Setter = std::function<absl::Status(const std::string& key, const std::string& value)>;

absl::Status SetInt(int* out, const std::string& key, const std::string& v, int min, int max) {
  int n = 0;
  if (!absl::SimpleAtoi(v, &n) || n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": '", v, "' is not a number from ", min, " to ", max));
  }
  *out = n;
  return absl::OkStatus();
}

absl::Status SetBool(bool* out, const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes") {
    *out = true;
  } else if (v == "false" || v == "0" || v == "no") {
    *out = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(key, ": '", v, "' is not true or false"));
  }
  return absl::OkStatus();
}

std::map<std::string, Setter> Setters(OperatorConfig* c) {
  auto str = [](std::string* out) {
    return [out](const std::string&, const std::string& v) {
      *out = v;
      return absl::OkStatus();
    };
  };
  std::map<std::string, Setter> m;
  m["kubeconfig"] = str(&c->kubeconfig);
  m["context"] = str(&c->context);
  m["namespaces"] = [c](const std::string&, const std::string& v) {
    c->namespaces.clear();
    for (absl::string_view ns : absl::StrSplit(v, ',')) {
      c->namespaces.emplace_back(absl::StripAsciiWhitespace(ns));
    }
    if (c->namespaces.empty()) c->namespaces.push_back("");
    return absl::OkStatus();
  };
  m["pageserver"] = str(&c->pageserver);
  m["pageserver_token_file"] = str(&c->pageserver_token_file);
  m["pageserver_signing_key_file"] = str(&c->pageserver_signing_key_file);
  m["compute_pageserver"] = str(&c->compute.pageserver);
  m["compute_image"] = str(&c->compute.image);
  m["image_pull_policy"] = [c](const std::string& key, const std::string& v) {
    if (v != "Always" && v != "IfNotPresent" && v != "Never") {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": '", v, "' is not Always, IfNotPresent or Never"));
    }
    c->compute.image_pull_policy = v;
    return absl::OkStatus();
  };
  m["fuse_device_resource"] = str(&c->compute.fuse_device_resource);
  m["compute_cpu"] = str(&c->compute.default_cpu);
  m["compute_memory"] = str(&c->compute.default_memory);
  m["proxy_host"] = str(&c->compute.proxy_host);
  m["proxy_service"] = str(&c->compute.proxy_service);
  m["proxy_port"] = [c](const std::string& k, const std::string& v) {
    return SetInt(&c->compute.proxy_port, k, v, 1, 65535);
  };
  m["listen"] = str(&c->listen);
  m["leader_elect"] = [c](const std::string& k, const std::string& v) {
    return SetBool(&c->leader_elect, k, v);
  };
  m["lease_namespace"] = str(&c->lease_namespace);
  m["lease_name"] = str(&c->lease_name);
  m["identity"] = str(&c->identity);
  m["resync_seconds"] = [c](const std::string& k, const std::string& v) {
    return SetInt(&c->resync_seconds, k, v, 10, 86400);
  };
  m["log_level"] = [c](const std::string& k, const std::string& v) {
    if (v != "debug" && v != "info" && v != "warning" && v != "error") {
      return absl::InvalidArgumentError(
          absl::StrCat(k, ": '", v, "' is not debug, info, warning or error"));
    }
    c->log_level = v;
    return absl::OkStatus();
  };
  return m;
}

absl::Status ApplyYaml(const std::string& path, OperatorConfig* c) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": ", e.what()));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError(absl::StrCat("config ", path, ": expected a YAML mapping"));
  }
  auto setters = Setters(c);
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    auto it = setters.find(key);
    if (it == setters.end()) {
      return absl::InvalidArgumentError(absl::StrCat("config ", path, ": unknown key '", key,
                                                     "' (see pgbranch-operator --help)"));
    }
    std::string value;
    if (kv.second.IsSequence()) {
      std::vector<std::string> items;
      for (const auto& item : kv.second) items.push_back(item.as<std::string>());
      value = absl::StrJoin(items, ",");
      if (items.empty()) value = "";
    } else if (kv.second.IsScalar()) {
      value = kv.second.as<std::string>();
    } else if (!kv.second.IsNull()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config ", path, ": ", key, " must be a value or a list"));
    }
    if (absl::Status s = it->second(key, value); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("config ", path, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string OperatorUsage() {
  return R"(usage: pgbranch-operator [--config FILE] [flags]

Reconciles pgbranch.io Branch and Endpoint resources: timelines at the pageserver, compute pods
that scale to zero, credentials Secrets. Flags override the YAML file; each flag is the YAML
key in kebab-case.

  --kubeconfig FILE          default: $KUBECONFIG, in-cluster ServiceAccount, ~/.kube/config
  --context NAME             kubeconfig context (default: current-context)
  --namespaces A,B           namespaces to watch (default: default; "" = all namespaces)
  --pageserver HOST:PORT     the pageserver's gRPC address (default 127.0.0.1:6400)
  --pageserver-token-file F  admin token for the pageserver
  --pageserver-signing-key-file F
                             the pageserver's token signing key: the operator mints its own
                             admin token (unless --pageserver-token-file is given) and a
                             tenant-scoped token per compute pod, in the Secret
                             <endpoint>-pageserver-token
  --compute-pageserver H:P   the pageserver as compute pods reach it (default: --pageserver)
  --compute-image IMAGE      compute pod image (default pgbranch/compute:dev)
  --image-pull-policy P      Always | IfNotPresent | Never (default IfNotPresent)
  --fuse-device-resource R   extended resource handing out /dev/fuse ("" = privileged pods)
  --compute-cpu Q            default CPU request of compute pods (e.g. 500m)
  --compute-memory Q         default memory request and limit (e.g. 1Gi)
  --proxy-host HOST          host in connection strings ("" = <endpoint>.<namespace>.svc, an
                             ExternalName Service per endpoint pointing at --proxy-service)
  --proxy-service DNS        the proxy's Service DNS name
                             (default pgbranch-proxy.pgbranch-system.svc.cluster.local)
  --proxy-port PORT          port in connection strings (default 5432)
  --listen ADDR              /healthz, /readyz and /metrics (default 0.0.0.0:8080)
  --leader-elect BOOL        leader election on a Lease (default true)
  --lease-namespace NS       default: default
  --lease-name NAME          default: pgbranch-operator
  --identity ID              this replica's name in the Lease (default: hostname-pid)
  --resync-seconds N         full resync period (default 300)
  --log-level LEVEL          debug | info | warning | error
)";
}

absl::StatusOr<OperatorConfig> ParseOperatorConfig(const std::vector<std::string>& args) {
  OperatorConfig c;
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_file;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string a = args[i];
    if (a == "--help" || a == "-h") return absl::NotFoundError(OperatorUsage());
    if (a.rfind("--", 0) != 0) {
      return absl::InvalidArgumentError(absl::StrCat("unexpected argument '", a, "'"));
    }
    std::string name = a.substr(2);
    std::string value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("--", name, " needs a value"));
    }
    if (name == "config") {
      config_file = value;
    } else {
      flags.emplace_back(absl::StrReplaceAll(name, {{"-", "_"}}), value);
    }
  }
  if (!config_file.empty()) {
    if (absl::Status s = ApplyYaml(config_file, &c); !s.ok()) return s;
  }
  auto setters = Setters(&c);
  for (const auto& [key, value] : flags) {
    auto it = setters.find(key);
    if (it == setters.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown flag --", absl::StrReplaceAll(key, {{"_", "-"}}), " (see --help)"));
    }
    if (absl::Status s = it->second("--" + absl::StrReplaceAll(key, {{"_", "-"}}), value);
        !s.ok()) {
      return s;
    }
  }
  if (c.compute.pageserver.empty()) c.compute.pageserver = c.pageserver;
  if (c.identity.empty()) {
    char host[256] = {0};
    gethostname(host, sizeof(host) - 1);
    c.identity = absl::StrCat(host, "-", getpid());
  }
  return c;
}

}  // namespace pgbranch::k8s
