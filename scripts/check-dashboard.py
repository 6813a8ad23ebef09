#!/usr/bin/env python3
"""Checks the Grafana dashboard deploy/grafana/k8s-upgrade.json.

- it validates against a JSON schema of what Grafana needs to import it (uid,
  title, integer schemaVersion, panels with id, type, title, gridPos and
  targets, the `datasource` template variable); every panel and target reads
  the data source `${datasource}`; panel ids are unique, each panel fits the
  24 columns and no two panels overlap;
- every query parses: all `expr`s go into one Prometheus rules file as
  recording rules, checked by `promtool check rules`;
- every metric a query names is one the product exposes: one found in a
  string literal of Sources/**/*.swift (`k8s_upgrade_*`, `k8s_version_check_*`).

Broken copies of the dashboard (a query that does not parse, a metric the
product does not expose, a panel past column 24, a fixed data source, a
duplicate id) are fed to the same checks first, so the check is seen to fail
when it should.
"""
import copy
import json
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import jsonschema
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "k8s-upgrade.json"
SOURCES = ROOT / "Sources"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
PRODUCT_METRIC = re.compile(r"(?<![A-Za-z0-9_:])(?:k8s_upgrade|k8s_version_check)_[a-z0-9_]*[a-z0-9]")

# What Grafana needs to import the dashboard, and this project's conventions.
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["title", "uid", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "schemaVersion": {"type": "integer", "minimum": 36},
        "version": {"type": "integer"},
        "id": {"type": ["integer", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "refresh": {"type": ["string", "boolean"]},
        "editable": {"type": "boolean"},
        "time": {
            "type": "object", "required": ["from", "to"],
            "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
        },
        "templating": {
            "type": "object", "required": ["list"],
            "properties": {"list": {
                "type": "array",
                "items": {"type": "object", "required": ["name", "type"],
                          "properties": {"name": {"type": "string"}, "type": {"type": "string"}}},
                "contains": {
                    "type": "object", "required": ["name", "type", "query"],
                    "properties": {"name": {"const": "datasource"}, "type": {"const": "datasource"},
                                   "query": {"const": "prometheus"}},
                },
            }},
        },
        "panels": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/panel"}},
    },
    "$defs": {
        "gridPos": {
            "type": "object", "required": ["h", "w", "x", "y"],
            "properties": {
                "h": {"type": "integer", "minimum": 1},
                "w": {"type": "integer", "minimum": 1, "maximum": 24},
                "x": {"type": "integer", "minimum": 0, "maximum": 23},
                "y": {"type": "integer", "minimum": 0},
            },
        },
        "datasource": {"const": DATASOURCE},
        "target": {
            "type": "object", "required": ["expr", "refId"],
            "properties": {
                "expr": {"type": "string", "minLength": 1},
                "refId": {"type": "string", "pattern": "^[A-Z]+$"},
                "datasource": {"$ref": "#/$defs/datasource"},
                "legendFormat": {"type": "string"},
                "instant": {"type": "boolean"},
                "range": {"type": "boolean"},
                "format": {"enum": ["time_series", "table", "heatmap"]},
            },
        },
        "panel": {
            "type": "object", "required": ["id", "type", "title", "gridPos"],
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "type": {"type": "string", "minLength": 1},
                "title": {"type": "string", "minLength": 1},
                "description": {"type": "string"},
                "gridPos": {"$ref": "#/$defs/gridPos"},
                "datasource": {"$ref": "#/$defs/datasource"},
                "targets": {"type": "array", "items": {"$ref": "#/$defs/target"}},
                "panels": {"type": "array", "items": {"$ref": "#/$defs/panel"}},
            },
            "if": {"properties": {"type": {"const": "row"}}},
            "then": {"properties": {"targets": {"maxItems": 0}}},
            "else": {
                "required": ["datasource", "targets", "description"],
                "properties": {"targets": {"minItems": 1}, "description": {"minLength": 1},
                               "panels": {"maxItems": 0}},
            },
        },
    },
}
jsonschema.Draft202012Validator.check_schema(SCHEMA)
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# Grafana's built-in variables a query may use, and a value promtool accepts.
GRAFANA_VARIABLES = {
    "__rate_interval": "5m", "__interval": "1m", "__range": "1d",
    "__interval_ms": "60000", "__range_s": "86400", "__range_ms": "86400000",
}
# PromQL words that are not metric names where they stand outside {...}.
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
            "and", "or", "unless", "atan2", "inf", "nan"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
                "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
LABEL_LISTS = {"by", "without", "on", "ignoring", "group_left", "group_right"}


# ---------------------------------------------------------------- the known metrics

