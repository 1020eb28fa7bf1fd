"""dlab.report / dlab.checkpoint / dlab.flush against a fake dlabd."""

import atexit
import math
import os
import threading
import types
import warnings

import pytest

from conftest import run_python, wait_until

import dlab
from dlab import _reporter


_made = []


def new_reporter(all_ranks=None):
    """A fresh Reporter configured from the environment (the module's singleton is exercised
    through dlab.* here and in the subprocess tests)."""
    r = _reporter.Reporter()
    r.configure(all_ranks)
    _made.append(r)
    return r


@pytest.fixture(autouse=True)
def _no_flush_at_pytest_exit():
    yield
    while _made:  # a failed test must not hold pytest's exit for DLAB_FLUSH_TIMEOUT
        atexit.unregister(_made.pop()._at_exit)


@pytest.fixture
def reporter(job_env):
    r = new_reporter()
    yield r
    r.flush(timeout=5)


def test_reports_arrive_batched_with_auth_and_attempt(server, reporter):
    for step in range(10):
        reporter.report(step, {"loss": 1.0 / (step + 1), "acc": step})
    assert reporter.flush(timeout=10)
    posts = server.metric_posts()
    assert 1 <= len(posts) <= 2  # one batch (two if the interval fell in between)
    for post in posts:
        assert post.path == "/api/v1/jobs/7/metrics"
        assert post.headers["authorization"] == "Bearer tok-123"
        assert post.headers["content-type"] == "application/json"
        assert post.json()["attempt"] == 2
    reports = [rep for post in posts for rep in post.json()["reports"]]
    assert [rep["step"] for rep in reports] == list(range(10))
    assert reports[3]["metrics"] == {"loss": 0.25, "acc": 3}
    assert all(isinstance(rep["time"], float) for rep in reports)


def test_a_report_is_sent_without_flush_within_the_batch_interval(server, reporter):
    reporter.report(1, {"loss": 0.5})
    wait_until(lambda: server.reported_steps() == [1], timeout=5, what="the report")


def test_big_bursts_are_split_into_batches_of_at_most_1000_in_order(server, reporter):
    for step in range(2500):
        reporter.report(step, {"loss": 0.1})
    assert reporter.flush(timeout=20)
    posts = server.metric_posts()
    assert all(len(p.json()["reports"]) <= _reporter.BATCH_SIZE for p in posts)
    assert len(posts) <= 10
    assert server.reported_steps() == list(range(2500))


def test_reports_before_a_checkpoint_are_sent_before_it(server, reporter, job_env):
    os.makedirs(os.path.join(job_env["DLAB_CHECKPOINT_DIR"], "step-1500"))
    for step in range(1500):
        reporter.report(step, {"loss": 0.1})
    answer = reporter.checkpoint("step-1500", 1500, {"loss": 0.05})
    for step in range(1500, 1510):
        reporter.report(step, {"loss": 0.1})
    assert reporter.flush(timeout=20)
    assert answer is not None and answer["step"] == 1500
    expected_path = os.path.join(job_env["DLAB_CHECKPOINT_DIR"], "step-1500")
    assert answer["path"] == expected_path
    posts = [r for r in server.requests if r.method == "POST"]
    kinds = [r.path.rsplit("/", 1)[1] for r in posts]
    ck = kinds.index("checkpoints")
    assert kinds.count("checkpoints") == 1
    before = [rep["step"] for r in posts[:ck] for rep in r.json()["reports"]]
    after = [rep["step"] for r in posts[ck + 1:] for rep in r.json()["reports"]]
    assert before == list(range(1500))
    assert after == list(range(1500, 1510))
    body = posts[ck].json()
    assert body == {"attempt": 2, "step": 1500, "path": expected_path, "metrics": {"loss": 0.05}}
    assert posts[ck].headers["authorization"] == "Bearer tok-123"


