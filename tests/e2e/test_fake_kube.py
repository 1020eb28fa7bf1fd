"""fake_kube.py, the fake Kubernetes API server the Kubernetes backend is tested against: its Job
lifecycle, pod logs, deletion and watch semantics, driven through plain HTTP as a client would."""
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from conftest import wait_for

FAKE = pathlib.Path(__file__).with_name("fake_kube.py")
TOKEN = "e2e-token"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"
SERVICES = "/api/v1/namespaces/default/services"
needs_root = pytest.mark.skipif(os.geteuid() != 0,
                                reason="pod containers run under unshare, which needs root")


class Fake:
    """One fake_kube process and a small HTTP client for it."""

    def __init__(self, tmp):
        self.tmp, self.record = tmp, tmp / "record"
        (tmp / "pvc").mkdir()
        self.proc = subprocess.Popen(
            [sys.executable, str(FAKE), "--state-dir", str(tmp / "state"), "--kubeconfig",
             str(tmp / "kubeconfig"), "--token", TOKEN, "--pvc", f"data={tmp / 'pvc'}",
             "--record", str(self.record)],
            stdout=subprocess.PIPE, stderr=open(tmp / "fake_kube.log", "wb"), text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("ready "):
            self.proc.kill()
            raise AssertionError(f"fake_kube did not start: {line!r}\n"
                                 f"{(tmp / 'fake_kube.log').read_text()}")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def open(self, method, path, body=None, token=TOKEN, timeout=20):
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers=headers)
        return urllib.request.urlopen(request, timeout=timeout)

    def request(self, method, path, body=None, token=TOKEN):
        """(HTTP status, parsed JSON body or text)."""
        try:
            with self.open(method, path, body, token) as resp:
                status, payload, kind = resp.status, resp.read(), resp.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers["Content-Type"]
        return status, json.loads(payload) if kind == "application/json" else payload.decode()

    def wait_event(self, path, predicate, timeout=10):
        """The first watch event on path (a list URL) that satisfies predicate."""
        separator = "&" if "?" in path else "?"
        with self.open("GET", f"{path}{separator}watch=true&timeoutSeconds={timeout}") as resp:
            for line in resp:
                event = json.loads(line)
                if predicate(event):
                    return event
        raise AssertionError(f"no matching event on {path} within {timeout}s")

    def rv(self, path):
        return self.request("GET", path)[1]["metadata"]["resourceVersion"]

    def pods_of(self, job):
        status, body = self.request("GET", f"{PODS}?labelSelector=job-name={job}")
        assert status == 200, body
        return sorted(body["items"], key=lambda p: int(
            p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]))


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    server = Fake(tmp_path_factory.mktemp("fake_kube"))
    yield server
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=10) == 0


def job(name, command, completions=1, gpus=1, image="busybox:1.36", **spec):
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name}, "spec": {
        "completions": completions, "parallelism": completions, "completionMode": "Indexed",
        "backoffLimit": 0, **spec, "template": {"spec": {
            "restartPolicy": "Never", "subdomain": name, "terminationGracePeriodSeconds": 5,
            "containers": [{"name": "task", "image": image, "command": ["sh", "-c", command],
                            "resources": {"limits": {"nvidia.com/gpu": gpus}}}]}}}}


def condition_types(obj):
    return [c["type"] for c in obj.get("status", {}).get("conditions") or []]


def terminated(pod):
    return pod["status"]["containerStatuses"][0]["state"].get("terminated") or {}


