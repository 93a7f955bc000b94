#!/usr/bin/env python3
"""End to end: a real Prometheus (Debian package) on 127.0.0.1 scrapes a real `filesearch serve
--watch` and a real `filesearch worker --metrics-port`, evaluating the shipped alert rules with every
duration shortened (minutes read as seconds: generated from deploy/prometheus/filesearch-rules.yml,
so the shipped rules are what is tested). Images that fail to embed (the test embedder's fault
marker) are dropped into both watched folders, and the alerts must fire in Prometheus's
/api/v1/alerts; then the worker is stopped and FilesearchWorkerDown must fire. The dashboard's
queries run against the same Prometheus: each must parse and name only metrics it scraped (or the
queue metrics of the contract).

usage: alerts_e2e_test.py FILESEARCH_BINARY SOURCE_DIR      (exit 77: no prometheus binary)
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dashboard_test  # noqa: E402  (metric_names, QUEUE_METRICS)

FAULT = b"FILESEARCH-TEST-EMBED-FAULT"  # engine/embedder.h kTestEmbedFaultMarker
PNG = b"\x89PNG\r\n\x1a\n"
DEADLINE_S = 50


def shorten_rules(text):
    """The shipped rules with minutes read as seconds in ranges and `for:`."""
    out, ranges = re.subn(r"\[(\d+)m\]", r"[\1s]", text)
    out, fors = re.subn(r"\bfor: (\d+)m\b", r"for: \1s", out)
    if ranges == 0 or fors == 0:
        raise SystemExit(f"FAIL: no durations to shorten in the rules ({ranges} ranges, {fors} for:)")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_line(path, pattern, proc, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        with open(path, encoding="utf-8", errors="replace") as fh:
            m = re.search(pattern, fh.read())
        if m:
            return m
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    with open(path, encoding="utf-8", errors="replace") as fh:
        raise SystemExit(f"FAIL: '{pattern}' never appeared in {path}:\n{fh.read()[-3000:]}")


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


class Prom:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def query(self, expr):
        return get_json(self.base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))

    def alerts(self):
        return get_json(self.base + "/api/v1/alerts")["data"]["alerts"]

    def firing(self, name):
        return [a for a in self.alerts() if a["labels"].get("alertname") == name and a["state"] == "firing"]


def wait_until(what, fn, deadline):
    while time.time() < deadline:
        try:
            v = fn()
            if v:
                return v
        except OSError:
            pass
        time.sleep(0.25)
    raise SystemExit(f"FAIL: timed out waiting for {what}")


def main():
    binary, source = sys.argv[1], sys.argv[2]
    prometheus = shutil.which("prometheus")
    if not prometheus:
        print("SKIP: prometheus not found (install the Debian package 'prometheus': scripts/setup)")
        return 77
    start = time.time()
    deadline = start + DEADLINE_S
    tmp = tempfile.mkdtemp(prefix="fs-alerts-")
    procs = []
    try:
        for d in ("serve-data", "serve-dir", "worker-data", "worker-dir", "prom"):
            os.makedirs(os.path.join(tmp, d))
        serve_log = open(os.path.join(tmp, "serve.log"), "wb")
        serve = subprocess.Popen([binary, "--no-progress", "--data-dir", f"{tmp}/serve-data", "serve", "--no-auth",
                                  "--test-embedder", "--port", "0", "--threads", "4", "--watch", f"{tmp}/serve-dir"],
                                 stdout=serve_log, stderr=subprocess.STDOUT)
        procs.append(serve)
        worker_log = open(os.path.join(tmp, "worker.log"), "wb")
        worker = subprocess.Popen([binary, "--no-progress", "--data-dir", f"{tmp}/worker-data", "worker",
                                   f"{tmp}/worker-dir", "--test-embedder", "--quiet-ms", "100", "--metrics-port", "0"],
                                  stdout=worker_log, stderr=subprocess.STDOUT)
        procs.append(worker)
        serve_port = int(wait_for_line(serve_log.name, r"listening on http://127\.0\.0\.1:(\d+)/", serve).group(1))
        worker_port = int(wait_for_line(worker_log.name, r"metrics at http://127\.0\.0\.1:(\d+)/metrics", worker).group(1))

        # The worker's endpoint serves /metrics only.
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{worker_port}/other", timeout=5)
            raise SystemExit("FAIL: the worker's metrics port answered a path other than /metrics")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise SystemExit(f"FAIL: /other on the metrics port: HTTP {e.code}, expected 404")

        with open(os.path.join(source, "deploy/prometheus/filesearch-rules.yml"), encoding="utf-8") as fh:
            shipped = fh.read()
        with open(f"{tmp}/prom/rules.yml", "w", encoding="utf-8") as fh:
            fh.write(shorten_rules(shipped))
        prom_port = free_port()
        with open(f"{tmp}/prom/prometheus.yml", "w", encoding="utf-8") as fh:
            fh.write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
scrape_configs:
  - job_name: filesearch-serve
    static_configs: [{{targets: ["127.0.0.1:{serve_port}"]}}]
  - job_name: filesearch-worker
    static_configs: [{{targets: ["127.0.0.1:{worker_port}"]}}]
""")
        prom_log = open(os.path.join(tmp, "prometheus.log"), "wb")
        prom_proc = subprocess.Popen([prometheus, f"--config.file={tmp}/prom/prometheus.yml",
                                      f"--storage.tsdb.path={tmp}/prom/data", f"--web.listen-address=127.0.0.1:{prom_port}",
                                      "--log.level=warn"], stdout=prom_log, stderr=subprocess.STDOUT)
        procs.append(prom_proc)
        prom = Prom(prom_port)
        wait_until("Prometheus to be ready", lambda: urllib.request.urlopen(prom.base + "/-/ready", timeout=2).status == 200,
                   deadline)

        # Phase 1: good images only. Both targets report ok embeddings; no error-rate alert.
        counter = [0]

        def drop(good, bad):
            for folder in ("serve-dir", "worker-dir"):
                for i in range(good):
                    with open(f"{tmp}/{folder}/good-{counter[0]}-{i}.png", "wb") as fh:
                        fh.write(PNG + f"pixels {counter[0]} {i}".encode())
                for i in range(bad):
                    with open(f"{tmp}/{folder}/bad-{counter[0]}-{i}.png", "wb") as fh:
                        fh.write(PNG + FAULT + f" {counter[0]} {i}".encode())
            counter[0] += 1

        drop(3, 0)
        # A few searches, so the search histograms the dashboard reads exist.
        for mode in ("text", "hybrid"):
            get_json(f"http://127.0.0.1:{serve_port}/search?" + urllib.parse.urlencode({"q": "pixels", "mode": mode}))
        try:  # and one error reply (the errors panel)
            get_json(f"http://127.0.0.1:{serve_port}/documents/999999999")
            raise SystemExit("FAIL: a document that does not exist was found")
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise SystemExit(f"FAIL: /documents/999999999 answered HTTP {e.code}, expected 404")

        def ok_embeddings_seen():
            r = prom.query('sum by (job) (filesearch_embeddings_total{result="ok"}) > 0')["data"]["result"]
            return {s["metric"]["job"] for s in r} == {"filesearch-serve", "filesearch-worker"}

        wait_until("ok embeddings of both targets in Prometheus", ok_embeddings_seen, deadline)
        wrong = [a for a in prom.alerts() if a["labels"]["alertname"] in ("FilesearchEmbeddingErrorRate", "FilesearchDeadLettersGrowing")]
        if wrong:
            raise SystemExit(f"FAIL: alerts with good images only: {wrong}")
        print(f"phase 1 ({time.time() - start:.1f} s): both targets scraped, ok embeddings counted, no error alert")

        # Phase 2: half the images fail to embed, a batch every half second.
        def error_alert_both():
            drop(1, 1)
            jobs = {a["labels"]["job"] for a in prom.firing("FilesearchEmbeddingErrorRate")}
            return jobs == {"filesearch-serve", "filesearch-worker"}

        wait_until("FilesearchEmbeddingErrorRate firing for serve and worker", error_alert_both, deadline)
        print(f"phase 2 ({time.time() - start:.1f} s): FilesearchEmbeddingErrorRate firing for serve and worker")
        dead = {a["labels"]["job"] for a in prom.firing("FilesearchDeadLettersGrowing")}
        if dead != {"filesearch-serve", "filesearch-worker"}:
            raise SystemExit(f"FAIL: FilesearchDeadLettersGrowing firing for {dead}, expected serve and worker")
        errors = prom.query('sum(filesearch_embeddings_total{result="error"})')["data"]["result"]
        if not errors or float(errors[0]["value"][1]) < 2:
            raise SystemExit(f"FAIL: embedding errors in Prometheus: {errors}")

        # The dashboard's queries against the live Prometheus: each parses, and each metric it names
        # was scraped from serve or the worker (or is a queue metric of the contract).
        with open(os.path.join(source, "deploy/grafana/filesearch.json"), encoding="utf-8") as fh:
            dash = json.load(fh)
        scraped = set(get_json(prom.base + "/api/v1/label/__name__/values")["data"])
        for p in dash["panels"]:
            for t in p.get("targets", []):
                expr = t["expr"].replace("$__rate_interval", "5s").replace("$serve_job", "filesearch-serve")
                r = prom.query(expr)
                if r.get("status") != "success":
                    raise SystemExit(f"FAIL: panel '{p['title']}': Prometheus refused {expr}: {r}")
                for name in dashboard_test.metric_names(expr):
                    if name not in scraped and name not in dashboard_test.QUEUE_METRICS:
                        raise SystemExit(f"FAIL: panel '{p['title']}' queries {name}, which no target exports")

        # Phase 3: the worker stops (SIGTERM: exit 0); FilesearchWorkerDown fires for it, not for serve.
        worker.send_signal(signal.SIGTERM)
        if worker.wait(timeout=20) != 0:
            raise SystemExit(f"FAIL: the worker exited {worker.returncode} on SIGTERM")
        down = wait_until("FilesearchWorkerDown firing", lambda: prom.firing("FilesearchWorkerDown"), deadline)
        if [a["labels"]["instance"] for a in down] != [f"127.0.0.1:{worker_port}"] or prom.firing("FilesearchServeDown"):
            raise SystemExit(f"FAIL: down alerts: {down} / {prom.firing('FilesearchServeDown')}")
        print(f"phase 3 ({time.time() - start:.1f} s): FilesearchWorkerDown firing for the stopped worker")
        print(f"alerts e2e: ok in {time.time() - start:.1f} s")
        return 0
    except SystemExit:
        for name in ("serve.log", "worker.log", "prometheus.log"):
            path = os.path.join(tmp, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as fh:
                    sys.stderr.write(f"--- {name} (tail) ---\n{fh.read()[-2000:]}\n")
        raise
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
