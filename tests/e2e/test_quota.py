"""Tenant quotas: refused at submit when a job could never fit, queued with a "tenant quota"
reason when it does not fit now, admission that stays within the quota under concurrent
submissions, per-GPU-type limits, and a lowered quota that stops admissions but kills nothing."""
import concurrent.futures

from conftest import wait_for
from tenancy import create_tenant, create_user, submit

CONFIG = """
node:
  cpus: 64
  memory: 64Gi
  gpus: [{type: H100, count: 2}, {type: A100, count: 2}]
kill_grace: 2s
"""


def team_server(make_dlabd, quota):
    server = make_dlabd(CONFIG)
    create_tenant(server, "team")
    key = create_user(server, "tess", "team", "member")
    status, body = server.request("PUT", "/api/v1/tenants/team/quota", quota)
    assert status == 200, body
    return server, key


def small(name, command="sleep 300", **resources):
    return {"name": name, "command": command,
            "resources": dict({"cpus": "100m", "memory": "32Mi"}, **resources)}


def quota(server, key):
    status, body = server.request("GET", "/api/v1/tenants/team/quota", credentials=key)
    assert status == 200, body
    return body


def test_a_job_larger_than_the_quota_is_refused_with_the_numbers(make_dlabd):
    server, key = team_server(make_dlabd, {"gpus": 1, "cpus": "4", "queued_jobs": 1})
    status, body = submit(server, small("big", gpus=2), credentials=key)
    assert status == 403, body
    assert body["error"]["message"] == ("exceeds the tenant's quota, so it could never start: "
                                        "gpus: needs 2, 0 of 1 in use")
    status, body = submit(server, small("wide", cpus="8"), credentials=key)
    assert status == 403 and "cpus: needs 8, 0 of 4 in use" in body["error"]["message"]
    # queued_jobs: one may wait, the next is told to come back later.
    status, running = submit(server, small("one", gpus=1), credentials=key)
    assert status == 201
    server.wait_state(running["id"], "RUNNING")
    status, waiting = server.request("POST", "/api/v1/jobs", {"spec": small("two", gpus=1)},
                                     credentials=key, headers={"Idempotency-Key": "k2"})
    assert status == 201
    status, body = submit(server, small("three", gpus=1), credentials=key)
    assert status == 429, body
    assert "queued_jobs: 1 of 1 already waiting" in body["error"]["message"]
    # A retry of the accepted submission still gets its job back, though the queue is full.
    status, again = server.request("POST", "/api/v1/jobs", {"spec": small("two", gpus=1)},
                                   credentials=key, headers={"Idempotency-Key": "k2"})
    assert status == 200 and again["id"] == waiting["id"]
    used = quota(server, key)["used"]
    assert used["running_jobs"] == 1 and used["queued_jobs"] == 1 and used["gpus"] == 1


def test_concurrent_submissions_never_run_more_jobs_than_the_quota(make_dlabd, tmp_path):
    limit = 3
    server, key = team_server(make_dlabd, {"running_jobs": limit})
    marks = tmp_path / "running"
    marks.mkdir()
    # Each job notes how many jobs run with it, as the jobs themselves see it.
    command = (f"touch {marks}/$DLAB_JOB_ID; ls {marks} | wc -l > {marks}/../seen-$DLAB_JOB_ID;"
               f" sleep 0.3; rm {marks}/$DLAB_JOB_ID")

    def one(i):
        return submit(server, small(f"burst-{i}", command), credentials=key)

    peak_used = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=32) as pool:
        results = list(pool.map(one, range(200)))
    assert all(status == 201 for status, _ in results), results[:3]
    ids = [job["id"] for _, job in results]

    def all_done():
        nonlocal peak_used
        peak_used = max(peak_used, quota(server, key)["used"]["running_jobs"])
        status, body = server.request("GET", "/api/v1/jobs?state=SUCCEEDED&limit=500",
                                      credentials=key)
        return len(body["jobs"]) == len(ids)

    wait_for(all_done, timeout=300, interval=0.2, what="200 jobs to succeed")
    assert 1 <= peak_used <= limit
    # From the attempts' start and end times, as dlabd recorded them.
    events = []
    for job_id in ids:
        attempt = server.job(job_id)["attempt_list"][-1]
        events += [(attempt["start_time"], 1), (attempt["end_time"], -1)]
    running = peak = 0
    for _, step in sorted(events, key=lambda e: (e[0], e[1])):
        running += step
        peak = max(peak, running)
    assert peak <= limit
    seen = [int((tmp_path / f"seen-{i}").read_text()) for i in ids]
    assert max(seen) <= limit
    assert max(seen) >= 2  # jobs did run side by side: the limit, not luck, held them


