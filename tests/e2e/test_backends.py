"""The backend contract: the same scenarios against every backend dlabd can run attempts on —
the local one, Slurm (a real one-machine Slurm 22.05 brought up by scripts/slurm-cluster.sh,
where each attempt is a batch job running dlab-shim; "slurm-rest": the same cluster, dlabd
submitting through its slurmrestd instead of sbatch), and Kubernetes (against
tests/e2e/fake_kube.py, a fake API server that runs the pods' commands as local processes;
every object dlabd creates is also checked against the official schemas). Then what only Slurm
or Kubernetes can do to an attempt: keep it queued, cancel it from outside, lose its node,
evict or OOM-kill a pod, fail to pull an image, lose a watch's history."""
import http.client
import http.server
import json
import os
import pathlib
import re
import socket
import subprocess
import threading
import urllib.error
import urllib.request

import pytest

from conftest import BIN, REPO, Cli, Dlabd, private_slurm_cluster, wait_for, write_job
from test_kube_schema import validate_manifests

FAKE_KUBE = REPO / "tests" / "e2e" / "fake_kube.py"
KUBE_NAMESPACE = "e2e"
DIGITS = REPO / "examples" / "digits"
CONFIGS = {
    "local": """
node: {cpus: 8, memory: 16Gi, gpus: [{type: A100, count: 2}]}
kill_grace: 2s
""",
    "slurm": """
backend: {type: slurm, partition: debug, poll_interval: 200ms}
kill_grace: 2s
""",
    "slurm-rest": """
backend: {type: slurm, partition: debug, poll_interval: 200ms, slurmrestd: '%(SLURMRESTD)s'}
kill_grace: 2s
""",
}


@pytest.fixture(scope="module")
def slurm_cluster(tmp_path_factory):
    """One private Slurm cluster for this module: 8 CPUs, 2 fake GPUs of type a100, and
    slurmrestd (SLURMRESTD: its socket)."""
    with private_slurm_cluster(tmp_path_factory.mktemp("slurm"), "--cpus", "8", "--gpus", "2",
                               "--gpu-type", "a100", "--rest") as cluster:
        yield cluster


class FakeKube:
    """The fake API server of one test: one node (8 CPUs, 16Gi, 2 GPUs of type A100), the
    claim dlab-data holding dlabd's data directory; every object created is recorded."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.kubeconfig = tmp_path / "kubeconfig"
        self.recorded = tmp_path / "kube-objects"
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(FAKE_KUBE), "--state-dir", str(tmp_path / "kube-state"),
             "--kubeconfig", str(self.kubeconfig), "--record", str(self.recorded),
             "--node", "node-1:cpu=8,memory=16Gi,gpus=2,labels=dlab.io/gpu-type=A100",
             "--pvc", f"dlab-data={tmp_path / 'data'}"],
            stdout=subprocess.PIPE, stderr=open(tmp_path / "fake-kube.log", "ab"), text=True)
        line = self.proc.stdout.readline()
        assert line.startswith("ready "), (tmp_path / "fake-kube.log").read_text()
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def config(self):
        return f"""
backend:
  type: kubernetes
  kubeconfig: {self.kubeconfig}
  namespace: {KUBE_NAMESPACE}
  image: debian:12
  data_claim: dlab-data
  code_mount: {self.tmp_path / "pod-code"}
  gpu_type_label: dlab.io/gpu-type
  master_port: {free_port()}