@needs_root
def test_job_runs_to_completion_with_logs_hosts_gpus_and_volumes(fake, tmp_path):
    spec = job("ok", 'echo "index=$JOB_COMPLETION_INDEX host=$(hostname) '
                     'gpus=$NVIDIA_VISIBLE_DEVICES me=$(POD)"; '
                     'getent hosts ok-1.ok.default.svc.cluster.local >/dev/null && echo resolved; '
                     'echo "from $JOB_COMPLETION_INDEX" > /data/out-$JOB_COMPLETION_INDEX',
               completions=2)
    container = spec["spec"]["template"]["spec"]["containers"][0]
    container["env"] = [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]
    container["volumeMounts"] = [{"name": "data", "mountPath": str(tmp_path / "data")}]
    container["command"][2] = container["command"][2].replace("/data", str(tmp_path / "data"))
    spec["spec"]["template"]["spec"]["volumes"] = [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]
    rv = fake.rv(JOBS)
    status, created = fake.request("POST", JOBS, spec)
    assert status == 201, created
    assert created["metadata"]["uid"] and int(created["metadata"]["resourceVersion"]) > int(rv)

    done = fake.wait_event(f"{JOBS}?resourceVersion={rv}&fieldSelector=metadata.name=ok",
                           lambda e: "Complete" in condition_types(e["object"]))["object"]
    assert done["status"]["succeeded"] == 2 and done["status"]["completedIndexes"] == "0-1"
    assert condition_types(done) == ["SuccessCriteriaMet", "Complete"]
    assert "active" not in done["status"] and done["status"]["completionTime"]

    pods, gpus = fake.pods_of("ok"), set()
    for index, pod in enumerate(pods):
        assert pod["status"]["phase"] == "Succeeded"
        assert (terminated(pod)["exitCode"], terminated(pod)["reason"]) == (0, "Completed")
        status, log = fake.request("GET", f"{PODS}/{pod['metadata']['name']}/log?container=task")
        assert status == 200
        first, second = log.splitlines()
        assert first.startswith(f"index={index} host=ok-{index} gpus=")
        assert first.endswith(f"me={pod['metadata']['name']}") and second == "resolved"
        gpus.add(first.split("gpus=")[1].split()[0])
        assert (fake.tmp / "pvc" / f"out-{index}").read_text() == f"from {index}\n"
    assert gpus == {"0", "1"}  # each container got its own device
    recorded = list(fake.record.glob("*-Job-ok.json"))
    assert len(recorded) == 1 and json.loads(recorded[0].read_text()) == spec


