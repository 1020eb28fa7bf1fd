"""dlab.should_stop() and SIGTERM, each in a subprocess (signal handlers are per process)."""

import signal

from conftest import run_python

STATUS = 128 + signal.SIGTERM


def _env(server=None, **extra):
    env = {"DLAB_JOB_ID": "7", "DLAB_ATTEMPT": "1", "DLAB_TOKEN": "tok", "RANK": "0"}
    if server is not None:
        env["DLAB_API_URL"] = server.url
    env.update(extra)
    return env


POLL = r"""
import os, signal, time
def wait_for_stop():
    deadline = time.monotonic() + 10
    while not dlab.should_stop():
        assert time.monotonic() < deadline, "should_stop() never turned True"
        time.sleep(0.001)
"""


def test_should_stop_turns_true_after_sigterm():
    code = "import dlab\n" + POLL + r"""
assert dlab.should_stop() is False
os.kill(os.getpid(), signal.SIGTERM)
wait_for_stop()
print("saving a checkpoint and leaving")
"""
    proc = run_python(code, env=_env(), check=True)
    assert proc.stdout == "saving a checkpoint and leaving\n"
    assert "SIGTERM received: dlab.should_stop() is now True" in proc.stderr


def test_the_handler_is_installed_at_import_in_a_job():
    code = "import signal, dlab\nprint(signal.getsignal(signal.SIGTERM) is dlab._signals._handler)"
    assert run_python(code, env=_env(), check=True).stdout.strip() == "True"
    # Outside a job importing dlab changes nothing; the first should_stop() installs it.
    code = ("import signal, dlab\nprint(signal.getsignal(signal.SIGTERM) is signal.SIG_DFL)\n"
            "dlab.should_stop()\nprint(signal.getsignal(signal.SIGTERM) is dlab._signals._handler)")
    assert run_python(code, env={"DLAB_JOB_ID": ""}, check=True).stdout.split() == ["True", "True"]


def test_a_second_sigterm_exits_with_status_143():
    code = "import dlab\n" + POLL + r"""
dlab.should_stop()
os.kill(os.getpid(), signal.SIGTERM)
wait_for_stop()
try:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(10)
finally:
    print("finally blocks run")
print("not reached")
"""
    proc = run_python(code, env=_env())
    assert proc.returncode == STATUS
    assert proc.stdout == "finally blocks run\n"
    assert "second SIGTERM received: exiting (status 143)" in proc.stderr


def test_sigterm_when_nobody_polls_exits_and_still_flushes_reports(server):
    code = r"""
import os, signal, time, dlab
for s in range(3):
    dlab.report(s, loss=0.5)
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(10)
print("not reached")
"""
    proc = run_python(code, env=_env(server))
    assert proc.returncode == STATUS
    assert proc.stdout == ""
    assert "nothing calls dlab.should_stop()" in proc.stderr
    assert server.reported_steps() == [0, 1, 2]  # the atexit flush ran


def test_a_previous_python_handler_is_still_called():
    code = r"""
import os, signal, time
seen = []
signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
import dlab
""" + POLL + r"""
os.kill(os.getpid(), signal.SIGTERM)
wait_for_stop()
print(seen == [signal.SIGTERM])
"""
    proc = run_python(code, env=_env(), check=True)
    assert proc.stdout.strip() == "True"


def test_a_handler_installed_after_import_is_chained_by_should_stop():
    code = r"""
import os, signal, time, dlab
seen = []
signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))
""" + POLL + r"""
assert dlab.should_stop() is False  # the first call installs the handler again, chained
os.kill(os.getpid(), signal.SIGTERM)
wait_for_stop()
print(seen == [signal.SIGTERM])
"""
    proc = run_python(code, env=_env(), check=True)
    assert proc.stdout.strip() == "True"
