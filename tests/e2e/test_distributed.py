"""Distributed jobs, checkpoints and automatic recovery, against a real dlabd + dlab-shim."""
import json
import os
import re
import signal

from conftest import REPO, wait_for, write_job

DIGITS = REPO / "examples" / "digits"


def task_log(dlabd, job_id, task, attempt=None):
    query = f"task={task}" + (f"&attempt={attempt}" if attempt else "")
    status, body = dlabd.request("GET", f"/api/v1/jobs/{job_id}/logs?{query}", raw=True)
    assert status == 200, body
    return body.decode()


def checkpoints(dlabd, job_id):
    status, body = dlabd.request("GET", f"/api/v1/jobs/{job_id}/checkpoints")
    assert status == 200, body
    return body["checkpoints"]


def series(dlabd, job_id, name):
    status, body = dlabd.request("GET", f"/api/v1/jobs/{job_id}/metrics?name={name}&max_points=10000")
    assert status == 200, body
    return {s["name"]: s for s in body["series"]}.get(name)


TF_CHECK = r'''
import json, os, socket, sys, time
config = json.loads(os.environ["TF_CONFIG"])
role, index = os.environ["DLAB_TASK_ROLE"], int(os.environ["DLAB_TASK_INDEX"])
assert config["task"] == {"type": role, "index": index}, config
cluster = config["cluster"]
assert sorted(cluster) == ["ps", "worker"] and len(cluster["ps"]) == 1 and len(cluster["worker"]) == 2
addresses = cluster["ps"] + cluster["worker"]
assert len(set(addresses)) == 3, addresses                    # a port of its own per task
for a in addresses:
    host, port = a.rsplit(":", 1)
    assert host == "127.0.0.1" and 1024 <= int(port) <= 65535, a
assert os.environ["WORLD_SIZE"] == "3"
with open(os.environ["DLAB_HOSTFILE"]) as f:
    assert f.read() == "127.0.0.1 slots=3\n"
ps_host, ps_port = cluster["ps"][0].rsplit(":", 1)
if role == "ps":
    # A parameter server listens on its address and never ends; the workers end only after they
    # reached it, so the ps has printed before the gang is stopped.
    server = socket.create_server((ps_host, int(ps_port)))
    print("TF_CONFIG ok", role, index, flush=True)
    while True:
        server.accept()[0].close()
deadline = time.monotonic() + 60
while True:
    try:
        socket.create_connection((ps_host, int(ps_port)), timeout=5).close()
        break
    except OSError:
        if time.monotonic() > deadline:
            raise
        time.sleep(0.05)
print("TF_CONFIG ok", role, index, flush=True)
'''


def test_a_gang_larger_than_the_node_is_refused_at_submit(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "big", "name: big\ncommand: 'true'\ntasks: 3\n"
                                       "resources: {cpus: 2, memory: 1Gi}\n")
    run = cli("run", spec, check=False)
    assert run.returncode != 0
    assert "tasks: 3 tasks need 6 CPUs in total, but the largest node has 4" in run.stderr
    status, body = dlabd.request("POST", "/api/v1/jobs", {"spec": {
        "name": "gpus", "command": "true", "tasks": {"worker": 3},
        "resources": {"gpus": 1, "gpu_type": "H100"}}})
    assert status == 400 and body["error"]["message"].startswith("tasks: 3 tasks need 3 H100 GPUs")


def test_ps_worker_job_gets_a_correct_tf_config(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "tf", """
name: tf-config
command: [/usr/bin/python3, check.py]
tasks: {ps: 1, worker: 2}
resources: {cpus: 500m, memory: 256Mi}
""", {"check.py": TF_CHECK})
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    for line in ("[rank 0] TF_CONFIG ok ps 0", "[rank 1] TF_CONFIG ok worker 0",
                 "[rank 2] TF_CONFIG ok worker 1"):
        assert line in run.stdout, run.stdout
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED"
    tasks = job["attempt_list"][0]["tasks"]
    assert [(t["role"], t["end_reason"]) for t in tasks] == [
        ("ps", "stopped"), ("worker", "exited"), ("worker", "exited")]


