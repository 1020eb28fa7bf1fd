"""dlabd can be killed at any moment: no acknowledged job is lost and running jobs keep running."""
import subprocess

from conftest import BIN, Dlabd, wait_for


def test_sigkill_while_a_job_runs_then_restart(tmp_path, dlabd):
    script = "for i in $(seq 1 40); do echo line $i; sleep 0.05; done"
    _, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": "survivor", "command": script}})
    _, queued = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": "later", "command": "echo later"}})
    dlabd.wait_state(job["id"], "RUNNING")
    dlabd.kill9()
    # The job keeps running without dlabd; dlabd comes back on the same data dir and port.
    dlabd.start()
    done = dlabd.wait_state(job["id"], "SUCCEEDED", timeout=60)
    assert done["attempts"] == 1 and done["exit_code"] == 0
    _, log = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs", raw=True)
    assert log.decode() == "".join(f"line {i}\n" for i in range(1, 41))
    assert dlabd.wait_state(queued["id"], "SUCCEEDED")["exit_code"] == 0


def test_job_that_ended_while_dlabd_was_down_is_collected(tmp_path, dlabd):
    gate = tmp_path / "gate"
    _, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {
        "name": "ends-alone", "command": f"while [ ! -e {gate} ]; do sleep 0.05; done; exit 4"}})
    dlabd.wait_state(job["id"], "RUNNING")
    dlabd.kill9()
    gate.touch()
    attempt_dir = dlabd.data_dir / "jobs" / str(job["id"]) / "attempts" / "1"
    wait_for(lambda: (attempt_dir / "exit.json").exists(), what="the supervisor to record the exit")
    dlabd.start()
    done = dlabd.wait_state(job["id"], "FAILED")
    assert done["exit_code"] == 4


def test_acknowledged_submissions_survive_sigkill(tmp_path, dlabd):
    ids = []
    for i in range(20):
        status, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": f"n{i}", "command": "true"}})
        assert status == 201
        ids.append(job["id"])
    dlabd.kill9()
    dlabd.start()
    for job_id in ids:
        assert dlabd.wait_state(job_id, "SUCCEEDED")["id"] == job_id


def test_dlabd_refuses_a_taken_port_and_a_bad_data_dir(tmp_path, dlabd):
    proc = subprocess.run([str(BIN / "dlabd"), "--listen", f"127.0.0.1:{dlabd.port}",
                           "--data-dir", str(tmp_path / "other")], capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
    assert f"127.0.0.1:{dlabd.port}" in proc.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    proc = subprocess.run([str(BIN / "dlabd"), "--listen", "127.0.0.1:0", "--data-dir", str(blocker / "data")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0 and "data directory" in proc.stderr
    # A second dlabd on the same data dir would fight over its jobs: refused.
    proc = subprocess.run([str(BIN / "dlabd"), "--listen", "127.0.0.1:0", "--data-dir", str(dlabd.data_dir)],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode != 0
