"""A user's view of the job lifecycle through the real CLI and dlabd."""
import json
import os
import re

from conftest import Cli, wait_for, write_job


def test_job_succeeds_and_its_log_matches(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", """
name: hello
command: ["/bin/sh", "hello.sh", "3"]
env: {GREETING: hi}
labels: {project: e2e}
""", {"hello.sh": 'for i in $(seq "$1"); do echo "$GREETING $i"; done; echo "to stderr" >&2\n',
      "junk.bin": "x" * 10, ".dlabignore": "junk.bin\n"})
    run = cli("run", spec, "--follow")
    assert run.returncode == 0
    assert "hi 1\nhi 2\nhi 3\n" in run.stdout
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED" and job["exit_code"] == 0 and job["attempts"] == 1
    logs = cli("logs", job["id"]).stdout
    assert logs == "hi 1\nhi 2\nhi 3\nto stderr\n"
    assert cli("logs", job["id"], "--tail", "2").stdout == "hi 3\nto stderr\n"
    described = cli.json("describe", job["id"])
    assert described["labels"] == {"project": "e2e"}
    # .dlabignore kept junk.bin out of the snapshot the job ran from.
    code_dir = dlabd.data_dir / "jobs" / str(job["id"]) / "attempts" / "1" / "code"
    assert (code_dir / "hello.sh").exists() and not (code_dir / "junk.bin").exists()
    events = [(e["from"], e["to"]) for e in cli.json("events", job["id"])["events"]]
    assert events == [(None, "QUEUED"), ("QUEUED", "STARTING"), ("STARTING", "RUNNING"),
                      ("RUNNING", "SUCCEEDED")]


def test_failing_job_reports_its_exit_code(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: fails\ncommand: echo about to fail; exit 7\n")
    run = cli("run", spec, "--follow", check=False)
    assert run.returncode == 7, run.stderr
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "FAILED" and job["exit_code"] == 7
    assert job["reason"] == "exited with code 7"
    assert "about to fail" in cli("logs", job["id"]).stdout


def test_missing_program_fails_with_a_clear_reason(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: typo\ncommand: [/no/such/program]\n")
    job_id = cli.json("run", spec)["id"]
    job = dlabd.wait_state(job_id, "FAILED")
    assert job["exit_code"] == 127
    assert "/no/such/program" in job["reason"]


def test_cancel_stops_a_running_job(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: sleeper\ncommand: echo started; exec sleep 300\n")
    job_id = cli.json("run", spec)["id"]
    dlabd.wait_state(job_id, "RUNNING")
    wait_for(lambda: "started" in cli("logs", job_id).stdout, what="the job's first output")
    out = cli("cancel", job_id)
    assert str(job_id) in out.stdout
    job = dlabd.wait_state(job_id, "CANCELLED", timeout=20)
    assert job["reason"] == "cancelled by user"
    # Cancelling again is refused: the job already ended.
    again = cli("cancel", job_id, check=False)
    assert again.returncode != 0 and "already ended" in again.stderr


def test_cancel_a_queued_job(tmp_path, make_dlabd):
    server = make_dlabd("node: {cpus: 1, memory: 1Gi, gpus: none}\n")
    blocker = server.request("POST", "/api/v1/jobs", {"spec": {"name": "a", "command": "sleep 300"}})[1]
    queued = server.request("POST", "/api/v1/jobs", {"spec": {"name": "b", "command": "true"}})[1]
    server.wait_state(blocker["id"], "RUNNING")
    status, body = server.request("POST", f"/api/v1/jobs/{queued['id']}/cancel")
    assert status == 202 and body["state"] == "CANCELLED"


def test_queued_job_starts_when_resources_free_up(tmp_path, make_dlabd):
    server = make_dlabd("node: {cpus: 2, memory: 4Gi, gpus: [{type: H100, count: 1}]}\n")
    gate = tmp_path / "gate"
    first = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "first", "command": f"while [ ! -e {gate} ]; do sleep 0.05; done",
        "resources": {"cpus": 2, "gpus": 1}}})[1]
    second = server.request("POST", "/api/v1/jobs", {"spec": {
        "name": "second", "command": "echo $CUDA_VISIBLE_DEVICES", "resources": {"cpus": 1, "gpus": 1}}})[1]
    server.wait_state(first["id"], "RUNNING")
    waiting = wait_for(lambda: (lambda j: j if j["reason"].startswith("waiting for resources") else None)(
        server.job(second["id"])), what="the second job's waiting reason")
    assert waiting["state"] == "QUEUED"
    assert "cpus 1 (free 0)" in waiting["reason"] and "1 GPUs (free 0)" in waiting["reason"]
    gate.touch()
    server.wait_state(first["id"], "SUCCEEDED")
    done = server.wait_state(second["id"], "SUCCEEDED")
    assert done["attempt_list"][0]["allocation"]["gpus"] == [0]
    assert server.request("GET", f"/api/v1/jobs/{second['id']}/logs", raw=True)[1] == b"0\n"


def test_failed_attempt_restarts_up_to_max_restarts(tmp_path, dlabd, cli):
    # Fails on the first attempt, succeeds on the second (the checkpoint dir persists).
    spec = write_job(tmp_path / "code", """
name: flaky
command: 'if [ -e "$DLAB_CHECKPOINT_DIR/seen" ]; then echo attempt $DLAB_ATTEMPT ok; else touch "$DLAB_CHECKPOINT_DIR/seen"; exit 1; fi'
max_restarts: 2
""")
    run = cli("run", spec, "--follow", check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED" and job["attempts"] == 2
    assert [a["state"] for a in job["attempt_list"]] == ["FAILED", "SUCCEEDED"]
    assert "attempt 2 ok" in cli("logs", job["id"]).stdout
    transitions = [e["to"] for e in cli.json("events", job["id"])["events"]]
    assert transitions == ["QUEUED", "STARTING", "RUNNING", "RESTARTING", "QUEUED", "STARTING",
                           "RUNNING", "SUCCEEDED"]


def test_max_runtime_ends_the_job(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: slow\ncommand: sleep 60\nmax_runtime: 1s\nmax_restarts: 3\n")
    job_id = cli.json("run", spec)["id"]
    job = dlabd.wait_state(job_id, "FAILED", timeout=30)
    assert job["reason"] == "max_runtime 1s exceeded"
    assert job["attempts"] == 1  # running out of time is not retried


def test_describe_shows_limits_and_allocation(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: d\ncommand: 'true'\nresources: {cpus: 500m, memory: 256Mi, gpus: 2}\n")
    job_id = cli.json("run", spec)["id"]
    job = dlabd.wait_state(job_id, "SUCCEEDED")
    attempt = job["attempt_list"][0]
    assert {k: attempt["allocation"][k] for k in ("cpus", "memory", "gpus")} == {
        "cpus": "500m", "memory": "256Mi", "gpus": [0, 1]}
    assert len(attempt["allocation"]["ports"]) == 1  # MASTER_PORT
    assert any(line.startswith("cpu:") for line in attempt["limits"])
    assert any(line.startswith("memory:") for line in attempt["limits"])
    text = cli("describe", job_id).stdout
    assert "SUCCEEDED" in text and "memory:" in text


def test_list_filters_and_pages(tmp_path, dlabd, cli):
    for i in range(5):
        team = "red" if i % 2 else "blue"
        dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": f"j{i}", "command": "true",
                                                        "labels": {"team": team}}})
    blue = cli.json("ls", "--label", "team=blue")["jobs"]
    assert sorted(j["name"] for j in blue) == ["j0", "j2", "j4"]
    status, page = dlabd.request("GET", "/api/v1/jobs?limit=2")
    assert status == 200 and len(page["jobs"]) == 2 and page["next_cursor"]
    status, rest = dlabd.request("GET", f"/api/v1/jobs?limit=10&cursor={page['next_cursor']}")
    assert [j["name"] for j in rest["jobs"]] == ["j2", "j1", "j0"]
    for j in range(1, 6):
        dlabd.wait_state(j, "SUCCEEDED")
    done = cli.json("ls", "--state", "SUCCEEDED")["jobs"]
    assert len(done) == 5


def test_idempotency_key_creates_one_job(dlabd):
    body = {"spec": {"name": "once", "command": "true"}}
    s1, first = dlabd.request("POST", "/api/v1/jobs", body, headers={"Idempotency-Key": "abc"})
    s2, second = dlabd.request("POST", "/api/v1/jobs", body, headers={"Idempotency-Key": "abc"})
    assert (s1, s2) == (201, 200)
    assert first["id"] == second["id"]
    assert len(dlabd.request("GET", "/api/v1/jobs")[1]["jobs"]) == 1


def test_logs_follow_streams_server_sent_events(tmp_path, dlabd):
    status, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {
        "name": "stream", "command": "for i in 1 2 3; do echo line $i; sleep 0.2; done; printf tail"}})
    status, payload = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs?follow=true", raw=True)
    assert status == 200
    text = payload.decode()
    assert [l[6:] for l in text.splitlines() if l.startswith("data: ") and not l.startswith("data: {")] == [
        "line 1", "line 2", "line 3", "tail"]
    end = text.split("event: end\ndata: ")[1].split("\n")[0]
    assert json.loads(end) == {"state": "SUCCEEDED", "exit_code": 0}


def test_metrics_count_jobs_and_requests(dlabd):
    _, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": "m", "command": "true"}})
    dlabd.wait_state(job["id"], "SUCCEEDED")
    status, text = dlabd.request("GET", "/metrics", raw=True)
    text = text.decode()
    assert status == 200
    assert 'dlab_jobs{state="SUCCEEDED"} 1' in text
    assert "dlab_scheduling_latency_seconds_count 1" in text
    assert re.search(r'dlab_http_requests_total\{method="POST",code="201"\} 1', text)
    assert dlabd.request("GET", "/healthz") == (200, {"status": "ok"})


def test_workload_sees_the_api_url_of_its_dlabd(dlabd):
    # The fixture listens on port 0: the real port must reach the workload.
    _, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": "u", "command": "echo $DLAB_API_URL"}})
    dlabd.wait_state(job["id"], "SUCCEEDED")
    assert dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs", raw=True)[1].decode() == dlabd.url + "\n"


def test_data_dir_behind_a_symlink_works(tmp_path, cli):
    from conftest import Dlabd
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    server = Dlabd(tmp_path, "node: {gpus: none}\n")
    server.data_dir = tmp_path / "link" / "data"
    server.start()
    try:
        spec = write_job(tmp_path / "code", "name: s\ncommand: cat hello.txt\n", {"hello.txt": "hi\n"})
        run = Cli(server)("run", spec, "--follow")
        assert "hi" in run.stdout
    finally:
        server.stop()


def test_large_log_is_complete_in_full_tail_and_follow(dlabd):
    # ~2 MB: larger than one read of the server, so chunking and tailing are exercised.
    _, job = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": "big", "command": "seq 1 300000"}})
    dlabd.wait_state(job["id"], "SUCCEEDED")
    expected = "".join(f"{i}\n" for i in range(1, 300001))
    status, full = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs", raw=True)
    assert status == 200 and full.decode() == expected
    _, tail = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs?tail=3", raw=True)
    assert tail.decode() == "299998\n299999\n300000\n"
    _, events = dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs?follow=true&tail=100000", raw=True)
    lines = [l[6:] for l in events.decode().splitlines() if l.startswith("data: ") and not l.startswith("data: {")]
    assert lines == [str(i) for i in range(200001, 300001)]


def test_run_follow_says_why_a_job_failed(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: typo\ncommand: [/no/such/program]\n")
    run = cli("run", spec, "--follow", check=False)
    assert run.returncode == 127
    assert "FAILED" in run.stderr and "/no/such/program" in run.stderr


def test_file_names_beyond_ascii_are_packed_whatever_the_locale(tmp_path, cli):
    spec = write_job(tmp_path / "u", "name: unicode\ncommand: cat données/ü.txt\n")
    (tmp_path / "u" / "données").mkdir()
    (tmp_path / "u" / "données" / "ü.txt").write_text("grüße\n")
    env_locale = {k: os.environ.pop(k) for k in ("LANG", "LC_ALL", "LC_CTYPE") if k in os.environ}
    try:
        run = cli("run", spec, "--follow", timeout=60)
    finally:
        os.environ.update(env_locale)
    assert run.returncode == 0 and "grüße" in run.stdout, run.stdout + run.stderr