def swift_string_literals(source):
    """The text of every string literal in Swift source, interpolations left
    out; comments are skipped."""
    literals = []
    opening = re.compile(r'(#*)("""|")')
    length = len(source)

    def code(i, in_interpolation):
        depth = 0
        while i < length:
            if source.startswith("//", i):
                end = source.find("\n", i)
                i = length if end < 0 else end
                continue
            if source.startswith("/*", i):
                nesting, i = 1, i + 2
                while i < length and nesting:
                    if source.startswith("/*", i):
                        nesting, i = nesting + 1, i + 2
                    elif source.startswith("*/", i):
                        nesting, i = nesting - 1, i + 2
                    else:
                        i += 1
                continue
            match = opening.match(source, i) if source[i] in '#"' else None
            if match:
                i = string(match.end(), len(match.group(1)), match.group(2))
                continue
            if in_interpolation:
                if source[i] == "(":
                    depth += 1
                elif source[i] == ")":
                    if depth == 0:
                        return i + 1
                    depth -= 1
            i += 1
        return i

    def string(i, hashes, quote):
        close, escape, text = quote + "#" * hashes, "\\" + "#" * hashes, []
        while i < length:
            if source.startswith(close, i):
                literals.append("".join(text))
                return i + len(close)
            if source.startswith(escape, i):
                after = i + len(escape)
                if after < length and source[after] == "(":
                    i = code(after + 1, True)
                    text.append("\0")
                    continue
                text.append(source[i:after + 1])
                i = after + 1
                continue
            if quote == '"' and source[i] == "\n":  # not a literal after all
                literals.append("".join(text))
                return i
            text.append(source[i])
            i += 1
        literals.append("".join(text))
        return i

    code(0, False)
    return literals


def known_metrics():
    """Metric names the product's Swift sources spell out in string literals,
    with the series names a histogram or summary adds."""
    names = set()
    for path in sorted(SOURCES.rglob("*.swift")):
        for literal in swift_string_literals(path.read_text()):
            names.update(PRODUCT_METRIC.findall(literal))
            for name, kind in re.findall(r"# TYPE ([A-Za-z_:][A-Za-z0-9_:]*) (histogram|summary)\b", literal):
                names.update(name + suffix for suffix in ("_sum", "_count") + (("_bucket",) if kind == "histogram" else ()))
    return names


# ---------------------------------------------------------------- PromQL

TOKEN = re.compile(r"""
    (?P<space>\s+) | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<number>(?:\d|\.\d)[0-9A-Za-z_.]*)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<punct>.)""", re.VERBOSE | re.DOTALL)


def metric_names(expr):
    """(metric names, label names used as __name__) a PromQL expression
    selects: identifiers outside {...} and [...] that are not functions,
    keywords, aggregations or label lists; strings, numbers and durations
    are not identifiers."""
    tokens = [(m.lastgroup, m.group()) for m in TOKEN.finditer(expr) if m.lastgroup not in ("space", "comment")]
    names, name_matchers = [], False
    braces = brackets = 0
    skip_list = False  # inside by (...) and the like
    for index, (kind, text) in enumerate(tokens):
        following = tokens[index + 1] if index + 1 < len(tokens) else (None, None)
        if kind == "punct":
            if text == "{":
                braces += 1
            elif text == "}":
                braces -= 1
            elif text == "[":
                brackets += 1
            elif text == "]":
                brackets -= 1
            elif text == ")" and skip_list:
                skip_list = False
            continue
        if braces or brackets:
            if kind == "ident" and text == "__name__" and braces:
                name_matchers = True
            continue
        if kind != "ident" or skip_list or tokens[index - 1 if index else 0] == ("punct", "$"):
            continue
        if text in LABEL_LISTS:
            skip_list = following == ("punct", "(")
            continue
        if following == ("punct", "(") or text in KEYWORDS:
            continue
        if text in AGGREGATIONS and following[1] in ("by", "without"):
            continue
        names.append(text)
    return names, name_matchers


