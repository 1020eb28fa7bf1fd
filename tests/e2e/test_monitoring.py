"""Monitoring: telemetry in the API and /metrics (DCGM names), and alert rules that fire once
and resolve once, delivered to a webhook. The GPU readings come from a telemetry file the test
writes (monitoring.telemetry_file); the webhook is a local HTTP server in the test."""
import http.server
import json
import threading

import pytest

from conftest import Cli, Dlabd, wait_for, write_job


class Webhook:
    """Collects the JSON bodies POSTed to it; answers 500 to the first `failures` of them."""

    def __init__(self, failures=0):
        self.bodies = []
        self.failures = failures
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if outer.failures > 0:
                    outer.failures -= 1
                    self.send_response(500)
                else:
                    outer.bodies.append(body)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def states(self, rule):
        return [(b["key"], b["state"]) for b in self.bodies if b["rule"] == rule]

    def close(self):
        self.server.shutdown()


@pytest.fixture
def webhook():
    hook = Webhook(failures=1)  # the first delivery is retried
    yield hook
    hook.close()


@pytest.fixture
def telemetry(tmp_path):
    path = tmp_path / "gpus.json"

    def write(temperature, utilization=50):
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"gpus": [
            {"index": 0, "uuid": "GPU-0", "model": "NVIDIA H100 80GB HBM3",
             "utilization_pct": utilization, "temperature_c": temperature,
             "memory_used_bytes": 1 << 30, "memory_total_bytes": 80 << 30, "power_w": 300},
            {"index": 1, "uuid": "GPU-1", "model": "NVIDIA H100 80GB HBM3"}]}))
        tmp.replace(path)
    write(60)
    write.path = path
    return write


@pytest.fixture
def dlabd(tmp_path, telemetry, webhook):
    server = Dlabd(tmp_path, f"""
node: {{cpus: 4, memory: 8Gi, gpus: [{{type: H100, count: 2}}]}}
monitoring: {{interval: 200ms, window: 1m, telemetry_file: {telemetry.path}}}
alerts:
  rules:
    - {{name: hot-gpu, kind: gpu_temperature_above, threshold: 85, webhook: "{webhook.url}"}}
    - {{name: failed-job, kind: job_failed, webhook: "{webhook.url}"}}
""").start()
    yield server
    server.stop()


def test_telemetry_in_the_api_and_in_metrics(dlabd, telemetry):
    def latest():
        status, body = dlabd.request("GET", "/api/v1/telemetry?since=1m")
        assert status == 200, body
        return body["latest"]
    sample = wait_for(latest, what="a telemetry sample")
    gpu0, gpu1 = sample["gpus"]
    assert gpu0["temperature_c"] == 60 and gpu0["memory_total_bytes"] == 80 << 30
    assert gpu1["temperature_c"] is None and gpu1["utilization_pct"] is None  # not available
    assert sample["host"]["memory_total_bytes"] > 0
    status, body = dlabd.request("GET", "/api/v1/telemetry?since=soon")
    assert status == 400 and body["error"]["message"].startswith("since: must be"), body
    status, metrics = dlabd.request("GET", "/metrics", raw=True)
    metrics = metrics.decode()
    assert 'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-0",device="nvidia0",' \
           'modelName="NVIDIA H100 80GB HBM3",Hostname="localhost"} 60' in metrics
    assert 'DCGM_FI_DEV_FB_USED{gpu="0"' in metrics and 'gpu="1"' not in metrics
    assert "dlab_host_memory_total_bytes" in metrics


def test_a_hot_gpu_fires_once_and_resolves_once_at_the_webhook(dlabd, telemetry, webhook):
    telemetry(91)
    wait_for(lambda: webhook.states("hot-gpu") == [("localhost/gpu 0", "firing")],
             what="the firing alert at the webhook (after one failed delivery)")
    status, body = dlabd.request("GET", "/api/v1/alerts")
    assert status == 200 and [a["rule"] for a in body["firing"]] == ["hot-gpu"], body
    assert body["firing"][0]["message"] == "GPU 0 of localhost at 91 C (limit 85 C)"
    telemetry(70)
    wait_for(lambda: len(webhook.states("hot-gpu")) == 2, what="the resolved alert")
    assert webhook.states("hot-gpu") == [("localhost/gpu 0", "firing"),
                                         ("localhost/gpu 0", "resolved")]
    status, body = dlabd.request("GET", "/api/v1/alerts")
    assert body["firing"] == [] and body["webhooks"]["delivered"] == 2, body
    status, metrics = dlabd.request("GET", "/metrics", raw=True)
    assert b"dlab_alerts_firing 0" in metrics


