#!/usr/bin/env python3
"""Runs the Argo CD health checks under deploy/argocd/health against their test cases.

Layout and test format are Argo CD's own (resource_customizations/<group>/<Kind>/): health.lua,
health_test.yaml (tests: [{inputPath, healthStatus: {status, message}}]) and testdata/*.yaml.
Each object is turned into a Lua table literal and the script runs in lua5.1 through
argocd_vm.lua, which sets it up as Argo CD does. Checks, one PASS/FAIL line each:
  - every case returns exactly the expected status and message;
  - every testdata file is used by a case, and holds an object of the directory's kind;
  - every line of health.lua that carries code ran in at least one case (luac5.1 -l lists them).
Exits 1 when a check fails, 77 when lua5.1 or luac5.1 is missing.
With --gopher BINARY, the cases run in gopher-lua, Argo CD's own interpreter, through
tests/argocd/argocd-lua (no line coverage there). With --eval FILE..., prints the health of the objects in the files instead (like
`kubectl get branch,endpoint.pgbranch.io -o yaml | run_health_tests.py --eval -`).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml


class NoTimestampLoader(yaml.SafeLoader):
    """YAML as Kubernetes reads it: timestamps stay strings (sigs.k8s.io/yaml does not parse them)."""


NoTimestampLoader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def lua_literal(value):
    """A Lua 5.1 expression for a YAML value (as Argo CD's decodeValue builds it)."""
    if value is None:
        return "nil"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        out = []
        for ch in value.encode("utf-8"):
            c = chr(ch)
            if c in '"\\':
                out.append("\\" + c)
            elif 32 <= ch < 127:
                out.append(c)
            else:
                out.append("\\%d" % ch)
        return '"' + "".join(out) + '"'
    if isinstance(value, list):
        return "{" + ", ".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, dict):
        return "{" + ", ".join("[%s] = %s" % (lua_literal(str(k)), lua_literal(v))
                              for k, v in value.items() if v is not None) + "}"
    raise ValueError("cannot express %r in Lua" % (value,))


def code_lines(luac, script):
    """Lines holding instructions that a line hook can see run.

    Left out: each function's implicit final RETURN, a JMP that the instruction before it consumes
    (Lua 5.1's tests and TFORLOOP jump on its behalf; it is never executed itself), and a JMP
    after a RETURN (dead code the compiler emits at the end of an if branch).
    """
    listing = subprocess.run([luac, "-p", "-l", script], check=True, capture_output=True,
                             text=True).stdout
    consumers = {"EQ", "LT", "LE", "TEST", "TESTSET", "TFORLOOP", "RETURN"}
    lines = set()
    for function in re.split(r"\n(?=(?:main|function) <)", listing):
        instructions = re.findall(r"^\s+\d+\s+\[(\d+)\]\s+(\w+)", function, re.M)
        previous = None
        for line, op in instructions[:-1]:
            if not (op == "JMP" and previous in consumers):
                lines.add(int(line))
            previous = op
    return lines


def evaluate(lua, vm, script, obj, literal, coverage, gopher=None):
    """Runs health.lua on obj: (status, message), or raises RuntimeError with the VM's error."""
    if gopher:
        with open(literal, "w") as f:
            json.dump(obj, f)
        run = subprocess.run([gopher, script, literal], capture_output=True)
    else:
        with open(literal, "w") as f:
            f.write("return " + lua_literal(obj) + "\n")
        run = subprocess.run([lua, vm, script, literal, coverage], capture_output=True)
    if run.returncode != 0:
        raise RuntimeError(run.stderr.decode(errors="replace"))
    status, length, message = run.stdout.decode().split("\n", 2)
    if int(length) != len(message.encode()):
        raise RuntimeError("garbled output: %r" % run.stdout)
    return status, message