def test_retries_while_the_server_answers_503_then_delivers_everything_once(server, reporter):
    server.fail_with = 503
    for step in range(20):
        reporter.report(step, {"loss": 0.1})
    assert not reporter.flush(timeout=0.5)
    wait_until(lambda: len(server.metric_posts()) >= 1, what="a first try")
    assert reporter.pending() == (20, 0)
    server.fail_with = None
    assert reporter.flush(timeout=15)
    assert server.reported_steps() == list(range(20))
    assert reporter.pending() == (0, 0)


def test_retries_while_the_server_is_gone_then_delivers_in_order(server, reporter):
    reporter.report(0, {"loss": 1.0})
    assert reporter.flush(timeout=10)
    server.stop()  # connection refused from now on
    for step in range(1, 30):
        reporter.report(step, {"loss": 0.1})
    assert reporter.checkpoint("/tmp", 30, {}, wait=0.2) is None  # queued, not lost
    reporter.report(31, {"loss": 0.1})
    assert not reporter.flush(timeout=0.5)
    assert reporter.pending() == (30, 1)
    server.start()  # the same port again: a restarted dlabd
    assert reporter.flush(timeout=15)
    assert server.reported_steps() == list(range(30)) + [31]
    assert [c["step"] for c in server.checkpoints] == [30]
    posts = [r for r in server.requests if r.method == "POST"]
    assert posts[-1].path.endswith("/metrics") and posts[-2].path.endswith("/checkpoints")


def test_retry_after_is_honoured(server, reporter):
    server.fail_with = 503
    server.error_headers = {"Retry-After": "1"}
    reporter.report(1, {"loss": 0.5})
    wait_until(lambda: server.metric_posts(), what="a first try")
    server.fail_with = None
    wait_until(lambda: server.reported_steps() == [1], timeout=10, what="the retry")
    first, second = server.metric_posts()
    assert second.arrival - first.arrival >= 0.9  # not the 0.25 s of the first backoff


def test_429_and_408_are_retried(server, reporter):
    for status in (429, 408):
        server.metrics_status = (status, {"error": {"code": "X", "message": "slow down"}})
        reporter.report(status, {"loss": 0.1})
        assert not reporter.flush(timeout=0.3)
        server.metrics_status = None
        assert reporter.flush(timeout=15)
    assert server.reported_steps() == [429, 408]


def test_a_4xx_is_not_retried_and_its_message_is_printed_once(server, reporter, capsys):
    server.metrics_status = (400, {"error": {"code": "INVALID_ARGUMENT",
                                             "message": "metric name 'bad name' is invalid"}})
    reporter.report(1, {"loss": 0.1})
    assert reporter.flush(timeout=10)  # settled: dropped
    reporter.report(2, {"loss": 0.1})
    assert reporter.flush(timeout=10)
    assert len(server.metric_posts()) == 2  # one try each, no retries
    err = capsys.readouterr().err
    assert err.count("metric name 'bad name' is invalid") == 1
    assert "400 INVALID_ARGUMENT" in err
    server.metrics_status = None
    reporter.report(3, {"loss": 0.1})
    assert reporter.flush(timeout=10)
    assert server.reported_steps() == [3]


def test_an_oversized_batch_is_split_on_413(server, reporter):
    calls = []

    original = server._route

    def route(r):
        if r.path.endswith("/metrics") and len(r.json()["reports"]) > 5:
            calls.append(len(r.json()["reports"]))
            return 413, {"error": {"code": "PAYLOAD_TOO_LARGE", "message": "too big"}}
        return original(r)

    server._route = route
    for step in range(12):
        reporter.report(step, {"loss": 0.1})
    assert reporter.flush(timeout=10)
    assert calls  # the big batch was refused, then sent in halves
    assert sorted(server.reported_steps()) == list(range(12))
    assert server.reported_steps() == list(range(12))