def test_per_gpu_type_limits(make_dlabd):
    server, key = team_server(make_dlabd, {"gpus_by_type": {"H100": 1}})
    status, body = submit(server, small("two-h100", gpus=2, gpu_type="H100"), credentials=key)
    assert status == 403 and "gpus_by_type.H100: needs 2, 0 of 1 in use" in body["error"]["message"]
    status, first = submit(server, small("h100-a", gpus=1, gpu_type="H100"), credentials=key)
    assert status == 201
    server.wait_state(first["id"], "RUNNING")
    status, second = submit(server, small("h100-b", gpus=1, gpu_type="H100"), credentials=key)
    assert status == 201
    job = wait_for(lambda: (lambda j: j if j["reason"].startswith("tenant quota") else None)(
        server.job(second["id"])), what="the second H100 job to wait for the quota")
    assert job["state"] == "QUEUED"
    assert job["reason"] == "tenant quota: the free GPUs that fit are of types whose quota is used up"
    # A job of another tenant is not held up by this tenant's quota.
    status, other = submit(server, small("admin-h100", gpus=1, gpu_type="H100"))
    assert status == 201
    server.wait_state(other["id"], "RUNNING")
    # A job that takes any GPU type gets an A100, since H100s are used up for this tenant.
    status, anytype = submit(server, small("any", gpus=1), credentials=key)
    assert status == 201
    # ...but it waits behind h100-b: the tenant's jobs start in their order.
    wait_for(lambda: "waiting behind job" in server.job(anytype["id"])["reason"],
             what="the any-type job to wait behind the H100 one")
    status, _ = server.request("POST", f"/api/v1/jobs/{second['id']}/cancel", credentials=key)
    assert status == 202
    started = server.wait_state(anytype["id"], "RUNNING")
    gpu = started["attempt_list"][-1]["allocation"]["gpus"]
    assert gpu in ([2], [3])  # the A100s (declared after the two H100s)
    used = quota(server, key)["used"]
    assert used["gpus_by_type"] == {"H100": 1, "A100": 1}


def test_a_lowered_quota_stops_admissions_but_kills_nothing(make_dlabd):
    server, key = team_server(make_dlabd, {"running_jobs": 2})
    jobs = [submit(server, small(f"long-{i}"), credentials=key)[1]["id"] for i in range(2)]
    for job_id in jobs:
        server.wait_state(job_id, "RUNNING")
    status, body = server.request("PUT", "/api/v1/tenants/team/quota", {"running_jobs": 1})
    assert status == 200 and body["limits"]["running_jobs"] == 1
    assert body["used"]["running_jobs"] == 2
    status, third = submit(server, small("third"), credentials=key)
    assert status == 201
    wait_for(lambda: server.job(third["id"])["reason"].startswith("tenant quota: running_jobs"),
             what="the third job to wait for the quota")
    assert [server.job(j)["state"] for j in jobs] == ["RUNNING", "RUNNING"]
    # One ends: still at the limit of 1, so the third keeps waiting.
    server.request("POST", f"/api/v1/jobs/{jobs[0]}/cancel", credentials=key)
    server.wait_state(jobs[0], "CANCELLED")
    assert server.job(third["id"])["state"] == "QUEUED"
    assert server.job(jobs[1])["state"] == "RUNNING"
    # The other ends: room for one.
    server.request("POST", f"/api/v1/jobs/{jobs[1]}/cancel", credentials=key)
    server.wait_state(third["id"], "RUNNING")
    # Raising the quota admits at once.
    status, fourth = submit(server, small("fourth"), credentials=key)
    wait_for(lambda: server.job(fourth["id"])["reason"].startswith("tenant quota"),
             what="the fourth job to wait")
    server.request("PUT", "/api/v1/tenants/team/quota", {"running_jobs": 2})
    server.wait_state(fourth["id"], "RUNNING")


def test_only_a_superadmin_sets_quotas_and_members_see_use_against_limits(make_dlabd):
    server, key = team_server(make_dlabd, {"gpus": 2, "memory": "1Gi"})
    status, body = server.request("PUT", "/api/v1/tenants/team/quota", {"gpus": 8},
                                  credentials=key)
    assert status == 403
    status, body = server.request("PUT", "/api/v1/tenants/team/quota", {"gpus": -1})
    assert status == 400 and body["error"]["message"].startswith("gpus: must be a whole number")
    status, body = server.request("PUT", "/api/v1/tenants/team/quota", {"gpu": 1})
    assert status == 400 and "unknown field" in body["error"]["message"]
    body = quota(server, key)
    assert body["limits"]["gpus"] == 2 and body["limits"]["memory"] == "1Gi"
    assert body["limits"]["running_jobs"] is None


def test_the_cli_logs_in_and_describe_shows_the_quota_reason(make_dlabd, tmp_path):
    import os
    import stat
    import subprocess

    from conftest import BIN, write_job
    server, _ = team_server(make_dlabd, {"running_jobs": 1})
    env = {k: v for k, v in os.environ.items() if not k.startswith("DLAB_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "cfg"), DLAB_URL=server.url)

    def dlab(*args, stdin=None):
        run = subprocess.run([str(BIN / "dlab"), *map(str, args)], input=stdin, env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, (args, run.stdout, run.stderr)
        return run.stdout

    out = dlab("login", "--user", "tess", "--password-stdin", stdin="tess-password-123\n")
    assert "Logged in as tess (tenant team, role member)" in out
    config = tmp_path / "cfg" / "dlab" / "config"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert "secret_access_key" in config.read_text()
    spec = write_job(tmp_path / "code", "name: q\ncommand: sleep 300\n"
                     "resources: {cpus: 100m, memory: 32Mi}\n")
    first = dlab("run", spec).strip()
    server.wait_state(int(first), "RUNNING")
    second = dlab("run", spec).strip()
    wait_for(lambda: "tenant quota" in dlab("describe", second),
             what="describe to show the tenant quota reason")
    assert "running_jobs: needs 1, 1 of 1 in use" in dlab("describe", second)
    assert "RUNNING JOBS  1     1" in dlab("quota")
    dlab("logout")
    assert "secret_access_key" not in config.read_text()
    run = subprocess.run([str(BIN / "dlab"), "ls"], env=env, capture_output=True, text=True)
    assert run.returncode != 0 and "dlab login" in run.stderr