def test_killed_task_stops_the_gang_and_the_job_resumes_from_its_checkpoint(tmp_path, dlabd, cli):
    spec = (DIGITS / "job-ddp.yaml").read_text().replace("max_restarts: 2", "max_restarts: 0")
    spec = spec.replace('"--epochs", "10"', '"--epochs", "12"')
    code = tmp_path / "digits"
    code.mkdir()
    (code / "train.py").write_text((DIGITS / "train.py").read_text())
    (code / "job.yaml").write_text(spec)
    job_id = int(cli("run", code / "job.yaml").stdout.split()[-1])
    # Wait for two recorded checkpoints (two epochs), then SIGKILL rank 1.
    wait_for(lambda: len(checkpoints(dlabd, job_id)) >= 2, timeout=240, what="two checkpoints")
    started = json.loads((dlabd.data_dir / "jobs" / str(job_id) / "attempts" / "1" /
                          "started.json").read_text())
    last_reported = series(dlabd, job_id, "loss")["latest"]["step"]
    os.kill(started["task_pids"][1], signal.SIGKILL)
    latest = checkpoints(dlabd, job_id)[-1]
    job = dlabd.wait_state(job_id, {"SUCCEEDED", "FAILED"}, timeout=400)
    assert job["state"] == "SUCCEEDED", job["reason"]
    first, second = job["attempt_list"][0], job["attempt_list"][1]
    # The kill came from outside dlab: an infrastructure failure, retried although
    # max_restarts is 0; the gang was stopped as a whole.
    assert first["failure"] == "infrastructure" and not first["restart_counted"]
    assert first["tasks"][1]["signal"] == "SIGKILL"
    assert first["tasks"][0]["end_reason"] in ("stopped", "exited")
    assert second["resumed_from"]["step"] >= latest["step"]
    resumed = second["resumed_from"]["step"]
    log = task_log(dlabd, job_id, 0, attempt=2)
    assert f"resumed from step {resumed} " in log
    assert last_reported - resumed <= 45, "more than one checkpoint interval (an epoch) redone"
    accuracy = float(re.search(r"final test_acc ([0-9.]+)", log).group(1))
    assert accuracy >= 0.95


REPORTER = r'''
import os, sys, time
import dlab
for step in range(1, 401):
    dlab.report(step, value=step * 0.5)
    print("reported", step, flush=True)
    time.sleep(0.01)
print("done", flush=True)
'''


def test_reports_in_flight_survive_a_dlabd_crash(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "r", "name: reporter\ncommand: [/usr/bin/python3, r.py]\n",
                     {"r.py": REPORTER})
    job_id = int(cli("run", spec).stdout.split()[-1])
    wait_for(lambda: (series(dlabd, job_id, "value") or {}).get("count", 0) >= 30,
             timeout=60, what="the first reports")
    dlabd.kill9()
    log = dlabd.data_dir / "jobs" / str(job_id) / "attempts" / "1" / "task-0.log"
    # While dlabd is down the job goes on reporting into the SDK's buffer.
    wait_for(lambda: log.read_text().count("reported") >= 250, timeout=60,
             what="reports made while dlabd is down")
    dlabd.start()
    job = dlabd.wait_state(job_id, {"SUCCEEDED", "FAILED"}, timeout=120)
    assert job["state"] == "SUCCEEDED", job["reason"]
    values = wait_for(lambda: (lambda s: s if s and s["count"] == 400 else None)(
        series(dlabd, job_id, "value")), timeout=60, what="all 400 reports")
    assert [p[0] for p in values["points"]] == list(range(1, 401))
    assert all(p[2] == p[0] * 0.5 for p in values["points"])


