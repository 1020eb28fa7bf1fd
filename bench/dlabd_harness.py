"""Shared helpers for the dlab benchmarks: start a private dlabd on 127.0.0.1 with a temporary
data directory, talk to its REST API over keep-alive connections, stop it again.
Standard library only (runs under any python3 >= 3.9)."""
import http.client
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("DLAB_BIN_DIR") or os.path.join(REPO, "build", "bin")
TERMINAL = {"SUCCEEDED", "FAILED", "CANCELLED"}
sys.path.insert(0, os.path.join(REPO, "python"))
from dlab import _auth  # noqa: E402  (request signing, docs/auth.md)

# The superadmin key every benchmark dlabd starts with (dlabd's bootstrap environment).
BENCH_KEY = ("AKBENCH0000000000000", "bench-secret-0123456789abcdefghijklmnop")
BOOTSTRAP_ENV = {"DLAB_BOOTSTRAP_ACCESS_KEY_ID": BENCH_KEY[0],
                 "DLAB_BOOTSTRAP_SECRET_ACCESS_KEY": BENCH_KEY[1],
                 "DLAB_BOOTSTRAP_PASSWORD": "bench-password"}


def parse_time(s):
    # RFC 3339 UTC with milliseconds, e.g. 2026-11-22T10:00:00.123Z
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def pct(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, math.ceil(p / 100.0 * len(v)) - 1))
    return v[k]


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2.0


class Dlabd:
    """A dlabd with its own temporary data dir; use as a context manager."""

    def __init__(self, config_yaml, start_timeout=20.0):
        self.config_yaml = config_yaml
        self.start_timeout = start_timeout
        self.tmp = None
        self.proc = None
        self.host = None
        self.port = None

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="dlab-bench-")
        cfg = os.path.join(self.tmp, "dlabd.yaml")
        with open(cfg, "w") as f:
            f.write(self.config_yaml)
        data = os.path.join(self.tmp, "data")
        self.log = open(os.path.join(self.tmp, "dlabd.log"), "w")
        self.proc = subprocess.Popen(
            [os.path.join(BIN, "dlabd"), "--listen", "127.0.0.1:0", "--data-dir", data,
             "--config", cfg],
            stdout=subprocess.PIPE, stderr=self.log, text=True,
            env=dict(os.environ, **BOOTSTRAP_ENV))
        deadline = time.time() + self.start_timeout
        line = ""
        import select
        while time.time() < deadline:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if r:
                line = self.proc.stdout.readline()
                break
            if self.proc.poll() is not None:
                break
        prefix = "dlabd listening on http://"
        if not line.startswith(prefix):
            self.__exit__(None, None, None)
            raise RuntimeError("dlabd did not start (first line %r), see its log" % line)
        hostport = line[len(prefix):].strip().rstrip("/")
        self.host, port = hostport.rsplit(":", 1)
        self.port = int(port)
        self.url = "http://%s:%d" % (self.host, self.port)
        return self

    def __exit__(self, *exc):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        if getattr(self, "log", None):
            self.log.close()
        if self.tmp and not os.environ.get("DLAB_BENCH_KEEP"):
            shutil.rmtree(self.tmp, ignore_errors=True)
        return False

    def conn(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=60)

    def vmrss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return None


def sign(conn, method, path, data, headers, key=BENCH_KEY):
    """Adds the signature headers (docs/auth.md) for a request on conn to headers."""
    headers["Host"] = "%s:%d" % (conn.host, conn.port)
    headers["X-Dlab-Nonce"] = _auth.new_nonce()
    decoded, query = _auth.parse_target(path)
    lowered = {k.lower(): v for k, v in headers.items()}
    also = [h for h in ("content-type", "x-dlab-nonce") if h in lowered]
    headers.update(_auth.sign(method, decoded or "/", query, lowered, data, *key, also_sign=also))
    return headers


def request(conn, method, path, body=None):
    headers = {}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    sign(conn, method, path, data, headers)
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    payload = resp.read()
    return resp.status, (json.loads(payload) if payload else None)


def list_all_jobs(conn):
    """Every job, through GET /api/v1/jobs?limit=500 with cursor paging."""
    jobs, cursor = [], None
    while True:
        path = "/api/v1/jobs?limit=500"
        if cursor:
            from urllib.parse import quote
            path += "&cursor=" + quote(cursor)
        status, body = request(conn, "GET", path)
        if status != 200:
            raise RuntimeError("list jobs: HTTP %d %r" % (status, body))
        jobs.extend(body["jobs"])
        cursor = body.get("next_cursor")
        if not cursor:
            return jobs


def wait_all_terminal(d, expected, timeout):
    """Poll the list until `expected` jobs exist and all are terminal; return them."""
    c = d.conn()
    deadline = time.time() + timeout
    while True:
        jobs = list_all_jobs(c)
        done = sum(1 for j in jobs if j["state"] in TERMINAL)
        if len(jobs) >= expected and done == len(jobs):
            c.close()
            return jobs
        if time.time() > deadline:
            c.close()
            raise RuntimeError("timeout: %d/%d jobs terminal" % (done, len(jobs)))
        time.sleep(0.5)


def write_docs_section(path, section, text):
    """Replaces the section headed `section` (a "## ..." line) of the markdown file at path with
    text; a new section goes before "## On a real GPU" when there is one, else at the end."""
    with open(path) as f:
        doc = f.read()
    start = doc.find("\n" + section + "\n")
    if start < 0:
        anchor = doc.find("\n## On a real GPU")
        if anchor < 0:
            doc = doc.rstrip("\n") + "\n\n" + text
        else:
            doc = doc[:anchor + 1] + text + "\n" + doc[anchor + 1:]
    else:
        start += 1
        end = doc.find("\n## ", start + len(section))
        doc = doc[:start] + text + (doc[end:] if end >= 0 else "")
    with open(path, "w") as f:
        f.write(doc)
