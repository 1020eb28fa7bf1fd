"""dlab.Client against the fake dlabd, and where it finds the server."""

import os

import pytest

from conftest import free_port

import dlab
from dlab import _config

SPEC = {"name": "digits", "command": ["python3", "train.py"], "labels": {"project": "mnist"}}


@pytest.fixture
def client(server):
    return dlab.Client(server.url, timeout=5)


def test_submit_without_code(server, client):
    job = client.submit(SPEC)
    assert job["id"] == 1 and job["state"] == "QUEUED"
    post = server.find("POST", "/api/v1/jobs")[0]
    assert post.json() == {"spec": SPEC}
    assert post.headers["content-type"] == "application/json"
    assert "idempotency-key" not in post.headers


def test_submit_with_code_uploads_the_snapshot_once(server, client, tmp_path):
    (tmp_path / "train.py").write_text("print('hi')\n")
    job = client.submit(SPEC, code_dir=tmp_path)
    snapshot = job["snapshot"]
    assert snapshot.startswith("sha256:") and snapshot in server.snapshots
    assert [r.method for r in server.find(path_prefix="/api/v1/snapshots")] == ["HEAD", "POST"]
    assert server.find("HEAD")[0].path == "/api/v1/snapshots/" + snapshot
    again = client.submit(SPEC, code_dir=str(tmp_path))
    assert again["snapshot"] == snapshot
    assert [r.method for r in server.find(path_prefix="/api/v1/snapshots")] == [
        "HEAD", "POST", "HEAD"]  # dlabd had it: not uploaded again


def test_submit_with_an_idempotency_key(server, client):
    first = client.submit(SPEC, idempotency_key="abc")
    second = client.submit(SPEC, idempotency_key="abc")
    assert first["id"] == second["id"] == 1
    assert server.find("POST")[0].headers["idempotency-key"] == "abc"


def test_api_errors_carry_status_code_and_message(server, client):
    with pytest.raises(dlab.ApiError) as e:
        client.submit({"command": "true"})
    assert (e.value.status, e.value.code, e.value.message) == (
        400, "INVALID_ARGUMENT", "name: is required")
    assert str(e.value) == "400 INVALID_ARGUMENT: name: is required"
    with pytest.raises(dlab.ApiError) as e:
        client.get(99)
    assert e.value.status == 404 and e.value.code == "NOT_FOUND"
    job = client.submit(SPEC)
    client.cancel(job["id"])
    with pytest.raises(dlab.ApiError) as e:
        client.cancel(job["id"])
    assert e.value.status == 409 and "already ended" in e.value.message
    with pytest.raises(TypeError):
        client.submit("job.yaml")


def test_an_unreachable_server_raises_server_unreachable():
    client = dlab.Client("http://127.0.0.1:%d" % free_port(), timeout=2)
    with pytest.raises(dlab.ServerUnreachable) as e:
        client.get(1)
    assert isinstance(e.value, dlab.ApiError) and e.value.status is None
    assert "cannot reach" in e.value.message


def test_get_cancel_events(server, client):
    job = client.submit(SPEC)
    assert client.get(job["id"])["name"] == "digits"
    assert client.cancel(job)["state"] == "CANCELLED"  # a job dict works as an id too
    assert server.find("POST", path_suffix="/cancel")[0].path == "/api/v1/jobs/1/cancel"
    assert client.events(job["id"])[0]["to"] == "STARTING"


def test_list_filters_and_pages(server, client):
    for i in range(7):
        spec = dict(SPEC, labels={"project": "mnist" if i % 2 == 0 else "other"})
        client.submit(spec)
    server.jobs["7"]["state"] = "RUNNING"
    ids = [j["id"] for j in client.list(limit=3)]
    assert ids == [7, 6, 5]
    assert [j["id"] for j in client.list_all(page_size=2)] == [7, 6, 5, 4, 3, 2, 1]
    assert len(server.find("GET", "/api/v1/jobs")) == 1 + 4  # pages of 2 follow next_cursor
    assert [j["id"] for j in client.list(labels={"project": "mnist"})] == [7, 5, 3, 1]
    assert [j["id"] for j in client.list(state="running,queued", labels=["project=mnist"],
                                         limit=2)] == [7, 5]
    last = server.find("GET", "/api/v1/jobs")[-1]
    assert last.q("state") == ["RUNNING", "QUEUED"] and last.q("label") == ["project=mnist"]
    with pytest.raises(ValueError):
        client.list(labels=["nolabel"])


