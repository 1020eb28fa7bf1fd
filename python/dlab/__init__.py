"""dlab: the Python SDK of the dlab deep-learning job platform.

In a job (the environment dlabd sets):

    import dlab
    dlab.report(step, loss=loss)              # metrics, buffered and sent in the background
    dlab.checkpoint(path, step, loss=loss)    # a checkpoint written to `path`, sent promptly
    dlab.resume_from()                        # where to resume from, or None
    dlab.should_stop()                        # True after SIGTERM (cancel, preemption)

From anywhere:

    client = dlab.Client()                    # $DLAB_URL, ~/.config/dlab/config, or the default
    job = client.submit({"name": "x", "command": "python3 train.py"}, code_dir=".")
    client.wait(job["id"])

Only the standard library is used. See docs/sdk.md.
"""

import threading as _threading

from . import _env
from . import _reporter
from . import _signals
from ._http import ApiError, ServerUnreachable
from .client import Client, TERMINAL_STATES

__version__ = "0.1.0"

__all__ = [
    "report", "checkpoint", "flush", "init", "should_stop",
    "hparams", "resume_from", "checkpoint_dir", "output_dir",
    "job_id", "attempt", "rank", "local_rank", "world_size", "local_world_size", "is_chief",
    "task_role", "in_job",
    "Client", "ApiError", "ServerUnreachable", "TERMINAL_STATES",
]

_reporter_instance = _reporter.reporter
_report = _reporter_instance.report


def report(step, /, **metrics):
    """Records metrics at a training step, e.g. ``dlab.report(10, loss=0.5, accuracy=0.9)``.

    Values are real numbers (int, float, numpy scalars, 0-d tensors); NaN and infinities are
    dropped with one warning per metric name. Returns at once: the report is buffered and a
    background thread sends it. Only rank 0 reports unless ``dlab.init(all_ranks=True)``.
    Outside dlab (no DLAB_API_URL) it prints ``step 10: loss=0.5 accuracy=0.9``.
    """
    _report(step, metrics)


def checkpoint(path, step, /, **metrics):
    """Records a checkpoint that is already completely written at `path` (absolute, or
    relative to DLAB_CHECKPOINT_DIR); the next attempt gets it as dlab.resume_from().

    Reports made before it are sent first, then the checkpoint; waits for dlabd's answer (at
    most DLAB_CHECKPOINT_TIMEOUT seconds, default 5) and returns the recorded checkpoint (a
    dict), or None when dlabd has not answered yet: it stays queued and is sent in order as soon
    as dlabd answers. Only rank 0 records checkpoints unless ``dlab.init(all_ranks=True)``.
    """
    return _reporter_instance.checkpoint(path, step, metrics)


def flush(timeout=None):
    """Waits until every report and checkpoint made so far is delivered. Returns True when
    they were, False after `timeout` seconds (None: DLAB_FLUSH_TIMEOUT, default 60)."""
    return _reporter_instance.flush(timeout)


def init(all_ranks=False):
    """(Re)reads the job's environment. all_ranks=True makes every rank send its reports and
    checkpoints (by default only rank 0 does; the others' calls do nothing)."""
    _reporter_instance.configure(all_ranks=all_ranks)


should_stop = _signals.should_stop
hparams = _env.hparams
resume_from = _env.resume_from
checkpoint_dir = _env.checkpoint_dir
output_dir = _env.output_dir
job_id = _env.job_id
attempt = _env.attempt
rank = _env.rank
local_rank = _env.local_rank
world_size = _env.world_size
local_world_size = _env.local_world_size
is_chief = _env.is_chief
task_role = _env.task_role
in_job = _env.in_job

# Inside a job, catch SIGTERM from the start (see dlab.should_stop); elsewhere the handler is
# installed by the first should_stop() call.
if _env.in_job() and _threading.current_thread() is _threading.main_thread():
    _signals.install()
