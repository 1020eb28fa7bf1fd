"""The scheduling queue as users see it: GET /api/v1/queue and `dlab queue` list the queued jobs
of the caller's tenant in scheduling order, each with its position in the whole queue (every
tenant's jobs) and why it waits; other tenants' jobs never show."""
import re

import pytest

from conftest import Cli, wait_for
from openapi_check import load_spec, validate_response
from tenancy import create_tenant, create_user, submit

# One node of 2 CPUs: a job that takes both holds every other job in the queue.
CONFIG = """
node:
  cpus: 2
  memory: 4Gi
  gpus: none
kill_grace: 2s
"""

SPEC = load_spec()


def job(name, cpus="1", priority=0):
    return {"name": name, "command": "sleep 120", "priority": priority,
            "resources": {"cpus": cpus, "memory": "32Mi"}}


@pytest.fixture
def queued(make_dlabd):
    """A full node and four queued jobs: alice's (tenant team-a) `urgent` (priority 5, submitted
    last), `first` and `second`, and between them bob's `other` (tenant team-b). carol belongs to
    team-c, which has no jobs."""
    server = make_dlabd(CONFIG)
    for tenant in ("team-a", "team-b", "team-c"):
        create_tenant(server, tenant)
    keys = {"alice": create_user(server, "alice", "team-a", "member"),
            "bob": create_user(server, "bob", "team-b", "member"),
            "carol": create_user(server, "carol", "team-c", "member")}
    ids = {}

    def add(name, key, **kw):
        status, body = submit(server, job(name, **kw), credentials=keys[key])
        assert status == 201, body
        ids[name] = body["id"]

    try:
        # The highest priority, so that no policy preempts it for the jobs behind it.
        add("hog", "alice", cpus="2", priority=10)
        server.wait_state(ids["hog"], "RUNNING")
        add("first", "alice")
        add("other", "bob")
        add("second", "alice")
        add("urgent", "alice", priority=5)
        yield server, keys, ids
    finally:
        for job_id in ids.values():  # the superadmin cancels by id in any tenant
            server.request("POST", f"/api/v1/jobs/{job_id}/cancel")
        for job_id in ids.values():
            server.wait_state(job_id, {"CANCELLED", "SUCCEEDED", "FAILED"}, timeout=30)


def get_queue(server, credentials="default", tenant=None):
    status, body = server.request("GET", "/api/v1/queue", credentials=credentials, tenant=tenant)
    assert status == 200, body
    validate_response(SPEC, "GET", "/api/v1/queue", status, body)
    return body["jobs"]


def wait_queue(server, count, **kw):
    """The queue once it has `count` entries, each with a reason."""
    return wait_for(lambda: (lambda q: q if len(q) == count and all(e["reason"] for e in q)
                             else None)(get_queue(server, **kw)),
                    what=f"{count} queued jobs with reasons")


def test_the_queue_lists_the_tenants_jobs_in_order_with_global_positions(queued):
    server, keys, ids = queued
    alice = wait_queue(server, 3, credentials=keys["alice"])
    # Priority first, then submission order; bob's job holds position 3 but stays hidden.
    assert [(e["position"], e["id"]) for e in alice] == [
        (1, ids["urgent"]), (2, ids["first"]), (4, ids["second"])]
    urgent = alice[0]
    assert urgent["name"] == "urgent" and urgent["owner"] == "alice"
    assert urgent["priority"] == 5 and urgent["gpus"] == 0
    assert urgent["submit_time"] == server.job(ids["urgent"])["submit_time"]
    assert all(e["reason"] for e in alice)
    assert "other" not in str(alice) and "bob" not in str(alice)

    bob = wait_queue(server, 1, credentials=keys["bob"])
    assert [(e["position"], e["id"], e["owner"]) for e in bob] == [(3, ids["other"], "bob")]

    # A member of a tenant without queued jobs sees none of them.
    assert get_queue(server, credentials=keys["carol"]) == []
    status, body = server.request("GET", "/api/v1/queue", credentials=keys["carol"],
                                  tenant="team-a")
    assert status == 404, body

    # Like the job list, the superadmin sees the queue of the tenant it acts in.
    assert get_queue(server) == []
    assert [(e["position"], e["id"]) for e in get_queue(server, tenant="team-a")] == [
        (e["position"], e["id"]) for e in alice]


def test_a_job_that_starts_or_is_cancelled_leaves_the_queue(queued):
    server, keys, ids = queued
    wait_queue(server, 3, credentials=keys["alice"])
    status, _ = server.request("POST", f"/api/v1/jobs/{ids['first']}/cancel",
                               credentials=keys["alice"])
    assert status == 202
    alice = wait_for(lambda: (lambda q: q if len(q) == 2 else None)(
        get_queue(server, credentials=keys["alice"])), what="the cancelled job to leave")
    assert [(e["position"], e["id"]) for e in alice] == [(1, ids["urgent"]), (3, ids["second"])]
    # The hog ends: urgent and bob's job take its two CPUs; second is now first in line.
    server.request("POST", f"/api/v1/jobs/{ids['hog']}/cancel", credentials=keys["alice"])
    server.wait_state(ids["urgent"], "RUNNING")
    server.wait_state(ids["other"], "RUNNING")
    alice = wait_for(lambda: (lambda q: q if len(q) == 1 else None)(
        get_queue(server, credentials=keys["alice"])), what="urgent to leave the queue")
    assert [(e["position"], e["id"]) for e in alice] == [(1, ids["second"])]
    assert get_queue(server, credentials=keys["bob"]) == []


def table(text):
    """The rows of a CLI table as dicts by column name (columns are 2+ spaces apart)."""
    lines = text.rstrip("\n").split("\n")
    header = re.split(r" {2,}", lines[0])
    return [dict(zip(header, re.split(r" {2,}", line, maxsplit=len(header) - 1)))
            for line in lines[1:]]


def test_dlab_queue_prints_the_tenants_queue(queued):
    server, keys, ids = queued
    wait_queue(server, 3, credentials=keys["alice"])
    cli = Cli(server)
    out = cli("queue", credentials=keys["alice"]).stdout
    assert re.split(r" {2,}", out.split("\n")[0]) == [
        "POS", "ID", "NAME", "OWNER", "PRIO", "GPUS", "WAITING", "EST. START", "REASON"], out
    rows = table(out)
    assert [(r["POS"], r["ID"], r["NAME"]) for r in rows] == [
        ("1", str(ids["urgent"]), "urgent"), ("2", str(ids["first"]), "first"),
        ("4", str(ids["second"]), "second")]
    for row in rows:
        assert row["OWNER"] == "alice" and row["GPUS"] == "0"
        assert re.fullmatch(r"\d+[smhd]", row["WAITING"]), row
        assert re.fullmatch(r"-|now|in \d+[smhd]", row["EST. START"]), row
        assert row["REASON"].strip(), row
    assert rows[0]["PRIO"] == "5" and rows[1]["PRIO"] == "0"

    as_json = cli.json("queue", credentials=keys["alice"])
    assert [e["id"] for e in as_json["jobs"]] == [ids["urgent"], ids["first"], ids["second"]]

    # --tenant picks the tenant, here for the superadmin.
    rows = table(cli("--tenant", "team-b", "queue").stdout)
    assert [(r["POS"], r["ID"], r["OWNER"]) for r in rows] == [("3", str(ids["other"]), "bob")]
    assert cli("queue", credentials=keys["carol"]).stdout == "no queued jobs\n"
    denied = cli("--tenant", "team-a", "queue", credentials=keys["carol"], check=False)
    assert denied.returncode == 1 and "team-a" in denied.stderr
