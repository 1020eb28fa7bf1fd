"""The Slurm backend against a real one-machine Slurm cluster (scripts/slurm-cluster.sh): each
attempt is a batch job running dlab-shim; dlab admits, Slurm places and grants."""
import os
import pathlib
import socket
import subprocess

import pytest

from conftest import REPO, Cli, Dlabd, wait_for, write_job

CLUSTER = REPO / "scripts" / "slurm-cluster.sh"
CONFIG = """
backend: {type: slurm, partition: debug, poll_interval: 200ms}
kill_grace: 2s
"""


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("a private Slurm cluster needs root (slurmd runs jobs as their owners)")
    cluster = tmp_path_factory.mktemp("slurm")
    # Two free ports below the ephemeral range (a port an outgoing connection holds, or one in
    # TIME_WAIT, cannot be bound by slurmctld/slurmd).
    ports = [p for p in range(31000, 32700, 7) if port_is_free(p)][:2]
    up = subprocess.run([str(CLUSTER), "up", str(cluster), "--cpus", "8", "--gpus", "2",
                         "--gpu-type", "a100", "--wait-scheduler"],
                        capture_output=True, text=True, timeout=120,
                        env=dict(os.environ, SLURM_CTLD_PORT=str(ports[0]),
                                 SLURM_D_PORT=str(ports[1])))
    assert up.returncode == 0, up.stderr
    env = dict(line.removeprefix("export ").split("=", 1)
               for line in up.stdout.splitlines() if line.startswith("export "))
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # dlabd, the CLI and squeue below find the cluster
    yield cluster
    subprocess.run([str(CLUSTER), "down", str(cluster)], capture_output=True, timeout=120)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def dlabd(slurm, tmp_path):
    server = Dlabd(tmp_path, CONFIG).start()
    yield server
    server.stop()


@pytest.fixture
def cli(dlabd):
    return Cli(dlabd)


def shell_job(tmp_path, name, script, extra=""):
    return write_job(tmp_path / name, f"name: {name}\ncommand: [/bin/sh, -c, {script!r}]\n"
                                      f"resources: {{cpus: 1, memory: 256Mi}}\n{extra}")


def slurm_job_id(dlabd, job_id, attempt=1):
    path = pathlib.Path(dlabd.data_dir) / "jobs" / str(job_id) / "attempts" / str(attempt)
    return int(wait_for(lambda: (path / "slurm_job_id").exists() and
                        (path / "slurm_job_id").read_text().strip(), what="the Slurm job id"))


def squeue_state(slurm_id):
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%T",
                          f"--jobs={slurm_id}"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def test_a_job_runs_as_a_slurm_batch_job_and_its_log_comes_back(tmp_path, dlabd, cli):
    spec = shell_job(tmp_path, "hello", 'echo "hello from slurm job $SLURM_JOB_ID"')
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED"
    slurm_id = slurm_job_id(dlabd, job["id"])
    assert f"hello from slurm job {slurm_id}" in run.stdout
    assert wait_for(lambda: squeue_state(slurm_id) == "COMPLETED", what="Slurm's COMPLETED")


def test_an_exit_code_fails_the_job_with_it(tmp_path, dlabd, cli):
    spec = shell_job(tmp_path, "fails", "echo about to fail; exit 3")
    run = cli("run", spec, "--follow", check=False, timeout=120)
    assert run.returncode != 0
    job = dlabd.wait_state(cli.json("ls")["jobs"][0]["id"], "FAILED")
    attempt = job["attempt_list"][0]
    assert attempt["exit_code"] == 3, attempt
    assert "about to fail" in run.stdout


def test_cancel_stops_the_running_batch_job(tmp_path, dlabd, cli):
    spec = shell_job(tmp_path, "sleeper",
                     "trap 'echo got SIGTERM; exit 0' TERM; echo started; "
                     "while true; do sleep 0.1; done")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    assert squeue_state(slurm_id) == "RUNNING"
    cli("cancel", job_id)
    dlabd.wait_state(job_id, "CANCELLED", timeout=60)
    assert wait_for(lambda: squeue_state(slurm_id) in ("COMPLETED", "CANCELLED"),
                    what="the Slurm job to end")
    status, log = dlabd.request("GET", f"/api/v1/jobs/{job_id}/logs", raw=True)
    assert status == 200 and b"got SIGTERM" in log, log


