"""Preemption on the real local backend: a high-priority job stops a running low-priority one,
which saves a checkpoint in its grace period, waits in the queue, resumes from the checkpoint and
still succeeds (also when dlabd died and restarted while it ran); fair share does the same for a tenant below its share, and gittins for a fresh
job when the running one has outlived the jobs that ended before (learned from the database
across a restart)."""
import pytest

from conftest import wait_for

CONFIG = """
listen: 127.0.0.1:0
node:
  cpus: 2
  memory: 4Gi
  gpus: [{type: H100, count: 2}]
kill_grace: 10s
scheduler:
  policy: priority
  params: {preemption.min_runtime: 0}
"""

# Counts to 100, a step every 50 ms; on SIGTERM it saves its step as a checkpoint and exits 0.
TRAIN = r'''
import os, sys, time
import dlab
start = 0
if dlab.resume_from():
    start = int(open(dlab.resume_from()).read())
    print("resumed from step", start, flush=True)
step = start
while step < 100:
    step += 1
    dlab.report(step, progress=step)
    if step == 5:
        print("warmed up", flush=True)
    time.sleep(0.05)
    if dlab.should_stop():
        path = os.path.join(dlab.checkpoint_dir(), f"step-{step}")
        with open(path, "w") as f:
            f.write(str(step))
        dlab.checkpoint(path, step)
        print("checkpointed at step", step, flush=True)
        sys.exit(0)
print("finished at step", step, flush=True)
'''


@pytest.mark.parametrize("restart", [False, True], ids=["", "after-dlabd-restarts"])
def test_high_priority_job_preempts_a_low_priority_one_that_resumes(make_dlabd, restart):
    server = make_dlabd(CONFIG)
    steps = 400 if restart else 100  # long enough to be still running after the restart
    _, low = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "low", "priority": 0, "resources": {"cpus": 1, "gpus": 2},
        "command": ["/usr/bin/python3", "-c", TRAIN.replace("step < 100", f"step < {steps}")]}})
    server.wait_state(low["id"], "RUNNING")
    log1 = server.data_dir / "jobs" / str(low["id"]) / "attempts" / "1" / "task-0.log"
    wait_for(lambda: log1.exists() and "warmed up" in log1.read_text(), what="the low job to run")
    if restart:
        # dlabd dies and starts again while the low job runs on: the restarted dlabd
        # reattaches it, and it must still be a job it can preempt.
        server.kill9()
        server.start()
        assert server.job(low["id"])["state"] == "RUNNING"

    # Both GPUs are taken: the high-priority job can start only by preempting.
    status, high = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "high", "priority": 10, "resources": {"cpus": 1, "gpus": 2},
        "command": "echo high ran"}})
    assert status == 201
    done = server.wait_state(high["id"], "SUCCEEDED", timeout=60)
    assert done["exit_code"] == 0

    final = server.wait_state(low["id"], {"SUCCEEDED", "FAILED"}, timeout=120)
    assert final["state"] == "SUCCEEDED", final["reason"]
    assert len(final["attempt_list"]) == 2, "the low job was not preempted"
    first, second = final["attempt_list"]
    assert first["state"] == "PREEMPTED"
    assert first["reason"].startswith(f"preempted for job {high['id']} (priority 10 > 0)")
    assert "requeued" in first["reason"]
    assert first["failure"] in ("", None) and not first["restart_counted"]
    # The victim saved a checkpoint in its grace period and the second attempt resumed from it.
    text1 = log1.read_text()
    assert "checkpointed at step" in text1, text1
    saved = int(text1.split("checkpointed at step")[1].split()[0])
    assert second["resumed_from"]["step"] == saved
    log2 = (server.data_dir / "jobs" / str(low["id"]) / "attempts" / "2" / "task-0.log").read_text()
    assert f"resumed from step {saved}" in log2 and f"finished at step {steps}" in log2
    # The high job started while the low one was stopped: before the second attempt.
    assert done["start_time"] <= second["start_time"]

    # Its events tell the story: preempted, queued again, running again.
    status, events = server.request("GET", f"/api/v1/jobs/{low['id']}/events")
    assert status == 200
    states = [e["to"] for e in events["events"]]
    assert states[states.index("PREEMPTED"):] == ["PREEMPTED", "QUEUED", "STARTING", "RUNNING",
                                                  "SUCCEEDED"], states


def test_fifo_never_preempts(tmp_path, make_dlabd):
    server = make_dlabd(CONFIG.replace("policy: priority", "policy: fifo")
                        .replace("params: {preemption.min_runtime: 0}", ""))
    _, low = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "low", "resources": {"cpus": 1, "gpus": 2},
        "command": "sleep 30"}})
    server.wait_state(low["id"], "RUNNING")
    _, high = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "high", "priority": 10, "resources": {"cpus": 1, "gpus": 2}, "command": "true"}})
    job = wait_for(lambda: (lambda j: j if j["reason"].startswith("waiting for resources") else None)(
        server.job(high["id"])), what="the high job to wait")
    assert job["state"] == "QUEUED"
    assert server.job(low["id"])["state"] == "RUNNING"
    server.request("POST", f"/api/v1/jobs/{low['id']}/cancel")
    assert server.wait_state(high["id"], "SUCCEEDED")["exit_code"] == 0


