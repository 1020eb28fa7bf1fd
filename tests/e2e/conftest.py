"""End-to-end fixtures: a real dlabd on a free port with a temporary data dir, and the real CLI."""
import contextlib
import json
import os
import pathlib
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("DLAB_BIN_DIR", REPO / "build" / "bin"))
sys.path.insert(0, str(REPO / "python"))
from dlab import _http as dlab_http  # noqa: E402  (the SDK's request signing)

# The superadmin every test dlabd starts with (dlabd's bootstrap settings from the environment).
ADMIN_USER = "admin"
ADMIN_PASSWORD = "e2e-admin-password"
ADMIN_KEY = ("AKE2EADMIN0000000000", "e2e-admin-secret-0123456789abcdefghijkl")


def wait_for(predicate, timeout=30.0, interval=0.05, what="condition"):
    """Polls predicate until it returns a truthy value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


@contextlib.contextmanager
def private_slurm_cluster(path, *args, ports_from=31000):
    """A private Slurm cluster in path (scripts/slurm-cluster.sh up path *args), with SLURM_CONF
    set in this process (dlabd, the CLI and squeue find it) until it is torn down. Test modules
    run at once (ctest -j) pass different ports_from: two looking for free ports at the same
    moment would pick the same."""
    if os.geteuid() != 0:
        pytest.skip("a private Slurm cluster needs root (slurmd runs jobs as their owners)")
    # Two free ports below the ephemeral range (a port an outgoing connection holds, or one in
    # TIME_WAIT, cannot be bound by slurmctld/slurmd).
    ports = [p for p in range(ports_from, ports_from + 800, 7) if port_is_free(p)][:2]
    script = REPO / "scripts" / "slurm-cluster.sh"
    up = subprocess.run([str(script), "up", str(path), *args, "--wait-scheduler"],
                        capture_output=True, text=True, timeout=120,
                        # Without Slurm's cgroup plugins: jobs of two clusters on one machine
                        # (or of this one and the last) cannot meet in /sys/fs/cgroup/*/slurm,
                        # where a clash once drained the node (task_p_pre_setuid error).
                        env=dict(os.environ, SLURM_CTLD_PORT=str(ports[0]),
                                 SLURM_D_PORT=str(ports[1]), SLURM_CGROUP="none"))
    if up.returncode != 0:
        subprocess.run([str(script), "down", str(path)], capture_output=True, timeout=120)
    assert up.returncode == 0, up.stderr
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in up.stdout.splitlines() if line.startswith("export "))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield path
    finally:
        subprocess.run([str(script), "down", str(path)], capture_output=True, timeout=120)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class Dlabd:
    """One dlabd process; restartable on the same data dir."""

    def __init__(self, tmp_path, config_text):
        self.data_dir = tmp_path / "data"
        self.config = tmp_path / "dlabd.yaml"
        self.config.write_text(config_text)
        self.log = tmp_path / "dlabd.log"
        self.proc = None
        self.url = None
        self.port = 0

    credentials = ADMIN_KEY  # (key id, secret) that request() signs with; None: unsigned

    def start(self):
        listen = f"127.0.0.1:{self.port}"
        # Started as from an operator's shell that also uses the CLI with the admin's key;
        # dlabd must pass none of these secrets on to jobs.
        env = dict(os.environ, DLAB_BOOTSTRAP_USER=ADMIN_USER,
                   DLAB_BOOTSTRAP_PASSWORD=ADMIN_PASSWORD,
                   DLAB_BOOTSTRAP_ACCESS_KEY_ID=ADMIN_KEY[0],
                   DLAB_BOOTSTRAP_SECRET_ACCESS_KEY=ADMIN_KEY[1],
                   DLAB_ACCESS_KEY_ID=ADMIN_KEY[0], DLAB_SECRET_ACCESS_KEY=ADMIN_KEY[1])
        self.proc = subprocess.Popen(
            [str(BIN / "dlabd"), "--listen", listen, "--data-dir", str(self.data_dir),
             "--config", str(self.config)],
            stdout=subprocess.PIPE, stderr=open(self.log, "ab"), text=True, env=env)
        line = self.proc.stdout.readline()
        if not line.startswith("dlabd listening on http://"):
            self.proc.kill()  # never leave a half-started dlabd behind
            self.proc.wait()
            raise AssertionError(f"dlabd did not start: {line!r}\n{self.log.read_text()}")
        self.url = line.split()[-1]
        self.port = int(self.url.rsplit(":", 1)[1])  # keep the port across restarts
        return self

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def cancel_all(self):
        """Cancels whatever still runs, so no workload outlives its test."""
        if not self.proc or self.proc.poll() is not None:
            return
        status, body = self.request("GET", "/api/v1/jobs?state=QUEUED,STARTING,RUNNING&limit=500")
        for job in (body or {}).get("jobs", []):
            self.request("POST", f"/api/v1/jobs/{job['id']}/cancel")
        for job in (body or {}).get("jobs", []):
            self.wait_state(job["id"], {"CANCELLED", "SUCCEEDED", "FAILED"}, timeout=30)

    def stop(self):
        self.cancel_all()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # --- HTTP helpers -------------------------------------------------------------------
    def request(self, method, path, body=None, headers=None, raw=False, credentials="default",
                tenant=None):
        """Sends a request signed with `credentials` ((key id, secret); default: the server's
        admin key; None: unsigned), acting in `tenant` when given (X-Dlab-Tenant)."""
        data = None
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, bytearray)):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif body is not None:
            data = bytes(body)
        if tenant is not None:
            headers["X-Dlab-Tenant"] = tenant
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        credentials = self.credentials if credentials == "default" else credentials
        if credentials is not None:
            dlab_http.sign_request(req, data, *credentials)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                payload = resp.read()
                status = resp.status
        except urllib.error.HTTPError as err:
            payload = err.read()
            status = err.code
        if raw:
            return status, payload
        return status, (json.loads(payload) if payload else None)

    def job(self, job_id):
        status, body = self.request("GET", f"/api/v1/jobs/{job_id}")
        assert status == 200, body
        return body

    def wait_state(self, job_id, states, timeout=60):
        states = {states} if isinstance(states, str) else set(states)
        return wait_for(lambda: (lambda j: j if j["state"] in states else None)(self.job(job_id)),
                        timeout=timeout, what=f"job {job_id} to reach {states}")


class Cli:
    """Runs the real dlab CLI against a dlabd."""

    def __init__(self, server):
        self.server = server

    def __call__(self, *args, check=True, timeout=300, cwd=None, credentials=ADMIN_KEY,
                 env_extra=None):
        env = dict(os.environ, DLAB_URL=self.server.url)
        if credentials is not None:
            env.update(DLAB_ACCESS_KEY_ID=credentials[0], DLAB_SECRET_ACCESS_KEY=credentials[1])
        env.update(env_extra or {})
        proc = subprocess.run([str(BIN / "dlab"), *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, env=env, cwd=cwd)
        if check and proc.returncode != 0:
            raise AssertionError(f"dlab {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args, **kw):
        return json.loads(self(*args, "--json", **kw).stdout)


DEFAULT_CONFIG = """
node:
  cpus: 4
  memory: 8Gi
  gpus: [{type: H100, model: NVIDIA H100 80GB HBM3, count: 2}]
kill_grace: 2s
"""


@pytest.fixture
def dlabd(tmp_path):
    server = Dlabd(tmp_path, getattr(dlabd, "config", DEFAULT_CONFIG)).start()
    yield server
    server.stop()


@pytest.fixture
def make_dlabd(tmp_path):
    """Factory for a dlabd with a custom config."""
    servers = []

    def make(config_text):
        server = Dlabd(tmp_path, config_text).start()
        servers.append(server)
        return server

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def cli(dlabd):
    return Cli(dlabd)


def write_job(folder, spec_yaml, files=None):
    """A code folder with job.yaml and the given files; returns the job.yaml path."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in (files or {}).items():
        (folder / name).write_text(text)
    (folder / "job.yaml").write_text(spec_yaml)
    return folder / "job.yaml"