kill_grace: 2s
"""

    def call(self, method, path):
        req = urllib.request.Request(self.url + path, method=method,
                                     headers={"Authorization": "Bearer fake-token"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def pods(self, job_name):
        status, body = self.call(
            "GET", f"/api/v1/namespaces/{KUBE_NAMESPACE}/pods?labelSelector=job-name%3D{job_name}")
        assert status == 200, body
        return body["items"]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(params=["local", "slurm", "slurm-rest", "kubernetes"])
def backend(request):
    if request.param.startswith("slurm"):
        request.getfixturevalue("slurm_cluster")
    return request.param


@pytest.fixture
def kube(backend, tmp_path):
    if backend != "kubernetes":
        yield None
        return
    fake = FakeKube(tmp_path)
    yield fake
    fake.stop()
    # Everything dlabd asked the API server to create is valid by the official schemas.
    objects = sorted(fake.recorded.glob("*.json"))
    if objects:
        ok, output = validate_manifests(objects)
        assert ok, output


@pytest.fixture
def dlabd(backend, kube, tmp_path):
    server = Dlabd(tmp_path, kube.config() if kube else CONFIGS[backend] % os.environ).start()
    yield server
    server.stop()


@pytest.fixture
def cli(dlabd):
    return Cli(dlabd)


def shell_job(tmp_path, name, script, extra=""):
    return write_job(tmp_path / name, f"name: {name}\ncommand: [/bin/sh, -c, {script!r}]\n"
                                      f"resources: {{cpus: 1, memory: 256Mi}}\n{extra}")


def attempt_dir(dlabd, job_id, attempt=1):
    return pathlib.Path(dlabd.data_dir) / "jobs" / str(job_id) / "attempts" / str(attempt)


def log_of(dlabd, job_id):
    status, body = dlabd.request("GET", f"/api/v1/jobs/{job_id}/logs", raw=True)
    assert status == 200, body
    return body.decode()


# ---- the contract: every backend ----------------------------------------------------------

def kube_name(dlabd, job_id, attempt=1):
    """The name of the attempt's Job (and Service) on Kubernetes."""
    manifest = attempt_dir(dlabd, job_id, attempt) / "kube-job.json"
    return json.loads(manifest.read_text())["metadata"]["name"]


def test_success_and_its_log(backend, tmp_path, dlabd, cli):
    spec = shell_job(tmp_path, "hello",
                     'echo "hello from ${SLURM_JOB_ID:-this machine}'
                     ' ${JOB_COMPLETION_INDEX:+in pod $(hostname)}"')
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED" and job["exit_code"] == 0
    if backend.startswith("slurm"):  # it ran as the Slurm job dlab recorded
        slurm_id = (attempt_dir(dlabd, job["id"]) / "slurm_job_id").read_text().strip()
        assert f"hello from {slurm_id}" in run.stdout
    elif backend == "kubernetes":  # it ran as rank 0 of the Indexed Job dlab recorded
        assert f"in pod {kube_name(dlabd, job['id'])}-0" in run.stdout, run.stdout
    else:
        assert "hello from this machine" in run.stdout
    assert "hello from" in log_of(dlabd, job["id"])


def test_a_job_does_not_inherit_dlabds_secrets(tmp_path, dlabd, cli):
    # dlabd was started with DLAB_BOOTSTRAP_* (the superadmin's password and access key) and
    # the CLI's DLAB_ACCESS_KEY_ID and DLAB_SECRET_ACCESS_KEY (conftest.Dlabd).
    secrets = "^DLAB_BOOTSTRAP_|^DLAB_ACCESS_KEY_ID=|^DLAB_SECRET_ACCESS_KEY="
    spec = shell_job(tmp_path, "env", f'echo "inherited: $(env | grep -cE "{secrets}")";'
                                      ' echo "path set: ${PATH:+yes}"')
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "path set: yes" in run.stdout and "inherited: 0" in run.stdout, run.stdout


# Submitting through slurmrestd changes nothing else: these run on the other backends only.
not_via_slurmrestd = pytest.mark.parametrize("backend", ["local", "slurm", "kubernetes"],
                                             indirect=True)


@not_via_slurmrestd
def test_the_nodes_api_reports_the_backends_inventory(backend, tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "holder", "name: holder\ncommand: [/bin/sleep, '600']\n"
                                          "resources: {cpus: 1, memory: 256Mi, gpus: 1}\n")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")

    def nodes():
        status, body = dlabd.request("GET", "/api/v1/nodes")
        assert status == 200, body
        return body
    body = nodes()
    assert body["backend"] == backend
    assert body["nodes"] and all(n["name"] and n["cpus"] for n in body["nodes"]), body
    assert sum(len(n["gpus"]) for n in body["nodes"]) >= 2, body  # the gang test needs two
    if backend == "local":  # dlab's own account: what the job holds, and which GPU
        job = dlabd.job(job_id)
        [node] = body["nodes"]
        gpu = job["attempt_list"][-1]["allocation"]["gpus"][0]
        assert body["gpu_holders_known"] and node["cpus_used"] == "1", body
        assert [g["job"] for g in node["gpus"] if g["index"] == gpu] == [job_id], body
    else:  # the cluster manager's account; which job holds which GPU is not known
        assert not body["gpu_holders_known"]
        assert all(g["job"] is None for n in body["nodes"] for g in n["gpus"]), body
    if backend == "slurm":  # sinfo's word and use, read again at most every 2 s
        assert wait_for(lambda: [n for n in nodes()["nodes"]
                                 if n["state"] in ("MIXED", "ALLOCATED") and n["cpus_used"] != "0"],
                        timeout=20, what="the node in use in sinfo")
    cli("cancel", job_id)


