"""What a job's task sees: the environment contract that dlabd sets (docs/job-spec.md).

Every helper reads os.environ when it is called, so a test (or a launcher) that changes the
environment sees its change; none of them is on a hot path.
"""

import json
import os

__all__ = [
    "job_id", "attempt", "api_url", "token", "hparams", "checkpoint_dir", "resume_from",
    "output_dir", "rank", "local_rank", "world_size", "local_world_size", "is_chief",
    "task_role", "in_job",
]


def _get(name):
    """The variable's value, or None when it is unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def _int(name, default):
    value = _get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError("%s=%r is not an integer" % (name, value)) from None


def in_job():
    """True inside a task launched by dlabd (DLAB_JOB_ID is set)."""
    return _get("DLAB_JOB_ID") is not None


def job_id():
    """The job id (int) from DLAB_JOB_ID, or None outside a job."""
    return _int("DLAB_JOB_ID", None)


def attempt():
    """The attempt number from DLAB_ATTEMPT (1, 2, ...); 1 when unset."""
    return _int("DLAB_ATTEMPT", 1)


def api_url():
    """dlabd's base URL from DLAB_API_URL without a trailing '/', or None."""
    url = _get("DLAB_API_URL")
    return url.rstrip("/") if url else None


def token():
    """The job's token for reports (DLAB_TOKEN), or None."""
    return _get("DLAB_TOKEN")


def hparams():
    """The hyperparameters from DLAB_HPARAMS (a JSON object) as a new dict; {} when unset."""
    text = _get("DLAB_HPARAMS")
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as e:
        raise ValueError("DLAB_HPARAMS is not valid JSON: %s" % e) from None
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError("DLAB_HPARAMS must be a JSON object, got %s" % type(value).__name__)
    return value


def checkpoint_dir():
    """DLAB_CHECKPOINT_DIR (kept across attempts), or None outside a job."""
    return _get("DLAB_CHECKPOINT_DIR")


def resume_from():
    """The path of the latest recorded checkpoint (DLAB_RESUME_FROM), or None on a first attempt."""
    return _get("DLAB_RESUME_FROM")


def output_dir():
    """DLAB_OUTPUT_DIR, or None outside a job."""
    return _get("DLAB_OUTPUT_DIR")


def rank():
    """This process's global rank (RANK); 0 when unset."""
    return _int("RANK", 0)


def local_rank():
    """This process's rank on its node (LOCAL_RANK); 0 when unset."""
    return _int("LOCAL_RANK", 0)


def world_size():
    """How many processes the job has (WORLD_SIZE); 1 when unset."""
    return _int("WORLD_SIZE", 1)


def local_world_size():
    """How many processes run on this node (LOCAL_WORLD_SIZE); 1 when unset."""
    return _int("LOCAL_WORLD_SIZE", 1)


def task_role():
    """The task's role in a distributed job (DLAB_TASK_ROLE), or None."""
    return _get("DLAB_TASK_ROLE")


def is_chief():
    """True for rank 0 (and when RANK is unset): the process that reports by default."""
    return rank() == 0