FAIR_CONFIG = CONFIG.replace("policy: priority", "policy: fair-share").replace(
    "{preemption.min_runtime: 0}", "{preemption.min_runtime: 0, fair_share.half_life: 0}")


def test_fair_share_takes_a_gpu_back_from_a_tenant_above_its_share(make_dlabd):
    # Tenant alpha holds both GPUs when beta asks for one: alpha is entitled to 1 of 2 (demands
    # 2 and 1), so one of its jobs is preempted for beta's; it checkpoints, waits and resumes.
    from tenancy import create_tenant, create_user, submit
    server = make_dlabd(FAIR_CONFIG)
    for tenant in ("alpha", "beta"):
        create_tenant(server, tenant)
    ann = create_user(server, "ann", "alpha", "member")
    bob = create_user(server, "bob", "beta", "member")
    alpha = []
    for name in ("a1", "a2"):
        status, job = submit(server, {"name": name, "resources": {"cpus": 1, "gpus": 1},
                                      "command": ["/usr/bin/python3", "-c", TRAIN]},
                             credentials=ann)
        assert status == 201, job
        alpha.append(job["id"])
    for job_id in alpha:
        server.wait_state(job_id, "RUNNING")
    logs = [server.data_dir / "jobs" / str(j) / "attempts" / "1" / "task-0.log" for j in alpha]
    wait_for(lambda: all(p.exists() and "warmed up" in p.read_text() for p in logs),
             what="alpha's jobs to run")

    status, beta = submit(server, {"name": "b1", "resources": {"cpus": 1, "gpus": 1},
                                   "command": "echo beta ran"}, credentials=bob)
    assert status == 201, beta
    assert server.wait_state(beta["id"], "SUCCEEDED", timeout=60)["exit_code"] == 0

    finals = [server.wait_state(j, {"SUCCEEDED", "FAILED"}, timeout=120) for j in alpha]
    assert all(f["state"] == "SUCCEEDED" for f in finals), [f["reason"] for f in finals]
    victims = [f for f in finals if len(f["attempt_list"]) > 1]
    assert len(victims) == 1, [f["attempt_list"] for f in finals]
    first, second = victims[0]["attempt_list"][:2]
    assert first["state"] == "PREEMPTED"
    assert first["reason"].startswith(f"preempted for job {beta['id']} (fair share: tenant "), \
        first["reason"]
    assert second["resumed_from"] is not None


GITTINS_CONFIG = CONFIG.replace("count: 2", "count: 64").replace("cpus: 2", "cpus: 4").replace(
    "policy: priority", "policy: gittins").replace(
    "{preemption.min_runtime: 0}", "{preemption.min_runtime: 0, gittins.min_samples: 3}")


def test_gittins_preempts_a_job_that_outlived_the_jobs_that_ended_before_a_restart(make_dlabd):
    # Three jobs of about 100 GPU-seconds end (32 GPUs for 3 s); dlabd restarts and learns their
    # sizes from its database. A job that has run past them (48 GPUs, 10 s) is then likely long:
    # its Gittins index falls to 0, below a fresh job's, which preempts it; it checkpoints,
    # waits and resumes.
    server = make_dlabd(GITTINS_CONFIG)
    short = []
    for i in range(3):
        status, job = server.request("POST", "/api/v1/jobs", {"spec": {
            "name": f"short{i}", "resources": {"cpus": 1, "gpus": 32}, "command": "sleep 3"}})
        assert status == 201, job
        short.append(job["id"])
    for job_id in short:
        assert server.wait_state(job_id, "SUCCEEDED", timeout=60)["exit_code"] == 0
    server.stop()
    server.start()

    train = TRAIN.replace("while step < 100", "while step < 200")
    _, long = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "long", "resources": {"cpus": 1, "gpus": 48},
        "command": ["/usr/bin/python3", "-c", train]}})
    server.wait_state(long["id"], "RUNNING")
    log1 = server.data_dir / "jobs" / str(long["id"]) / "attempts" / "1" / "task-0.log"
    wait_for(lambda: log1.exists() and "warmed up" in log1.read_text(), what="the long job to run")
    # Same priority: only the index of attained service tells them apart.
    status, fresh = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "fresh", "resources": {"cpus": 1, "gpus": 48}, "command": "echo fresh ran"}})
    assert status == 201, fresh
    assert server.wait_state(fresh["id"], "SUCCEEDED", timeout=60)["exit_code"] == 0

    final = server.wait_state(long["id"], {"SUCCEEDED", "FAILED"}, timeout=120)
    assert final["state"] == "SUCCEEDED", final["reason"]
    first, second = final["attempt_list"][:2]
    assert first["state"] == "PREEMPTED"
    assert first["reason"].startswith(f"preempted for job {fresh['id']} (Gittins index "), \
        first["reason"]
    assert " > 0)" in first["reason"], first["reason"]
    assert second["resumed_from"] is not None
    log2 = log1.parent.parent / "2" / "task-0.log"
    assert "finished at step 200" in log2.read_text(), log2.read_text()
