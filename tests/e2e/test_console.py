"""The web console in a real browser: web/tests/console.test.mjs (Playwright driving Debian's
Chromium, headless) against a real dlabd with a member, a viewer and the superadmin. Screenshots
of every page are saved under build/test-artifacts/console/."""
import json
import os
import pathlib
import subprocess
import time
import urllib.request

import pytest

from conftest import ADMIN_KEY, ADMIN_PASSWORD, ADMIN_USER, BIN, REPO, Dlabd, dlab_http, write_job
from tenancy import create_user

CHROMIUM = "/usr/bin/chromium"
WEB = REPO / "web"

TRAIN = """
import math, sys, time
sys.path.insert(0, {python!r})
import dlab
step = 0
while True:  # until the console cancels it
    loss = 2.0 * math.exp(-step / 40) + 0.1
    dlab.report(step, loss=loss)
    print(f"step {{step}} loss {{loss:.4f}}", flush=True)
    step += 1
    time.sleep(0.05)
"""


@pytest.fixture
def server(tmp_path):
    telemetry = tmp_path / "gpus.json"
    telemetry.write_text(json.dumps({"gpus": [
        {"index": 0, "uuid": "GPU-0", "model": "NVIDIA H100 80GB HBM3", "utilization_pct": 71,
         "temperature_c": 64, "memory_used_bytes": 20 << 30, "memory_total_bytes": 80 << 30,
         "power_w": 412.5, "ecc_errors": 0},
        {"index": 1, "uuid": "GPU-1", "model": "NVIDIA H100 80GB HBM3"}]}))
    config = f"""
node: {{cpus: 4, memory: 8Gi, gpus: [{{type: H100, model: NVIDIA H100 80GB HBM3, count: 2}}]}}
kill_grace: 2s
monitoring: {{interval: 500ms, window: 10m, telemetry_file: {telemetry}}}
"""
    s = Dlabd(tmp_path, config).start()
    yield s
    s.stop()


def test_console_in_chromium(tmp_path, server):
    if not pathlib.Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install-deps.sh installs Debian's chromium")
    if not (WEB / "node_modules" / "playwright-core").exists():
        pytest.fail("web/node_modules is missing: scripts/install-deps.sh runs npm ci in web/")
    status, _ = server.request("GET", "/", credentials=None, raw=True)
    assert status == 200, "dlabd does not serve the console: is it built (the console target)?"
    member_key = create_user(server, "alice", tenant="default", role="member",
                             password="alice-password-1")
    create_user(server, "victor", tenant="default", role="viewer", password="victor-password-1")
    job_dir = tmp_path / "job"
    write_job(job_dir, "name: console-demo\ncommand: [/usr/bin/python3, train.py]\n"
              "resources: {cpus: 1, memory: 256Mi, gpus: 1}\nlabels: {project: console}\n",
              {"train.py": TRAIN.format(python=str(REPO / "python")),
               "blocker.yaml": "name: blocker\ncommand: [sleep, '600']\n"
                               "resources: {cpus: 1, memory: 64Mi, gpus: 2}\n"})
    shots = BIN.parent / "test-artifacts" / "console"
    env = dict(os.environ, DLAB_URL=server.url, DLAB_CLI=str(BIN / "dlab"),
               DLAB_ACCESS_KEY_ID=member_key[0], DLAB_SECRET_ACCESS_KEY=member_key[1],
               CONSOLE_MEMBER="alice", CONSOLE_MEMBER_PASSWORD="alice-password-1",
               CONSOLE_VIEWER="victor", CONSOLE_VIEWER_PASSWORD="victor-password-1",
               CONSOLE_ADMIN=ADMIN_USER, CONSOLE_ADMIN_PASSWORD=ADMIN_PASSWORD,
               CONSOLE_SCREENSHOTS=str(shots), CONSOLE_JOB_DIR=str(job_dir), CHROMIUM=CHROMIUM)
    proc = subprocess.run(["node", "--test", "--test-reporter=spec", "tests/console.test.mjs"],
                          cwd=WEB, env=env, capture_output=True, text=True, timeout=300)
    print(proc.stdout, proc.stderr)
    assert proc.returncode == 0, f"browser tests failed:\n{proc.stdout}\n{proc.stderr}"
    for name in ["login-error", "jobs-empty", "jobs", "job", "job-as-viewer", "jobs-after-cancel",
                 "compare", "cluster", "admin", "job-dark", "jobs-phone"]:
        assert (shots / f"{name}.png").stat().st_size > 0, name


def read_events(resp, count, timeout=30):
    """The next `count` SSE events (name, data) from a streaming response."""
    events, name, data = [], None, []
    deadline = time.monotonic() + timeout
    while len(events) < count:
        assert time.monotonic() < deadline, f"only {len(events)} of {count} events arrived"
        line = resp.readline().decode().rstrip("\n")
        if line == "":
            if data:
                events.append((name, json.loads("\n".join(data))))
            name, data = None, []
        elif line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data.append(line[len("data: "):])
    return events


def test_the_jobs_watch_stream_pushes_the_filtered_page_when_a_job_changes(tmp_path, dlabd, cli):
    write_job(tmp_path / "sleeper", "name: sleeper\ncommand: [sleep, '300']\n"
              "resources: {cpus: 1, memory: 64Mi}\n")
    write_job(tmp_path / "quick", "name: quick\ncommand: ['true']\nresources: {cpus: 1, memory: 64Mi}\n")
    quick = int(cli("run", tmp_path / "quick" / "job.yaml").stdout.split()[-1])
    dlabd.wait_state(quick, "SUCCEEDED")
    req = urllib.request.Request(dlabd.url + "/api/v1/jobs?watch=true&state=RUNNING,QUEUED",
                                 headers={"Accept": "text/event-stream"})
    dlab_http.sign_request(req, None, *ADMIN_KEY)
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        [(name, page)] = read_events(resp, 1)
        assert name == "jobs" and page["jobs"] == []  # the finished job is filtered out
        sleeper = int(cli("run", tmp_path / "sleeper" / "job.yaml").stdout.split()[-1])
        seen = []
        while not seen or seen[-1] != [(sleeper, "RUNNING")]:
            [(name, page)] = read_events(resp, 1)
            assert name == "jobs"
            seen.append([(j["id"], j["state"]) for j in page["jobs"]])
        cli("cancel", sleeper)
        [(name, page)] = read_events(resp, 1)
        assert page["jobs"] == []  # cancelled: no longer RUNNING or QUEUED
    # The same filters are checked as for a plain list.
    status, body = dlabd.request("GET", "/api/v1/jobs?watch=true&state=BOGUS")
    assert status == 400 and "BOGUS" in body["error"]["message"]
