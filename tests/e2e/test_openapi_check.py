"""Tests of the OpenAPI response checker itself, on hand-made bodies (no server needed).

Run: /usr/bin/python3 -m pytest -q tests/e2e/test_openapi_check.py
"""
import copy
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import openapi_check as oc  # noqa: E402

SHA = "sha256:" + "ab" * 32


@pytest.fixture(scope="module")
def spec():
    return oc.load_spec()


def job(**over):
    body = {
        "id": 12,
        "name": "digits",
        "tenant": "default",
        "owner": "admin",
        "state": "RUNNING",
        "reason": "started",
        "spec": {
            "name": "digits",
            "command": ["/usr/bin/python3", "train.py", "--epochs", "10"],
            "workdir": ".",
            "env": {"OMP_NUM_THREADS": "2"},
            "resources": {"cpus": 2, "memory": "2Gi", "gpus": 0},
            "priority": 0,
            "max_runtime": "30m",
            "max_restarts": 1,
            "labels": {"project": "digits"},
        },
        "snapshot": SHA,
        "priority": 0,
        "labels": {"project": "digits"},
        "submit_time": "2026-11-22T10:00:00.123Z",
        "start_time": "2026-11-22T10:00:00.200Z",
        "end_time": None,
        "exit_code": None,
        "cancel_requested": False,
        "attempts": 1,
        "tasks": 1,
        "attempt_list": [{
            "attempt": 1, "state": "RUNNING", "reason": "", "exit_code": None,
            "create_time": "2026-11-22T10:00:00.150Z",
            "start_time": "2026-11-22T10:00:00.200Z", "end_time": None,
            "allocation": {"cpus": "2", "memory": "2Gi", "gpus": []},
            "limits": ["cpu: 2 CPUs enforced (cgroup v2)"],
            "failure": None, "restart_counted": False, "resumed_from": None, "tasks": [],
        }],
    }
    body.update(over)
    return body


# ---------------------------------------------------------------- the document

def test_openapi_yaml_loads_and_every_ref_resolves(spec):
    assert spec["openapi"] == "3.0.3"
    refs = list(oc.iter_refs(spec))
    assert len(refs) > 20
    oc.check_refs(spec)
    for name in ("Job", "Attempt", "Event", "Error", "Snapshot", "JobList", "EventList"):
        assert name in spec["components"]["schemas"]
        oc.to_json_schema(spec, {"$ref": "#/components/schemas/" + name})  # inlines fully


