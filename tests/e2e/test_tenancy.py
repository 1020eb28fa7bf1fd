"""Tenants, users, signed access keys, sessions and the audit trail, through a real dlabd.

The isolation tests are generated from api/openapi.yaml: every /api/v1 operation says who may
call it (x-dlab-access), and each is called as a member of another tenant (404 for the other
tenant's objects, as if they did not exist) and as a viewer (403 for every mutating call)."""
import io
import re
import sqlite3
import tarfile
import time
import urllib.error
import urllib.request

import pytest

from conftest import ADMIN_KEY, ADMIN_PASSWORD, ADMIN_USER, dlab_http
from openapi_check import load_spec, validate_response
from tenancy import create_key, create_tenant, create_user, login, login_response, submit

SPEC = load_spec()
MUTATING = {"post", "put", "delete", "patch"}


def snapshot_bytes(text):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = text.encode()
        info = tarfile.TarInfo("main.sh")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def operations():
    for path, item in SPEC["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, op in item.items():
            if method in {"get", "post", "put", "delete", "patch", "head"}:
                yield path, method, op


@pytest.fixture
def world(dlabd):
    """Tenant A (alice: member, carol: viewer, dave: admin) and tenant B (bob: member) with a
    job, a snapshot and an access key of B's."""
    create_tenant(dlabd, "tenant-a")
    create_tenant(dlabd, "tenant-b")
    keys = {
        "alice": create_user(dlabd, "alice", "tenant-a", "member"),
        "carol": create_user(dlabd, "carol", "tenant-a", "viewer"),
        "dave": create_user(dlabd, "dave", "tenant-a", "admin"),
        "bob": create_user(dlabd, "bob", "tenant-b", "member"),
    }
    status, snap_b = dlabd.request("POST", "/api/v1/snapshots", snapshot_bytes("echo b\n"),
                                   headers={"Content-Type": "application/gzip"},
                                   credentials=keys["bob"])
    assert status == 201, snap_b
    status, job_b = submit(dlabd, {"name": "b-secret-job", "command": "true"},
                           credentials=keys["bob"], snapshot=snap_b["id"])
    assert status == 201, job_b
    assert job_b["tenant"] == "tenant-b" and job_b["owner"] == "bob"
    status, snap_a = dlabd.request("POST", "/api/v1/snapshots", snapshot_bytes("echo a\n"),
                                   headers={"Content-Type": "application/gzip"},
                                   credentials=keys["alice"])
    assert status == 201, snap_a
    status, job_a = submit(dlabd, {"name": "a-job", "command": "sleep 300"},
                           credentials=keys["alice"])
    assert status == 201, job_a
    return {"keys": keys, "job_b": job_b["id"], "snap_b": snap_b["id"], "job_a": job_a["id"],
            "snap_a": snap_a["id"]}


def fill(path, values):
    def sub(match):
        return str(values[(path.split("/")[3], match.group(1))])
    return re.sub(r"\{(\w+)\}", sub, path)


def b_objects(world):
    return {("jobs", "id"): world["job_b"], ("snapshots", "id"): world["snap_b"],
            ("keys", "id"): world["keys"]["bob"][0], ("tenants", "name"): "tenant-b",
            ("tenants", "user"): "bob", ("users", "name"): "bob"}


def a_objects(world):
    return {("jobs", "id"): world["job_a"], ("snapshots", "id"): world["snap_a"],
            ("keys", "id"): world["keys"]["alice"][0], ("tenants", "name"): "tenant-a",
            ("tenants", "user"): "alice", ("users", "name"): "alice"}


BODIES = {  # enough for a handler to get past parsing, where it parses before deciding
    ("post", "/api/v1/jobs"): {"spec": {"name": "x", "command": "true"}},
    ("put", "/api/v1/tenants/{name}/members/{user}"): {"role": "admin"},
    ("put", "/api/v1/tenants/{name}/quota"): {"running_jobs": 0},
    ("put", "/api/v1/users/{name}/password"): {"password": "p4ssword-new",
                                               "current_password": "x"},
    ("post", "/api/v1/users"): {"name": "mallory", "password": "p4ssword-new"},
    ("post", "/api/v1/tenants"): {"name": "tenant-m"},
    ("post", "/api/v1/jobs/{id}/metrics"): {"reports": [{"step": 1, "metrics": {"loss": 1}}]},
    ("post", "/api/v1/jobs/{id}/checkpoints"): {"path": "/tmp/x", "step": 1},
}


def test_every_api_operation_declares_who_may_call_it():
    ops = list(operations())
    assert len(ops) >= 25
    for path, method, op in ops:
        assert op.get("x-dlab-access") in {"public", "self", "viewer", "member", "admin",
                                           "superadmin", "job"}, (method, path)


def test_a_member_of_another_tenant_gets_404_for_its_objects(dlabd, world):
    alice = world["keys"]["alice"]
    targets = b_objects(world)
    checked = 0
    for path, method, op in operations():
        access = op["x-dlab-access"]
        if access == "public":
            continue
        if "{" not in path:
            if method == "get":  # lists: nothing of tenant B shows
                status, body = dlabd.request("GET", path, credentials=alice)
                text = str(body)
                for secret in ("b-secret-job", "tenant-b", world["keys"]["bob"][0],
                               world["snap_b"]):
                    assert secret not in text, (path, secret)
            continue
        url = fill(path, targets)
        status, body = dlabd.request(method.upper(), url, BODIES.get((method, path)),
                                     credentials=alice)
        if access == "superadmin":
            # Refused for what the caller is, the same for an object that does not exist.
            assert status == 403, (method, url, status, body)
            ghost = url.replace("tenant-b", "no-such-tenant").replace("bob", "nobody")
            assert dlabd.request(method.upper(), ghost, BODIES.get((method, path)),
                                 credentials=alice)[0] == 403
        else:
            assert status == 404, (method, url, status, body)
        validate_response(SPEC, method.upper(), url, status, body)
        checked += 1
    assert checked >= 15
    # Tenant B's objects are all still there for bob.
    bob = world["keys"]["bob"]
    assert dlabd.request("GET", f"/api/v1/jobs/{world['job_b']}", credentials=bob)[0] == 200
    assert dlabd.request("GET", f"/api/v1/snapshots/{world['snap_b']}", credentials=bob)[0] == 200


def test_a_viewer_gets_403_on_every_mutating_call(dlabd, world):
    carol = world["keys"]["carol"]
    targets = a_objects(world)
    checked = 0
    for path, method, op in operations():
        if method not in MUTATING or op["x-dlab-access"] in {"public"}:
            continue
        if op["x-dlab-access"] == "self" and "x-dlab-tenant-role" not in op:
            continue  # a viewer manages their own keys, password and session
        url = fill(path, targets)
        status, body = dlabd.request(method.upper(), url, BODIES.get((method, path)),
                                     credentials=carol)
        assert status == 403, (method, url, status, body)
        validate_response(SPEC, method.upper(), url, status, body)
        checked += 1
    assert checked >= 9
    # Reading is what a viewer may do.
    assert dlabd.request("GET", f"/api/v1/jobs/{world['job_a']}", credentials=carol)[0] == 200
    assert dlabd.job(world["job_a"])["state"] != "CANCELLED"


def signed_request(server, method, path, key, body=None, now=None):
    req = urllib.request.Request(server.url + path, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    dlab_http.sign_request(req, body, *key, now=now)
    return req


def send(req):
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        import json
        return err.code, json.loads(err.read())["error"]["message"]


def test_bad_credentials_get_401_each_with_its_own_message(dlabd, world):
    alice = world["keys"]["alice"]
    path = f"/api/v1/jobs/{world['job_a']}"
    messages = {}

    status, body = dlabd.request("GET", path, credentials=None)
    messages["unsigned"] = (status, body["error"]["message"])
    status, body = dlabd.request("GET", path, credentials=(alice[0], "not-the-secret-at-all"))
    messages["wrong secret"] = (status, body["error"]["message"])
    messages["expired"] = send(signed_request(dlabd, "GET", path, alice, now=time.time() - 600))
    req = signed_request(dlabd, "GET", path, alice)
    assert send(req)[0] == 200
    messages["replayed"] = send(req)
    key = create_key(dlabd, "alice", None)
    assert dlabd.request("GET", path, credentials=key)[0] == 200
    status, revoked = dlabd.request("DELETE", f"/api/v1/keys/{key[0]}", credentials=key)
    assert status == 200 and revoked["active"] is False
    messages["revoked"] = dlabd.request("GET", path, credentials=key)
    messages["revoked"] = (messages["revoked"][0], messages["revoked"][1]["error"]["message"])
    tampered = signed_request(dlabd, "POST", f"{path}/cancel", alice, body=b"{}")
    tampered.data = b'{"x": 1}'
    messages["tampered body"] = send(tampered)

    for what, (status, message) in messages.items():
        assert status == 401, (what, status, message)
    assert messages["unsigned"][1].startswith("unsigned request")
    assert messages["wrong secret"][1] == "signature does not match"
    assert "outside the 5 minute window" in messages["expired"][1]
    assert messages["replayed"][1] == "replayed request"
    assert f"revoked access key '{key[0]}'" in messages["revoked"][1]
    assert messages["tampered body"][1] == "body does not match X-Dlab-Content-Sha256"
    assert len({m for _, m in messages.values()}) == len(messages)
    assert dlabd.job(world["job_a"])["state"] != "CANCELLED"


def test_password_login_gives_a_session_cookie_guarded_by_a_csrf_token(dlabd):
    status, body, _ = login_response(dlabd, ADMIN_USER, "wrong password")
    assert status == 401 and body["error"]["message"] == "wrong user name or password"
    status, body, _ = login_response(dlabd, "nobody", "wrong password")
    assert status == 401 and body["error"]["message"] == "wrong user name or password"
    status, body, headers = login_response(dlabd, ADMIN_USER, ADMIN_PASSWORD)
    assert status == 200 and body["superadmin"] is True
    assert body["tenants"] == [{"name": "default", "role": "admin"}]
    cookie = headers["Set-Cookie"]
    assert cookie.startswith("dlab_session=")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    session = login(dlabd, ADMIN_USER, ADMIN_PASSWORD)
    cookie_only = {"Cookie": session["Cookie"]}

    status, me = dlabd.request("GET", "/api/v1/whoami", credentials=None, headers=cookie_only)
    assert status == 200 and me["user"] == ADMIN_USER and me["session"] is True
    # A write with the cookie alone (what a forged cross-site form sends) is refused.
    status, body = dlabd.request("POST", "/api/v1/tenants", {"name": "csrf"}, credentials=None,
                                 headers=cookie_only)
    assert status == 403 and "X-CSRF-Token" in body["error"]["message"]
    status, body = dlabd.request("POST", "/api/v1/tenants", {"name": "csrf"}, credentials=None,
                                 headers=dict(cookie_only, **{"X-CSRF-Token": "guess"}))
    assert status == 403
    status, body = dlabd.request("POST", "/api/v1/tenants", {"name": "with-token"},
                                 credentials=None, headers=session)
    assert status == 201, body
    # Logging out ends the session.
    assert dlabd.request("POST", "/api/v1/logout", credentials=None, headers=session)[0] == 204
    status, body = dlabd.request("GET", "/api/v1/whoami", credentials=None, headers=cookie_only)
    assert status == 401 and "log in again" in body["error"]["message"]


def test_key_secrets_are_shown_once_and_a_database_copy_cannot_sign(dlabd, world):
    alice = world["keys"]["alice"]
    status, body = dlabd.request("GET", "/api/v1/keys", credentials=alice)
    assert status == 200
    assert [k["id"] for k in body["keys"]] == [alice[0]]
    assert all("secret" not in k for k in body["keys"])
    db = sqlite3.connect(dlabd.data_dir / "dlab.db")
    everything = "\n".join(str(row) for table in ("access_keys", "users", "sessions")
                           for row in db.execute(f"SELECT * FROM {table}"))
    for secret in (alice[1], ADMIN_KEY[1], ADMIN_PASSWORD):
        assert secret not in everything
    sealed = db.execute("SELECT sealed_secret FROM access_keys WHERE id = ?",
                        (alice[0],)).fetchone()[0]
    assert sealed.startswith("v1:")
    hashed = db.execute("SELECT password_hash FROM users WHERE name = 'admin'").fetchone()[0]
    assert hashed.startswith("scrypt$15$8$1$")


def test_admins_manage_members_and_the_audit_trail_records_every_change(dlabd, world):
    dave, alice, bob = (world["keys"][n] for n in ("dave", "alice", "bob"))
    status, body = dlabd.request("GET", "/api/v1/tenants/tenant-a/members", credentials=dave)
    assert status == 200
    assert {m["user"]: m["role"] for m in body["members"]} == {
        "alice": "member", "carol": "viewer", "dave": "admin"}
    assert dlabd.request("GET", "/api/v1/tenants/tenant-a/members", credentials=alice)[0] == 403
    # An admin of A can add bob to A; bob then acts in A by naming it.
    status, body = dlabd.request("PUT", "/api/v1/tenants/tenant-a/members/bob",
                                 {"role": "viewer"}, credentials=dave)
    assert status == 200, body
    status, jobs = dlabd.request("GET", "/api/v1/jobs", credentials=bob, tenant="tenant-a")
    assert status == 200 and [j["name"] for j in jobs["jobs"]] == ["a-job"]
    status, body = dlabd.request("POST", f"/api/v1/jobs/{world['job_a']}/cancel",
                                 credentials=bob, tenant="tenant-a")
    assert status == 403
    status, body = dlabd.request("GET", "/api/v1/jobs", credentials=alice, tenant="tenant-b")
    assert status == 404 and "tenant-b" in body["error"]["message"]

    # ...but an admin cannot take over a superadmin by adding them and revoking their key.
    status, _ = dlabd.request("PUT", f"/api/v1/tenants/tenant-a/members/{ADMIN_USER}",
                              {"role": "viewer"}, credentials=dave)
    assert status == 200
    status, body = dlabd.request("DELETE", f"/api/v1/keys/{ADMIN_KEY[0]}", credentials=dave)
    assert status == 404, body
    assert dlabd.request("GET", "/api/v1/whoami")[0] == 200  # the superadmin's key still works

    status, cancelled = dlabd.request("POST", f"/api/v1/jobs/{world['job_a']}/cancel",
                                      credentials=alice)
    assert status == 202, cancelled
    status, audit = dlabd.request("GET", "/api/v1/audit", credentials=dave)
    assert status == 200
    records = audit["records"]
    assert all(r["tenant"] == "tenant-a" for r in records)
    cancel = next(r for r in records if r["action"] == "job.cancel" and r["status"] == 202)
    assert cancel["user"] == "alice" and cancel["key_id"] == alice[0]
    assert cancel["target"] == f"/api/v1/jobs/{world['job_a']}/cancel"
    assert cancel["remote"].startswith("127.0.0.1:")
    refused = next(r for r in records if r["action"] == "job.cancel" and r["status"] == 403)
    assert refused["user"] == "bob"
    submitted = next(r for r in records if r["action"] == "job.submit")
    assert submitted["target"] == f"/api/v1/jobs/{world['job_a']}"
    assert dlabd.request("GET", "/api/v1/audit", credentials=alice)[0] == 403
    # The superadmin sees every tenant's records, and failed logins.
    login_response(dlabd, "bob", "not his password")
    status, audit = dlabd.request("GET", "/api/v1/audit?limit=1000")
    tenants = {r["tenant"] for r in audit["records"]}
    assert {"tenant-a", "tenant-b"} <= tenants
    failed = [r for r in audit["records"] if r["action"] == "login" and r["status"] == 401]
    assert failed and failed[0]["user"] == "bob"
