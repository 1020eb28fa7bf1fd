"""Delivery of metrics reports and checkpoints from a job to dlabd.

report() appends to an in-memory queue under a lock and returns; a daemon thread sends the queue
in order: runs of reports as one POST /api/v1/jobs/{id}/metrics each (at most BATCH_SIZE reports
and MAX_BODY_BYTES), a checkpoint as one POST /api/v1/jobs/{id}/checkpoints. An item leaves the
queue only once dlabd has accepted it (or refused it for good with a 4xx), so order is kept and
a failed send is retried, with backoff, for as long as the process lives.

The thread wakes every BATCH_INTERVAL seconds, as soon as BATCH_SIZE reports are waiting, and at
once for checkpoint() and flush(). At interpreter exit an atexit hook waits for the queue to drain,
at most DLAB_FLUSH_TIMEOUT seconds (default 60).

Fork: the child of os.fork() (a DataLoader worker) starts with a fresh lock and an empty queue,
and its own sender thread if it reports; it never sends the parent's items.
"""

import atexit
import collections
import itertools
import json
import operator
import os
import random
import sys
import threading
import time
import warnings

from . import _env
from . import _http

BATCH_INTERVAL = 0.5        # seconds between sends while reports trickle in
BATCH_SIZE = 1000           # reports per POST at most
MAX_BODY_BYTES = 256 * 1024  # a batch is split to stay under this (dlabd takes up to 1 MiB)
MAX_NAME_BYTES = 256        # dlabd refuses longer metric names (and with them the whole batch)
SYSTEM_PREFIX = "system/"   # dlabd's own series (a job's GPU utilisation); jobs cannot write them
MAX_QUEUED = 1_000_000      # reports held while the server is away; newer ones are dropped
REQUEST_TIMEOUT = 10.0      # seconds for one POST
CHECKPOINT_WAIT = 5.0       # how long checkpoint() waits for dlabd's answer
BACKOFF_FIRST = 0.25
BACKOFF_MAX = 5.0
RETRY_AFTER_MAX = 30.0      # the longest pause a Retry-After header can ask for
DEFAULT_FLUSH_TIMEOUT = 60.0

_OFF, _PRINT, _SEND = "off", "print", "send"


class _Checkpoint:
    """A queued checkpoint; `done` is set once dlabd answered (or refused it for good)."""

    __slots__ = ("payload", "result", "done")

    def __init__(self, payload):
        self.payload = payload
        self.result = None
        self.done = threading.Event()


def _fmt(value):
    return str(value) if isinstance(value, int) else "%.6g" % value


def _seconds_from_env(name, default):
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        return default
    return value if value >= 0 else default


def _flush_timeout_from_env():
    return _seconds_from_env("DLAB_FLUSH_TIMEOUT", DEFAULT_FLUSH_TIMEOUT)