def test_logs_with_attempt_task_and_tail(server, client):
    job = client.submit(SPEC)
    assert client.logs(job["id"]) == "line 1\nline 2\nline 3\n"
    assert client.logs(job["id"], attempt=2, task="worker-1", tail=1) == "line 3\n"
    last = server.find("GET", path_suffix="/logs")[-1]
    assert sorted(last.query) == [("attempt", "2"), ("tail", "1"), ("task", "worker-1")]


def test_metrics_and_checkpoints(server, client):
    job = client.submit(SPEC)
    series = client.metrics(job["id"])
    assert series == {"loss": [(1, 100.5, 0.9), (2, 101.5, 0.5)],
                      "acc": [(1, 100.5, 0.9), (2, 101.5, 0.5)]}
    assert list(client.metrics(job["id"], names="loss", max_points=100)) == ["loss"]
    last = server.find("GET", path_suffix="/metrics")[-1]
    assert sorted(last.query) == [("max_points", "100"), ("name", "loss")]
    client.metrics(job["id"], names=["a", "b"])
    assert server.find("GET", path_suffix="/metrics")[-1].q("name") == ["a", "b"]
    server.checkpoints.append({"id": 1, "job_id": 1, "step": 10, "path": "/ck/10"})
    assert client.checkpoints(job["id"]) == [{"id": 1, "job_id": 1, "step": 10,
                                              "path": "/ck/10"}]


def test_wait_returns_the_final_job_and_times_out(server, client):
    job = client.submit(SPEC)
    server.polls_until_done[str(job["id"])] = 3
    final = client.wait(job["id"], timeout=10, poll=0.01)
    assert final["state"] == "SUCCEEDED"
    other = client.submit(SPEC)
    server.polls_until_done[str(other["id"])] = 10**9
    with pytest.raises(TimeoutError, match="still RUNNING"):
        client.wait(other["id"], timeout=0.2, poll=0.01)


def test_wait_rides_out_a_server_restart(server, client):
    job = client.submit(SPEC)
    server.fail_with = 503
    import threading
    timer = threading.Timer(0.3, lambda: setattr(server, "fail_with", None))
    timer.start()
    server.polls_until_done[str(job["id"])] = 0
    assert client.wait(job["id"], timeout=10, poll=0.02)["state"] == "SUCCEEDED"
    timer.join()


def test_health(client):
    assert client.health() == {"status": "ok"}


# ---- the server URL -----------------------------------------------------------------------

def test_url_from_argument_env_config_or_default(tmp_path):
    env = {"HOME": str(tmp_path)}
    assert _config.resolve_server_url(environ=env) == "http://127.0.0.1:8080"
    config = tmp_path / ".config" / "dlab" / "config"
    config.parent.mkdir(parents=True)
    config.write_text("# where dlabd is\nurl: http://gpu-box:8080/  # trailing slash dropped\n")
    assert _config.resolve_server_url(environ=env) == "http://gpu-box:8080"
    xdg = tmp_path / "xdg"
    (xdg / "dlab").mkdir(parents=True)
    (xdg / "dlab" / "config").write_text('{"url": "http://xdg:1"}')
    env["XDG_CONFIG_HOME"] = str(xdg)
    assert _config.resolve_server_url(environ=env) == "http://xdg:1"
    env["DLAB_URL"] = "http://env:2/"
    assert _config.resolve_server_url(environ=env) == "http://env:2"
    assert _config.resolve_server_url("http://arg:3//", environ=env) == "http://arg:3"


def test_a_config_without_url_falls_through_and_a_bad_one_is_an_error(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    (tmp_path / "dlab").mkdir()
    path = tmp_path / "dlab" / "config"
    path.write_text("other: 1\n")
    assert _config.resolve_server_url(environ=env) == "http://127.0.0.1:8080"
    path.write_text("")
    assert _config.resolve_server_url(environ=env) == "http://127.0.0.1:8080"
    path.write_text("url: 5\n")
    with pytest.raises(ValueError, match="url must be a non-empty string"):
        _config.resolve_server_url(environ=env)
    path.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="expected a mapping"):
        _config.resolve_server_url(environ=env)


def test_config_parsing_without_pyyaml(tmp_path, without_pyyaml):
    path = tmp_path / "config"
    path.write_text("---\n# c\nurl: 'http://quoted:9'\nnested:\n  url: no\n")
    assert _config.url_from_config_file(str(path)) == "http://quoted:9"
    path.write_text("url: http://plain:9 # comment\n")
    assert _config.url_from_config_file(str(path)) == "http://plain:9"
    path.write_text('{"url": "http://json:9"}')
    assert _config.url_from_config_file(str(path)) == "http://json:9"


def test_client_uses_dlab_url(monkeypatch):
    monkeypatch.setenv("DLAB_URL", "http://from-env:1234/")
    assert dlab.Client().url == "http://from-env:1234"
    assert os.environ["DLAB_URL"]
