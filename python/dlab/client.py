"""dlab.Client: submit and watch jobs through dlabd's REST API (docs/rest-api.md)."""

import os
import tempfile
import time
import urllib.parse

from . import _config
from . import _http
from . import _snapshot
from ._http import ApiError, ServerUnreachable

__all__ = ["Client", "TERMINAL_STATES"]

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_MAX_PAGE = 500


def _job_path(job_id, suffix=""):
    if isinstance(job_id, dict):
        job_id = job_id.get("id")
    if isinstance(job_id, bool) or job_id is None or str(job_id).strip() == "":
        raise ValueError("a job id is an integer, got %r" % (job_id,))
    return "/api/v1/jobs/%s%s" % (urllib.parse.quote(str(job_id), safe=""), suffix)


def _states(state):
    if state is None:
        return []
    if isinstance(state, str):
        state = [state]
    return [s.strip().upper() for item in state for s in item.split(",") if s.strip()]


def _labels(labels):
    if not labels:
        return []
    if isinstance(labels, dict):
        return ["%s=%s" % (k, v) for k, v in labels.items()]
    if isinstance(labels, str):
        labels = [labels]
    out = []
    for label in labels:
        if "=" not in label or label.startswith("="):
            raise ValueError("label %r: expected key=value, e.g. project=mnist" % label)
        out.append(label)
    return out