def test_values_are_checked_and_non_finite_ones_dropped_with_one_warning(server, reporter):
    class Scalar:  # a numpy scalar or a 0-d tensor: converted with float()
        def __float__(self):
            return 0.75

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reporter.report(1, {"loss": float("nan"), "acc": Scalar(), "flag": True})
        reporter.report(2, {"loss": math.inf, "acc": 1})
        reporter.report(3, {"loss": -math.inf})  # nothing left: not sent
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1 and "'loss'" in messages[0]
    with pytest.raises(TypeError, match="metric 'loss' must be a real number"):
        reporter.report(4, {"loss": "0.5"})
    with pytest.raises(TypeError, match="metric 'loss'"):
        reporter.report(4, {"loss": [1.0]})
    with pytest.raises(TypeError, match="step must be an integer"):
        reporter.report(1.5, {"loss": 0.5})
    with pytest.raises(ValueError, match="step must be >= 0"):
        reporter.report(-1, {"loss": 0.5})
    with pytest.raises(ValueError, match="non-empty"):
        reporter.report(1, {"": 0.5})
    with pytest.raises(ValueError, match="longer than 256 bytes"):
        reporter.report(1, {"é" * 129: 0.5})
    with pytest.raises(ValueError, match="'system/' are reserved"):
        reporter.report(1, {"system/gpu_utilization_pct": 0.5})
    assert reporter.flush(timeout=10)
    reports = [rep for p in server.metric_posts() for rep in p.json()["reports"]]
    assert [(r["step"], r["metrics"]) for r in reports] == [
        (1, {"acc": 0.75, "flag": 1.0}), (2, {"acc": 1})]