@needs_root
def test_failing_pod_fails_the_job_and_the_other_pod_is_killed(fake):
    rv = fake.rv(PODS)
    status, _ = fake.request("POST", JOBS, job(
        "bad", '[ "$JOB_COMPLETION_INDEX" = 0 ] && { sleep 0.3; exit 3; }; exec sleep 30',
        completions=2))
    assert status == 201
    failed = fake.wait_event(f"{JOBS}?fieldSelector=metadata.name=bad",
                             lambda e: "Failed" in condition_types(e["object"]))["object"]
    assert condition_types(failed) == ["FailureTarget", "Failed"]
    assert failed["status"]["conditions"][1]["reason"] == "BackoffLimitExceeded"
    assert "Complete" not in condition_types(failed) and "active" not in failed["status"]

    first = fake.pods_of("bad")[0]  # the failed pod is kept; the killed one is removed
    assert first["status"]["phase"] == "Failed"
    assert (terminated(first)["exitCode"], terminated(first)["reason"]) == (3, "Error")
    deleted = fake.wait_event(f"{PODS}?resourceVersion={rv}&labelSelector=job-name=bad",
                              lambda e: e["type"] == "DELETED")["object"]
    assert deleted["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] == "1"
    assert deleted["status"]["phase"] == "Failed" and terminated(deleted)["exitCode"] == 143


@needs_root
def test_foreground_delete_kills_the_pod_and_collects_dependents(fake):
    # "$$$$": Kubernetes expands "$$" in a command to "$".
    status, created = fake.request("POST", JOBS, job("victim", "echo pid=$$$$; exec sleep 30"))
    assert status == 201
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": "victim",
             "uid": created["metadata"]["uid"]}
    status, _ = fake.request("POST", SERVICES, {"metadata": {"name": "victim",
                                                             "ownerReferences": [owner]},
                                                "spec": {"clusterIP": "None"}})
    assert status == 201
    rv = fake.rv(PODS)
    pod = fake.wait_event(f"{PODS}?labelSelector=job-name=victim",
                          lambda e: e["object"]["status"]["phase"] == "Running")["object"]
    name = pod["metadata"]["name"]
    with fake.open("GET", f"{PODS}/{name}/log?container=task&follow=true") as log:
        pid = int(log.readline().decode().split("=")[1])
        status, body = fake.request("DELETE", f"{JOBS}/victim", {
            "kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})
        assert status == 200
        assert body["metadata"]["deletionTimestamp"]
        assert body["metadata"]["finalizers"] == ["foregroundDeletion"]
        assert log.read() == b""  # the follow stream ends with the container
    deleted = fake.wait_event(f"{PODS}?resourceVersion={rv}&fieldSelector=metadata.name={name}",
                              lambda e: e["type"] == "DELETED")["object"]
    assert terminated(deleted)["exitCode"] == 143 and terminated(deleted)["signal"] == 15
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    wait_for(lambda: fake.request("GET", f"{JOBS}/victim")[0] == 404, timeout=5, what="job gone")
    status, body = fake.request("GET", f"{SERVICES}/victim")
    assert (status, body["reason"]) == (404, "NotFound")


def test_watch_from_a_compacted_resource_version_gets_410(fake):
    rv = fake.rv(SERVICES)
    assert fake.request("POST", SERVICES, {"metadata": {"name": "web"}})[0] == 201
    added = fake.wait_event(f"{SERVICES}?resourceVersion={rv}", lambda e: True)
    assert (added["type"], added["object"]["metadata"]["name"]) == ("ADDED", "web")
    assert fake.request("POST", "/fake/compact")[0] == 200
    start = time.monotonic()
    with fake.open("GET", f"{SERVICES}?watch=true&resourceVersion={rv}") as resp:
        lines = resp.read().splitlines()  # one ERROR event, then the server closes the stream
    assert time.monotonic() - start < 5
    assert len(lines) == 1
    event = json.loads(lines[0])
    assert event["type"] == "ERROR"
    assert (event["object"]["code"], event["object"]["reason"]) == (410, "Expired")
    assert event["object"]["message"].startswith(f"too old resource version: {rv} (")


def test_api_errors_unschedulable_and_unpullable_pods(fake):
    status, body = fake.request("GET", JOBS, token="wrong")
    assert (status, body["kind"], body["code"]) == (401, "Status", 401)
    assert fake.request("POST", SERVICES, {"metadata": {"name": "dup"}})[0] == 201
    status, body = fake.request("POST", SERVICES, {"metadata": {"name": "dup"}})
    assert (status, body["reason"]) == (409, "AlreadyExists")
    status, body = fake.request("POST", JOBS, job("", "true"))
    assert (status, body["reason"]) == (422, "Invalid")

    assert fake.request("POST", JOBS, job("huge", "true", gpus=3))[0] == 201
    assert fake.request("POST", JOBS, job("nopull", "true", gpus=0, image="missing/img"))[0] == 201
    pending = fake.wait_event(f"{PODS}?labelSelector=job-name=huge", lambda e: any(
        c["type"] == "PodScheduled" for c in e["object"]["status"].get("conditions") or []))
    scheduled = pending["object"]["status"]["conditions"][-1]
    assert (scheduled["status"], scheduled["reason"]) == ("False", "Unschedulable")
    assert scheduled["message"] == "0/1 nodes are available: 1 Insufficient nvidia.com/gpu."
    pod = fake.wait_event(f"{PODS}?labelSelector=job-name=nopull", lambda e: (
        e["object"]["status"].get("containerStatuses") or [{"state": {}}])[0]["state"]
        .get("waiting", {}).get("reason") == "ImagePullBackOff")["object"]
    assert pod["status"]["phase"] == "Pending"
    status, body = fake.request("GET", f"{PODS}/{pod['metadata']['name']}/log?container=task")
    assert (status, body["reason"]) == (400, "BadRequest")
    assert "is waiting to start" in body["message"]
    for name in ("huge", "nopull"):
        assert fake.request("DELETE", f"{JOBS}/{name}?propagationPolicy=Background")[0] == 200
    wait_for(lambda: not fake.pods_of("huge") and not fake.pods_of("nopull"), timeout=10,
             what="the pending pods to be deleted")
