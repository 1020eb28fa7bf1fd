"""Signed requests (docs/auth.md): the SDK against the shared test vectors, and dlab.Client's
requests re-verified from what the fake dlabd received."""

import datetime
import hashlib
import hmac
import io
import json
import os
import re
import time
import urllib.parse

import pytest

from conftest import PYTHON_DIR, run_python, wait_until

import dlab
from dlab import _auth
from dlab import _config

VECTORS_PATH = os.path.join(os.path.dirname(PYTHON_DIR), "tests", "vectors", "signing.json")
with open(VECTORS_PATH, encoding="utf-8") as _f:
    VECTORS = json.load(_f)

KEY_ID = "AKTEST"
SECRET = "dlab-test-secret-0123456789abcdef"
SPEC = {"name": "digits", "command": ["python3", "train.py"], "labels": {"project": "mnist"}}


def vector_date(v):
    return datetime.datetime.strptime(v["headers"]["x-dlab-date"], "%Y%m%dT%H%M%SZ")


# ---- the test vectors -------------------------------------------------------------------

def test_there_are_vectors():
    assert len(VECTORS) >= 4


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_canonical_request_string_to_sign_and_signature(v):
    signed = v["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert signed == sorted(v["headers"])
    canonical = _auth.canonical_request(v["method"], v["path"], v["query"], v["headers"], signed)
    assert canonical == v["canonical_request"]
    sts = _auth.string_to_sign(v["headers"]["x-dlab-date"], canonical)
    assert sts == v["string_to_sign"]
    assert _auth.signature(v["secret"], v["headers"]["x-dlab-date"], canonical) == v["signature"]
    assert hmac.new(v["secret"].encode(), sts.encode(), hashlib.sha256).hexdigest() == \
        v["signature"]
    # The same with SignedHeaders as the header gives it, and header names in any case.
    upper = {k.title(): val for k, val in v["headers"].items()}
    assert _auth.canonical_request(v["method"].lower(), v["path"], v["query"], upper,
                                   ";".join(signed)) == v["canonical_request"]


@pytest.mark.parametrize("v", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_sign_gives_the_headers_and_authorization(v):
    given = {k: val for k, val in v["headers"].items() if not k.startswith("x-dlab-")}
    also = [k for k in given if k != "host"]
    added = _auth.sign(v["method"], v["path"], [tuple(q) for q in v["query"]], given,
                       v["body"], KEY_ID, v["secret"], now=vector_date(v), also_sign=also)
    assert added == {"X-Dlab-Date": v["headers"]["x-dlab-date"],
                     "X-Dlab-Content-Sha256": v["headers"]["x-dlab-content-sha256"],
                     "Authorization": v["authorization"]}
    # The body as bytes or as a file signs the same.
    body = v["body"].encode()
    assert _auth.sign(v["method"], v["path"], v["query"], given, body, KEY_ID, v["secret"],
                      now=vector_date(v), also_sign=also) == added
    f = io.BytesIO(b"ignored" + body)
    f.seek(len(b"ignored"))
    assert _auth.sign(v["method"], v["path"], v["query"], given, f, KEY_ID, v["secret"],
                      now=vector_date(v), also_sign=also) == added
    assert f.tell() == len(b"ignored")  # put back where it was, to be sent


# ---- the pieces -------------------------------------------------------------------------

def test_uri_encode_keeps_only_unreserved_bytes():
    assert _auth.uri_encode("AZaz09-._~") == "AZaz09-._~"
    assert _auth.uri_encode("a b/c=d&e+f") == "a%20b%2Fc%3Dd%26e%2Bf"
    assert _auth.uri_encode("ü") == "%C3%BC"
    assert _auth.uri_encode(b"\xff") == "%FF"


def test_the_query_example_of_the_docs():
    path, query = _auth.parse_target("/api/v1/jobs?state=RUNNING&label=a=b&limit=5")
    assert (path, query) == ("/api/v1/jobs",
                             [("state", "RUNNING"), ("label", "a=b"), ("limit", "5")])
    canonical = _auth.canonical_request("GET", path, query, {}, [])
    assert canonical.split("\n")[2] == "label=a%3Db&limit=5&state=RUNNING"


def test_parse_target_decodes_as_dlabd_does():
    assert _auth.parse_target("/a%20b+c/%C3%BC%2Fx?q=1+2%2B3&&flag&e=&n%C3%A4me=v=w") == (
        "/a b+c/ü/x", [("q", "1 2+3"), ("flag", ""), ("e", ""), ("näme", "v=w")])
    path, _ = _auth.parse_target("/%FF")
    assert _auth.canonical_request("GET", path, [], {}, []).split("\n")[1] == "/%FF"
    # (a byte that is not UTF-8 signs as itself)
    for bad in ("/a%2", "/a%zz", "/?x=%4"):
        with pytest.raises(ValueError):
            _auth.parse_target(bad)


def test_header_values_are_trimmed_and_collapsed_and_missing_ones_are_empty():
    canonical = _auth.canonical_request(
        "GET", "/", [], {"Host": "h", "X-A": " \t a  \t b \t", "x-dlab-content-sha256": "e"},
        ["host", "x-a", "x-missing"])
    assert canonical == "GET\n/\n\nhost:h\nx-a:a b\nx-missing:\nhost;x-a;x-missing\ne"


def test_format_date():
    utc = datetime.datetime(2026, 11, 22, 10, 15, 0, tzinfo=datetime.timezone.utc)
    assert _auth.format_date(utc) == "20261122T101500Z"
    plus2 = datetime.timezone(datetime.timedelta(hours=2))
    assert _auth.format_date(datetime.datetime(2026, 11, 22, 12, 15, tzinfo=plus2)) == \
        "20261122T101500Z"
    assert _auth.format_date(datetime.datetime(2026, 11, 22, 10, 15)) == "20261122T101500Z"
    assert _auth.format_date(utc.timestamp() + 0.9) == "20261122T101500Z"
    now = _auth.format_date()
    assert re.fullmatch(r"\d{8}T\d{6}Z", now)


def test_sign_refuses_what_it_cannot_sign():
    args = ("GET", "/", [], {"Host": "h"}, None)
    with pytest.raises(ValueError, match="Host"):
        _auth.sign("GET", "/", [], {}, None, KEY_ID, SECRET)
    with pytest.raises(ValueError):
        _auth.sign(*args, "", SECRET)
    with pytest.raises(ValueError):
        _auth.sign(*args, "AK, X", SECRET)
    with pytest.raises(ValueError):
        _auth.sign(*args, KEY_ID, "")
    with pytest.raises(ValueError):
        _auth.sign(*args, KEY_ID, SECRET, also_sign=["Authorization"])
    with pytest.raises(TypeError):
        _auth.sign("POST", "/", [], {"Host": "h"}, 5, KEY_ID, SECRET)


# ---- dlab.Client: what the server receives verifies ---------------------------------------

def received_signature_ok(r, secret=SECRET, key_id=KEY_ID):
    """Checks a request as the fake dlabd received it the way dlabd will (docs/auth.md), with
    the functions the vectors prove. Returns the parsed SignedHeaders."""
    m = re.fullmatch(r"DLAB-HMAC-SHA256 Credential=([^,]+), SignedHeaders=([^,]+), "
                     r"Signature=([0-9a-f]{64})", r.headers.get("authorization", ""))
    assert m, "not signed: %r %r" % (r, r.headers.get("authorization"))
    credential, signed, sig = m.group(1), m.group(2).split(";"), m.group(3)
    assert credential == key_id
    assert signed == sorted(set(signed))
    assert {"host", "x-dlab-content-sha256", "x-dlab-date", "x-dlab-nonce"} <= set(signed)
    date = r.headers["x-dlab-date"]
    when = datetime.datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(
        tzinfo=datetime.timezone.utc)
    assert abs(when.timestamp() - time.time()) < 300
    assert r.headers["x-dlab-content-sha256"] == hashlib.sha256(r.body).hexdigest()
    # What dlabd signs: the decoded path and query, the header bytes as received.
    path = urllib.parse.unquote(r.path, errors="surrogateescape")
    headers = {k: v.encode("latin-1") for k, v in r.headers.items()}
    canonical = _auth.canonical_request(r.method, path, r.query, headers, signed)
    want = hmac.new(secret.encode(), _auth.string_to_sign(date, canonical).encode("utf-8"),
                    hashlib.sha256).hexdigest()
    assert hmac.compare_digest(want, sig), "signature does not match for %r" % r
    return signed


@pytest.fixture
def signing_client(server):
    return dlab.Client(server.url, key_id=KEY_ID, secret=SECRET, timeout=5)


def test_every_client_request_is_signed_and_verifies(server, signing_client, tmp_path):
    client = signing_client
    (tmp_path / "train.py").write_text("print('hi')\n")
    (tmp_path / "data.bin").write_bytes(bytes(range(256)) * 64)
    job = client.submit(SPEC, code_dir=tmp_path, idempotency_key="run-42")
    assert client.get(job["id"])["name"] == "digits"
    client.list(state="queued", labels={"project": "mnist"})
    client.logs(job["id"], attempt=1, task="worker-0", tail=5)
    client.events(job["id"])
    client.metrics(job["id"], names=["loss", "acc"], max_points=10)
    client.checkpoints(job["id"])
    client.cancel(job["id"])
    client.health()
    server.polls_until_done[str(job["id"])] = 1
    client.wait(job["id"], poll=0.01, timeout=10)
    with pytest.raises(dlab.ApiError):
        client.get(99)  # an error answer: the request was signed all the same
    assert len(server.requests) >= 14
    for r in server.requests:
        received_signature_ok(r)
        assert r.headers["host"] == "127.0.0.1:%d" % server.port
    upload = server.find("POST", "/api/v1/snapshots")[0]
    assert upload.body.startswith(b"\x1f\x8b")  # the gzip, hashed and signed as sent
    assert "content-type" in received_signature_ok(upload)
    submit = server.find("POST", "/api/v1/jobs")[0]
    assert submit.json()["snapshot"] == job["snapshot"]
    assert received_signature_ok(submit) == [
        "content-type", "host", "idempotency-key", "x-dlab-content-sha256", "x-dlab-date",
        "x-dlab-nonce"]


def test_query_with_repeated_names_spaces_and_non_ascii(server, signing_client):
    client = signing_client
    client.list(state=["RUNNING", "QUEUED"],
                labels=["team=vision", "team=a b", "city=Zürich/Genève&x+y", "e="], limit=3)
    r = server.find("GET", "/api/v1/jobs")[-1]
    assert r.q("label") == ["team=vision", "team=a b", "city=Zürich/Genève&x+y", "e="]
    assert r.q("state") == ["RUNNING", "QUEUED"]
    received_signature_ok(r)
    canonical = _auth.canonical_request(r.method, r.path, r.query, r.headers, ["host"])
    assert canonical.split("\n")[2] == (
        "label=city%3DZ%C3%BCrich%2FGen%C3%A8ve%26x%2By&label=e%3D&label=team%3Da%20b&"
        "label=team%3Dvision&limit=3&state=QUEUED&state=RUNNING")
    job = client.submit(SPEC)
    client.metrics(job["id"], names=["a b", "ü", "a b"])
    r = server.find("GET", path_suffix="/metrics")[-1]
    assert r.q("name") == ["a b", "ü", "a b"]
    received_signature_ok(r)


def test_a_path_needing_encoding_is_signed_decoded(server, signing_client):
    with pytest.raises(dlab.ApiError):
        signing_client.get("a b/ü")
    r = server.requests[-1]
    assert r.path == "/api/v1/jobs/a%20b%2F%C3%BC"
    received_signature_ok(r)


def test_a_post_body_is_signed_and_a_changed_one_does_not_verify(server, signing_client):
    signing_client.submit(dict(SPEC, name="ü-job"), idempotency_key="  spaced   key ")
    r = server.find("POST", "/api/v1/jobs")[0]
    assert r.json()["spec"]["name"] == "ü-job"
    received_signature_ok(r)
    r.body = r.body.replace(b"train.py", b"evil.py")
    with pytest.raises(AssertionError):
        received_signature_ok(r)  # the body hash no longer matches
    r.headers["x-dlab-content-sha256"] = hashlib.sha256(r.body).hexdigest()
    with pytest.raises(AssertionError, match="signature does not match"):
        received_signature_ok(r)  # and the body hash is signed


def test_a_non_ascii_idempotency_key_is_sent_as_the_utf8_it_is_signed_as(server,
                                                                         signing_client):
    signing_client.submit(SPEC, idempotency_key="lauf-ü-€")
    r = server.find("POST", "/api/v1/jobs")[0]
    assert r.headers["idempotency-key"].encode("latin-1").decode("utf-8") == "lauf-ü-€"
    received_signature_ok(r)


def test_a_wrong_secret_or_key_id_does_not_verify(server, signing_client):
    signing_client.health()
    r = server.requests[-1]
    received_signature_ok(r)
    with pytest.raises(AssertionError, match="signature does not match"):
        received_signature_ok(r, secret="another secret")
    with pytest.raises(AssertionError):
        received_signature_ok(r, key_id="AKOTHER")


def test_identical_requests_get_distinct_signatures(server, signing_client):
    for _ in range(3):
        signing_client.health()
    signatures = {r.headers["authorization"] for r in server.requests}
    assert len(signatures) == 3  # a nonce: not refused as replays within one second


def test_no_credentials_no_signature(server):
    client = dlab.Client(server.url, timeout=5)
    assert client.key_id is None
    job = client.submit(SPEC)
    client.get(job["id"])
    client.list()
    for r in server.requests:
        for header in ("authorization", "x-dlab-date", "x-dlab-content-sha256", "x-dlab-nonce"):
            assert header not in r.headers, (r, header)


# ---- where the access key comes from --------------------------------------------------------

def write_config(text):
    path = os.path.join(os.environ["XDG_CONFIG_HOME"], "dlab", "config")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, 0o600)
    return path


def test_credentials_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("DLAB_ACCESS_KEY_ID", "AKENV")
    monkeypatch.setenv("DLAB_SECRET_ACCESS_KEY", "env-secret")
    write_config("access_key_id: AKFILE\nsecret_access_key: file-secret\n")
    client = dlab.Client(server.url)
    assert client.key_id == "AKENV"
    assert "env-secret" not in repr(client) and "AKENV" in repr(client)
    client.health()
    received_signature_ok(server.requests[-1], secret="env-secret", key_id="AKENV")
    # Arguments win over the environment.
    dlab.Client(server.url, key_id="AKARG", secret="arg-secret").health()
    received_signature_ok(server.requests[-1], secret="arg-secret", key_id="AKARG")


def test_credentials_from_the_config_file(server, monkeypatch):
    write_config("# the CLI's file\nurl: %s\naccess_key_id: AKFILE\n"
                 "secret_access_key: 'file secret #1'\n" % server.url)
    client = dlab.Client()
    assert (client.url, client.key_id) == (server.url, "AKFILE")
    client.health()
    received_signature_ok(server.requests[-1], secret="file secret #1", key_id="AKFILE")
    # An empty environment variable does not count; the file is still used.
    monkeypatch.setenv("DLAB_ACCESS_KEY_ID", "")
    assert dlab.Client().key_id == "AKFILE"


def test_credentials_from_a_flat_config_without_pyyaml(tmp_path, without_pyyaml):
    path = tmp_path / "config"
    path.write_text("url: http://x:1\naccess_key_id: AK1  # mine\n"
                    "secret_access_key: \"s3cr:et #x\"\n")
    path.chmod(0o600)
    assert _config.credentials_from_config_file(str(path)) == ("AK1", "s3cr:et #x")
    path.write_text('{"access_key_id": "AK2", "secret_access_key": "s2"}')
    assert _config.credentials_from_config_file(str(path)) == ("AK2", "s2")


def test_a_config_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "config"
    path.write_text("access_key_id: AK1\nsecret_access_key: s1\n")
    path.chmod(0o644)
    with pytest.raises(ValueError, match="chmod 600"):
        _config.credentials_from_config_file(str(path))
    path.chmod(0o600)
    assert _config.credentials_from_config_file(str(path)) == ("AK1", "s1")


def test_the_tenant_header_is_sent_and_signed(server, monkeypatch):
    monkeypatch.setenv("DLAB_TENANT", "vision")
    client = dlab.Client(server.url, key_id="AKT", secret="t-secret")
    assert client.tenant == "vision"
    client.health()
    request = server.requests[-1]
    assert "x-dlab-tenant" in received_signature_ok(request, secret="t-secret", key_id="AKT")
    assert request.headers["x-dlab-tenant"] == "vision"


def test_half_an_access_key_or_a_non_string_is_an_error(tmp_path):
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert _config.resolve_credentials(environ=env) is None  # no file
    (tmp_path / "dlab").mkdir()
    path = tmp_path / "dlab" / "config"
    path.write_text("url: http://x:1\n")
    assert _config.resolve_credentials(environ=env) is None  # no keys
    path.write_text("access_key_id: AK\n")
    with pytest.raises(ValueError, match="secret_access_key is not"):
        _config.resolve_credentials(environ=env)
    path.write_text("access_key_id: AK\nsecret_access_key: 12345\n")
    with pytest.raises(ValueError, match="must be a string"):
        _config.resolve_credentials(environ=env)
    with pytest.raises(ValueError, match="DLAB_SECRET_ACCESS_KEY is not"):
        _config.resolve_credentials(environ=dict(env, DLAB_ACCESS_KEY_ID="AK"))
    with pytest.raises(ValueError, match="key_id is not"):
        _config.resolve_credentials(secret="s", environ=env)
    with pytest.raises(TypeError):
        dlab.Client("http://127.0.0.1:1", 30)  # the old positional timeout: refused, not a key


def test_the_job_reporter_keeps_the_job_token(server, job_env):
    env = dict(job_env, DLAB_ACCESS_KEY_ID="AKTEST", DLAB_SECRET_ACCESS_KEY=SECRET)
    run_python("import dlab\ndlab.report(1, loss=0.5)\nassert dlab.flush(10)\n", env=env,
               check=True)
    posts = wait_until(server.metric_posts, what="the metrics POST")
    for post in posts:
        assert post.headers["authorization"] == "Bearer tok-123"
        assert "x-dlab-date" not in post.headers