def test_openapi_yaml_has_no_null_values(spec):
    # catches YAML slips such as an unquoted comma inside a {flow: mapping}
    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                assert v is not None, "null value at %s/%s" % (where, k)
                walk(v, "%s/%s" % (where, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, "%s/%d" % (where, i))
    walk(spec, "#")


def test_every_documented_endpoint_is_present(spec):
    expected = {
        ("get", "/healthz"), ("get", "/metrics"),
        ("post", "/api/v1/snapshots"), ("head", "/api/v1/snapshots/{id}"),
        ("get", "/api/v1/snapshots/{id}"),
        ("post", "/api/v1/jobs"), ("get", "/api/v1/jobs"), ("get", "/api/v1/jobs/{id}"),
        ("post", "/api/v1/jobs/{id}/cancel"), ("get", "/api/v1/queue"), ("get", "/api/v1/jobs/{id}/logs"),
        ("get", "/api/v1/jobs/{id}/events"),
        ("get", "/api/v1/jobs/{id}/metrics"), ("post", "/api/v1/jobs/{id}/metrics"),
        ("get", "/api/v1/jobs/{id}/checkpoints"), ("post", "/api/v1/jobs/{id}/checkpoints"),
        ("get", "/api/v1/jobs/{id}/code"), ("get", "/api/v1/telemetry"), ("get", "/api/v1/alerts"),
        ("get", "/api/v1/nodes"),
        ("post", "/api/v1/login"), ("post", "/api/v1/logout"), ("get", "/api/v1/whoami"),
        ("post", "/api/v1/keys"), ("get", "/api/v1/keys"), ("delete", "/api/v1/keys/{id}"),
        ("get", "/api/v1/tenants"), ("post", "/api/v1/tenants"),
        ("get", "/api/v1/tenants/{name}/members"),
        ("put", "/api/v1/tenants/{name}/members/{user}"),
        ("delete", "/api/v1/tenants/{name}/members/{user}"),
        ("get", "/api/v1/tenants/{name}/quota"), ("put", "/api/v1/tenants/{name}/quota"),
        ("get", "/api/v1/users"), ("post", "/api/v1/users"),
        ("put", "/api/v1/users/{name}/password"), ("get", "/api/v1/audit"),
    }
    found = {(m, p) for p, item in spec["paths"].items() for m in item if m in oc.HTTP_METHODS}
    assert found == expected


def test_every_error_response_references_error_schema(spec):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in oc.HTTP_METHODS:
                continue
            for status, resp in op["responses"].items():
                if str(status)[0] in "45":
                    resp = oc._deref(spec, resp)
                    schema = resp["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/Error"}, (method, path, status)


def test_unresolvable_ref_is_reported(spec):
    broken = copy.deepcopy(spec)
    broken["components"]["schemas"]["Job"]["properties"]["state"] = {
        "$ref": "#/components/schemas/NoSuchThing"}
    with pytest.raises(AssertionError, match="NoSuchThing"):
        oc.check_refs(broken)


def test_load_spec_explicit_path(tmp_path):
    p = tmp_path / "x.yaml"
    p.write_text("openapi: 3.0.3\npaths: {}\n")
    assert oc.load_spec(str(p))["paths"] == {}
    p.write_text("just: text\n")
    with pytest.raises(AssertionError):
        oc.load_spec(str(p))


# ---------------------------------------------------------------- matching

def test_path_templates_match(spec):
    assert oc.find_path_template(spec, "/api/v1/jobs") == "/api/v1/jobs"
    assert oc.find_path_template(spec, "/api/v1/jobs/12") == "/api/v1/jobs/{id}"
    assert oc.find_path_template(spec, "/api/v1/jobs/12/cancel") == "/api/v1/jobs/{id}/cancel"
    assert oc.find_path_template(spec, "/api/v1/jobs/12/logs?tail=5") == "/api/v1/jobs/{id}/logs"
    assert oc.find_path_template(spec, "/api/v1/snapshots/" + SHA) == "/api/v1/snapshots/{id}"


def test_path_matching_no_template_fails(spec):
    with pytest.raises(AssertionError, match="matches no documented path template"):
        oc.validate_response(spec, "GET", "/api/v1/nothing/here", 200, {})
    with pytest.raises(AssertionError, match="matches no documented path template"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12/extra/bits", 200, {})


def test_undocumented_method_fails(spec):
    with pytest.raises(AssertionError, match="method not documented"):
        oc.validate_response(spec, "DELETE", "/api/v1/jobs/12", 200, job())


# ---------------------------------------------------------------- bodies

def test_valid_job_passes(spec):
    assert oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, job()) == "/api/v1/jobs/{id}"
    oc.validate_response(spec, "POST", "/api/v1/jobs", 201, job(state="QUEUED", start_time=None,
                                                                attempts=0, attempt_list=[]))
    oc.validate_response(spec, "POST", "/api/v1/jobs/12/cancel", 202, job(cancel_requested=True))


def test_valid_job_as_raw_json_passes(spec):
    oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, json.dumps(job()).encode())


def test_finished_job_and_command_string_pass(spec):
    done = job(state="SUCCEEDED", end_time="2026-11-22T10:01:00.000Z", exit_code=0, snapshot="")
    done["spec"] = {"name": "x", "command": "echo hi", "resources": {"cpus": "500m", "memory": 1 << 30}}
    oc.validate_response(spec, "GET", "/api/v1/jobs/1", 200, done)


def test_job_missing_state_fails(spec):
    body = job()
    del body["state"]
    with pytest.raises(AssertionError, match="'state' is a required property"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, body)


def test_job_with_bad_values_fails(spec):
    with pytest.raises(AssertionError, match="state"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, job(state="SLEEPING"))
    with pytest.raises(AssertionError, match="exit_code"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, job(exit_code="0"))
    body = job()
    body["spec"]["surprise"] = 1  # additionalProperties: false on the spec
    with pytest.raises(AssertionError, match="surprise"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, body)
    body = job()
    body["spec"]["resources"]["gpus"] = -1
    with pytest.raises(AssertionError, match="gpus"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, body)