def test_a_failed_job_fires_once(tmp_path, dlabd, webhook):
    spec = write_job(tmp_path / "fails", "name: fails\ncommand: [/bin/sh, -c, 'exit 4']\n"
                                         "resources: {cpus: 1, memory: 64Mi}\n")
    job_id = Cli(dlabd).json("run", spec)["id"]
    dlabd.wait_state(job_id, "FAILED")
    wait_for(lambda: webhook.states("failed-job") == [(f"job {job_id}", "firing")],
             what="the job_failed alert")
    body = next(b for b in webhook.bodies if b["rule"] == "failed-job")
    assert body["message"] == f"job {job_id} (fails) failed: exited with code 4", body


def gpu_rows(frame):
    """The rows of `dlab top`'s GPU table by GPU index, each split into its columns."""
    lines = frame.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("GPU  MODEL"))
    rows = {}
    for line in lines[header + 1:]:
        if not line or line.startswith("GPU readings:"):
            break
        columns = [c for c in line.split("  ") if c.strip()]
        rows[int(columns[0])] = [c.strip() for c in columns]
    return rows


def test_gpu_utilisation_is_recorded_with_the_job_and_dlab_top_shows_who_holds_what(
        tmp_path, dlabd, telemetry):
    cli = Cli(dlabd)
    jobs = []
    for name in ("first", "second"):  # one GPU each: both GPUs are held
        spec = write_job(tmp_path / name, f"name: {name}\ncommand: [/bin/sleep, '120']\n"
                                          "resources: {cpus: 1, memory: 64Mi, gpus: 1}\n")
        jobs.append(cli.json("run", spec)["id"])
    holder = {}
    for job_id in jobs:
        job = dlabd.wait_state(job_id, "RUNNING")
        holder[job["attempt_list"][-1]["allocation"]["gpus"][0]] = job_id
    assert sorted(holder) == [0, 1], holder

    def telemetry_knows_the_holders():
        status, body = dlabd.request("GET", "/api/v1/telemetry?since=1s")
        assert status == 200, body
        gpus = (body["latest"] or {}).get("gpus", [])
        return gpus if [g["job"] for g in gpus] == [holder[0], holder[1]] else None
    wait_for(telemetry_knows_the_holders, what="each GPU's job in the telemetry")

    frame = cli("top", "--once").stdout
    assert "\x1b" not in frame, frame
    assert frame.startswith("node localhost  sampled "), frame
    assert "\nhost  cpu " in frame, frame
    rows = gpu_rows(frame)
    assert rows[0] == ["0", "NVIDIA H100 80GB HBM3", "50%", "1.0 / 80.0 GiB", "60 C", "300 W",
                       str(holder[0]), "first" if holder[0] == jobs[0] else "second",
                       "admin"], frame
    assert rows[1][2:6] == ["n/a", "n/a", "n/a", "n/a"], frame  # no readings: never 0
    assert rows[1][6] == str(holder[1]), frame

    # The job on GPU 0 has its GPU's utilisation as a series, stepped in seconds since its
    # start; the job on GPU 1 (no readings) has none.
    def gpu_series(job_id):
        status, body = dlabd.request("GET", f"/api/v1/jobs/{job_id}/metrics")
        assert status == 200, body
        return {s["name"]: s for s in body["series"]}
    series = wait_for(lambda: gpu_series(holder[0]).get("system/gpu_utilization_pct"),
                      what="the GPU utilisation series of the job on GPU 0")
    assert series["latest"]["value"] == 50 and 0 <= series["latest"]["step"] < 120, series
    memory = gpu_series(holder[0])["system/gpu_memory_used_pct"]
    assert memory["latest"]["value"] == 1.25, memory  # 1 GiB of 80
    assert gpu_series(holder[1]) == {}