class Client:
    """A client of one dlabd.

    url: the server; default from $DLAB_URL, then `url:` in ~/.config/dlab/config (or
    $XDG_CONFIG_HOME/dlab/config), then http://127.0.0.1:8080, as the CLI chooses it.
    key_id, secret: the access key that signs every request (docs/auth.md); default from
    $DLAB_ACCESS_KEY_ID and $DLAB_SECRET_ACCESS_KEY, then `access_key_id:` and
    `secret_access_key:` in the same config file. Without one, requests go unsigned.
    timeout: seconds for each request.

    Every method raises dlab.ApiError (.status, .code, .message) for an error answer, and
    dlab.ServerUnreachable (an ApiError with status None) when dlabd does not answer.
    """

    def __init__(self, url=None, key_id=None, secret=None, timeout=30, tenant=None):
        self.url = _config.resolve_server_url(url)
        credentials = _config.resolve_credentials(key_id, secret)
        self.key_id = credentials[0] if credentials else None
        self._credentials = credentials
        self.timeout = timeout
        # The tenant to act in (X-Dlab-Tenant): the argument, $DLAB_TENANT, the config file's
        # `tenant`, else the server's choice (the caller's first tenant).
        self.tenant = tenant or _config.resolve_tenant()

    def __repr__(self):
        if self.key_id:
            return "dlab.Client(%r, key_id=%r)" % (self.url, self.key_id)
        return "dlab.Client(%r)" % self.url

    # ---- plumbing --------------------------------------------------------------------------

    def _send(self, method, path, query=None, body=None, headers=None, content_type=None):
        url = self.url + path
        if self.tenant:
            headers = dict(headers or {}, **{"X-Dlab-Tenant": self.tenant})
        if query:
            url += "?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        return _http.send(method, url, body=body, headers=headers, timeout=self.timeout,
                          content_type=content_type, credentials=self._credentials)

    def _json(self, method, path, query=None, body=None, headers=None):
        return self._send(method, path, query=query, body=body, headers=headers).json()

    # ---- jobs ------------------------------------------------------------------------------

    def health(self):
        """GET /healthz: {"status": "ok"} when dlabd is up."""
        return self._json("GET", "/healthz")

    def submit(self, spec, code_dir=None, idempotency_key=None):
        """Submits a job; returns the job (a dict, see docs/rest-api.md).

        spec: the job spec as a dict (docs/job-spec.md). code_dir: a folder to pack (honouring
        its .dlabignore) and upload as the job's code snapshot, as `dlab run` does; without it
        the job runs without code. idempotency_key: a second submit with the same key returns
        the first job instead of creating another.
        """
        if not isinstance(spec, dict):
            raise TypeError("spec must be a dict (the job spec), got %s" % type(spec).__name__)
        body = {"spec": spec}
        if code_dir is not None:
            body["snapshot"] = self.upload_snapshot(code_dir)
        headers = {"Idempotency-Key": str(idempotency_key)} if idempotency_key else None
        return self._json("POST", "/api/v1/jobs", body=body, headers=headers)

    def upload_snapshot(self, code_dir):
        """Packs `code_dir` and uploads it unless dlabd has it already; returns its id
        ("sha256:<hex>"), the same id `dlab run` gives the same folder."""
        code_dir = os.fspath(code_dir)
        entries = _snapshot.scan(code_dir)
        with tempfile.TemporaryFile(prefix="dlab-snapshot-") as archive:
            snapshot_id, size = _snapshot.pack(code_dir, archive, entries)
            try:
                self._send("HEAD", "/api/v1/snapshots/" + snapshot_id)
                return snapshot_id
            except ApiError as e:
                if e.status != 404:
                    raise
            archive.seek(0)
            answer = self._send("POST", "/api/v1/snapshots", body=archive,
                                headers={"Content-Length": str(size)},
                                content_type="application/gzip").json()
        if isinstance(answer, dict) and isinstance(answer.get("id"), str):
            return answer["id"]
        return snapshot_id

    def get(self, job_id):
        """One job (a dict)."""
        return self._json("GET", _job_path(job_id))

    def list(self, state=None, labels=None, limit=50):
        """Jobs, newest first, at most `limit` of them (following next_cursor as needed).

        state: "RUNNING", "QUEUED,RUNNING" or a list of states. labels: {"project": "mnist"}
        or ["project=mnist"]; a job must have all of them.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        jobs = []
        for job in self.list_all(state=state, labels=labels, page_size=min(limit, _MAX_PAGE)):
            jobs.append(job)
            if len(jobs) >= limit:
                break
        return jobs

    def list_all(self, state=None, labels=None, page_size=100):
        """A generator over every matching job, newest first, a page at a time."""
        page_size = max(1, min(int(page_size), _MAX_PAGE))
        filters = [("state", s) for s in _states(state)] + [("label", l) for l in _labels(labels)]
        cursor = None
        while True:
            query = [("limit", str(page_size))] + filters
            if cursor:
                query.append(("cursor", cursor))
            page = self._json("GET", "/api/v1/jobs", query=query) or {}
            jobs = page.get("jobs") or []
            for job in jobs:
                yield job
            cursor = page.get("next_cursor")
            if not jobs or not cursor:
                return

    def cancel(self, job_id):
        """Cancels a job: a queued job ends at once, a running one gets SIGTERM, then SIGKILL
        after the grace period. Returns the job. ApiError 409 when it had already ended."""
        return self._json("POST", _job_path(job_id, "/cancel"), body={})

    def logs(self, job_id, attempt=None, task=None, tail=None):
        """The log of one attempt (default: the latest) as text; `task` picks a task of a
        distributed job, `tail` keeps the last N lines."""
        query = []
        if attempt is not None:
            query.append(("attempt", str(int(attempt))))
        if task is not None:
            query.append(("task", str(task)))
        if tail is not None:
            query.append(("tail", str(int(tail))))
        body = self._send("GET", _job_path(job_id, "/logs"), query=query).body
        return body.decode("utf-8", "replace")

    def events(self, job_id):
        """Every state transition of the job, oldest first (a list of dicts)."""
        return (self._json("GET", _job_path(job_id, "/events")) or {}).get("events", [])

    def metrics(self, job_id, names=None, max_points=None):
        """The job's metrics: {name: [(step, time, value), ...]} in step order.

        names: one name or a list (default: all). max_points: let dlabd downsample each series
        to at most this many points.
        """
        query = []
        if names is not None:
            if isinstance(names, str):
                names = [names]
            query += [("name", n) for n in names]
        if max_points is not None:
            query.append(("max_points", str(int(max_points))))
        answer = self._json("GET", _job_path(job_id, "/metrics"), query=query) or {}
        return {series["name"]: [tuple(point) for point in series.get("points", [])]
                for series in answer.get("series", [])}

    def checkpoints(self, job_id):
        """The job's recorded checkpoints, as dlabd lists them (a list of dicts)."""
        answer = self._json("GET", _job_path(job_id, "/checkpoints")) or {}
        return answer.get("checkpoints", [])

    def wait(self, job_id, timeout=None, poll=1.0):
        """Polls until the job reaches SUCCEEDED, FAILED or CANCELLED; returns the final job.

        Raises TimeoutError after `timeout` seconds (None: no limit). A dlabd that is briefly
        unreachable or unavailable (a restart) is waited for, within the same timeout.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        last = None
        while True:
            try:
                job = self.get(job_id)
                last = job.get("state")
                if last in TERMINAL_STATES:
                    return job
            except ServerUnreachable:
                pass
            except ApiError as e:
                if e.status not in (502, 503, 504):
                    raise
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("job %s is still %s after %gs" % (
                        job_id if not isinstance(job_id, dict) else job_id.get("id"),
                        last or "unknown", timeout))
                time.sleep(min(poll, left))
            else:
                time.sleep(poll)
