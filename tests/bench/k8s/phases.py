#!/usr/bin/env python3
"""Helper for scripts/bench-k8s.sh (python3 stdlib only).

  phases.py manifests KIND N FILE...   write N Branch (KIND=branch) or Endpoint (KIND=endpoint)
                                       documents, split round-robin over the FILEs
  phases.py record OUT TARGET CMD...   run CMD (kubectl get -w -o jsonpath printing "name phase"
                                       lines), append "SEEN name t" on the first sight of a name
                                       and "DONE name t" the first time its phase is TARGET
                                       (t = wall clock seconds, ms resolution, on arrival)
  phases.py stats OUT T0               latency from SEEN to DONE per name (only names seen after
                                       T0) -> "n p50 p90 p99 max" in seconds
  phases.py condlat JSONFILE           from `kubectl get -o json`: Ready condition
                                       lastTransitionTime - creationTimestamp (1 s granularity)
                                       -> "n p50 p99 max"
  phases.py metric METRICSFILE         from the operator's /metrics: mean reconcile duration per
                                       kind and reconcile counts -> "kind mean_ms count errors"
"""
import json
import signal
import subprocess
import sys
import time
from datetime import datetime


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return xs[k]


def manifests(kind, n, files):
    outs = [open(f, "w") for f in files]
    for i in range(1, n + 1):
        name = "b-%04d" % i
        if kind == "branch":
            doc = ("apiVersion: pgbranch.io/v1alpha1\nkind: Branch\nmetadata:\n  name: %s\n"
                   "spec:\n  parent: main\n  noExpiry: true\n" % name)
        else:
            doc = ("apiVersion: pgbranch.io/v1alpha1\nkind: Endpoint\nmetadata:\n  name: e-%04d\n"
                   "spec:\n  branch: %s\n  suspendTimeout: 5m\n" % (i, name))
        o = outs[(i - 1) % len(outs)]
        o.write("---\n" + doc)
    for o in outs:
        o.close()


def record(out, target, cmd):
    # The watcher owns its kubectl: SIGTERM here ends both (no orphaned watch).
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)

    def stop(*_):
        proc.kill()
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    seen, done = set(), set()
    with open(out, "a", buffering=1) as f:
        for line in proc.stdout:
            t = time.time()
            parts = line.split()
            if not parts:
                continue
            name = parts[0]
            phase = parts[1] if len(parts) > 1 else ""
            if name not in seen:
                seen.add(name)
                f.write("SEEN %s %.3f\n" % (name, t))
            if phase == target and name not in done:
                done.add(name)
                f.write("DONE %s %.3f\n" % (name, t))


def stats(out, t0):
    seen, done = {}, {}
    for line in open(out):
        w = line.split()
        if len(w) != 3:
            continue
        d = seen if w[0] == "SEEN" else done
        d.setdefault(w[1], float(w[2]))
    lat = [done[n] - seen[n] for n in done if n in seen and seen[n] >= t0]
    print("%d %.3f %.3f %.3f %.3f" % (len(lat), pct(lat, 50), pct(lat, 90), pct(lat, 99),
                                      max(lat) if lat else float("nan")))


def ts(s):
    # RFC 3339; the operator writes microseconds and "+00:00", the API server seconds and "Z"
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def condlat(path):
    items = json.load(open(path))["items"]
    lat = []
    for o in items:
        if o["metadata"]["name"] == "main":  # the root, created before the measurement
            continue
        for c in o.get("status", {}).get("conditions", []):
            if c.get("type") == "Ready" and c.get("status") == "True":
                lat.append(ts(c["lastTransitionTime"]) - ts(o["metadata"]["creationTimestamp"]))
    print("%d %.3f %.3f %.3f" % (len(lat), pct(lat, 50), pct(lat, 99),
                                 max(lat) if lat else float("nan")))


def metric(path):
    sums, counts, results = {}, {}, {}
    for line in open(path):
        if line.startswith("#"):
            continue
        try:
            key, val = line.rsplit(" ", 1)
            val = float(val)
        except ValueError:
            continue
        labels = {}
        if "{" in key:
            name, rest = key.split("{", 1)
            for kv in rest.rstrip("}").split(","):
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    labels[k] = v.strip('"')
        else:
            name = key
        kind = labels.get("kind", "")
        if name == "pgbranch_operator_reconcile_duration_seconds_sum":
            sums[kind] = val
        elif name == "pgbranch_operator_reconcile_duration_seconds_count":
            counts[kind] = val
        elif name == "pgbranch_operator_reconciles_total":
            results.setdefault(kind, {})[labels.get("result", "")] = val
    for kind in sorted(counts):
        c = counts[kind]
        mean = sums.get(kind, 0) / c * 1000 if c else float("nan")
        r = results.get(kind, {})
        print("%s %.2f %d %d" % (kind, mean, int(c), int(r.get("error", 0))))


def main():
    cmd = sys.argv[1]
    if cmd == "manifests":
        manifests(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    elif cmd == "record":
        record(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif cmd == "stats":
        stats(sys.argv[2], float(sys.argv[3]))
    elif cmd == "condlat":
        condlat(sys.argv[2])
    elif cmd == "metric":
        metric(sys.argv[2])
    else:
        sys.exit("unknown command " + cmd)


if __name__ == "__main__":
    main()
