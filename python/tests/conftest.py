"""Shared test helpers: a fake dlabd on 127.0.0.1 (http.server in a thread) that records every
request, and a way to run Python snippets in a subprocess with the SDK importable."""

import hashlib
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if PYTHON_DIR not in sys.path:
    sys.path.insert(0, PYTHON_DIR)


def wait_until(predicate, timeout=10.0, interval=0.01, what="condition"):
    """Polls `predicate` until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %gs waiting for %s" % (timeout, what))
        time.sleep(interval)


@pytest.fixture
def without_pyyaml(monkeypatch):
    """Makes `import yaml` fail, as on a machine without python3-yaml."""
    import builtins
    real_import = builtins.__import__

    def no_yaml(name, *args, **kwargs):
        if name == "yaml":
            raise ImportError("no yaml")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_yaml)


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query  # list of (key, value)
        self.headers = headers
        self.body = body
        self.arrival = time.monotonic()

    def json(self):
        return json.loads(self.body.decode()) if self.body else None

    def q(self, key):
        return [v for k, v in self.query if k == key]

    def __repr__(self):
        return "<%s %s>" % (self.method, self.path)


def _error(status, code, message):
    return status, {"error": {"code": code, "message": message}}


class FakeDlabd:
    """A small dlabd: records requests, answers the job-report endpoints and a job API.

    fail_with: None, or an HTTP status every request gets (e.g. 503: "down but listening").
    stop()/start(): close the listening socket (connection refused) and open it again on the
    same port.
    """

    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        self.fail_with = None
        self.fail_body = None
        self.error_headers = {}  # headers added to every error answer (e.g. Retry-After)
        self.metrics_status = None  # an (status, body) the metrics POST answers instead
        self.jobs = {}
        self.snapshots = {}
        self.idempotency = {}
        self.checkpoints = []
        self.logs = {}
        self.polls_until_done = {}
        self.port = 0
        self.httpd = None
        self.start()

    # ---- lifecycle ----------------------------------------------------------------------

    def start(self):
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qsl(url.query, keep_blank_values=True)
                request = Request(self.command, url.path, query,
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                status, payload, ctype = owner.answer(request)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                if status >= 400:
                    for name, value in owner.error_headers.items():
                        self.send_header(name, value)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _handle

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.httpd = Server(("127.0.0.1", self.port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    # ---- what was asked -----------------------------------------------------------------

    def find(self, method=None, path_prefix="", path_suffix=""):
        with self.lock:
            return [r for r in self.requests
                    if (method is None or r.method == method) and r.path.startswith(path_prefix)
                    and r.path.endswith(path_suffix)]

    def metric_posts(self):
        return self.find("POST", path_suffix="/metrics")

    def reported_steps(self, metric=None):
        """Steps of every report the server accepted, in arrival order."""
        steps = []
        for r in self.metric_posts():
            if getattr(r, "status", 200) != 200:
                continue
            for report in r.json()["reports"]:
                if metric is None or metric in report["metrics"]:
                    steps.append(report["step"])
        return steps

    # ---- answers ------------------------------------------------------------------------

    def answer(self, r):
        with self.lock:
            self.requests.append(r)
            status, payload = self._route(r)
            r.status = status
        ctype = "application/json"
        if isinstance(payload, str):
            payload, ctype = payload.encode(), "text/plain; charset=utf-8"
        return status, payload, ctype

    def _route(self, r):
        if self.fail_with is not None:
            return self.fail_with, self.fail_body or {"error": {"code": "UNAVAILABLE",
                                                                "message": "down for a test"}}
        parts = [p for p in r.path.split("/") if p]
        if r.path == "/healthz":
            return 200, {"status": "ok"}
        if parts[:3] != ["api", "v1", "jobs"] and parts[:3] != ["api", "v1", "snapshots"]:
            return _error(404, "NOT_FOUND", "no route for %s" % r.path)
        if parts[2] == "snapshots":
            return self._snapshots(r, parts)
        if len(parts) == 3:
            return self._submit(r) if r.method == "POST" else self._list(r)
        job_id = parts[3]
        if len(parts) == 5 and parts[4] == "metrics" and r.method == "POST":
            if self.metrics_status is not None:
                return self.metrics_status
            return 200, {"accepted": len(r.json()["reports"])}
        if len(parts) == 5 and parts[4] == "checkpoints" and r.method == "POST":
            body = r.json()
            checkpoint = dict(body, id=len(self.checkpoints) + 1, job_id=int(job_id))
            self.checkpoints.append(checkpoint)
            return 201, checkpoint
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "NOT_FOUND", "job '%s' not found" % job_id)
        if len(parts) == 4:
            left = self.polls_until_done.get(job_id)
            if left is not None:
                if left <= 0:
                    job["state"] = "SUCCEEDED"
                else:
                    self.polls_until_done[job_id] = left - 1
                    job["state"] = "RUNNING"
            return 200, job
        what = parts[4]
        if what == "cancel":
            if job["state"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
                return _error(409, "FAILED_PRECONDITION", "job %s already ended (%s)"
                              % (job_id, job["state"]))
            job["state"] = "CANCELLED"
            return 202, job
        if what == "logs":
            text = self.logs.get(job_id, "line 1\nline 2\nline 3\n")
            tail = r.q("tail")
            if tail:
                text = "".join(text.splitlines(True)[-int(tail[0]):])
            return 200, text
        if what == "events":
            return 200, {"events": [{"id": 1, "job_id": int(job_id), "from": "QUEUED",
                                     "to": "STARTING", "reason": "scheduled"}]}
        if what == "metrics":
            names = r.q("name") or ["loss", "acc"]
            return 200, {"job_id": int(job_id), "series": [
                {"name": n, "count": 2, "points": [[1, 100.5, 0.9], [2, 101.5, 0.5]],
                 "latest": {"step": 2, "time": 101.5, "value": 0.5}} for n in names]}
        if what == "checkpoints":
            return 200, {"checkpoints": [c for c in self.checkpoints
                                         if str(c["job_id"]) == job_id]}
        return _error(404, "NOT_FOUND", "no route for %s" % r.path)

    def _snapshots(self, r, parts):
        if r.method == "POST" and len(parts) == 3:
            if r.headers.get("content-type") != "application/gzip":
                return _error(400, "INVALID_ARGUMENT", "expected application/gzip")
            digest = "sha256:" + hashlib.sha256(r.body).hexdigest()
            created = digest not in self.snapshots
            self.snapshots[digest] = r.body
            return (201 if created else 200), {"id": digest, "size": len(r.body)}
        if len(parts) == 4:
            if parts[3] in self.snapshots:
                return 200, {"id": parts[3], "size": len(self.snapshots[parts[3]])}
            return _error(404, "NOT_FOUND", "snapshot %s not found" % parts[3])
        return _error(405, "METHOD_NOT_ALLOWED", "no")

    def _submit(self, r):
        key = r.headers.get("idempotency-key")
        if key and key in self.idempotency:
            return 200, self.jobs[self.idempotency[key]]
        try:
            envelope = r.json()
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "body: not valid JSON")
        spec = envelope.get("spec")
        if not isinstance(spec, dict) or not spec.get("name"):
            return _error(400, "INVALID_ARGUMENT", "name: is required")
        snapshot = envelope.get("snapshot") or ""
        if snapshot and snapshot not in self.snapshots:
            return _error(404, "NOT_FOUND", "snapshot %s not found" % snapshot)
        job_id = str(len(self.jobs) + 1)
        job = {"id": int(job_id), "name": spec["name"], "state": "QUEUED", "spec": spec,
               "snapshot": snapshot, "labels": spec.get("labels", {})}
        self.jobs[job_id] = job
        if key:
            self.idempotency[key] = job_id
        return 201, job

    def _list(self, r):
        limit = int((r.q("limit") or ["50"])[0])
        cursor = int((r.q("cursor") or ["0"])[0])
        states = [s for v in r.q("state") for s in v.split(",") if s]
        labels = dict(v.split("=", 1) for v in r.q("label"))
        jobs = sorted(self.jobs.values(), key=lambda j: -j["id"])
        jobs = [j for j in jobs if (not cursor or j["id"] < cursor)
                and (not states or j["state"] in states)
                and all(j["labels"].get(k) == v for k, v in labels.items())]
        page = jobs[:limit]
        next_cursor = str(page[-1]["id"]) if len(page) == limit else None
        return 200, {"jobs": page, "next_cursor": next_cursor}


@pytest.fixture(autouse=True)
def _no_access_key(monkeypatch, tmp_path_factory):
    """Every test starts without an access key (no DLAB_ACCESS_KEY_ID/DLAB_SECRET_ACCESS_KEY, an
    empty $XDG_CONFIG_HOME), whatever the machine running the tests has configured."""
    monkeypatch.delenv("DLAB_ACCESS_KEY_ID", raising=False)
    monkeypatch.delenv("DLAB_SECRET_ACCESS_KEY", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture
def server():
    s = FakeDlabd()
    yield s
    try:
        s.stop()
    except Exception:
        pass


@pytest.fixture
def job_env(server, monkeypatch, tmp_path):
    """The environment dlabd gives a job, pointing at the fake server."""
    env = {
        "DLAB_JOB_ID": "7", "DLAB_ATTEMPT": "2", "DLAB_API_URL": server.url,
        "DLAB_TOKEN": "tok-123", "DLAB_HPARAMS": '{"lr": 0.1}',
        "DLAB_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "DLAB_OUTPUT_DIR": str(tmp_path / "out"),
        "DLAB_RESUME_FROM": "",
    }
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "DLAB_FLUSH_TIMEOUT",
              "DLAB_CHECKPOINT_TIMEOUT"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    os.makedirs(env["DLAB_CHECKPOINT_DIR"])
    return env


def run_python(code, env=None, timeout=60, check=False):
    """Runs `code` in a fresh /usr/bin/python3 (this interpreter) with the SDK importable."""
    full_env = dict(os.environ)
    full_env.pop("DLAB_URL", None)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = PYTHON_DIR + os.pathsep + full_env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], env=full_env, capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError("exit %d\nstdout:\n%s\nstderr:\n%s"
                             % (proc.returncode, proc.stdout, proc.stderr))
    return proc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