def test_nullable_fields_accept_null_only_where_documented(spec):
    oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, job(start_time=None))
    with pytest.raises(AssertionError, match="submit_time"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, job(submit_time=None))
    body = job()
    body["attempt_list"][0]["allocation"] = None  # nullable via allOf + $ref
    oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, body)
    body["attempt_list"][0]["allocation"] = {"cpus": "2"}
    with pytest.raises(AssertionError, match="memory"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, body)


def test_undocumented_status_fails(spec):
    with pytest.raises(AssertionError, match="status 418 is not documented"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 418, job())
    with pytest.raises(AssertionError, match="status 201 is not documented"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 201, job())


def test_error_bodies(spec):
    err = {"error": {"code": "NOT_FOUND", "message": "job 99 not found"}}
    oc.validate_response(spec, "GET", "/api/v1/jobs/99", 404, err)
    with pytest.raises(AssertionError, match="does not match"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/99", 404, {"message": "nope"})
    with pytest.raises(AssertionError, match="does not match"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/99", 404,
                             {"error": {"code": "NOPE", "message": "x"}})


def test_lists_events_snapshots_health(spec):
    oc.validate_response(spec, "GET", "/api/v1/jobs?state=RUNNING&limit=5", 200,
                         {"jobs": [job()], "next_cursor": None})
    with pytest.raises(AssertionError, match="next_cursor"):
        oc.validate_response(spec, "GET", "/api/v1/jobs", 200, {"jobs": []})
    oc.validate_response(spec, "GET", "/api/v1/jobs/12/events", 200, {"events": [
        {"id": 1, "job_id": 12, "time": "2026-11-22T10:00:00.123Z", "from": None,
         "to": "QUEUED", "reason": "submitted"},
        {"id": 3, "job_id": 12, "time": "2026-11-22T10:00:00.150Z", "from": "QUEUED",
         "to": "STARTING", "reason": "scheduled: cpus 2, memory 4Gi, gpus [0]"}]})
    oc.validate_response(spec, "POST", "/api/v1/snapshots", 201, {"id": SHA, "size": 1234})
    with pytest.raises(AssertionError, match="size"):
        oc.validate_response(spec, "GET", "/api/v1/snapshots/" + SHA, 200, {"id": SHA})
    oc.validate_response(spec, "GET", "/healthz", 200, {"status": "ok"})


def test_non_json_and_bodyless_responses(spec):
    oc.validate_response(spec, "GET", "/metrics", 200, "# HELP x\nx 1\n")
    oc.validate_response(spec, "GET", "/api/v1/jobs/12/logs?tail=3", 200, "a\nb\nc\n")
    oc.validate_response(spec, "HEAD", "/api/v1/snapshots/" + SHA, 200, None)
    oc.validate_response(spec, "HEAD", "/api/v1/snapshots/" + SHA, 404, b"")
    with pytest.raises(AssertionError, match="not JSON"):
        oc.validate_response(spec, "GET", "/api/v1/jobs/12", 200, "<html>")


def test_nullable_conversion():
    s = {"type": "object", "properties": {
        "a": {"type": "string", "nullable": True},
        "b": {"type": "string", "enum": ["x"], "nullable": True},
        "c": {"oneOf": [{"type": "string"}, {"type": "integer"}], "nullable": True},
        "d": {"type": "integer"}}}
    js = oc.to_json_schema({}, s)
    assert js["properties"]["a"]["type"] == ["string", "null"]
    assert js["properties"]["b"]["enum"] == ["x", None]
    assert {"type": "null"} in js["properties"]["c"]["anyOf"]
    assert js["properties"]["d"] == {"type": "integer"}
    assert "nullable" not in json.dumps(js)


def test_cyclic_ref_is_refused():
    spec = {"components": {"schemas": {"A": {"type": "object", "properties": {
        "next": {"$ref": "#/components/schemas/A"}}}}}}
    with pytest.raises(AssertionError, match="cyclic"):
        oc.to_json_schema(spec, {"$ref": "#/components/schemas/A"})
