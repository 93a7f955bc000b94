#!/usr/bin/env python3
"""Checks deploy/grafana/filesearch.json: it parses, has the panels of the original CloudWatch
dashboard, every metric a panel queries is one filesearch exports (a family registered with
Metrics::Describe in src/ or apps/) or a queue metric of the workers' contract, and, with promtool
present, every expression parses as PromQL (each becomes a recording rule for `promtool check rules`).
The alert rules (deploy/prometheus/filesearch-rules.yml) must also name only such metrics.

usage: dashboard_test.py SOURCE_DIR
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

# Emitted by `filesearch worker --queue ... --metrics-port N` (the queue helper's contract, issue 13);
# listed here until that code registers them itself.
QUEUE_METRICS = {
    "filesearch_queue_jobs_total",
    "filesearch_queue_depth",
    "filesearch_queue_oldest_job_age_seconds",
    "filesearch_queue_dead_letters",
}
# Prometheus's own series for every target.
PROMETHEUS_METRICS = {"up"}
# The original dashboard's panels, as words a panel title must contain.
REQUIRED_PANELS = ["Searches", "latency percentiles", "Embeddings per second", "error rate", "Errors",
                   "cache hit ratio", "Queue depth", "Oldest queued job", "Dead letters"]
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


def exported_metrics(source_dir):
    names = set()
    pattern = re.compile(r'Describe\(\s*"(filesearch_[a-z0-9_]+)"')
    for top in ("src", "apps"):
        for folder, _, files in os.walk(os.path.join(source_dir, top)):
            for f in files:
                if f.endswith((".cpp", ".h")) and not f.endswith("_test.cpp"):
                    with open(os.path.join(folder, f), encoding="utf-8", errors="replace") as fh:
                        names.update(pattern.findall(fh.read()))
    return names


def metric_names(expr):
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or labels."""
    no_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    no_matchers = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", no_strings)
    no_grouping = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", no_matchers)
    names = set()
    for m in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", no_grouping):
        word = m.group(0)
        rest = no_grouping[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or aggregation
        if word in ("and", "or", "unless", "bool", "offset", "inf", "nan") or word.startswith("__"):
            continue
        if m.start() > 0 and no_grouping[m.start() - 1] in "$[":
            continue  # $__rate_interval, a range
        names.add(word)
    return names


def family(name):
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def main():
    source_dir = sys.argv[1]
    with open(os.path.join(source_dir, "deploy/grafana/filesearch.json"), encoding="utf-8") as fh:
        dash = json.load(fh)
    exported = exported_metrics(source_dir)
    if "filesearch_embeddings_total" not in exported or "filesearch_search_total" not in exported:
        print("FAIL: found no Describe(...) of filesearch's metrics under", source_dir)
        return 1
    known = exported | QUEUE_METRICS | PROMETHEUS_METRICS
    panels = [p for p in dash["panels"] if p.get("type") != "row"]
    errors = []
    exprs = []
    for p in panels:
        if not p.get("targets"):
            errors.append(f"panel '{p.get('title')}' has no query")
        for t in p.get("targets", []):
            expr = t["expr"]
            exprs.append((p["title"], expr))
            names = metric_names(expr)
            if not names:
                errors.append(f"panel '{p['title']}': no metric in {expr!r}")
            for n in names:
                if n not in known and family(n) not in known:
                    errors.append(f"panel '{p['title']}': {n} is not a metric filesearch exports ({expr})")
    with open(os.path.join(source_dir, "deploy/prometheus/filesearch-rules.yml"), encoding="utf-8") as fh:
        rules = fh.read()
    for n in sorted(set(re.findall(r"\bfilesearch_[a-z0-9_]+", rules))):
        if n not in known and family(n) not in known:
            errors.append(f"the alert rules use {n}, which is not a metric filesearch exports")
    titles = " | ".join(p["title"] for p in panels)
    for want in REQUIRED_PANELS:
        if want.lower() not in titles.lower():
            errors.append(f"no panel titled with '{want}' (panels: {titles})")
    ids = [p["id"] for p in dash["panels"]]
    if len(ids) != len(set(ids)):
        errors.append("panel ids repeat")

    promtool = shutil.which("promtool")
    if promtool:
        # Grafana's variables become what Prometheus would see, then every expression a recording rule.
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "panels.yml")
            with open(path, "w", encoding="utf-8") as fh:
                fh.write("groups:\n  - name: dashboard\n    rules:\n")
                for i, (_, expr) in enumerate(exprs):
                    e = expr.replace("$__rate_interval", "5m").replace("$serve_job", "filesearch-serve")
                    fh.write(f"      - record: dashboard:panel_{i}\n        expr: {json.dumps(e)}\n")
            r = subprocess.run([promtool, "check", "rules", path], capture_output=True, text=True)
            if r.returncode != 0:
                errors.append("promtool rejects a panel expression:\n" + r.stdout + r.stderr)
    else:
        print("note: promtool not found; expressions not parsed (install the Debian package 'prometheus')")

    for e in errors:
        print("FAIL:", e)
    if errors:
        return 1
    print(f"ok: {len(panels)} panels, {len(exprs)} queries, metrics {sorted(set().union(*(metric_names(e) for _, e in exprs)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