def test_a_queued_batch_job_is_cancelled_before_it_starts(tmp_path, dlabd, cli):
    # Holds every CPU of the node, so the second attempt waits in Slurm's queue... unless dlab
    # keeps it in its own queue: either way cancel must end it without a run.
    big = write_job(tmp_path / "big", "name: big\ncommand: [/bin/sh, -c, 'sleep 600']\n"
                                      "resources: {cpus: 8, memory: 256Mi}\n")
    first = cli.json("run", big)["id"]
    dlabd.wait_state(first, "RUNNING")
    second = cli.json("run", big)["id"]
    cli("cancel", second)
    job = dlabd.wait_state(second, "CANCELLED", timeout=60)
    assert not job["attempt_list"] or job["attempt_list"][-1]["state"] == "CANCELLED"
    cli("cancel", first)
    dlabd.wait_state(first, "CANCELLED", timeout=60)


def test_a_gang_gets_the_environment_contract_and_its_share_of_the_granted_gpus(tmp_path, dlabd,
                                                                               cli):
    spec = write_job(tmp_path / "gang", """
name: gang
command: [/bin/sh, -c, 'echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT gpus=$CUDA_VISIBLE_DEVICES"']
tasks: 2
resources: {cpus: 1, memory: 256Mi, gpus: 1, gpu_type: A100}
""")
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = sorted(line for line in run.stdout.splitlines() if "rank=" in line)
    assert len(lines) == 2, run.stdout
    gpus = set()
    for rank, line in enumerate(lines):
        assert f"[rank {rank}] rank={rank} world=2 master=127.0.0.1:" in line, line
        gpu = line.rsplit("gpus=", 1)[1]
        assert gpu.isdigit() and 0 <= int(gpu) < 2, line  # one of the node's two fake GPUs
        gpus.add(gpu)
    assert len(gpus) == 2, f"each task gets a GPU of its own: {lines}"


def test_dlabd_killed_mid_run_reattaches_and_the_job_finishes(tmp_path, dlabd, cli):
    gate = tmp_path / "go"
    spec = shell_job(tmp_path, "survivor",
                     f"echo waiting; while [ ! -e {gate} ]; do sleep 0.1; done; echo through")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    dlabd.kill9()
    assert squeue_state(slurm_id) == "RUNNING", "the batch job outlives dlabd"
    dlabd.start()
    gate.touch()
    job = dlabd.wait_state(job_id, "SUCCEEDED", timeout=60)
    assert len(job["attempt_list"]) == 1
    status, log = dlabd.request("GET", f"/api/v1/jobs/{job_id}/logs", raw=True)
    assert b"through" in log


def test_a_batch_job_cancelled_outside_dlab_is_lost_and_restarted(tmp_path, dlabd,
                                                                            cli):
    spec = shell_job(tmp_path, "doomed", "sleep 600")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    # An operator cancels it outside dlab.
    subprocess.run(["scancel", str(slurm_id)], check=True, timeout=30)
    # The attempt is lost with Slurm's reason, and dlab restarts the job (an infrastructure
    # failure, not counted against max_restarts) as a new batch job.
    job = wait_for(lambda: (lambda j: j if len(j["attempt_list"]) >= 2 else None)(
        dlabd.job(job_id)), timeout=60, what="a second attempt")
    first = job["attempt_list"][0]
    assert first["state"] == "FAILED" and first["failure"] == "infrastructure", first
    assert "outside dlab" in first["reason"] or "CANCELLED" in first["reason"], first["reason"]
    dlabd.wait_state(job_id, "RUNNING", timeout=60)
    assert slurm_job_id(dlabd, job_id, attempt=2) != slurm_id


def test_a_node_failure_loses_the_attempt_with_slurms_reason_and_it_restarts(tmp_path, dlabd,
                                                                             cli):
    spec = shell_job(tmp_path, "unlucky", "sleep 600")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    node = subprocess.run(["sinfo", "--noheader", "--format=%N"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.split()[0]
    update = ["scontrol", "update", f"nodename={node}"]
    subprocess.run(update + ["state=down", "reason=e2e node failure"], check=True, timeout=30)
    try:
        assert wait_for(lambda: squeue_state(slurm_id) == "NODE_FAIL", timeout=60,
                        what="Slurm's NODE_FAIL")
        job = wait_for(lambda: (lambda j: j if len(j["attempt_list"]) >= 2 else None)(
            dlabd.job(job_id)), timeout=60, what="a second attempt")
    finally:
        subprocess.run(update + ["state=resume"], check=True, timeout=30)
    first = job["attempt_list"][0]
    assert first["failure"] == "infrastructure", first
    assert "NODE_FAIL" in first["reason"], first["reason"]
    dlabd.wait_state(job_id, "RUNNING", timeout=60)