def test_failure_with_its_exit_code(tmp_path, dlabd, cli):
    spec = shell_job(tmp_path, "fails", "echo about to fail; exit 3")
    run = cli("run", spec, "--follow", check=False, timeout=120)
    assert run.returncode != 0
    job = dlabd.wait_state(cli.json("ls")["jobs"][0]["id"], "FAILED")
    assert job["exit_code"] == 3 and job["attempt_list"][0]["failure"] == "user", job
    assert job["reason"] == "exited with code 3"
    assert "about to fail" in run.stdout


def test_cancel_gives_the_job_sigterm_and_its_grace(tmp_path, dlabd, cli):
    spec = shell_job(tmp_path, "sleeper",
                     "trap 'echo got SIGTERM; exit 0' TERM; echo started; "
                     "while true; do sleep 0.1; done")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    wait_for(lambda: "started" in log_of(dlabd, job_id), what="the job's first line")
    cli("cancel", job_id)
    job = dlabd.wait_state(job_id, "CANCELLED", timeout=60)
    assert job["reason"] == "cancelled by user"
    assert "got SIGTERM" in log_of(dlabd, job_id)


def test_a_gang_gets_the_environment_contract_and_a_gpu_each(backend, tmp_path, dlabd, cli):
    # Each task waits (up to 30 s) until both have started, so that they hold their GPUs at
    # the same time: on Slurm each task is a job step, and a step that has ended has given its
    # GPU back to the next. (Pods on Kubernetes are not a gang; see below.)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    wait = "" if backend == "kubernetes" else (
        f"touch {barrier}/$RANK; i=0; while [ $(ls {barrier} | wc -l) -lt 2 ] && "
        f"[ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; ")
    spec = write_job(tmp_path / "gang", """
name: gang
command: [/bin/sh, -c, '""" + wait + """echo "rank=$RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT nv=${NVIDIA_VISIBLE_DEVICES:-} gpus=$CUDA_VISIBLE_DEVICES"']
tasks: 2
resources: {cpus: 1, memory: 256Mi, gpus: 1, gpu_type: A100}
""")
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = sorted(line for line in run.stdout.splitlines() if "rank=" in line)
    assert len(lines) == 2, run.stdout
    gpus = set()
    for rank, line in enumerate(lines):
        gpu = line.rsplit("gpus=", 1)[1]
        if backend == "kubernetes":
            # Each pod sees its own GPU as device 0; the device plugin says which one it is.
            name = kube_name(dlabd, cli.json("ls")["jobs"][0]["id"])
            assert f"[rank {rank}] rank={rank} world=2 master={name}-0.{name}:" in line, line
            assert gpu == "0", line
            gpu = re.search(r"nv=(\S*)", line).group(1)
        else:
            assert f"[rank {rank}] rank={rank} world=2 master=127.0.0.1:" in line, line
        assert gpu.isdigit() and 0 <= int(gpu) < 2, line  # one of the node's two GPUs
        gpus.add(gpu)
    if backend != "kubernetes":
        assert len(gpus) == 2, f"each task gets a GPU of its own: {lines}"
    # On Kubernetes the pods of an Indexed Job are not started as a gang: a pod that has already
    # ended has given its GPU back, and the next may get the same one.


RESUMER = r'''
import os, sys
import dlab
previous = dlab.resume_from()
if previous is None:
    path = os.path.join(dlab.checkpoint_dir(), "step-5.txt")
    with open(path, "w") as f:
        f.write("5")
    assert dlab.checkpoint(path, 5) is not None, "dlabd did not record the checkpoint"
    print("saved step 5, now failing", flush=True)
    sys.exit(1)
print("resumed from", os.path.basename(previous), "at step", open(previous).read(), flush=True)
'''