def test_user_errors_use_up_max_restarts_but_infrastructure_kills_do_not(tmp_path, dlabd, cli):
    user = write_job(tmp_path / "u", """
name: user-error
command: "echo attempt $DLAB_ATTEMPT; exit 3"
max_restarts: 2
restart_backoff: 100ms
""")
    infra = write_job(tmp_path / "i", """
name: infra
command: 'if [ "$DLAB_ATTEMPT" -le 2 ]; then kill -9 $$; fi; echo survived'
max_restarts: 0
restart_backoff: 100ms
""")
    user_id = int(cli("run", user).stdout.split()[-1])
    infra_id = int(cli("run", infra).stdout.split()[-1])
    job = dlabd.wait_state(user_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "FAILED" and job["attempts"] == 3
    assert [a["failure"] for a in job["attempt_list"]] == ["user"] * 3
    assert "no restarts left (max_restarts 2)" in job["reason"]
    job = dlabd.wait_state(infra_id, {"SUCCEEDED", "FAILED"}, timeout=60)
    assert job["state"] == "SUCCEEDED" and job["attempts"] == 3
    assert [a["failure"] for a in job["attempt_list"][:2]] == ["infrastructure"] * 2
    described = cli("describe", infra_id).stdout
    assert "infrastructure" in described


TB_JOB = r'''
import os, sys, time
sys.path.insert(0, os.getcwd())
from tboard_writer import EventFileWriter
log_dir = os.path.join(os.environ["DLAB_OUTPUT_DIR"], "tensorboard", "run1")
with EventFileWriter(log_dir) as w:
    for step in range(1, 21):
        w.add_scalar("train/loss", 1.0 / step, step)
        w.add_scalar("train/lr", 0.25, step)
        w.flush()
        time.sleep(0.05)
# Stay up until dlab has read the file (the test waits for the curve), at most a minute.
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not os.path.exists("stop"):
    time.sleep(0.1)
'''


def test_tensorboard_event_files_become_curves(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "tb", "name: tb\ncommand: [/usr/bin/python3, tb.py]\n",
                     {"tb.py": TB_JOB,
                      "tboard_writer.py": (REPO / "tests" / "e2e" / "tboard_writer.py").read_text()})
    job_id = int(cli("run", spec).stdout.split()[-1])
    loss = wait_for(lambda: (lambda s: s if s and s["count"] == 20 else None)(
        series(dlabd, job_id, "train/loss")), timeout=60, what="20 TensorBoard scalars")
    assert [p[0] for p in loss["points"]] == list(range(1, 21))
    assert abs(loss["points"][3][2] - 0.25) < 1e-6  # float32 of 1/4
    assert series(dlabd, job_id, "train/lr")["count"] == 20
    cli("cancel", job_id)


def test_cancel_gives_the_job_its_grace_period_to_checkpoint(tmp_path, make_dlabd):
    dlabd = make_dlabd("node: {cpus: 2, memory: 4Gi, gpus: none}\nkill_grace: 30s\n")
    from conftest import Cli
    cli = Cli(dlabd)
    spec = (DIGITS / "job.yaml").read_text().replace('"--epochs", "10"', '"--epochs", "200"')
    code = tmp_path / "digits"
    code.mkdir()
    (code / "train.py").write_text((DIGITS / "train.py").read_text())
    (code / "job.yaml").write_text(spec)
    job_id = int(cli("run", code / "job.yaml").stdout.split()[-1])
    wait_for(lambda: len(checkpoints(dlabd, job_id)) >= 1, timeout=120, what="a checkpoint")
    cli("cancel", job_id)
    job = dlabd.wait_state(job_id, {"CANCELLED", "FAILED", "SUCCEEDED"}, timeout=60)
    assert job["state"] == "CANCELLED"
    log = task_log(dlabd, job_id, 0)
    stopped = int(re.search(r"stopping at step (\d+) on request", log).group(1))
    # The SDK turned SIGTERM into should_stop(); the loop saved a checkpoint of that very step.
    assert checkpoints(dlabd, job_id)[-1]["step"] == stopped
