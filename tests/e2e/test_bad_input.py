"""Bad input is refused with the documented errors and never harms the server."""
import io
import os
import tarfile

import pytest

from conftest import write_job
from openapi_check import load_spec, validate_response

SPEC = load_spec()


def submit(dlabd, body, **kw):
    status, payload = dlabd.request("POST", "/api/v1/jobs", body, **kw)
    validate_response(SPEC, "POST", "/api/v1/jobs", status, payload)
    return status, payload


@pytest.mark.parametrize("spec,field", [
    ({"name": "x", "command": "true", "colour": "red"}, "colour: unknown field"),
    ({"name": "x", "command": "true", "resources": {"gpus": "two"}}, "resources.gpus: must be an integer"),
    ({"name": "x", "command": "true", "resources": {"memory": "4GB"}}, "resources.memory:"),
    ({"name": "x", "command": "true", "resources": {"gpus": 3}},
     "resources.gpus: 3 GPUs requested, but the largest node has 2"),
    ({"name": "x", "command": "true", "resources": {"gpus": 1, "gpu_type": "A100"}},
     "resources.gpu_type: no GPU of type 'A100'"),
    ({"name": "x", "command": "true", "resources": {"cpus": 64}}, "resources.cpus: 64 CPUs requested"),
    ({"command": "true"}, "name: is required"),
    ({"name": "x", "command": 5}, "command: must be a list of strings or one shell string"),
])
def test_bad_specs_are_refused_naming_the_field(dlabd, spec, field):
    status, body = submit(dlabd, {"spec": spec})
    assert status == 400
    assert body["error"]["code"] == "INVALID_ARGUMENT"
    assert body["error"]["message"].startswith(field), body


def test_cli_shows_the_field_of_a_bad_spec(tmp_path, dlabd, cli):
    spec = write_job(tmp_path / "code", "name: x\ncommand: 'true'\nresources: {gpus: 9}\n")
    run = cli("run", spec, check=False)
    assert run.returncode != 0
    assert "resources.gpus: 9 GPUs requested" in run.stderr
    broken = write_job(tmp_path / "code2", "name: [unclosed\n")
    run = cli("run", broken, check=False)
    assert run.returncode != 0 and "cannot parse YAML/JSON at line" in run.stderr