def test_other_ranks_do_nothing_unless_all_ranks(server, job_env, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    r = new_reporter()
    r.report(1, {"loss": 0.1})
    assert r.checkpoint("/tmp", 1, {}) is None
    assert r.flush(timeout=1)
    r.configure(all_ranks=True)
    r.report(2, {"loss": 0.1})
    assert r.flush(timeout=10)
    assert server.reported_steps() == [2]
    assert not server.find(path_suffix="/checkpoints")


def test_without_a_server_reports_are_printed(monkeypatch, capsys, tmp_path):
    for k in ("DLAB_API_URL", "DLAB_JOB_ID", "RANK", "DLAB_CHECKPOINT_DIR"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ck").mkdir()
    r = new_reporter()
    r.report(10, {"loss": 0.5, "accuracy": 0.9, "n": 3})
    r.report(11, {"loss": 1 / 3})
    assert r.checkpoint("ck", 11, {"loss": 0.25}) is None
    assert r.flush(timeout=1)
    out = capsys.readouterr().out.splitlines()
    assert out == ["step 10: loss=0.5 accuracy=0.9 n=3", "step 11: loss=0.333333",
                   "checkpoint step 11: %s loss=0.25" % (tmp_path / "ck")]


def test_checkpoint_of_a_missing_path_warns_but_is_recorded(server, reporter):
    with pytest.warns(RuntimeWarning, match="does not exist"):
        answer = reporter.checkpoint("/nonexistent/ck", 5, {})
    assert answer["path"] == "/nonexistent/ck"


def test_public_module_functions(server, job_env, tmp_path):
    dlab.init()
    try:
        dlab.report(1, loss=0.5, step=3)  # a metric may even be called "step"
        ck = tmp_path / "ckpt" / "epoch-1"
        ck.mkdir()
        answer = dlab.checkpoint(ck, 1, loss=0.5)
        assert answer["path"] == str(ck)
        assert dlab.flush(timeout=10)
    finally:
        dlab.init()
    reports = [rep for p in server.metric_posts() for rep in p.json()["reports"]]
    assert reports[0]["metrics"] == {"loss": 0.5, "step": 3}


def test_env_helpers(job_env, monkeypatch):
    assert dlab.hparams() == {"lr": 0.1}
    assert dlab.resume_from() is None
    monkeypatch.setenv("DLAB_RESUME_FROM", "/ck/epoch-3")
    assert dlab.resume_from() == "/ck/epoch-3"
    assert dlab.checkpoint_dir() == job_env["DLAB_CHECKPOINT_DIR"]
    assert dlab.output_dir() == job_env["DLAB_OUTPUT_DIR"]
    assert dlab.job_id() == 7 and dlab.attempt() == 2
    assert (dlab.rank(), dlab.world_size(), dlab.is_chief()) == (0, 1, True)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert (dlab.rank(), dlab.world_size(), dlab.is_chief()) == (3, 4, False)
    monkeypatch.delenv("DLAB_HPARAMS")
    assert dlab.hparams() == {}
    monkeypatch.setenv("DLAB_HPARAMS", "[1]")
    with pytest.raises(ValueError):
        dlab.hparams()


# ---- in a subprocess: exit, signals, fork -------------------------------------------------

def _job_env(server, **extra):
    env = {"DLAB_JOB_ID": "7", "DLAB_ATTEMPT": "1", "DLAB_API_URL": server.url,
           "DLAB_TOKEN": "tok-123", "RANK": "0"}
    env.update(extra)
    return env


def test_pending_reports_are_flushed_at_exit(server):
    proc = run_python("import dlab\nfor s in range(5): dlab.report(s, loss=s / 10)\n",
                      env=_job_env(server), check=True)
    assert server.reported_steps() == [0, 1, 2, 3, 4]
    assert proc.stderr == ""


def test_exit_gives_up_after_the_flush_timeout_with_a_message(server):
    server.stop()
    proc = run_python("import dlab\ndlab.report(1, loss=0.5)\n",
                      env=_job_env(server, DLAB_FLUSH_TIMEOUT="1.5"), timeout=30)
    assert proc.returncode == 0
    assert "gave up after 1.5s: 1 reports and 0 checkpoints were not delivered" in proc.stderr


def test_a_forked_child_neither_deadlocks_nor_sends_the_parents_reports(server):
    code = r"""
import os, threading, dlab
from dlab import _reporter
r = _reporter.reporter
for s in range(3):
    dlab.report(s, parent=1.0)
held, release = threading.Event(), threading.Event()
def hold():
    with r._lock:  # the lock is held by another thread when the process forks
        held.set()
        release.wait()
t = threading.Thread(target=hold)
t.start()
held.wait()
pid = os.fork()
if pid == 0:
    dlab.report(100, child=1.0)
    os._exit(0 if dlab.flush(timeout=10) and r.pending() == (0, 0) else 1)
release.set()
t.join()
_, status = os.waitpid(pid, 0)
assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
assert dlab.flush(timeout=10)
print("ok")
"""
    proc = run_python(code, env=_job_env(server), check=True)
    assert proc.stdout.strip() == "ok"
    assert sorted(server.reported_steps("parent")) == [0, 1, 2]
    assert server.reported_steps("child") == [100]
    for post in server.metric_posts():
        names = {name for rep in post.json()["reports"] for name in rep["metrics"]}
        assert len(names) == 1  # the child's batches hold only the child's reports


def test_checkpoint_is_sent_promptly(server, reporter):
    reporter.report(1, {"loss": 0.5})
    answer = reporter.checkpoint("/tmp", 1, {"loss": 0.5})
    assert answer is not None and answer["id"] == 1
    # Sent at once, not at the next batch interval: both requests have arrived already.
    assert [r.path.rsplit("/", 1)[1] for r in server.requests] == ["metrics", "checkpoints"]


def test_flush_sends_from_the_calling_thread_when_no_thread_can_start(server, job_env,
                                                                      monkeypatch):
    # At interpreter shutdown (an atexit handler that reports) threads may not start.
    class RefusingThread(threading.Thread):
        def start(self):
            raise RuntimeError("can't create new thread at interpreter shutdown")

    r = new_reporter()
    monkeypatch.setattr(_reporter, "threading", types.SimpleNamespace(
        Thread=RefusingThread, Event=threading.Event, Lock=threading.Lock,
        Condition=threading.Condition))
    r.report(1, {"loss": 0.5})
    r.report(2, {"loss": 0.25})
    assert r.flush(timeout=10)
    assert server.reported_steps() == [1, 2]