def eval_objects(args, lua, vm, paths):
    """--eval: prints "<kind>/<name>: <status>: <message>" for each object (a file, - for stdin)."""
    with tempfile.TemporaryDirectory(prefix="argocd-health.") as tmp:
        for path in paths:
            stream = sys.stdin if path == "-" else open(path)
            for obj in yaml.load_all(stream, Loader=NoTimestampLoader):
                if not obj:
                    continue
                items = obj["items"] if obj.get("kind", "").endswith("List") else [obj]
                for item in items:
                    group = item["apiVersion"].split("/")[0]
                    script = os.path.join(args.health_dir, group, item["kind"], "health.lua")
                    status, message = evaluate(lua, vm, script, item,
                                               os.path.join(tmp, "obj.lua"),
                                               os.path.join(tmp, "coverage"))
                    print("%s/%s: %s: %s" % (item["kind"], item["metadata"]["name"], status,
                                             message))
    return 0


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(os.path.dirname(here))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--health-dir", default=os.path.join(root, "deploy/argocd/health"))
    ap.add_argument("--lua", default="lua5.1")
    ap.add_argument("--luac", default="luac5.1")
    ap.add_argument("--gopher", metavar="BINARY",
                    help="run the cases with this argocd-lua binary (gopher-lua) instead of lua5.1")
    ap.add_argument("--eval", nargs="+", metavar="OBJECT_YAML",
                    help="only print the health of these objects (- reads stdin)")
    args = ap.parse_args()
    lua, luac = shutil.which(args.lua), shutil.which(args.luac)
    if not args.gopher and (not lua or not luac):
        print("SKIP  %s/%s not found (scripts/install-deps.sh installs lua5.1)" % (args.lua, args.luac))
        return 77
    vm = os.path.join(here, "argocd_vm.lua")
    if args.eval:
        return eval_objects(args, lua, vm, args.eval)

    passed, failed = 0, []

    def check(name, ok, detail=""):
        nonlocal passed
        if ok:
            passed += 1
            print("PASS  " + name)
        else:
            failed.append(name)
            print("FAIL  " + name)
            for line in detail.rstrip().splitlines()[:20]:
                print("      | " + line)

    scripts = []
    for dirpath, _, files in os.walk(args.health_dir):
        if "health.lua" in files:
            scripts.append(dirpath)
    check("health checks found under " + args.health_dir, bool(scripts))
    with tempfile.TemporaryDirectory(prefix="argocd-health.") as tmp:
        for kind_dir in sorted(scripts):
            rel = os.path.relpath(kind_dir, args.health_dir)
            group, kind = os.path.split(rel)
            script = os.path.join(kind_dir, "health.lua")
            with open(os.path.join(kind_dir, "health_test.yaml")) as f:
                tests = yaml.load(f, Loader=NoTimestampLoader)["tests"]
            coverage = os.path.join(tmp, rel.replace("/", "_") + ".coverage")
            open(coverage, "w").close()
            used = set()
            for i, test in enumerate(tests):
                path = test["inputPath"]
                used.add(os.path.normpath(path))
                want = test["healthStatus"]
                name = "%s %s (%s)" % (rel, path, want.get("status"))
                with open(os.path.join(kind_dir, path)) as f:
                    obj = yaml.load(f, Loader=NoTimestampLoader)
                if obj.get("apiVersion", "").split("/")[0] != group or obj.get("kind") != kind:
                    check(name, False, "the object is a %s %s, not a %s/%s" %
                          (obj.get("apiVersion"), obj.get("kind"), group, kind))
                    continue
                try:
                    status, message = evaluate(lua, vm, script, obj,
                                               os.path.join(tmp, "obj%d.lua" % i), coverage,
                                               args.gopher)
                except RuntimeError as e:
                    check(name, False, str(e))
                    continue
                got = {"status": status, "message": message}
                expected = {"status": want.get("status"), "message": want.get("message", "")}
                check(name, got == expected,
                      "want %s: %s\ngot  %s: %s" % (expected["status"], expected["message"],
                                                    got["status"], got["message"]))
            testdata = os.path.join(kind_dir, "testdata")
            orphans = sorted(os.path.join("testdata", f) for f in os.listdir(testdata)
                             if os.path.normpath(os.path.join("testdata", f)) not in used)
            check("%s: every testdata file has a case" % rel, not orphans, "\n".join(orphans))
            if args.gopher:
                continue  # gopher-lua reports no lines; lua5.1 checks the coverage
            with open(coverage) as f:
                ran = {int(line) for line in f if line.strip()}
            missing = sorted(code_lines(luac, script) - ran)
            with open(script) as f:
                source = f.read().splitlines()
            check("%s: every line of health.lua runs in some case" % rel, not missing,
                  "\n".join("line %d never ran: %s" % (n, source[n - 1].strip()) for n in missing))
    print("\nArgo CD health checks: %d passed, %d failed" % (passed, len(failed)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