def test_malformed_bodies_and_unknown_ids(dlabd):
    status, body = dlabd.request("POST", "/api/v1/jobs", b"{not json",
                                 headers={"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = dlabd.request("POST", "/api/v1/jobs", b"spec: {name: y, command: 'true'}\n",
                                 headers={"Content-Type": "application/yaml"})
    assert status == 201 and body["name"] == "y"
    for path in ("/api/v1/jobs/999", "/api/v1/jobs/999/logs", "/api/v1/jobs/999/events",
                 "/api/v1/jobs/abc"):
        status, body = dlabd.request("GET", path)
        assert status == 404, path
        validate_response(SPEC, "GET", path, status, body)
    status, body = dlabd.request("POST", "/api/v1/jobs/999/cancel")
    assert status == 404
    status, body = dlabd.request("GET", "/api/v1/jobs?state=SLEEPING")
    assert status == 400 and "SLEEPING" in body["error"]["message"]
    status, body = dlabd.request("POST", "/api/v1/jobs", {"spec": {"name": "x", "command": "true"},
                                                          "snapshot": "sha256:" + "0" * 64})
    assert status == 404


def test_oversized_body_gets_413(dlabd):
    status, body = dlabd.request("POST", "/api/v1/jobs", b"{" + b" " * (2 << 20) + b"}",
                                 headers={"Content-Type": "application/json"})
    assert status == 413
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert dlabd.request("GET", "/healthz")[0] == 200


def tar_gz(entries):
    """entries: (name, kind, data_or_target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, kind, value in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(value)
                tar.addfile(info, io.BytesIO(value))
            elif kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = value
                tar.addfile(info)
            elif kind == "hardlink":
                info.type = tarfile.LNKTYPE
                info.linkname = value
                tar.addfile(info)
    return buf.getvalue()


@pytest.mark.parametrize("entries,why", [
    ([("../evil.txt", "file", b"x")], "escape"),
    ([("/tmp/dlab-evil-abs.txt", "file", b"x")], "absolute"),
    ([("ok/../../evil.txt", "file", b"x")], "escape"),
    ([("link", "symlink", "/etc")], "outside the snapshot"),
    ([("a/link", "symlink", "../../outside")], "outside the snapshot"),
    ([("hl", "hardlink", "../../etc/passwd")], "outside the snapshot"),
])
def test_unsafe_archives_are_rejected(dlabd, entries, why):
    status, body = dlabd.request("POST", "/api/v1/snapshots", tar_gz(entries),
                                 headers={"Content-Type": "application/gzip"})
    assert status == 400, body
    assert why in body["error"]["message"]
    validate_response(SPEC, "POST", "/api/v1/snapshots", status, body)
    assert not os.path.exists("/tmp/dlab-evil-abs.txt")
    assert not (dlabd.data_dir.parent / "evil.txt").exists()


def test_garbage_archive_is_rejected_and_good_one_is_deduplicated(dlabd):
    status, body = dlabd.request("POST", "/api/v1/snapshots", b"definitely not gzip",
                                 headers={"Content-Type": "application/gzip"})
    assert status == 400
    good = tar_gz([("train.py", "file", b"print('hi')\n"), ("sub/link", "symlink", "../train.py")])
    s1, first = dlabd.request("POST", "/api/v1/snapshots", good, headers={"Content-Type": "application/gzip"})
    s2, second = dlabd.request("POST", "/api/v1/snapshots", good, headers={"Content-Type": "application/gzip"})
    assert (s1, s2) == (201, 200) and first == second and first["id"].startswith("sha256:")
    assert dlabd.request("HEAD", f"/api/v1/snapshots/{first['id']}", raw=True)[0] == 200
    assert dlabd.request("HEAD", "/api/v1/snapshots/sha256:" + "1" * 64, raw=True)[0] == 404
    status, job = submit(dlabd, {"spec": {"name": "s", "command": "cat sub/link"}, "snapshot": first["id"]})
    assert status == 201
    dlabd.wait_state(job["id"], "SUCCEEDED")
    assert dlabd.request("GET", f"/api/v1/jobs/{job['id']}/logs", raw=True)[1] == b"print('hi')\n"


def test_responses_match_the_openapi_description(dlabd):
    status, job = submit(dlabd, {"spec": {"name": "doc", "command": "true", "labels": {"a": "b"},
                                          "resources": {"gpus": 1, "gpu_type": "H100"}}})
    assert status == 201
    dlabd.wait_state(job["id"], "SUCCEEDED")
    for path in ("/api/v1/jobs", f"/api/v1/jobs/{job['id']}", f"/api/v1/jobs/{job['id']}/events",
                 "/healthz"):
        status, body = dlabd.request("GET", path)
        validate_response(SPEC, "GET", path, status, body)
    status, body = dlabd.request("POST", f"/api/v1/jobs/{job['id']}/cancel")
    assert status == 409
    validate_response(SPEC, "POST", f"/api/v1/jobs/{job['id']}/cancel", status, body)


def test_invalid_utf8_and_too_many_filters_are_400_not_crashes(dlabd):
    status, body = dlabd.request("POST", "/api/v1/jobs", b"spec: {name: u, command: 'echo \xff'}\n",
                                 headers={"Content-Type": "application/yaml"})
    assert status == 400 and "UTF-8" in body["error"]["message"]
    query = "&".join(f"label=k{i}=v" for i in range(1100))
    status, body = dlabd.request("GET", f"/api/v1/jobs?{query}")
    assert status == 400 and "at most 20 label filters" in body["error"]["message"]
    assert dlabd.request("GET", "/healthz")[0] == 200