def substitute_variables(expr):
    """The query with Grafana's built-in variables replaced by values
    promtool accepts, and the names of any other variables."""
    unknown = []

    def replace(match):
        name = match.group(1) or match.group(2)
        if name in GRAFANA_VARIABLES:
            return GRAFANA_VARIABLES[name]
        unknown.append(name)
        return match.group()

    # Only outside string literals: label_replace's "$1" is PromQL's own.
    pieces = re.split(r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)""", expr)
    for i in range(0, len(pieces), 2):
        pieces[i] = re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", replace, pieces[i])
    return "".join(pieces), unknown


# ---------------------------------------------------------------- the checks

def all_panels(dashboard):
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", []) if isinstance(panel, dict) else []


def check(dashboard, known):
    """(problems, facts) of one dashboard."""
    problems = [f"schema: {error.message} at {'/'.join(map(str, error.absolute_path)) or '(top)'}"
                for error in sorted(VALIDATOR.iter_errors(dashboard), key=lambda e: list(map(str, e.path)))]
    if problems:
        return problems, None
    panels = list(all_panels(dashboard))

    seen = {}
    for panel in panels:
        if panel["id"] in seen:
            problems.append(f"panel {panel['title']!r}: id {panel['id']} is also {seen[panel['id']]!r}'s")
        seen.setdefault(panel["id"], panel["title"])
    for panel in panels:
        grid = panel["gridPos"]
        if grid["x"] + grid["w"] > 24:
            problems.append(f"panel {panel['title']!r}: x {grid['x']} + w {grid['w']} is past column 24")
    top_level = dashboard["panels"]
    for i, a in enumerate(top_level):
        for b in top_level[i + 1:]:
            ga, gb = a["gridPos"], b["gridPos"]
            if (ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"]
                    and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]):
                problems.append(f"panels {a['title']!r} and {b['title']!r} overlap")

    queries = []  # (panel title, refId, expr for promtool, expr as written)
    for panel in panels:
        refs = [target["refId"] for target in panel.get("targets", [])]
        if len(refs) != len(set(refs)):
            problems.append(f"panel {panel['title']!r}: refIds repeat: {refs}")
        for target in panel.get("targets", []):
            expr, unknown = substitute_variables(target["expr"])
            if unknown:
                problems.append(f"panel {panel['title']!r}, query {target['refId']}: "
                                f"undefined variables {', '.join('$' + u for u in unknown)}")
            queries.append((panel["title"], target["refId"], expr, target["expr"]))

    # Every query parses: promtool checks them as recording rules.
    with tempfile.TemporaryDirectory() as folder:
        rules = pathlib.Path(folder) / "dashboard.rules.yml"
        rules.write_text(yaml.safe_dump({"groups": [{"name": "dashboard-check", "rules": [
            {"record": f"dashboard:check:{n}", "expr": expr} for n, (_, _, expr, _) in enumerate(queries)]}]}))
        result = subprocess.run(["promtool", "check", "rules", str(rules)], capture_output=True, text=True)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        named = re.findall(r'"dashboard:check:(\d+)": (.*)', output)
        for n, complaint in named:
            title, ref, _, written = queries[int(n)]
            problems.append(f"panel {title!r}, query {ref}: promtool: {complaint} in {written!r}")
        if not named:
            problems.append(f"promtool check rules failed:\n{output}")

    # Every metric a query names is one the product exposes.
    used = set()
    for title, ref, _, written in queries:
        names, by_name = metric_names(written)
        if by_name:
            problems.append(f"panel {title!r}, query {ref}: selects by __name__; name the metric instead")
        if not names and not by_name:
            problems.append(f"panel {title!r}, query {ref}: reads no metric: {written!r}")
        for name in names:
            if name not in known:
                problems.append(f"panel {title!r}, query {ref}: {name} is not a metric the product exposes")
            used.add(name)
    facts = {"panels": sum(1 for p in panels if p["type"] != "row"), "queries": len(queries), "used": used}
    return problems, facts


def main():
    if shutil.which("promtool") is None:
        sys.exit("promtool is not installed (Debian package prometheus; scripts/setup.sh installs it)")
    known = known_metrics()
    if not known:
        sys.exit("no k8s_upgrade_* / k8s_version_check_* metric found in Sources/: the scan is broken")
    dashboard = json.loads(DASHBOARD.read_text())

    # The checks must fail on broken copies first.
    def first_query(copy_):
        panel = next(p for p in all_panels(copy_) if p.get("targets"))
        return panel, panel["targets"][0]

    def syntax_error(d):
        panel, target = first_query(d)
        target["expr"] = "sum(k8s_upgrade_in_flight"
        return [panel["title"], "promtool"]

    def unknown_metric(d):
        panel, target = first_query(d)
        target["expr"] = "max(k8s_upgrade_not_exposed_anywhere) or vector(0)"
        return [panel["title"], "k8s_upgrade_not_exposed_anywhere is not a metric"]

    def past_column_24(d):
        panel = next(p for p in all_panels(d) if p["type"] != "row")
        panel["gridPos"]["x"], panel["gridPos"]["w"] = 20, 8
        return [panel["title"], "past column 24"]

    def fixed_datasource(d):
        panel = next(p for p in all_panels(d) if p["type"] != "row")
        panel["datasource"] = {"type": "prometheus", "uid": "prometheus"}
        return ["schema", "datasource"]

    def duplicate_id(d):
        panels = [p for p in all_panels(d) if p["type"] != "row"]
        panels[1]["id"] = panels[0]["id"]
        return [panels[1]["title"], "id"]

    for mutate in (syntax_error, unknown_metric, past_column_24, fixed_datasource, duplicate_id):
        broken = copy.deepcopy(dashboard)
        expected = mutate(broken)
        found, _ = check(broken, known)
        if not any(all(word in problem for word in expected) for problem in found):
            sys.exit(f"check-dashboard: a dashboard broken by {mutate.__name__} was not caught "
                     f"(wanted a problem naming {expected}; got {found}): the check cannot be trusted")

    problems, facts = check(dashboard, known)
    if problems:
        print(f"{DASHBOARD.relative_to(ROOT)}:", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    unused = sorted(known - facts["used"])
    print(f"dashboard: {facts['panels']} panels, {facts['queries']} queries parsed by promtool, "
          f"metrics known: {', '.join(sorted(facts['used']))}"
          + (f"; not on the dashboard: {', '.join(unused)}" if unused else ""))


if __name__ == "__main__":
    main()
