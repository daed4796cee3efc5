#!/usr/bin/env python3
"""Renders the Application an ApplicationSet's template makes for one pull request.

  render_applicationset.py APPLICATIONSET_YAML NUMBER HEAD_SHA BRANCH [NAME=VALUE...]

Does what Argo CD's ApplicationSet controller does with a goTemplate template for the
pullRequest generator's parameters (number, branch, head_sha, ... and .values.* from the
generator's `values`), for the subset of Go templates the file uses: `{{.name}}` and
`{{.values.name}}` fields. Anything else in {{ }} is an error, as is a missing key
(goTemplateOptions: missingkey=error). NAME=VALUE replaces a generator value (the REPLACE-ME
placeholders). Prints the Application as YAML.
"""
import re
import sys

import yaml


def main():
    path, number, head_sha, branch = sys.argv[1:5]
    appset = yaml.safe_load(open(path))
    spec = appset["spec"]
    assert spec.get("goTemplate") is True, "the template is written for goTemplate: true"
    generator = spec["generators"][0]["pullRequest"]
    values = {k: str(v) for k, v in (generator.get("values") or {}).items()}
    for override in sys.argv[5:]:
        name, _, value = override.partition("=")
        values[name] = value
    params = {
        "number": number,
        "branch": branch,
        "branch_slug": re.sub(r"[^a-z0-9-]+", "-", branch.lower()).strip("-")[:50],
        "target_branch": "main",
        "head_sha": head_sha,
        "head_short_sha": head_sha[:8],
        "head_short_sha_7": head_sha[:7],
        "title": "A pull request",
        "author": "octocat",
        "values": values,
    }

    def field(match):
        expr = match.group(1).strip()
        m = re.fullmatch(r"\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?", expr)
        if not m:
            raise SystemExit("render_applicationset: cannot render {{%s}} (only .name and "
                             ".values.name)" % expr)
        value = params.get(m.group(1))
        if m.group(2) is not None:
            value = value.get(m.group(2)) if isinstance(value, dict) else None
        if value is None or isinstance(value, dict):
            raise SystemExit("render_applicationset: map has no entry for key %r" % expr)
        return value

    def render(node):
        if isinstance(node, dict):
            return {render(k): render(v) for k, v in node.items()}
        if isinstance(node, list):
            return [render(v) for v in node]
        if isinstance(node, str):
            return re.sub(r"\{\{(.*?)\}\}", field, node)
        return node

    template = render(spec["template"])
    app = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": dict(template["metadata"], namespace=appset["metadata"]["namespace"]),
        "spec": template["spec"],
    }
    yaml.safe_dump(app, sys.stdout, sort_keys=False)


if __name__ == "__main__":
    main()