class Reporter:
    def __init__(self):
        self.mode = None  # None until configured from the environment
        self.all_ranks = False
        self._atexit_registered = False
        self._warned_names = set()
        self._names_ok = set()  # metric names already checked
        self._said = set()
        self._fresh_state()

    # ---- state -------------------------------------------------------------------------

    def _fresh_state(self):
        """A new lock, an empty queue and no thread: at start-up and in a forked child."""
        self._lock = threading.Lock()
        self._queue = collections.deque()  # items: a report tuple, or a _Checkpoint
        self._enqueued = 0                 # items ever queued
        self._done = 0                     # items delivered, or refused for good
        self._done_cond = threading.Condition(threading.Lock())
        self._wake = threading.Event()     # send now (a full batch, a flush, a checkpoint)
        self._urgent = threading.Event()   # cut a backoff short (a flush, a checkpoint)
        self._thread = None
        self._thread_failed = False
        self._pid = os.getpid()
        self._dropped_full = 0
        self._last_error = None
        self._retry_after = None

    def after_fork_in_child(self):
        self._fresh_state()

    def configure(self, all_ranks=None):
        """Reads the environment: where to send, as whom, and whether this rank reports."""
        if all_ranks is not None:
            self.all_ranks = bool(all_ranks)
        self.api_url = _env.api_url()
        self.job_id = _env.job_id() if self.api_url else None
        self.attempt = _env.attempt()
        token = _env.token()
        self.headers = {"Authorization": "Bearer " + token} if token else {}
        if not self.all_ranks and not _env.is_chief():
            self.mode = _OFF
        elif self.api_url and self.job_id is not None:
            self.mode = _SEND
            self.metrics_url = "%s/api/v1/jobs/%d/metrics" % (self.api_url, self.job_id)
            self.checkpoints_url = "%s/api/v1/jobs/%d/checkpoints" % (self.api_url, self.job_id)
        else:
            self.mode = _PRINT

    # ---- the calls from the training loop ------------------------------------------------

    def _clean(self, metrics):
        """The metrics as name → finite number; NaN and infinities are dropped with a warning."""
        clean = {}
        names_ok = self._names_ok
        for name, value in metrics.items():
            if name not in names_ok:
                self._check_name(name)
            kind = type(value)
            if kind is not float and kind is not int:
                value = self._to_number(name, value)
            if value - value != 0:  # NaN or ±inf (inf - inf is NaN)
                self._warn_non_finite(name, value)
                continue
            clean[name] = value
        return clean

    def _check_name(self, name):
        if not isinstance(name, str) or not name:
            raise ValueError("dlab: metric names must be non-empty strings, got %r" % (name,))
        if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
            raise ValueError("dlab: metric name %r... is longer than %d bytes"
                             % (name[:32], MAX_NAME_BYTES))
        if name.startswith(SYSTEM_PREFIX):
            raise ValueError("dlab: metric names starting with %r are reserved for what dlab "
                             "measures itself, got %r" % (SYSTEM_PREFIX, name))
        self._names_ok.add(name)

    @staticmethod
    def _to_number(name, value):
        if isinstance(value, (str, bytes, bytearray)):
            raise TypeError("dlab: metric %r must be a real number, got %s %r"
                            % (name, type(value).__name__, value))
        try:
            return float(value)  # bool, numpy scalars, 0-d tensors, Decimal, Fraction
        except (TypeError, ValueError):
            raise TypeError("dlab: metric %r must be a real number, got %s"
                            % (name, type(value).__name__)) from None

    def _warn_non_finite(self, name, value):
        if name not in self._warned_names:
            self._warned_names.add(name)
            warnings.warn("dlab: metric %r is %r; non-finite values are not recorded (warned once "
                          "per metric)" % (name, value), RuntimeWarning, stacklevel=4)

    def report(self, step, metrics):
        mode = self.mode
        if mode is None:
            self.configure()
            mode = self.mode
        if mode is _OFF:
            return
        if type(step) is not int or step < 0:
            step = self._step(step)
        metrics = self._clean(metrics)
        if not metrics:
            return
        if mode is _PRINT:
            print("step %d: %s" % (step, " ".join("%s=%s" % (k, _fmt(v))
                                                  for k, v in metrics.items())), flush=True)
            return
        item = (step, time.time(), metrics)
        with self._lock:
            queued = len(self._queue)
            if queued < MAX_QUEUED:
                self._queue.append(item)
                self._enqueued += 1
            else:
                self._dropped_full += 1
        if self._thread is None:
            self._start()
        if queued + 1 >= BATCH_SIZE and not self._wake.is_set():
            self._wake.set()
        if queued >= MAX_QUEUED and self._dropped_full == 1:
            self._say("dlab: %d reports are waiting for %s; newer reports are dropped until it "
                      "answers" % (MAX_QUEUED, self.api_url))

    @staticmethod
    def _step(step):
        try:
            step = operator.index(step)  # numpy integers
        except TypeError:
            raise TypeError("dlab: step must be an integer, got %s" % type(step).__name__) from None
        if step < 0:
            raise ValueError("dlab: step must be >= 0, got %d" % step)
        return step

    def checkpoint(self, path, step, metrics, wait=None):
        if self.mode is None:
            self.configure()
        mode = self.mode
        step = self._step(step)
        path = os.fspath(path)
        if isinstance(path, bytes):
            path = os.fsdecode(path)
        if not os.path.isabs(path):
            path = os.path.join(_env.checkpoint_dir() or os.getcwd(), path)
        path = os.path.normpath(path)
        metrics = self._clean(metrics)
        if mode is _OFF:
            return None
        if not os.path.exists(path):
            warnings.warn("dlab: checkpoint path %s does not exist (write the checkpoint before "
                          "recording it)" % path, RuntimeWarning, stacklevel=3)
        if mode is _PRINT:
            extra = " ".join("%s=%s" % (k, _fmt(v)) for k, v in metrics.items())
            print("checkpoint step %d: %s%s" % (step, path, " " + extra if extra else ""),
                  flush=True)
            return None
        item = _Checkpoint({"attempt": self.attempt, "step": step, "path": path,
                            "metrics": metrics})
        with self._lock:
            self._queue.append(item)
            self._enqueued += 1
        if self._thread is None:
            self._start()
        self._wake.set()
        self._urgent.set()
        if wait is None:
            wait = _seconds_from_env("DLAB_CHECKPOINT_TIMEOUT", CHECKPOINT_WAIT)
        if wait > 0 and item.done.wait(wait):
            return item.result
        return None

    def flush(self, timeout=None):
        """Waits until everything queued so far is delivered. True when it was, False on timeout."""
        if timeout is None:
            timeout = _flush_timeout_from_env()
        with self._lock:
            target = self._enqueued
        if self._done >= target:
            return True
        thread = self._thread
        if thread is None or self._thread_failed or (thread.ident is not None
                                                     and not thread.is_alive()):
            # At interpreter exit the sender thread may not start (or may no longer run): send
            # from this thread instead.
            self._send_inline(time.monotonic() + timeout, target)
            return self._done >= target
        self._wake.set()
        self._urgent.set()
        with self._done_cond:
            return self._done_cond.wait_for(lambda: self._done >= target, timeout)

    def pending(self):
        """(reports, checkpoints) not yet delivered."""
        with self._lock:
            items = list(self._queue)
        checkpoints = sum(1 for item in items if type(item) is _Checkpoint)
        return len(items) - checkpoints, checkpoints

    # ---- the sender thread ---------------------------------------------------------------

    def _start(self):
        with self._lock:
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name="dlab-reporter", daemon=True)
            self._thread = thread
        if not self._atexit_registered:
            self._atexit_registered = True
            atexit.register(self._at_exit)
        try:
            thread.start()
        except RuntimeError:  # at interpreter shutdown: flush() sends inline instead
            self._thread_failed = True

    def _run(self):
        while True:
            self._wake.wait(BATCH_INTERVAL)
            self._wake.clear()
            try:
                self._send_queued(deadline=None)
            except Exception as e:  # a bug here must not end delivery for good
                self._say("dlab: internal error while sending reports: %r" % (e,))
                time.sleep(BACKOFF_MAX)

    def _send_inline(self, deadline, target):
        while self._done < target and time.monotonic() < deadline:
            if not self._send_queued(deadline):
                return

    def _send_queued(self, deadline):
        """Sends what is queued now, in order, retrying each send until it is accepted.
        Returns False when the deadline passed first."""
        with self._lock:
            left = len(self._queue)
        backoff = BACKOFF_FIRST
        while left > 0:
            with self._lock:
                head = list(itertools.islice(self._queue, 0, BATCH_SIZE))
            if not head:
                return True
            if type(head[0]) is _Checkpoint:
                outcome, sent = self._send_checkpoint(head[0]), 1
            else:
                reports = []
                for item in head:
                    if type(item) is _Checkpoint:
                        break
                    reports.append(item)
                outcome, sent = self._send_reports(reports)
            if outcome == "retry":
                wait = backoff * random.uniform(0.8, 1.2)
                if self._retry_after:  # dlabd asked for a pause (429/503 Retry-After)
                    wait = max(wait, min(self._retry_after, RETRY_AFTER_MAX))
                    self._retry_after = None
                if deadline is not None:
                    wait = min(wait, deadline - time.monotonic())
                    if wait <= 0:
                        return False
                if self._urgent.wait(wait):
                    self._urgent.clear()
                backoff = min(backoff * 2, BACKOFF_MAX)
                continue
            backoff = BACKOFF_FIRST
            with self._lock:
                for _ in range(sent):
                    self._queue.popleft()
            with self._done_cond:
                self._done += sent
                self._done_cond.notify_all()
            left -= sent
        return True

    def _send_reports(self, reports):
        """Posts a prefix of `reports`; returns (outcome, how many reports it settled)."""
        n = len(reports)
        while True:
            body = json.dumps({"attempt": self.attempt,
                               "reports": [{"step": s, "time": t, "metrics": m}
                                           for s, t, m in reports[:n]]},
                              allow_nan=False, separators=(",", ":")).encode()
            if len(body) <= MAX_BODY_BYTES or n == 1:
                break
            n = max(1, n // 2)
        outcome, _ = self._post(self.metrics_url, body, "%d reports" % n, splittable=n > 1)
        if outcome == "too_large":
            return self._send_reports(reports[:n // 2])
        return ("retry" if outcome == "retry" else "done"), n

    def _send_checkpoint(self, item):
        body = json.dumps(item.payload, allow_nan=False).encode()
        outcome, answer = self._post(self.checkpoints_url, body,
                                     "checkpoint at step %d" % item.payload["step"])
        if outcome == "retry":
            return "retry"
        item.result = answer
        item.done.set()
        return "done"

    def _post(self, url, body, what, splittable=False):
        """One POST. Returns ("ok", answer), ("retry", None), ("dropped", None), or
        ("too_large", None) for a 413 when the caller can split what it sent."""
        try:
            answer = _http.send("POST", url, body, headers=self.headers,
                                timeout=REQUEST_TIMEOUT, content_type="application/json")
        except _http.ServerUnreachable as e:
            self._last_error = e.message
            return "retry", None
        except _http.ApiError as e:
            self._last_error = str(e)
            if e.status in (408, 429) or e.status >= 500:
                try:
                    self._retry_after = float(getattr(e, "retry_after", None) or 0)
                except ValueError:  # an HTTP date: not worth parsing here
                    self._retry_after = None
                return "retry", None
            if e.status == 413 and splittable:
                return "too_large", None
            self._say("dlab: dlabd refused %s (%s): not recorded, not retried" % (what, e),
                      once=(e.status, e.code, e.message))
            return "dropped", None
        self._last_error = None
        self._retry_after = None
        try:
            return "ok", answer.json()
        except ValueError:
            return "ok", None

    # ---- exit ----------------------------------------------------------------------------

    def _at_exit(self):
        if self._pid != os.getpid() or self.mode != _SEND:
            return
        reports, checkpoints = self.pending()
        if not reports and not checkpoints:
            return
        timeout = _flush_timeout_from_env()
        start = time.monotonic()
        if self.flush(min(timeout, 1.0)):
            return
        reports, checkpoints = self.pending()
        self._say("dlab: sending %d reports and %d checkpoints to %s before exiting (at most %gs, "
                  "DLAB_FLUSH_TIMEOUT)" % (reports, checkpoints, self.api_url, timeout))
        if self.flush(max(0.0, timeout - (time.monotonic() - start))):
            return
        reports, checkpoints = self.pending()
        self._say("dlab: gave up after %gs: %d reports and %d checkpoints were not delivered to %s "
                  "(last error: %s)" % (timeout, reports, checkpoints, self.api_url,
                                        self._last_error or "none"))

    def _say(self, text, once=None):
        if once is not None:
            if once in self._said:
                return
            self._said.add(once)
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
        except Exception:  # stderr closed at shutdown
            pass


reporter = Reporter()
os.register_at_fork(after_in_child=reporter.after_fork_in_child)