def test_a_failed_attempt_restarts_from_its_checkpoint(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "resume", """
name: resume
command: [/usr/bin/python3, resume.py]
resources: {cpus: 1, memory: 256Mi}
max_restarts: 1
restart_backoff: 100ms
""", {"resume.py": RESUMER})
    job_id = cli.json("run", spec)["id"]
    job = dlabd.wait_state(job_id, {"SUCCEEDED", "FAILED"}, timeout=120)
    assert job["state"] == "SUCCEEDED", job["reason"]
    first, second = job["attempt_list"]
    assert first["exit_code"] == 1 and first["restart_counted"]
    assert second["resumed_from"]["step"] == 5
    assert "resumed from step-5.txt at step 5" in log_of(dlabd, job_id)


def test_dlabd_killed_mid_run_reattaches_and_the_job_finishes(tmp_path, dlabd, cli):
    gate = tmp_path / "go"
    spec = shell_job(tmp_path, "survivor",
                     f"echo waiting; while [ ! -e {gate} ]; do sleep 0.1; done; echo through")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    dlabd.kill9()
    dlabd.start()
    gate.touch()
    job = dlabd.wait_state(job_id, "SUCCEEDED", timeout=60)
    assert len(job["attempt_list"]) == 1, "the attempt outlived dlabd: no second one"
    assert "through" in log_of(dlabd, job_id)


@not_via_slurmrestd
def test_ddp_digits_trains_and_both_ranks_agree(dlabd, cli):
    run = cli("run", DIGITS / "job-ddp.yaml", "--follow", timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED" and job["tasks"] == 2
    assert "[rank 0] rank 0 of 2" in run.stdout and "[rank 1] rank 1 of 2" in run.stdout
    sums, accuracies = [], []
    for task in (0, 1):
        status, body = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs?task={task}",
                                     raw=True)
        assert status == 200, body
        log = body.decode()
        assert not log.startswith("[rank"), "a task's own log is its raw output"
        sums.append(re.search(r"weights sha256 ([0-9a-f]{64})", log).group(1))
        accuracies.append(float(re.search(r"final test_acc ([0-9.]+)", log).group(1)))
    assert sums[0] == sums[1], "DDP ranks ended with different weights"
    assert min(accuracies) >= 0.95, accuracies
    status, body = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/checkpoints")
    assert status == 200 and len(body["checkpoints"]) == 10, body
    metrics = cli("metrics", job["id"]).stdout
    assert re.search(r"^loss\s+450\s", metrics, re.M) and re.search("[▁▂▃▄▅▆▇█]{8,}", metrics)


# ---- what only Slurm does to an attempt ----------------------------------------------------

slurm_only = pytest.mark.parametrize("backend", ["slurm"], indirect=True)


def slurm_job_id(dlabd, job_id, attempt=1):
    path = attempt_dir(dlabd, job_id, attempt) / "slurm_job_id"
    return int(wait_for(lambda: path.exists() and path.read_text().strip(),
                        what="the Slurm job id"))


