"""API fuzz test: schemathesis against docs/openapi.json and a live `filesearch serve`.

  .venv/bin/python tests/fuzz/run_schemathesis.py BUILD_DIR [--examples N] [--seed S] [--no-embedder]

Indexes a small generated folder (text files, a PNG and a JPEG), starts `filesearch serve` on
127.0.0.1 with a free port and HS256 auth (a fresh secret), waits for /healthz and runs `st run`
with the checks of tests/fuzz/schemathesis.toml twice: every operation but /admin/ with a user's
token, then /admin/ with an admin's (so fuzzing the switch cannot turn vector search off under the
first run). Stops the server and exits non-zero when schemathesis found a failure or the server did
not stop cleanly. A failing run keeps the data directory, the server log and junit and VCR reports
(every request and reply) in BUILD_DIR/test-artifacts/fuzz[-no-embedder]/.
Never contacts any address but 127.0.0.1.
"""
import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import time
import urllib.request
import zlib

SOURCE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
# Appended to schemathesis.toml for --no-embedder: without a query embedder the server rightly
# answers 503 `unavailable` to /embed and to searches that need one (docs/api.md, "Errors").
NO_EMBEDDER_CONFIG = """
[[operations]]
include-path = ["/embed", "/search"]
checks.not_a_server_error.expected-statuses = ["2xx", "3xx", "4xx", 503]
"""