def squeue_state(slurm_id):
    out = subprocess.run(["squeue", "--noheader", "--states=all", "--format=%T",
                          f"--jobs={slurm_id}"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip()


def second_attempt(dlabd, job_id):
    return wait_for(lambda: (lambda j: j if len(j["attempt_list"]) >= 2 else None)(
        dlabd.job(job_id)), timeout=60, what="a second attempt")


@slurm_only
def test_slurm_the_batch_job_ends_with_the_attempt(tmp_path, dlabd, cli):
    job_id = cli.json("run", shell_job(tmp_path, "sleeper", "sleep 600"))["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    assert squeue_state(slurm_id) == "RUNNING"
    dlabd.kill9()
    assert squeue_state(slurm_id) == "RUNNING", "the batch job outlives dlabd"
    dlabd.start()
    cli("cancel", job_id)
    dlabd.wait_state(job_id, "CANCELLED", timeout=60)
    assert wait_for(lambda: squeue_state(slurm_id) in ("COMPLETED", "CANCELLED"),
                    what="the Slurm job to end")


@slurm_only
def test_slurm_a_gangs_steps_fail_together_and_are_cancelled_with_sigterm(tmp_path, dlabd, cli):
    # Each task is a Slurm step of its own: a failed one stops the other, and a cancel reaches
    # every task as a SIGTERM it can act on (not srun's kill of its step).
    waiter = ('trap "echo rank $RANK got TERM; exit 0" TERM; echo rank $RANK ready; '
              f'touch {tmp_path}/ready-$RANK; while true; do sleep 0.1; done')
    # Rank 1 fails once rank 0 is waiting with its trap set.
    failing = write_job(tmp_path / "failing", f"""
name: failing
command: [/bin/sh, -c, 'if [ "$RANK" = 1 ]; then while [ ! -e {tmp_path}/ready-0 ]; do sleep 0.1; done; exit 3; fi; {waiter}']
tasks: 2
resources: {{cpus: 1, memory: 256Mi}}
""")
    job = dlabd.wait_state(cli.json("run", failing)["id"], {"FAILED", "SUCCEEDED"}, timeout=90)
    assert job["state"] == "FAILED", job
    assert "task 1 exited with code 3; the other tasks were stopped" in job["reason"], job
    assert "[rank 0] rank 0 got TERM" in log_of(dlabd, job["id"])
    steady = write_job(tmp_path / "steady", f"""
name: steady
command: [/bin/sh, -c, '{waiter}']
tasks: 2
resources: {{cpus: 1, memory: 256Mi}}
""")
    job_id = cli.json("run", steady)["id"]
    wait_for(lambda: log_of(dlabd, job_id).count(" ready") == 2, timeout=60,
             what="both tasks to start")
    cli("cancel", job_id)
    dlabd.wait_state(job_id, "CANCELLED", timeout=60)
    log = log_of(dlabd, job_id)
    assert "[rank 0] rank 0 got TERM" in log and "[rank 1] rank 1 got TERM" in log, log


@slurm_only
def test_slurm_a_job_cancelled_before_it_runs_never_starts(tmp_path, dlabd, cli):
    big = write_job(tmp_path / "big", "name: big\ncommand: [/bin/sh, -c, 'sleep 600']\n"
                                      "resources: {cpus: 8, memory: 256Mi}\n")
    first = cli.json("run", big)["id"]
    dlabd.wait_state(first, "RUNNING")
    second = cli.json("run", big)["id"]  # waits: the node's 8 CPUs are taken
    cli("cancel", second)
    job = dlabd.wait_state(second, "CANCELLED", timeout=60)
    assert all(a["start_time"] is None for a in job["attempt_list"]), job
    cli("cancel", first)
    dlabd.wait_state(first, "CANCELLED", timeout=60)


@slurm_only
def test_slurm_a_job_cancelled_outside_dlab_is_lost_and_restarted(tmp_path, dlabd, cli):
    job_id = cli.json("run", shell_job(tmp_path, "doomed", "sleep 600"))["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    subprocess.run(["scancel", str(slurm_id)], check=True, timeout=30)  # an operator's
    job = second_attempt(dlabd, job_id)
    first = job["attempt_list"][0]
    # An infrastructure failure: restarted without counting against max_restarts.
    assert first["state"] == "FAILED" and first["failure"] == "infrastructure", first
    assert "slurm: the job was cancelled outside dlab (CANCELLED)" in first["reason"], first
    dlabd.wait_state(job_id, "RUNNING", timeout=60)
    assert slurm_job_id(dlabd, job_id, attempt=2) != slurm_id


@slurm_only
def test_slurm_a_node_failure_is_recorded_with_slurms_reason_and_restarted(tmp_path, dlabd,
                                                                           cli):
    job_id = cli.json("run", shell_job(tmp_path, "unlucky", "sleep 600"))["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    node = subprocess.run(["sinfo", "--noheader", "--format=%N"], capture_output=True, text=True,
                          check=True, timeout=30).stdout.split()[0]
    update = ["scontrol", "update", f"nodename={node}"]
    subprocess.run(update + ["state=down", "reason=e2e node failure"], check=True, timeout=30)
    try:
        assert wait_for(lambda: squeue_state(slurm_id) == "NODE_FAIL", timeout=60,
                        what="Slurm's NODE_FAIL")
        job = second_attempt(dlabd, job_id)
    finally:
        subprocess.run(update + ["state=resume"], check=True, timeout=30)
    first = job["attempt_list"][0]
    assert first["failure"] == "infrastructure", first
    assert "NODE_FAIL" in first["reason"], first["reason"]
    dlabd.wait_state(job_id, "RUNNING", timeout=60)


@slurm_only
def test_slurm_an_attempt_whose_job_id_was_never_written_is_found_by_its_name(tmp_path, dlabd,
                                                                              cli):
    # As if dlabd had died between sbatch and writing the id down: the restarted dlabd finds the
    # batch job by its name and follows it, instead of starting the attempt a second time.
    gate = tmp_path / "go"
    spec = shell_job(tmp_path, "orphan", f"while [ ! -e {gate} ]; do sleep 0.1; done; echo through")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    slurm_id = slurm_job_id(dlabd, job_id)
    dlabd.kill9()
    id_file = attempt_dir(dlabd, job_id) / "slurm_job_id"
    id_file.unlink()
    dlabd.start()
    gate.touch()
    job = dlabd.wait_state(job_id, "SUCCEEDED", timeout=60)
    assert len(job["attempt_list"]) == 1
    assert int(id_file.read_text()) == slurm_id


def test_slurmrestd_a_refused_submission_fails_the_attempt_with_slurms_reason(slurm_cluster,
                                                                              tmp_path):
    # An operator has drained the partition: slurmrestd refuses the job, and the attempt ends
    # with Slurm's own words, as an infrastructure failure (retried under max_infra_restarts).
    server = Dlabd(tmp_path, CONFIGS["slurm-rest"] % os.environ).start()
    update = ["scontrol", "update", "partitionname=debug"]
    subprocess.run(update + ["state=drain"], check=True, timeout=30)
    try:
        spec = shell_job(tmp_path, "refused", "echo never", "max_infra_restarts: 0\n")
        job_id = Cli(server).json("run", spec)["id"]
        job = server.wait_state(job_id, {"FAILED", "SUCCEEDED"}, timeout=60)
    finally:
        subprocess.run(update + ["state=up"], check=True, timeout=30)
        server.stop()
    assert job["state"] == "FAILED", job
    assert job["attempt_list"][0]["failure"] == "infrastructure", job
    assert job["reason"].startswith("cannot submit the attempt to Slurm: slurmrestd refused "
                                    "the submission (HTTP "), job["reason"]
    assert "Required partition not available (inactive or drain)" in job["reason"], job["reason"]


def test_slurmrestd_that_cannot_be_reached_stops_dlabd_at_start(slurm_cluster, tmp_path):
    config = tmp_path / "dlabd.yaml"
    config.write_text(f"backend: {{type: slurm, slurmrestd: 'unix:{tmp_path}/none.sock'}}\n")
    r = subprocess.run([str(BIN / "dlabd"), "--listen", "127.0.0.1:0", "--data-dir",
                        str(tmp_path / "data"), "--config", str(config)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert f"slurmrestd at unix:{tmp_path}/none.sock: Couldn't connect to server" in r.stderr, \
        r.stderr


class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(60)
        self.sock.connect(self.unix_path)


class JwtGate:
    """slurmrestd as a site runs it for remote clients (auth/jwt, on a TCP port), played in
    front of the test cluster's: a request without the expected X-SLURM-USER-NAME and
    X-SLURM-USER-TOKEN gets 401; the rest go on to the real slurmrestd's unix socket."""

    def __init__(self, socket_path, user, token):
        self.user, self.token, self.seen = user, token, []
        gate = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                user = self.headers.get("X-SLURM-USER-NAME")
                token = self.headers.get("X-SLURM-USER-TOKEN")
                gate.seen.append((self.command, self.path, user, token))
                if (user, token) != (gate.user, gate.token):
                    status, data = 401, b'{"errors": [{"error": "Authentication failure"}]}'
                else:
                    conn = UnixHTTPConnection(socket_path)
                    conn.request(self.command, self.path, body=body,
                                 headers={"Content-Type": "application/json"} if body else {})
                    resp = conn.getresponse()
                    status, data = resp.status, resp.read()
                    conn.close()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = forward

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwt_gate(slurm_cluster):
    gate = JwtGate(os.environ["SLURMRESTD"].removeprefix("unix:"), "dlab-svc", "token-1")
    yield gate
    gate.stop()


def jwt_config(gate, token_file):
    return (f"backend: {{type: slurm, partition: debug, poll_interval: 200ms, "
            f"slurmrestd: '{gate.url}', slurmrestd_token_file: '{token_file}', "
            f"slurmrestd_user: dlab-svc}}\n")


def test_slurmrestd_over_http_sends_the_jwt_and_reads_a_renewed_one(jwt_gate, tmp_path):
    token_file = tmp_path / "slurm.jwt"
    token_file.write_text("token-1\n")
    server = Dlabd(tmp_path, jwt_config(jwt_gate, token_file)).start()
    try:
        cli = Cli(server)
        first = cli.json("run", shell_job(tmp_path, "first", "echo one"))["id"]
        assert server.wait_state(first, {"SUCCEEDED", "FAILED"})["state"] == "SUCCEEDED"
        assert ("GET", "/slurm/v0.0.38/ping", "dlab-svc", "token-1") in jwt_gate.seen
        assert ("POST", "/slurm/v0.0.38/job/submit", "dlab-svc", "token-1") in jwt_gate.seen
        # The site renews the token (they expire): the next submission carries the new one.
        token_file.write_text("token-2\n")
        jwt_gate.token = "token-2"
        second = cli.json("run", shell_job(tmp_path, "second", "echo two"))["id"]
        assert server.wait_state(second, {"SUCCEEDED", "FAILED"})["state"] == "SUCCEEDED"
        assert jwt_gate.seen[-1] == ("POST", "/slurm/v0.0.38/job/submit", "dlab-svc", "token-2")
    finally:
        server.stop()


def test_slurmrestd_refusing_the_jwt_stops_dlabd_at_start(jwt_gate, tmp_path):
    token_file = tmp_path / "slurm.jwt"
    token_file.write_text("expired\n")
    config = tmp_path / "dlabd.yaml"
    config.write_text(jwt_config(jwt_gate, token_file))
    r = subprocess.run([str(BIN / "dlabd"), "--listen", "127.0.0.1:0", "--data-dir",
                        str(tmp_path / "data"), "--config", str(config)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert f"slurmrestd at {jwt_gate.url} refused dlabd (HTTP 401)" in r.stderr, r.stderr
    assert jwt_gate.seen == [("GET", "/slurm/v0.0.38/ping", "dlab-svc", "expired")]


# ---- what only Kubernetes does to an attempt ------------------------------------------------

kube_only = pytest.mark.parametrize("backend", ["kubernetes"], indirect=True)


def running_pod(kube, name, index=0):
    def find():
        for pod in kube.pods(name):
            statuses = pod["status"].get("containerStatuses", [])
            if (pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"]
                    == str(index) and statuses and "running" in statuses[0]["state"]):
                return pod["metadata"]["name"]
        return None
    return wait_for(find, what=f"pod {index} of {name} to run")


@kube_only
def test_kube_cancel_deletes_the_job_and_its_service(tmp_path, kube, dlabd, cli):
    job_id = cli.json("run", shell_job(tmp_path, "sleeper", "sleep 600"))["id"]
    dlabd.wait_state(job_id, "RUNNING")
    name = kube_name(dlabd, job_id)
    assert kube.call("GET", f"/api/v1/namespaces/{KUBE_NAMESPACE}/services/{name}")[0] == 200
    cli("cancel", job_id)
    job = dlabd.wait_state(job_id, "CANCELLED", timeout=60)
    assert job["reason"] == "cancelled by user"
    assert wait_for(lambda: kube.call(
        "GET", f"/apis/batch/v1/namespaces/{KUBE_NAMESPACE}/jobs/{name}")[0] == 404)
    assert wait_for(lambda: kube.call(  # garbage-collected through its ownerReference
        "GET", f"/api/v1/namespaces/{KUBE_NAMESPACE}/services/{name}")[0] == 404)


@kube_only
@pytest.mark.parametrize("hook,reason", [
    ("oom", "out of memory"),
    ("evict", "kubernetes: pod {pod} was evicted: The node was low on resource: memory"),
])
def test_kube_an_oom_kill_or_an_eviction_is_an_infrastructure_failure_and_restarts(
        tmp_path, kube, dlabd, cli, hook, reason):
    job_id = cli.json("run", shell_job(tmp_path, "unlucky", "sleep 600"))["id"]
    dlabd.wait_state(job_id, "RUNNING")
    pod = running_pod(kube, kube_name(dlabd, job_id))
    assert kube.call("POST", f"/fake/pods/{KUBE_NAMESPACE}/{pod}/{hook}")[0] == 200
    first = second_attempt(dlabd, job_id)["attempt_list"][0]
    assert first["failure"] == "infrastructure", first
    assert first["reason"].startswith(reason.format(pod=pod)), first
    dlabd.wait_state(job_id, "RUNNING", timeout=60)


@kube_only
def test_kube_an_image_that_cannot_be_pulled_fails_the_job(tmp_path, kube, dlabd, cli):
    spec = shell_job(tmp_path, "typo", "echo never", extra="image: missing/trainer:1\n")
    job_id = cli.json("run", spec)["id"]
    job = dlabd.wait_state(job_id, "FAILED", timeout=60)
    assert job["reason"].startswith("cannot start command: kubernetes: pod ") and \
        "ImagePullBackOff" in job["reason"], job["reason"]
    assert len(job["attempt_list"]) == 1, "not restarted"
    name = kube_name(dlabd, job_id)
    assert wait_for(lambda: kube.call(  # and dlab took its Job back
        "GET", f"/apis/batch/v1/namespaces/{KUBE_NAMESPACE}/jobs/{name}")[0] == 404)


@kube_only
def test_kube_watches_survive_a_lost_history_and_dropped_connections(tmp_path, kube, dlabd, cli):
    gate = tmp_path / "go"
    spec = shell_job(tmp_path, "patient",
                     f"echo waiting; while [ ! -e {gate} ]; do sleep 0.1; done; echo through")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    # The API server forgets the history dlabd's watches would resume from (410 Gone next
    # time), then drops them: dlabd must list again to see the job end.
    assert kube.call("POST", "/fake/compact")[0] == 200
    assert kube.call("POST", "/fake/close-watches")[0] == 200
    gate.touch()
    job = dlabd.wait_state(job_id, "SUCCEEDED", timeout=60)
    assert len(job["attempt_list"]) == 1
    assert "waiting\nthrough" in log_of(dlabd, job_id)


@kube_only
def test_kube_roles_run_with_their_commands_and_the_ps_is_stopped_at_the_end(tmp_path, kube,
                                                                            dlabd, cli):
    spec = write_job(tmp_path / "roles", """
name: roles
command: [/bin/sh, -c, 'echo "worker $DLAB_TASK_INDEX of $TF_CONFIG"']
tasks:
  ps: {count: 1, command: [/bin/sh, -c, 'echo "ps up"; exec sleep 600']}
  worker: 2
resources: {cpus: 1, memory: 256Mi}
""")
    run = cli("run", spec, "--follow", timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    job = cli.json("ls")["jobs"][0]
    name = kube_name(dlabd, job["id"])
    assert job["state"] == "SUCCEEDED", job
    # (The ps's own line may be missing: Kubernetes deletes its pod once the workers are done,
    # and a log dlabd had not read by then is gone with it.)
    for index in (0, 1):
        line = next(l for l in run.stdout.splitlines() if f"worker {index} of" in l)
        config = json.loads(line.split(" of ", 1)[1])
        assert config["task"] == {"type": "worker", "index": index}
        assert config["cluster"]["ps"] == [f"{name}-0.{name}:2222"]


@kube_only
def test_kube_a_job_without_an_image_is_refused_when_there_is_no_default(tmp_path, kube):
    own = tmp_path / "no-default-image"
    own.mkdir()
    (tmp_path / "data").mkdir()  # the claim's contents (the fixture's dlabd never started)
    config = "\n".join(line for line in kube.config().splitlines() if "image:" not in line)
    server = Dlabd(own, config).start()
    try:
        spec = {"name": "bare", "command": ["true"], "resources": {"cpus": 1, "memory": "64Mi"}}
        status, body = server.request("POST", "/api/v1/jobs", {"spec": spec})
        assert status == 400, body
        assert body["error"]["message"].startswith("image: is required on this cluster"), body
        status, body = server.request("POST", "/api/v1/jobs",
                                      {"spec": dict(spec, image="debian:12")})
        assert status == 201, body
        server.wait_state(body["id"], "SUCCEEDED", timeout=60)
    finally:
        server.stop()