def png(width, height, pixel):
    """A real RGB PNG, so thumbnails decode."""
    rows = b"".join(b"\0" + b"".join(bytes(pixel(x, y)) for x in range(width)) for y in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def jpeg_from_png(png_path, jpeg_path):
    """Debian's Pillow (scripts/setup installs python3-pil) re-encodes the PNG as a JPEG."""
    code = "import sys; from PIL import Image; Image.open(sys.argv[1]).convert('RGB').save(sys.argv[2], quality=85)"
    subprocess.run(["/usr/bin/python3", "-c", code, png_path, jpeg_path], check=True)


def make_share(share):
    os.makedirs(os.path.join(share, "notes"))
    os.makedirs(os.path.join(share, "photos"))
    texts = {
        "notes/quarterly.txt": "Quarterly report: revenue, costs and the outlook for next quarter.",
        "notes/meeting.md": "# Meeting\nBudget review with the finance team; action items for the audit.",
        "notes/empty.txt": "",
        "notes/unicode.txt": "Café crème, naïve façade, 東京, emoji \U0001F600.",
        "notes/data.json": json.dumps({"invoice": 42, "customer": "ACME"}),
    }
    for name, text in texts.items():
        with open(os.path.join(share, name), "w", encoding="utf-8") as f:
            f.write(text)
    sunset = os.path.join(share, "photos", "sunset.png")
    with open(sunset, "wb") as f:
        f.write(png(48, 32, lambda x, y: (250 - y * 4, 120 + x, 60)))
    with open(os.path.join(share, "photos", "ocean.png"), "wb") as f:
        f.write(png(40, 40, lambda x, y: (20, 90 + x, 180 + y)))
    jpeg_from_png(sunset, os.path.join(share, "photos", "sunset.jpg"))


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_token(secret, claims):
    signing_input = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + b64url(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + b64url(signature)


def wait_for_port(log_path, server, deadline_s=30):
    pattern = re.compile(r"listening on http://127\.0\.0\.1:(\d+)/")
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if server.poll() is not None:
            break
        with open(log_path, encoding="utf-8", errors="replace") as f:
            match = pattern.search(f.read())
        if match:
            return int(match.group(1))
        time.sleep(0.1)
    with open(log_path, encoding="utf-8", errors="replace") as f:
        sys.exit("FAIL: the server did not start (exit code %s); its log:\n%s" % (server.poll(), f.read()))


def wait_healthy(base, deadline_s=30):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with urllib.request.urlopen(base + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit("FAIL: %s/healthz did not answer 200 within %d s" % (base, deadline_s))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("build_dir")
    ap.add_argument("--examples", type=int, default=int(os.environ.get("FILESEARCH_FUZZ_EXAMPLES", "200")),
                    help="most test cases per operation and phase (default 200, env FILESEARCH_FUZZ_EXAMPLES)")
    ap.add_argument("--seed", type=int, default=int(os.environ.get("FILESEARCH_FUZZ_SEED", "20240501")),
                    help="hypothesis seed; the same seed replays the same cases (env FILESEARCH_FUZZ_SEED)")
    ap.add_argument("--no-embedder", action="store_true",
                    help="serve without a query embedder (no CLIP model): /embed and image search answer 503")
    args = ap.parse_args()

    build_dir = os.path.abspath(args.build_dir)
    binary = os.path.join(build_dir, "filesearch")
    st = os.path.join(os.path.dirname(sys.executable), "st")
    if not os.path.exists(binary):
        sys.exit("FAIL: %s is not built" % binary)
    work = os.path.join(build_dir, "test-artifacts", "fuzz" + ("-no-embedder" if args.no_embedder else ""))
    shutil.rmtree(work, ignore_errors=True)
    share, data = os.path.join(work, "share"), os.path.join(work, "data")
    make_share(share)
    embedder = [] if args.no_embedder else ["--test-embedder"]
    subprocess.run([binary, "--data-dir", data, "--no-progress", "index", share, *embedder], check=True)

    secret = secrets.token_hex(32)
    secret_file = os.path.join(work, "hs256.key")
    with open(secret_file, "w") as f:
        f.write(secret)
    expires = int(time.time()) + 86400
    user_token = hs256_token(secret, {"sub": "fuzz-user", "exp": expires})
    admin_token = hs256_token(secret, {"sub": "fuzz-admin", "admin": True, "exp": expires})

    config = os.path.join(work, "schemathesis.toml")
    with open(os.path.join(SOURCE_DIR, "tests", "fuzz", "schemathesis.toml")) as base, open(config, "w") as out:
        out.write(base.read() + (NO_EMBEDDER_CONFIG if args.no_embedder else ""))

    log_path = os.path.join(work, "server.log")
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [binary, "--data-dir", data, "--no-progress", "serve", "--host", "127.0.0.1", "--port", "0",
             "--auth-secret-file", secret_file, "--storage-root", share, "--threads", "4", *embedder],
            stdout=subprocess.DEVNULL, stderr=log)
    try:
        port = wait_for_port(log_path, server)
        base = "http://127.0.0.1:%d" % port
        wait_healthy(base)
        # One worker: CPython 3.11 keeps the ast module's recursion counter per interpreter, not per
        # thread, so hypothesis parsing lambdas in two schemathesis workers at once fails with
        # "SystemError: AST constructor recursion depth mismatch" (a CPython 3.11 bug).
        failed_runs = []
        for name, token, selection in (("api", user_token, ["--exclude-path-regex", "^/admin/"]),
                                       ("admin", admin_token, ["--include-path-regex", "^/admin/"])):
            cmd = [st, "--config-file", config, "run",
                   os.path.join(SOURCE_DIR, "docs", "openapi.json"), "--url", base, *selection,
                   "--header", "Authorization: Bearer " + token,
                   "--max-examples", str(args.examples), "--seed", str(args.seed), "--workers", "1",
                   "--report", "junit,vcr", "--report-dir", os.path.join(work, "report-" + name)]
            print("fuzzing %s, %s operations (seed %d, %d examples per operation and phase)" %
                  (base, name, args.seed, args.examples), flush=True)
            started = time.monotonic()
            if subprocess.run(cmd, env={**os.environ, "NO_COLOR": "1"}).returncode != 0:
                failed_runs.append(name)
            print("schemathesis (%s) took %.0f s" % (name, time.monotonic() - started), flush=True)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server_rc = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server_rc = "killed after 30 s"
    if server_rc != 0:
        print("FAIL: the server did not stop cleanly on SIGTERM (%s); see %s" % (server_rc, log_path))
        return 1
    if failed_runs:
        print("FAIL: schemathesis found failures (%s operations); server log, data and reports: %s" %
              (" and ".join(failed_runs), work))
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("fuzz run passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
