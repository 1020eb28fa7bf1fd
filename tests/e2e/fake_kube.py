#!/usr/bin/python3
"""fake_kube: a fake Kubernetes API server for dlab's end-to-end tests.

It serves the few REST endpoints dlab's Kubernetes backend uses (core/v1 Pods, Services and
Nodes, batch/v1 Jobs, pod logs, watches) with the real API's JSON shapes, and plays the Job
controller, the scheduler, the garbage collector and the kubelet: a pod's containers run as local
processes, each in its own process group inside `unshare --mount --uts` (bind-mounted volumes, a
private /etc/hosts and hostname). Test hooks under /fake/ simulate OOM kills, evictions, a lost
node, watch-history compaction and dropped watch connections.

    /usr/bin/python3 tests/e2e/fake_kube.py --state-dir DIR --kubeconfig PATH [--port 0]
        [--token TOKEN] [--node SPEC ...] [--pvc NAME=HOSTDIR ...] [--record DIR]

Once listening it writes the kubeconfig and prints one line, `ready PORT`. SIGTERM/SIGINT kill
every pod process group and exit 0. All state is in memory (and logs under --state-dir).
Every request needs `Authorization: Bearer TOKEN`, the test hooks too (all POST, JSON answers):
/fake/pods/NS/NAME/oom, /fake/pods/NS/NAME/evict, /fake/nodes/NAME/lose, /fake/compact (forget
the watch history: resuming from an older resourceVersion gets 410) and /fake/close-watches.

Limits (what a real cluster does that this fake does not):
- Images are ignored (commands run on this host as the fake's user); an image named `missing/...`
  can never be pulled. A container without `command` fails (ContainerCannotRun): there is no
  image entrypoint. Every pod shares the host's network, PIDs and users: podIP is 127.0.0.1, two
  pods binding the same port clash. Other pods' names resolve only via the /etc/hosts the fake
  writes (a Job's own indexes), not via DNS or Services; Services are stored, nothing more.
  Without root, `unshare --map-root-user` is used (the process then sees itself as uid 0).
- Stopping a container signals its whole process group (a runtime signals only PID 1); when a
  container's main process exits, the rest of its group is killed. GPUs are handed out as
  NVIDIA_VISIBLE_DEVICES=<indices> (the real device plugin may pass UUIDs).
- Jobs: only completionMode Indexed, restartPolicy Never, not suspended. A failed pod is never
  retried: any pod failure fails the Job (BackoffLimitExceeded) whatever spec.backoffLimit says;
  podFailurePolicy, backoffLimitPerIndex, maxFailedIndexes and ttlSecondsAfterFinished are
  ignored. parallelism is honoured (at most that many indexes run at once). Pods carry no
  batch.kubernetes.io/job-tracking finalizer. A pod deleted by the Job controller (success
  policy, failure, deadline) is removed once terminated, as in Kubernetes, and counts in
  status.failed; the terminal condition (Complete/Failed) follows the interim one
  (SuccessCriteriaMet/FailureTarget) once no pod is left running, as since Kubernetes 1.31.
- Bare pods run once whatever their restartPolicy. No probes, no lifecycle hooks, no sidecars
  (init containers with restartPolicy Always), no ephemeral containers, no resourceFieldRef,
  secretKeyRef, configMapKeyRef or envFrom (the container waits with CreateContainerConfigError).
  Volumes: emptyDir, persistentVolumeClaim (from --pvc) and hostPath; mount paths are created on
  this host if missing. An unknown claim keeps the pod unschedulable, as in Kubernetes.
- Scheduling: first fit over Ready nodes by nodeSelector, required node affinity, and the cpu,
  memory and nvidia.com/gpu requests; no taints/tolerations, pod affinity, topology spread,
  priorities or preemption.
- API: no PATCH/PUT, no deletecollection, no status subresources, no Events, no discovery
  documents, no Namespace objects (any namespace name works); list `limit`/`continue` are
  ignored (one page); fieldSelector knows only metadata.name and metadata.namespace; watches
  send no BOOKMARKs; resourceVersionMatch and preconditions are ignored; a log request knows
  container, follow and tailLines only; logs of a removed pod are gone (404).
- After /fake/nodes/NAME/lose the node's pods keep their last container states (no kubelet is
  left to report them), as in Kubernetes; the node never comes back.
"""
import argparse
import collections
import copy
import datetime
import hashlib
import json
import os
import random
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HISTORY_LIMIT = 5000  # watch events kept for resuming watches
POD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # what the apiserver's generateName draws from
IMAGE_PULL_BACKOFF_AFTER = 1.0  # seconds from ErrImagePull to ImagePullBackOff
GPU = "nvidia.com/gpu"
JOB_NAME = "batch.kubernetes.io/job-name"
CONTROLLER_UID = "batch.kubernetes.io/controller-uid"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"

# resource (URL segment) -> (apiVersion, kind, API group)
RESOURCES = {
    "pods": ("v1", "Pod", ""),
    "services": ("v1", "Service", ""),
    "nodes": ("v1", "Node", ""),
    "jobs": ("batch/v1", "Job", "batch"),
}


def now():
    """RFC 3339 UTC with seconds, as the API server writes timestamps."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def later(seconds):
    moment = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(n=5):
    return "".join(random.choice(NAME_ALPHABET) for _ in range(n))


# --- API errors as Status objects -----------------------------------------------------------

def status_object(code, reason, message, details=None):
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Success" if code < 400 else "Failure"}
    if message:
        body["message"] = message
    if reason:
        body["reason"] = reason
    if details:
        body["details"] = details
    body["code"] = code
    return body


class ApiError(Exception):
    """An error the API answers with a Status object."""

    def __init__(self, code, reason, message, details=None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self):
        return status_object(self.code, self.reason, self.message, self.details)


def qualified(resource):
    """How the API server names a resource in messages: "jobs.batch", "pods"."""
    group = RESOURCES[resource][2]
    return f"{resource}.{group}" if group else resource


def not_found(resource, name):
    return ApiError(404, "NotFound", f'{qualified(resource)} "{name}" not found',
                    {"name": name, "group": RESOURCES[resource][2], "kind": resource})


def bad_request(message):
    return ApiError(400, "BadRequest", message)


def invalid(resource, name, field, message, cause="FieldValueInvalid"):
    """422 as the API server words it: 'Job.batch "x" is invalid: spec.completions: ...'."""
    _, kind, group = RESOURCES[resource]
    qualified_kind = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f'{qualified_kind} "{name}" is invalid: {field}: {message}',
                    {"name": name, "group": group, "kind": kind,
                     "causes": [{"reason": cause, "message": message, "field": field}]})


# --- Quantities, selectors, affinity ----------------------------------------------------------

_QUANTITY_SUFFIX = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
                    "E": 1e18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
                    "Ei": 2**60}


def parse_quantity(value):
    """"500m" -> 0.5, "16Gi" -> 17179869184.0; raises ValueError."""
    match = re.fullmatch(r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)([a-zA-Z]*)",
                         str(value).strip())
    if not match or match.group(2) not in _QUANTITY_SUFFIX:
        raise ValueError(f"quantities must match the regular expression "
                         f"'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {value!r}")
    return float(match.group(1)) * _QUANTITY_SUFFIX[match.group(2)]


def parse_label_selector(text):
    """A labelSelector query ("a=b,c!=d,e,!f,g in (x,y)") as (key, op, values) tuples."""
    requirements = []
    for part in re.split(r",(?![^()]*\))", text or ""):
        part = part.strip()
        if not part:
            continue
        set_based = re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^()]*)\)", part)
        equality = re.fullmatch(r"([\w./-]+)\s*(!=|==|=)\s*([\w.-]*)", part)
        if set_based:
            values = {v.strip() for v in set_based.group(3).split(",") if v.strip()}
            requirements.append((set_based.group(1), set_based.group(2), values))
        elif equality:
            op = "!=" if equality.group(2) == "!=" else "="
            requirements.append((equality.group(1), op, {equality.group(3)}))
        elif re.fullmatch(r"!\s*[\w./-]+", part):
            requirements.append((part[1:].strip(), "!", None))
        elif re.fullmatch(r"[\w./-]+", part):
            requirements.append((part, "exists", None))
        else:
            raise bad_request(f"unable to parse requirement: {part!r}")
    return requirements


def selector_matches(labels, requirements):
    for key, op, values in requirements:
        present = key in labels
        ok = {"=": present and labels.get(key) in (values or ()),
              "in": present and labels.get(key) in (values or ()),
              "!=": not present or labels.get(key) not in values,
              "notin": not present or labels.get(key) not in values,
              "exists": present, "!": not present}[op]
        if not ok:
            return False
    return True


def parse_field_selector(text):
    """Only metadata.name and metadata.namespace, as (path, value, equal) tuples."""
    fields = []
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        match = re.fullmatch(r"(metadata\.name|metadata\.namespace)\s*(!=|==|=)\s*(.*)", part)
        if not match:
            raise bad_request(f'"{part}" is not a known field selector: only "metadata.name", '
                              f'"metadata.namespace"')
        fields.append((match.group(1).split(".")[1], match.group(3), match.group(2) != "!="))
    return fields


def node_expression_matches(values, expression):
    """One NodeSelectorRequirement against a dict of label (or field) values."""
    key, op = expression.get("key"), expression.get("operator")
    wanted = expression.get("values") or []
    present = key in values
    if op == "In":
        return present and values[key] in wanted
    if op == "NotIn":
        return not present or values[key] not in wanted
    if op == "Exists":
        return present
    if op == "DoesNotExist":
        return not present
    if op in ("Gt", "Lt") and present and wanted:
        try:
            a, b = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return a > b if op == "Gt" else a < b
    return False


def node_selected(pod_spec, node):
    """nodeSelector plus requiredDuringScheduling node affinity (terms ORed, expressions ANDed)."""
    labels = node["metadata"].get("labels") or {}
    if any(labels.get(k) != v for k, v in (pod_spec.get("nodeSelector") or {}).items()):
        return False
    affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = affinity.get("requiredDuringSchedulingIgnoredDuringExecution")
    if not required:
        return True
    fields = {"metadata.name": node["metadata"]["name"]}
    for term in required.get("nodeSelectorTerms") or []:
        expressions, field_exprs = term.get("matchExpressions") or [], term.get("matchFields") or []
        if (expressions or field_exprs) and \
                all(node_expression_matches(labels, e) for e in expressions) and \
                all(node_expression_matches(fields, e) for e in field_exprs):
            return True
    return False


def parse_indexes(text):
    """"1-3,5" -> {1, 2, 3, 5}."""
    indexes = set()
    for part in filter(None, (p.strip() for p in str(text).split(","))):
        first, _, last = part.partition("-")
        indexes.update(range(int(first), int(last or first) + 1))
    return indexes


def format_indexes(indexes):
    """{0, 1, 3, 4, 5} -> "0-1,3-5", as completedIndexes is written."""
    ranges = []
    for i in sorted(indexes):
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def expand_references(text, mapping):
    """Kubernetes' $(VAR) expansion: defined names are replaced, $$ escapes, the rest is kept."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "$":
                out.append("$")
                i += 2
                continue
            if nxt == "(":
                end = text.find(")", i + 2)
                if end != -1:
                    name = text[i + 2:end]
                    out.append(mapping[name] if name in mapping else f"$({name})")
                    i = end + 1
                    continue
        out.append(text[i])
        i += 1
    return "".join(out)


# --- API defaulting and validation ------------------------------------------------------------

DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
DNS_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def validate_name(resource, name):
    if resource == "services":
        if len(name) > 63 or not DNS_LABEL.fullmatch(name):
            raise invalid(resource, name, "metadata.name", f'Invalid value: "{name}": a DNS-1035 '
                          "label must consist of lower case alphanumeric characters or '-', start "
                          "with an alphabetic character, and end with an alphanumeric character")
        return
    limit = 63 if resource == "jobs" else 253
    if len(name) > limit or not DNS_SUBDOMAIN.fullmatch(name):
        raise invalid(resource, name, "metadata.name", f'Invalid value: "{name}": a lowercase '
                      "RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                      f"'-' or '.', and must start and end with an alphanumeric character "
                      f"(at most {limit} characters)")


def default_pod_spec(resource, name, spec, field="spec"):
    """Validates and defaults a PodSpec in place, as the API server does on create."""
    if not isinstance(spec, dict) or not spec.get("containers"):
        raise invalid(resource, name, f"{field}.containers", "Required value", "FieldValueRequired")
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("serviceAccountName", "default")
    spec.setdefault("serviceAccount", spec["serviceAccountName"])
    spec.setdefault("securityContext", {})
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            where = f"{field}.{group}[{i}]"
            if not container.get("name"):
                raise invalid(resource, name, f"{where}.name", "Required value",
                              "FieldValueRequired")
            if not container.get("image"):
                raise invalid(resource, name, f"{where}.image", "Required value",
                              "FieldValueRequired")
            image = container["image"]
            tagged = ":" in image.rsplit("/", 1)[-1] or "@" in image
            container.setdefault("imagePullPolicy", "IfNotPresent"
                                 if tagged and not image.endswith(":latest") else "Always")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            resources = container.setdefault("resources", {})
            limits = resources.get("limits") or {}
            requests = resources.setdefault("requests", {}) if limits else resources.get("requests")
            for key, value in limits.items():
                requests.setdefault(key, value)  # requests default to limits
            for kind, values in (("limits", limits), ("requests", requests or {})):
                for key, value in values.items():
                    try:
                        parse_quantity(value)
                    except ValueError as error:
                        raise invalid(resource, name, f"{where}.resources.{kind}[{key}]",
                                      f"Invalid value: {value!r}: {error}") from None
            if not requests and "requests" in resources and not resources["requests"]:
                del resources["requests"]


def qos_class(spec):
    """From the cpu and memory requests and limits only, as Kubernetes computes it."""
    containers = (spec.get("initContainers") or []) + spec["containers"]
    resources = [c.get("resources") or {} for c in containers]
    if not any(k in (r.get(field) or {}) for r in resources for field in ("limits", "requests")
               for k in ("cpu", "memory")):
        return "BestEffort"
    guaranteed = all(
        all(k in (r.get("limits") or {}) and (r.get("requests") or {}).get(k) == r["limits"][k]
            for k in ("cpu", "memory")) for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


def pod_requests(spec):
    """What the scheduler reserves: max(the sum over containers, any one init container)."""
    def requests(container):
        values = (container.get("resources") or {}).get("requests") or {}
        return {r: parse_quantity(values.get(r, 0)) for r in ("cpu", "memory", GPU)}
    total = collections.Counter()
    for container in spec["containers"]:
        total.update(requests(container))
    for container in spec.get("initContainers") or []:
        for key, value in requests(container).items():
            total[key] = max(total[key], value)
    return total


def default_job(job):
    """Validates and defaults a Job in place (needs metadata.uid)."""
    meta, name = job["metadata"], job["metadata"]["name"]
    spec = job.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("template"), dict):
        raise invalid("jobs", name, "spec.template", "Required value", "FieldValueRequired")
    template = spec["template"]
    default_pod_spec("jobs", name, template.get("spec"), "spec.template.spec")
    if template["spec"]["restartPolicy"] != "Never":
        raise invalid("jobs", name, "spec.template.spec.restartPolicy",
                      f'Unsupported value: "{template["spec"]["restartPolicy"]}": supported '
                      'values: "Never" (fake_kube runs no restarts)', "FieldValueNotSupported")
    spec.setdefault("completionMode", "NonIndexed")
    if spec["completionMode"] != "Indexed":
        raise invalid("jobs", name, "spec.completionMode", f'Unsupported value: '
                      f'"{spec["completionMode"]}": supported values: "Indexed" (fake_kube)',
                      "FieldValueNotSupported")
    if not isinstance(spec.get("completions"), int) or spec["completions"] < 1:
        raise invalid("jobs", name, "spec.completions",
                      "Required value: when completion mode is Indexed", "FieldValueRequired")
    if spec.setdefault("suspend", False):
        raise invalid("jobs", name, "spec.suspend", "Unsupported value: true (fake_kube)",
                      "FieldValueNotSupported")
    spec.setdefault("parallelism", 1)
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
    spec.setdefault("manualSelector", False)
    owned = {CONTROLLER_UID: meta["uid"], JOB_NAME: name, "controller-uid": meta["uid"],
             "job-name": name}
    spec["selector"] = {"matchLabels": {CONTROLLER_UID: meta["uid"]}}
    template_meta = template.setdefault("metadata", {})
    template_meta["labels"] = {**(template_meta.get("labels") or {}), **owned}
    if not meta.get("labels"):
        meta["labels"] = dict(template_meta["labels"])


def default_service(service, cluster_ip):
    spec = service.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    if spec.get("clusterIP") != "None":
        spec["clusterIP"] = cluster_ip
    spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port.get("port"))
    service["status"] = {"loadBalancer": {}}


# --- The object store and its watch history ---------------------------------------------------

Event = collections.namedtuple("Event", "rv resource namespace name labels line")


class Store:
    """Objects by (resource, namespace, name), the resourceVersion counter and the bounded
    history that watches resume from. Every method is called with the fake's one lock held."""

    def __init__(self, cond):
        self.cond = cond
        self.objects = {}
        self.rv = 0
        self.history = collections.deque()
        self.floor = 0  # a watch may resume from any resourceVersion >= floor
        self.watch_generation = 0  # bumped to end every open watch
        self.on_removed = lambda resource, obj: None

    def _record(self, type_, resource, obj):
        meta = obj["metadata"]
        line = (json.dumps({"type": type_, "object": obj}, separators=(",", ":")) + "\n").encode()
        self.history.append(Event(self.rv, resource, meta.get("namespace", ""), meta["name"],
                                  dict(meta.get("labels") or {}), line))
        while len(self.history) > HISTORY_LIMIT:
            self.floor = self.history.popleft().rv
        self.cond.notify_all()

    def create(self, resource, obj):
        meta = obj["metadata"]
        key = (resource, meta.get("namespace", ""), meta["name"])
        if key in self.objects:
            raise ApiError(409, "AlreadyExists",
                           f'{qualified(resource)} "{meta["name"]}" already exists',
                           {"name": meta["name"], "group": RESOURCES[resource][2],
                            "kind": resource})
        api_version, kind, _ = RESOURCES[resource]
        obj["apiVersion"], obj["kind"] = api_version, kind
        meta.setdefault("uid", str(uuid.uuid4()))
        meta["creationTimestamp"] = now()
        meta.pop("deletionTimestamp", None)
        self.rv += 1
        meta["resourceVersion"] = str(self.rv)
        self.objects[key] = obj
        self._record("ADDED", resource, obj)
        return copy.deepcopy(obj)

    def get(self, resource, namespace, name):
        obj = self.objects.get((resource, namespace, name))
        return copy.deepcopy(obj) if obj else None

    def list(self, resource, namespace=None, labels=(), fields=()):
        """Matching objects in key order (namespace None: every namespace)."""
        return [copy.deepcopy(obj) for (res, ns, _), obj in sorted(self.objects.items())
                if res == resource and namespace in (None, ns) and
                selector_matches(obj["metadata"].get("labels") or {}, labels) and
                all((obj["metadata"].get(f, "") == v) == eq for f, v, eq in fields)]

    def update(self, resource, namespace, name, mutate):
        """Applies mutate to a copy; stores it with a new resourceVersion if anything changed."""
        old = self.objects.get((resource, namespace, name))
        if old is None:
            return None
        new = copy.deepcopy(old)
        mutate(new)
        if new == old:
            return copy.deepcopy(old)
        self.rv += 1
        new["metadata"]["resourceVersion"] = str(self.rv)
        self.objects[(resource, namespace, name)] = new
        self._record("MODIFIED", resource, new)
        return copy.deepcopy(new)

    def remove(self, resource, namespace, name, mutate=None):
        """Deletes the object (DELETED event carrying its final state); None if already gone."""
        obj = self.objects.pop((resource, namespace, name), None)
        if obj is None:
            return None
        if mutate:
            mutate(obj)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        self._record("DELETED", resource, obj)
        self.on_removed(resource, obj)
        return copy.deepcopy(obj)

    def find_uid(self, uid):
        for (resource, ns, name), obj in self.objects.items():
            if obj["metadata"].get("uid") == uid:
                return resource, ns, name
        return None

    def dependents(self, uid):
        """(resource, namespace, name) of every object with an ownerReference to uid."""
        return [key for key, obj in sorted(self.objects.items())
                if any(ref.get("uid") == uid for ref in obj["metadata"].get("ownerReferences") or [])]

    def events_after(self, rv):
        newer = []
        for event in reversed(self.history):
            if event.rv <= rv:
                break
            newer.append(event)
        newer.reverse()
        return newer

    def compact(self):
        self.history.clear()
        self.floor = self.rv


# --- The kubelet: one PodRunner per pod -------------------------------------------------------

# Runs inside `unshare`: bind-mounts the volumes and /etc/hosts, sets the hostname, then execs the
# container's argv with its environment. Every user string arrives through the spec file (never a
# shell); a failure before exec is written to the report pipe, which exec closes on success.
CONTAINER_WRAPPER = r"""
import json, os, socket, subprocess, sys
spec = json.load(open(sys.argv[1]))
report = int(sys.argv[2])
os.set_inheritable(report, False)
argv = spec["argv"]
try:
    for source, target, read_only in spec["mounts"]:
        steps = [["--bind", source, target]]
        if read_only:
            steps.append(["-o", "remount,bind,ro", target])
        for args in steps:
            done = subprocess.run(["mount"] + args, capture_output=True, text=True)
            if done.returncode:
                raise RuntimeError("mount %s: %s" % (target, done.stderr.strip()))
    socket.sethostname(spec["hostname"])
    os.makedirs(spec["cwd"], exist_ok=True)
    os.chdir(spec["cwd"])
except BaseException as error:
    os.write(report, (str(error) or type(error).__name__).encode())
    os._exit(128)
try:
    os.execvpe(argv[0], argv, spec["env"])
except FileNotFoundError:
    message = 'exec: "%s": executable file not found in $PATH' % argv[0]
except OSError as error:
    message = 'exec: "%s": %s' % (argv[0], (error.strerror or str(error)).lower())
os.write(report, message.encode())
os._exit(128)
"""


class ConfigError(Exception):
    """The container cannot be configured (CreateContainerConfigError)."""


class PodRunner:
    """Plays the scheduler and the kubelet for one pod on its own thread: binds it to a node, runs
    its init containers then its containers as local processes, and publishes the pod's status.
    All fields are guarded by the cluster's lock."""

    def __init__(self, cluster, pod):
        self.cluster = cluster
        meta, self.spec = pod["metadata"], pod["spec"]
        self.ns, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.dir = os.path.join(cluster.state_dir, "pods", self.uid)
        self.hostname = self.spec.get("hostname") or self.name[:63]
        self.node = None
        self.start_time = None
        self.unschedulable = None  # the scheduler's message while the pod cannot be placed
        self.sandbox_ready = False
        self.volumes = {}  # volume name -> host path
        self.hosts_file = os.path.join(self.dir, "hosts")
        self.extra_conditions = []  # DisruptionTarget
        self.evicted = False
        self.final = False
        reason = "PodInitializing" if self.spec.get("initContainers") else "ContainerCreating"
        self.states = {}  # (kind, name) -> {"state", "ready", "started", "containerID", "imageID"}
        for kind, containers in self._groups():
            for c in containers:
                self.states[(kind, c["name"])] = {"state": {"waiting": {"reason": reason}},
                                                  "ready": False, "started": False}
        self.procs = {}  # container name -> Popen of a running container
        self.oom = set()  # containers the OOM hook killed
        self.stopping = False
        self.remove_when_done = False
        self.lost = False  # the node is gone: nothing more is reported
        self.finished = False
        self.thread = threading.Thread(target=self._run, name=f"pod-{self.name}", daemon=True)

    def _groups(self):
        return (("init", self.spec.get("initContainers") or []), ("main", self.spec["containers"]))

    # -- lifecycle (runner thread) --

    def _run(self):
        try:
            if self._schedule() and self._prepare_sandbox() and self._run_init_containers():
                threads = [threading.Thread(target=self._run_container, args=("main", c),
                                            daemon=True) for c in self.spec["containers"]]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
        except Exception:  # a bug in the fake must not leave the pod running forever
            traceback.print_exc()
        finally:
            self._finish()

    def _schedule(self):
        with self.cluster.cond:
            while not self._should_stop():
                node, message = self.cluster.place(self.uid, self.spec)
                if node:
                    self.node, self.start_time = node, now()
                    self.cluster.store.update("pods", self.ns, self.name,
                                              lambda p: p["spec"].__setitem__("nodeName", node))
                    self._publish()
                    return True
                if message != self.unschedulable:
                    self.unschedulable = message
                    self._publish()
                self.cluster.cond.wait()
            return False

    def _should_stop(self):
        return self.stopping or self.cluster.shutting_down

    def _block(self, key, reason, message):
        """Leaves a container waiting until the pod is stopped."""
        with self.cluster.cond:
            self._set_state(key, {"waiting": {"reason": reason, "message": message}})
            while not self._should_stop():
                self.cluster.cond.wait()

    def _prepare_sandbox(self):
        """Volumes and /etc/hosts; a volume that cannot be set up keeps the pod waiting."""
        os.makedirs(self.dir, exist_ok=True)
        for volume in self.spec.get("volumes") or []:
            name = volume.get("name", "")
            if "emptyDir" in volume:
                path = os.path.join(self.dir, "volumes", name)
                os.makedirs(path, exist_ok=True)
            elif "persistentVolumeClaim" in volume:
                path = self.cluster.pvcs.get(volume["persistentVolumeClaim"].get("claimName"))
            elif "hostPath" in volume:
                path = volume["hostPath"].get("path")
            else:
                path = None
            if not path or not os.path.exists(path):
                first = ("init", self.spec["initContainers"][0]["name"]) \
                    if self.spec.get("initContainers") else ("main", self.spec["containers"][0]["name"])
                self._block(first, "ContainerCreating", f'MountVolume.SetUp failed for volume '
                            f'"{name}": fake_kube supports emptyDir, hostPath and claims given '
                            f'with --pvc (host path {path!r} missing)')
                return False
            self.volumes[name] = path
        with open(self.hosts_file, "w") as f:
            f.write(self._hosts_text())
        with self.cluster.cond:
            self.sandbox_ready = True
            self._publish()
        return not self._should_stop()

    def _hosts_text(self):
        names = [self.hostname]
        subdomain = self.spec.get("subdomain")
        with self.cluster.cond:
            pod = self.cluster.store.get("pods", self.ns, self.name) or {"metadata": {}}
            job_name = (pod["metadata"].get("labels") or {}).get(JOB_NAME)
            job = self.cluster.store.get("jobs", self.ns, job_name) if job_name else None
        peers = [f"{job_name}-{i}" for i in range(job["spec"]["completions"])] if job else []
        for host in [self.hostname] + peers:
            names.append(host)
            if subdomain:
                names += [f"{host}.{subdomain}", f"{host}.{subdomain}.{self.ns}.svc",
                          f"{host}.{subdomain}.{self.ns}.svc.cluster.local"]
        unique = list(dict.fromkeys(names))
        return ("# Kubernetes-managed hosts file (written by fake_kube).\n"
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                f"127.0.0.1\t{' '.join(unique)}\n")

    def _run_init_containers(self):
        for container in self.spec.get("initContainers") or []:
            if self._run_container("init", container) != 0:
                return False
        return not self._should_stop()

    def _run_container(self, kind, container):
        """Runs one container to its end; returns its exit code (None if it never started)."""
        key, name = (kind, container["name"]), container["name"]
        image = container["image"]
        if image.startswith("missing/"):
            return self._pull_forever(key, image)
        if not container.get("command"):
            with self.cluster.cond:
                self._terminate_state(key, 128, "ContainerCannotRun", message="fake_kube needs "
                                      "an explicit command: images (and their entrypoints) are "
                                      "not available")
            return 128
        report_r, report_w = os.pipe()
        with self.cluster.cond:
            if self._should_stop():
                os.close(report_r), os.close(report_w)
                return None
            try:
                env, argv = self._environment(container)
                mounts = self._mounts(container)
            except ConfigError as error:
                os.close(report_r), os.close(report_w)
                self._block(key, "CreateContainerConfigError", str(error))
                return None
            gpus = self.cluster.take_gpus(self.node, (self.uid, key), container)
            if gpus:
                env["NVIDIA_VISIBLE_DEVICES"] = ",".join(map(str, gpus))
            try:
                proc = self._launch(container, env, argv, mounts, report_w)
            except OSError as error:  # e.g. no unshare on this host
                os.close(report_r), os.close(report_w)
                self.cluster.release_gpus(self.node, (self.uid, key))
                self._terminate_state(key, 128, "StartError", message=str(error))
                return 128
            self.procs[name] = proc
        os.close(report_w)
        error = b""
        while chunk := os.read(report_r, 65536):
            error += chunk
        os.close(report_r)
        if not error:
            with self.cluster.cond:
                self.states[key].update(containerID="containerd://" + uuid.uuid4().hex + uuid.uuid4().hex,
                                        imageID=image_id(image), started=kind == "main",
                                        ready=kind == "main")
                self._set_state(key, {"running": {"startedAt": now()}})
        returncode = proc.wait()
        kill_group(proc.pid, signal.SIGKILL)  # the container's other processes die with it
        with self.cluster.cond:
            self.procs.pop(name, None)
            self.cluster.release_gpus(self.node, (self.uid, key))
            if error:
                self._terminate_state(key, 128, "StartError", message=error.decode(errors="replace"))
                return 128
            code = returncode if returncode >= 0 else 128 - returncode
            reason = "OOMKilled" if name in self.oom else "Completed" if code == 0 else "Error"
            self._terminate_state(key, code, reason, signal=-returncode if returncode < 0 else 0)
            return code

    def _pull_forever(self, key, image):
        with self.cluster.cond:
            self._set_state(key, {"waiting": {"reason": "ErrImagePull", "message":
                                              f'rpc error: code = NotFound desc = failed to pull '
                                              f'and unpack image "{image}": not found'}})
            deadline = time.monotonic() + IMAGE_PULL_BACKOFF_AFTER
            while not self._should_stop() and time.monotonic() < deadline:
                self.cluster.cond.wait(deadline - time.monotonic())
        if not self._should_stop():
            self._block(key, "ImagePullBackOff", f'Back-off pulling image "{image}"')
        return None

    def _environment(self, container):
        """The process environment and argv (with $(VAR) expanded), as the kubelet builds them."""
        pod = self.cluster.store.get("pods", self.ns, self.name)
        service = {"KUBERNETES_SERVICE_HOST": "127.0.0.1",
                   "KUBERNETES_SERVICE_PORT": str(self.cluster.port),
                   "KUBERNETES_SERVICE_PORT_HTTPS": str(self.cluster.port)}
        env = {"PATH": POD_PATH, "HOME": "/root", "HOSTNAME": self.hostname, **service}
        index = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
        if index is not None:
            env["JOB_COMPLETION_INDEX"] = index
        if container.get("envFrom"):
            raise ConfigError("fake_kube does not support envFrom")
        declared = {}
        for var in container.get("env") or []:
            if "valueFrom" in var:
                value = field_value(pod, var["valueFrom"])
            else:
                value = expand_references(str(var.get("value", "")), {**service, **declared})
            declared[var["name"]] = value
        env.update(declared)
        mapping = {**service, **declared}
        argv = [expand_references(str(a), mapping)
                for a in (container.get("command") or []) + (container.get("args") or [])]
        return env, argv

    def _mounts(self, container):
        """[source, target, read-only] for /etc/hosts and each volumeMount."""
        mounts = [[self.hosts_file, "/etc/hosts", False]]
        for mount in container.get("volumeMounts") or []:
            source = self.volumes.get(mount.get("name"))
            if source is None:
                raise ConfigError(f'volume "{mount.get("name")}" not found')
            source = os.path.join(source, mount["subPath"]) if mount.get("subPath") else source
            if mount.get("subPath") and not os.path.exists(source):
                os.makedirs(source)
            target = mount["mountPath"]
            if not os.path.exists(target):  # tests use paths under their tmp dir
                if os.path.isdir(source):
                    os.makedirs(target, exist_ok=True)
                else:
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    open(target, "a").close()
            mounts.append([source, target, bool(mount.get("readOnly"))])
        return mounts

    def _launch(self, container, env, argv, mounts, report_w):
        spec_path = os.path.join(self.dir, f"{container['name']}.spec.json")
        with open(spec_path, "w") as f:
            json.dump({"mounts": mounts, "hostname": self.hostname, "env": env, "argv": argv,
                       "cwd": container.get("workingDir") or "/"}, f)
        unshare = ["unshare", "--mount", "--uts", "--propagation", "private"]
        if os.geteuid() != 0:
            unshare.insert(1, "--map-root-user")
        with open(self.log_path(container["name"]), "ab") as log:
            return subprocess.Popen(
                unshare + ["--", sys.executable, "-I", "-c", CONTAINER_WRAPPER, spec_path,
                           str(report_w)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True, pass_fds=(report_w,), env={"PATH": POD_PATH}, cwd="/")

    def _finish(self):
        with self.cluster.cond:
            self.finished = True
            self.cluster.release_node(self.uid)
            if self.node and not self.lost:
                self.final = True
                self._publish()
            if self.remove_when_done:
                self.cluster.store.remove("pods", self.ns, self.name)
            self.cluster.cond.notify_all()

    # -- control (any thread, lock held) --

    def terminate(self, grace, remove=False):
        """Stops the pod: SIGTERM to every running container, SIGKILL after grace seconds;
        containers not yet started never start. remove: delete the pod once it is stopped."""
        self.remove_when_done |= remove
        if self.stopping:
            if grace <= 0:  # a later, shorter grace period wins
                self.signal_all(signal.SIGKILL)
            return
        self.stopping = True
        self.signal_all(signal.SIGTERM if grace > 0 else signal.SIGKILL)
        if grace > 0:
            timer = threading.Timer(grace, self._kill_after_grace)
            timer.daemon = True
            timer.start()
        self.cluster.cond.notify_all()

    def _kill_after_grace(self):
        with self.cluster.cond:
            self.signal_all(signal.SIGKILL)

    def signal_all(self, sig):
        for proc in self.procs.values():
            kill_group(proc.pid, sig)

    def log_path(self, container):
        return os.path.join(self.dir, f"{container}.log")

    def container_state(self, container):
        for kind in ("main", "init"):
            if (kind, container) in self.states:
                return self.states[(kind, container)]["state"]
        return None

    # -- status --

    def _set_state(self, key, state):
        self.states[key]["state"] = state
        if "running" not in state:
            self.states[key]["started"] = False
            self.states[key]["ready"] = key[0] == "init" and \
                state.get("terminated", {}).get("exitCode") == 0  # done init containers are ready
        self._publish()

    def _terminate_state(self, key, code, reason, message=None, signal=0):
        previous = self.states[key]["state"].get("running", {})
        terminated = {"exitCode": code, "reason": reason}
        if signal:
            terminated["signal"] = signal
        if message:
            terminated["message"] = message
        terminated["startedAt"] = previous.get("startedAt", now())
        terminated["finishedAt"] = now()
        if self.states[key].get("containerID"):
            terminated["containerID"] = self.states[key]["containerID"]
        self._set_state(key, {"terminated": terminated})

    def _publish(self):
        """Writes the pod's status (a MODIFIED event if it changed) and tells its Job."""
        if self.lost:
            return
        status = self._status()
        pod = self.cluster.store.update("pods", self.ns, self.name,
                                        lambda p: p.__setitem__("status", merge_conditions(
                                            p.get("status") or {}, status)))
        if pod:
            self.cluster.pod_changed(pod)

    def _phase(self):
        codes = {kind: [s["state"].get("terminated", {}).get("exitCode")
                        for (k, _), s in self.states.items() if k == kind]
                 for kind in ("init", "main")}
        init_failed = any(c not in (None, 0) for c in codes["init"])
        main_done = all(c is not None for c in codes["main"])
        if self.node and (self.final or init_failed or main_done):
            succeeded = main_done and not any(codes["main"]) and not init_failed
            return "Succeeded" if succeeded and not self.evicted else "Failed"
        waiting = any("waiting" in s["state"] for s in self.states.values())
        if not self.node or any(c != 0 for c in codes["init"]) or waiting:
            return "Pending"
        return "Running"

    def _status(self):
        phase = self._phase()
        status = {"phase": phase, "conditions": self._conditions(phase)}
        if self.node:
            status.update(hostIP="127.0.0.1", hostIPs=[{"ip": "127.0.0.1"}])
        if self.sandbox_ready:
            status.update(podIP="127.0.0.1", podIPs=[{"ip": "127.0.0.1"}])
        if self.start_time:
            status["startTime"] = self.start_time
        if self.node:
            for kind, field in (("init", "initContainerStatuses"), ("main", "containerStatuses")):
                containers = dict(self._groups())[kind]
                if containers:
                    status[field] = [self._container_status(kind, c) for c in containers]
        if self.evicted and phase == "Failed":
            status.update(reason="Evicted", message="The node was low on resource: memory. ")
        status["qosClass"] = qos_class(self.spec)
        return status

    def _container_status(self, kind, container):
        entry = self.states[(kind, container["name"])]
        status = {"name": container["name"], "state": entry["state"], "lastState": {},
                  "ready": entry["ready"], "restartCount": 0, "image": container["image"],
                  "imageID": entry.get("imageID", "")}
        if entry.get("containerID"):
            status["containerID"] = entry["containerID"]
        status["started"] = entry["started"]
        return status

    def _conditions(self, phase):
        """(type, status, reason, message) in the kubelet's order."""
        if not self.node:
            return [("PodScheduled", "False", "Unschedulable", self.unschedulable)] \
                if self.unschedulable else []
        def unfinished(kind, pred):
            return [n for (k, n), s in self.states.items() if k == kind and pred(s)]
        init_left = unfinished("init", lambda s: s["state"].get("terminated", {}).get("exitCode") != 0)
        unready = unfinished("main", lambda s: not s["ready"])
        terminal = phase in ("Succeeded", "Failed")
        if terminal:
            ready = ("False", "PodCompleted", None)
        elif unready:
            ready = ("False", "ContainersNotReady",
                     f"containers with unready status: [{' '.join(unready)}]")
        else:
            ready = ("True", None, None)
        conditions = list(self.extra_conditions) + [
            ("PodReadyToStartContainers", "True" if self.sandbox_ready and not terminal
             else "False", None, None),
            ("Initialized", "False", "ContainersNotInitialized",
             f"containers with incomplete status: [{' '.join(init_left)}]")
            if init_left else ("Initialized", "True", None, None),
            ("Ready",) + ready, ("ContainersReady",) + ready,
            ("PodScheduled", "True", None, None)]
        return conditions


def merge_conditions(old_status, status):
    """Turns (type, status, reason, message) tuples into conditions, keeping lastTransitionTime
    of those whose status did not change."""
    before = {c["type"]: c for c in old_status.get("conditions") or []}
    conditions = []
    for type_, value, reason, message in status["conditions"]:
        condition = {"type": type_, "status": value, "lastProbeTime": None,
                     "lastTransitionTime": now()}
        if type_ in before and before[type_]["status"] == value:
            condition["lastTransitionTime"] = before[type_]["lastTransitionTime"]
        if reason:
            condition["reason"] = reason
        if message:
            condition["message"] = message
        conditions.append(condition)
    merged = {**status, "conditions": conditions}
    if not conditions:
        del merged["conditions"]
    return merged


def field_value(pod, value_from):
    """valueFrom.fieldRef, as the downward API resolves it."""
    if "fieldRef" not in value_from:
        raise ConfigError(f"fake_kube supports only valueFrom.fieldRef, not "
                          f"{', '.join(value_from)}")
    path = value_from["fieldRef"].get("fieldPath", "")
    meta, spec = pod["metadata"], pod["spec"]
    keyed = re.fullmatch(r"metadata\.(labels|annotations)\['(.*)'\]", path)
    if keyed:
        return (meta.get(keyed.group(1)) or {}).get(keyed.group(2), "")
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta["namespace"],
              "metadata.uid": meta["uid"], "spec.nodeName": spec.get("nodeName", ""),
              "spec.serviceAccountName": spec.get("serviceAccountName", ""),
              "status.podIP": "127.0.0.1", "status.podIPs": "127.0.0.1",
              "status.hostIP": "127.0.0.1", "status.hostIPs": "127.0.0.1"}
    if path not in simple:
        raise ConfigError(f'unsupported fieldPath "{path}"')
    return simple[path]


def image_id(image):
    return f"{image.split('@')[0].rsplit(':', 1)[0]}@sha256:" + \
        hashlib.sha256(image.encode()).hexdigest()


def kill_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


# --- The Job controller -----------------------------------------------------------------------

def job_condition(type_, reason, message):
    stamp = now()
    return {"type": type_, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


class JobRecord:
    """What the Job controller remembers of one Job beyond its status."""

    def __init__(self):
        self.seen = {}  # pod uid -> (completion index, last phase): outlives removed pods
        self.verdict = None  # (interim condition, final condition, reason, message)
        self.deadline_exceeded = False
        self.timer = None


class JobController:
    """Creates a Job's pods, keeps its status, and ends it (success, success policy, failure,
    deadline). Called with the cluster's lock held; reconcile() is safe to re-enter."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.records = {}  # job uid -> JobRecord
        self.busy, self.dirty = set(), set()

    def start(self, job):
        meta, spec = job["metadata"], job["spec"]
        record = self.records[meta["uid"]] = JobRecord()
        if spec.get("activeDeadlineSeconds"):
            record.timer = threading.Timer(spec["activeDeadlineSeconds"], self._deadline,
                                           (meta["namespace"], meta["name"], meta["uid"]))
            record.timer.daemon = True
            record.timer.start()
        self.reconcile(meta["namespace"], meta["name"])

    def forget(self, uid):
        record = self.records.pop(uid, None)
        if record and record.timer:
            record.timer.cancel()

    def _deadline(self, ns, name, uid):
        with self.cluster.cond:
            if uid in self.records:
                self.records[uid].deadline_exceeded = True
                self.reconcile(ns, name)

    def reconcile(self, ns, name):
        key = (ns, name)
        if key in self.busy:  # re-entered through a pod removal: run again afterwards
            self.dirty.add(key)
            return
        self.busy.add(key)
        try:
            while True:
                self.dirty.discard(key)
                self._sync(ns, name)
                if key not in self.dirty:
                    break
        finally:
            self.busy.discard(key)

    def _pods(self, ns, uid):
        return [p for p in self.cluster.store.list("pods", ns)
                if (p["metadata"].get("labels") or {}).get(CONTROLLER_UID) == uid]

    def _sync(self, ns, name):
        store = self.cluster.store
        job = store.get("jobs", ns, name)
        if job is None or job["metadata"].get("deletionTimestamp"):
            return
        uid = job["metadata"]["uid"]
        record = self.records.get(uid)
        if record is None:
            return
        status = job.get("status") or {}
        conditions = status.get("conditions") or []
        finished = any(c["type"] in ("Complete", "Failed") for c in conditions)
        self._observe(record, self._pods(ns, uid))
        if not finished and record.verdict is None:
            record.verdict = self._verdict(job, record)
            if record.verdict:
                conditions.append(job_condition(record.verdict[0], *record.verdict[2:]))
                for pod in self._active(self._pods(ns, uid)):
                    self.cluster.delete_pod(ns, pod["metadata"]["name"])
            else:
                self._create_missing_pods(job, record)
        pods = self._pods(ns, uid)
        self._observe(record, pods)
        active = self._active(pods)
        terminating = [p for p in pods if p["metadata"].get("deletionTimestamp")
                       and not is_terminal(p)]
        stamp = now()
        if not finished and record.verdict and not active and not terminating:
            conditions.append(job_condition(record.verdict[1], *record.verdict[2:]))
            if record.verdict[1] == "Complete":
                status["completionTime"] = stamp
            if record.timer:
                record.timer.cancel()
        succeeded = self._succeeded(record)
        counts = {"active": len(active), "succeeded": len(succeeded),
                  "failed": sum(phase == "Failed" for _, phase in record.seen.values())}
        status.setdefault("startTime", stamp)
        for field, value in counts.items():  # int fields with omitempty: absent when 0
            status.pop(field, None)
            if value:
                status[field] = value
        status["completedIndexes"] = format_indexes(succeeded)
        if not status["completedIndexes"]:
            del status["completedIndexes"]
        status["ready"] = sum(pod_ready(p) for p in active)
        status["terminating"] = len(terminating)
        status["uncountedTerminatedPods"] = {}
        if conditions:
            status["conditions"] = conditions
        store.update("jobs", ns, name, lambda j: j.__setitem__("status", status))

    @staticmethod
    def _observe(record, pods):
        for pod in pods:
            index = (pod["metadata"].get("annotations") or {}).get(COMPLETION_INDEX)
            if index is not None and index.isdigit():  # not a pod some client added by hand
                record.seen[pod["metadata"]["uid"]] = (int(index), pod["status"].get("phase"))

    @staticmethod
    def _active(pods):
        return [p for p in pods if not is_terminal(p) and not p["metadata"].get("deletionTimestamp")]

    @staticmethod
    def _succeeded(record):
        return {index for index, phase in record.seen.values() if phase == "Succeeded"}

    def _verdict(self, job, record):
        """The interim and terminal conditions the Job has earned, if any (failures first)."""
        spec = job["spec"]
        if any(phase == "Failed" for _, phase in record.seen.values()):
            return ("FailureTarget", "Failed", "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit")
        if record.deadline_exceeded:
            return ("FailureTarget", "Failed", "DeadlineExceeded",
                    "Job was active longer than specified deadline")
        succeeded = self._succeeded(record)
        if succeeded >= set(range(spec["completions"])):
            return ("SuccessCriteriaMet", "Complete", "CompletionsReached",
                    "Reached expected number of succeeded pods")
        for i, rule in enumerate((spec.get("successPolicy") or {}).get("rules") or []):
            wanted = parse_indexes(rule["succeededIndexes"]) \
                if rule.get("succeededIndexes") else set(range(spec["completions"]))
            count = rule.get("succeededCount") or len(wanted)
            if len(succeeded & wanted) >= count:
                return ("SuccessCriteriaMet", "Complete", "SuccessPolicy",
                        f"Matched rules at index {i}")
        return None

    def _create_missing_pods(self, job, record):
        spec = job["spec"]
        started = {index for index, _ in record.seen.values()}
        running = len(self._active(self._pods(job["metadata"]["namespace"],
                                              job["metadata"]["uid"])))
        missing = [i for i in range(spec["completions"]) if i not in started]
        for index in missing[:max(0, spec["parallelism"] - running)]:
            pod = self.cluster.create_pod(self._pod_for_index(job, index))
            record.seen[pod["metadata"]["uid"]] = (index, "Pending")

    @staticmethod
    def _pod_for_index(job, index):
        meta, template = job["metadata"], copy.deepcopy(job["spec"]["template"])
        name, pod_meta = meta["name"], template.get("metadata") or {}
        spec = template["spec"]
        spec.setdefault("hostname", f"{name}-{index}")
        for container in (spec.get("initContainers") or []) + spec["containers"]:
            env = container.setdefault("env", [])
            if not any(v.get("name") == "JOB_COMPLETION_INDEX" for v in env):
                env.append({"name": "JOB_COMPLETION_INDEX", "valueFrom": {"fieldRef": {
                    "apiVersion": "v1",
                    "fieldPath": f"metadata.annotations['{COMPLETION_INDEX}']"}}})
        prefix = f"{name}-{index}-"
        return {"metadata": {
            "name": prefix + random_suffix(), "generateName": prefix,
            "namespace": meta["namespace"],
            "labels": {**(pod_meta.get("labels") or {}), COMPLETION_INDEX: str(index)},
            "annotations": {**(pod_meta.get("annotations") or {}), COMPLETION_INDEX: str(index)},
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": name,
                                 "uid": meta["uid"], "controller": True,
                                 "blockOwnerDeletion": True}]},
            "spec": spec}


def is_terminal(pod):
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pod_ready(pod):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


# --- The cluster: store, nodes, scheduler, deletion and garbage collection --------------------

class Cluster:
    """Everything behind the API. One lock (cond) guards it all; watches, schedulers and pod
    runners wait on cond, which every change notifies."""

    def __init__(self, state_dir, nodes, pvcs):
        self.cond = threading.Condition(threading.RLock())
        self.store = Store(self.cond)
        self.store.on_removed = self._on_removed
        self.state_dir, self.pvcs, self.port = state_dir, pvcs, 0
        self.runners = {}  # pod uid -> PodRunner
        self.reserved = {}  # pod uid -> (node name, requests)
        self.gpu_holders = {}  # (node, gpu index) -> (pod uid, container key)
        self.jobs = JobController(self)
        self.shutting_down = False
        self.next_cluster_ip = 10
        with self.cond:
            for node in nodes:
                self.store.create("nodes", node)

    # -- create and delete --

    def create(self, resource, obj):
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        for field in ("resourceVersion", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        if resource == "pods":
            return self.create_pod(obj)
        if resource == "jobs":
            default_job(obj)
            obj["status"] = {}
            created = self.store.create("jobs", obj)
            self.jobs.start(created)
            return created
        self.next_cluster_ip += 1
        default_service(obj, f"10.96.{self.next_cluster_ip // 250}.{self.next_cluster_ip % 250}")
        return self.store.create(resource, obj)

    def create_pod(self, pod):
        default_pod_spec("pods", pod["metadata"]["name"], pod.get("spec"))
        pod["status"] = {"phase": "Pending", "qosClass": qos_class(pod["spec"])}
        created = self.store.create("pods", pod)
        runner = self.runners[created["metadata"]["uid"]] = PodRunner(self, created)
        runner.thread.start()
        return created

    def delete(self, resource, ns, name, propagation="Background", grace=None):
        """Deletes an object as the API server and the garbage collector do; returns the body of
        the DELETE response."""
        if resource == "pods":
            return self.delete_pod(ns, name, grace)
        obj = self.store.get(resource, ns, name)
        if obj is None:
            raise not_found(resource, name)
        uid = obj["metadata"]["uid"]
        success = status_object(200, None, None, {"name": name, "group": RESOURCES[resource][2],
                                                  "kind": resource, "uid": uid})
        dependents = self.store.dependents(uid)
        if propagation == "Orphan":
            for key in dependents:
                self.store.update(*key, lambda o: o["metadata"].__setitem__("ownerReferences", [
                    r for r in o["metadata"]["ownerReferences"] if r.get("uid") != uid]))
        elif propagation == "Foreground" and dependents:
            def mark(o):
                o["metadata"].setdefault("deletionTimestamp", now())
                o["metadata"].setdefault("deletionGracePeriodSeconds", 0)
                o["metadata"]["finalizers"] = list(dict.fromkeys(
                    (o["metadata"].get("finalizers") or []) + ["foregroundDeletion"]))
            marked = self.store.update(resource, ns, name, mark)
            for key in dependents:
                self._delete_if_present(key)
            self._finish_foreground(uid)
            return marked
        self.store.remove(resource, ns, name)  # the garbage collector takes the dependents
        return success

    def delete_pod(self, ns, name, grace=None):
        pod = self.store.get("pods", ns, name)
        if pod is None:
            raise not_found("pods", name)
        runner = self.runners.get(pod["metadata"]["uid"])
        if runner is None or runner.finished or runner.node is None:
            if runner:  # an unscheduled pod is deleted at once
                runner.stopping = True
            return self.store.remove("pods", ns, name, lambda p: p["metadata"].setdefault(
                "deletionTimestamp", now()))
        if grace is None:
            grace = pod["spec"].get("terminationGracePeriodSeconds", 30)
        pod = self.store.update("pods", ns, name, lambda p: (
            p["metadata"].setdefault("deletionTimestamp", later(grace)),
            p["metadata"].__setitem__("deletionGracePeriodSeconds", min(
                grace, p["metadata"].get("deletionGracePeriodSeconds", grace)))))
        runner.terminate(grace, remove=True)
        return pod

    def _delete_if_present(self, key):
        try:
            self.delete(*key)
        except ApiError:
            pass

    def _finish_foreground(self, uid):
        """Removes an owner in foreground deletion once its last dependent is gone."""
        key = self.store.find_uid(uid)
        if key is None or self.store.dependents(uid):
            return
        obj = self.store.objects[key]
        if "foregroundDeletion" in (obj["metadata"].get("finalizers") or []):
            self.store.remove(*key, lambda o: o["metadata"].__setitem__("finalizers", [
                f for f in o["metadata"]["finalizers"] if f != "foregroundDeletion"]))

    def _on_removed(self, resource, obj):
        meta = obj["metadata"]
        if resource == "jobs":
            self.jobs.forget(meta["uid"])
        for key in self.store.dependents(meta["uid"]):  # garbage collection
            self._delete_if_present(key)
        for ref in meta.get("ownerReferences") or []:
            self._finish_foreground(ref.get("uid"))
        if resource == "pods":
            self.pod_changed(obj)
        self.cond.notify_all()

    def pod_changed(self, pod):
        for ref in pod["metadata"].get("ownerReferences") or []:
            if ref.get("controller") and ref.get("kind") == "Job":
                self.jobs.reconcile(pod["metadata"]["namespace"], ref["name"])

    # -- scheduling and devices --

    def place(self, pod_uid, spec):
        """Binds a pod to the first fitting node: (node name, None) or (None, why not)."""
        nodes = self.store.list("nodes")
        for volume in spec.get("volumes") or []:
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim is not None and claim not in self.pvcs:
                return None, (f'0/{len(nodes)} nodes are available: persistentvolumeclaim '
                              f'"{claim}" not found.')
        wanted = pod_requests(spec)
        reasons = collections.Counter()
        for node in nodes:
            why = self._rejections(node, spec, wanted)
            if not why:
                self.reserved[pod_uid] = (node["metadata"]["name"], wanted)
                return node["metadata"]["name"], None
            reasons.update(why)
        summary = ", ".join(f"{n} {reason}" for reason, n in sorted(reasons.items()))
        return None, f"0/{len(nodes)} nodes are available: {summary}."

    def _rejections(self, node, spec, wanted):
        name = node["metadata"]["name"]
        if not node_ready(node):
            return [f"node(s) had untolerated taint {{{UNREACHABLE_TAINT}: }}"]
        if not node_selected(spec, node):
            return ["node(s) didn't match Pod's node affinity/selector"]
        used = collections.Counter()
        for node_name, requests in self.reserved.values():
            if node_name == name:
                used.update(requests)
        allocatable = node["status"]["allocatable"]
        return [f"Insufficient {r}" for r in ("cpu", "memory", GPU)
                if wanted[r] > 0 and wanted[r] > parse_quantity(allocatable.get(r, 0)) - used[r]]

    def release_node(self, pod_uid):
        if self.reserved.pop(pod_uid, None):
            self.cond.notify_all()  # pending pods may fit now

    def take_gpus(self, node_name, holder, container):
        """The device plugin: the GPU indices (of the node) a starting container gets."""
        count = int(parse_quantity(((container.get("resources") or {}).get("limits") or {})
                                   .get(GPU, 0)))
        if not count:
            return []
        total = int(parse_quantity(self.store.get("nodes", "", node_name)["status"]["capacity"]
                                   .get(GPU, 0)))
        free = [i for i in range(total) if (node_name, i) not in self.gpu_holders][:count]
        if len(free) < count:
            raise RuntimeError(f"no {count} free GPUs on {node_name}")  # the scheduler prevents
        for i in free:
            self.gpu_holders[(node_name, i)] = holder
        return free

    def release_gpus(self, node_name, holder):
        for slot in [s for s, h in self.gpu_holders.items() if h == holder]:
            del self.gpu_holders[slot]

    # -- test hooks --

    def runner_for(self, ns, name):
        pod = self.store.get("pods", ns, name)
        if pod is None:
            raise not_found("pods", name)
        runner = self.runners.get(pod["metadata"]["uid"])
        if runner is None or runner.finished:
            raise bad_request(f'pod "{name}" is not running')
        return runner

    def oom(self, ns, name):
        runner = self.runner_for(ns, name)
        main = [c["name"] for c in runner.spec["containers"] if c["name"] in runner.procs]
        if not main:
            raise bad_request(f'pod "{name}" has no running container')
        runner.oom.add(main[0])
        kill_group(runner.procs[main[0]].pid, signal.SIGKILL)
        return {"pod": name, "container": main[0], "killed": True}

    def evict(self, ns, name):
        runner = self.runner_for(ns, name)
        runner.evicted = True
        runner.extra_conditions.append(("DisruptionTarget", "True", "EvictionByEvictionAPI",
                                        "Eviction API: evicting"))
        runner._publish()
        runner.terminate(runner.spec.get("terminationGracePeriodSeconds", 30))
        return {"pod": name, "evicted": True}

    def lose_node(self, name):
        if self.store.get("nodes", "", name) is None:
            raise not_found("nodes", name)

        def unready(node):
            node["spec"]["taints"] = [{"key": UNREACHABLE_TAINT, "effect": "NoExecute",
                                       "timeAdded": now()}]
            for condition in node["status"]["conditions"]:
                if condition["type"] == "Ready":
                    condition.update(status="Unknown", reason="NodeStatusUnknown",
                                     message="Kubelet stopped posting node status.",
                                     lastTransitionTime=now())
        self.store.update("nodes", "", name, unready)
        lost = [r for r in self.runners.values() if r.node == name and not r.finished]
        for runner in lost:  # first silence every kubelet of the node, then fail the pods
            runner.lost = runner.stopping = True
            runner.signal_all(signal.SIGKILL)
        for runner in lost:
            def fail(pod):
                pod["status"]["phase"] = "Failed"
                pod["status"]["conditions"] = [c for c in pod["status"].get("conditions") or []
                                               if c["type"] != "DisruptionTarget"] + [{
                    "type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                    "lastTransitionTime": now(), "reason": "DeletionByTaintManager",
                    "message": "Taint manager: deleting due to NoExecute taint"}]
            pod = self.store.update("pods", runner.ns, runner.name, fail)
            if pod:
                self.pod_changed(pod)
                self.store.remove("pods", runner.ns, runner.name, lambda p: p["metadata"]
                                  .setdefault("deletionTimestamp", now()))
        self.cond.notify_all()
        return {"node": name, "podsLost": [r.name for r in lost]}

    def shutdown(self):
        self.shutting_down = True
        for runner in self.runners.values():
            runner.signal_all(signal.SIGKILL)
        self.cond.notify_all()


def node_ready(node):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in node["status"].get("conditions") or [])


def make_node(spec):
    """"node-1:cpu=8,memory=16Gi,gpus=2,labels=a=b;c=d" as a Node object."""
    name, _, options = spec.partition(":")
    values = {"cpu": "8", "memory": "16Gi", "gpus": "2", "labels": ""}
    for option in filter(None, options.split(",")):
        key, _, value = option.partition("=")
        if key not in values:
            raise SystemExit(f"--node {spec}: unknown option {key!r}")
        values[key] = value
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64"}
    for label in filter(None, values["labels"].split(";")):
        key, _, value = label.partition("=")
        labels[key] = value
    capacity = {"cpu": values["cpu"], "memory": values["memory"], "pods": "110"}
    if int(values["gpus"]):
        capacity[GPU] = values["gpus"]
    stamp, machine = now(), hashlib.md5(name.encode()).hexdigest()
    conditions = [{"type": t, "status": "False", "lastHeartbeatTime": stamp,
                   "lastTransitionTime": stamp, "reason": reason, "message": message}
                  for t, reason, message in (
                      ("MemoryPressure", "KubeletHasSufficientMemory",
                       "kubelet has sufficient memory available"),
                      ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                      ("PIDPressure", "KubeletHasSufficientPID",
                       "kubelet has sufficient PID available"))]
    conditions.append({"type": "Ready", "status": "True", "lastHeartbeatTime": stamp,
                       "lastTransitionTime": stamp, "reason": "KubeletReady",
                       "message": "kubelet is posting ready status"})
    return {"metadata": {"name": name, "labels": labels}, "spec": {},
            "status": {"capacity": capacity, "allocatable": dict(capacity),
                       "conditions": conditions,
                       "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                     {"type": "Hostname", "address": name}],
                       "nodeInfo": {"machineID": machine, "systemUUID": machine, "bootID": machine,
                                    "kernelVersion": os.uname().release, "osImage": "fake_kube",
                                    "containerRuntimeVersion": "containerd://fake",
                                    "kubeletVersion": "v1.31.0-fake",
                                    "kubeProxyVersion": "v1.31.0-fake",
                                    "operatingSystem": "linux", "architecture": "amd64"}}}


# --- HTTP -------------------------------------------------------------------------------------

NAMESPACED = re.compile(
    r"/(?:api/v1|apis/batch/v1)/namespaces/(?P<ns>[^/]+)/(?P<res>pods|services|jobs)"
    r"(?:/(?P<name>[^/]+))?(?P<log>/log)?")
CLUSTER_WIDE = re.compile(r"/(?:api/v1|apis/batch/v1)/(?P<res>nodes|pods|services|jobs)"
                          r"(?:/(?P<name>[^/]+))?")
POD_HOOK = re.compile(r"/fake/pods/(?P<ns>[^/]+)/(?P<name>[^/]+)/(?P<action>oom|evict)")
NODE_HOOK = re.compile(r"/fake/nodes/(?P<name>[^/]+)/lose")


def api_prefix(resource):
    return "/apis/batch/v1" if resource == "jobs" else "/api/v1"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake_kube/1"
    cluster = None  # set by main()
    token = None
    record_dir = None
    record_count = 0
    record_lock = threading.Lock()

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    def _dispatch(self, method):
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        try:
            body = self._read_body()
            if self.headers.get("Authorization") != f"Bearer {self.token}":
                raise ApiError(401, "Unauthorized", "Unauthorized")
            self._route(method, url.path.rstrip("/") or "/", query, body)
        except ApiError as error:
            self._send_json(error.code, error.status())
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as error:  # a bug in the fake: answer as the API server would
            traceback.print_exc()
            self._send_json(500, status_object(500, "InternalError", f"fake_kube: {error!r}"))

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(self, method, path, query, body):
        cluster = self.cluster
        if path in ("/healthz", "/readyz", "/livez"):
            return self._send(200, b"ok", "text/plain")
        if path == "/version":
            return self._send_json(200, {"major": "1", "minor": "31", "gitVersion": "v1.31.0-fake",
                                         "platform": "linux/amd64"})
        if match := NAMESPACED.fullmatch(path):
            ns, res, name = match["ns"], match["res"], match["name"]
            if res == "jobs" and not path.startswith("/apis/batch/v1/") or \
                    res != "jobs" and not path.startswith("/api/v1/"):
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if match["log"]:
                if res != "pods" or method != "GET":
                    raise ApiError(405, "MethodNotAllowed", "the server does not allow this "
                                   "method on the requested resource")
                return self._logs(ns, name, query)
            return self._resource(method, res, ns, name, query, body)
        if (match := CLUSTER_WIDE.fullmatch(path)) and \
                path.startswith(api_prefix(match["res"]) + "/"):
            if match["res"] != "nodes" and match["name"]:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            if method != "GET":
                raise ApiError(405, "MethodNotAllowed",
                               "the server does not allow this method on the requested resource")
            return self._resource(method, match["res"], None if match["res"] != "nodes" else "",
                                  match["name"], query, body)
        if not path.startswith("/fake/"):
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        if method != "POST":
            raise ApiError(405, "MethodNotAllowed", "test hooks take POST")
        with cluster.cond:
            if match := POD_HOOK.fullmatch(path):
                hook = getattr(cluster, match["action"])
                return self._send_json(200, hook(match["ns"], match["name"]))
            if match := NODE_HOOK.fullmatch(path):
                return self._send_json(200, cluster.lose_node(match["name"]))
            if path == "/fake/compact":
                cluster.store.compact()
                return self._send_json(200, {"compactedTo": str(cluster.store.rv)})
            if path == "/fake/close-watches":
                cluster.store.watch_generation += 1
                cluster.cond.notify_all()
                return self._send_json(200, {"closed": True})
        raise ApiError(404, "NotFound", "no such test hook")

    # -- resources --

    def _resource(self, method, res, ns, name, query, body):
        cluster = self.cluster
        if method == "GET" and name is None:
            labels = parse_label_selector(query.get("labelSelector"))
            fields = parse_field_selector(query.get("fieldSelector"))
            if query.get("watch") in ("true", "1"):
                return self._watch(res, ns, labels, fields, query)
            with cluster.cond:
                items = cluster.store.list(res, ns, labels, fields)
                rv = str(cluster.store.rv)
            for item in items:  # list items carry no kind/apiVersion
                item.pop("kind", None), item.pop("apiVersion", None)
            api_version, kind, _ = RESOURCES[res]
            return self._send_json(200, {"kind": f"{kind}List", "apiVersion": api_version,
                                         "metadata": {"resourceVersion": rv}, "items": items})
        if method == "GET":
            with cluster.cond:
                obj = cluster.store.get(res, ns, name)
            if obj is None:
                raise not_found(res, name)
            return self._send_json(200, obj)
        if method == "POST" and name is None and res != "nodes":
            return self._send_json(201, self._create(res, ns, body))
        if method == "DELETE" and name and res != "nodes":
            options = {}
            if body.strip():
                try:
                    options = json.loads(body)
                except ValueError as error:
                    raise bad_request(f"invalid DeleteOptions: {error}") from None
            policy = query.get("propagationPolicy") or options.get("propagationPolicy") \
                or "Background"
            if policy not in ("Foreground", "Background", "Orphan"):
                raise bad_request(f'propagationPolicy: Unsupported value: "{policy}": supported '
                                  'values: "Foreground", "Background", "Orphan"')
            grace = query.get("gracePeriodSeconds", options.get("gracePeriodSeconds"))
            try:
                grace = None if grace in (None, "") else int(grace)
            except ValueError:
                raise bad_request(f"invalid gracePeriodSeconds: {grace!r}") from None
            with cluster.cond:
                result = cluster.delete(res, ns, name, policy, grace)
            return self._send_json(200, result)
        raise ApiError(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource")

    def _create(self, res, ns, body):
        self._record(res, body)
        try:
            obj = json.loads(body)
        except ValueError as error:
            raise bad_request(f"couldn't get version/kind; json parse error: {error}") from None
        api_version, kind, _ = RESOURCES[res]
        if not isinstance(obj, dict) or not isinstance(obj.setdefault("metadata", {}), dict):
            raise bad_request("the body of the request is not a JSON object")
        if obj.get("kind", kind) != kind or obj.get("apiVersion", api_version) != api_version:
            raise bad_request(f"the body is a {obj.get('apiVersion')}/{obj.get('kind')}, "
                              f"this URL takes {api_version}/{kind}")
        meta = obj["metadata"]
        if meta.get("namespace", ns) != ns:
            raise bad_request("the namespace of the provided object does not match the "
                              "namespace sent on the request")
        meta["namespace"] = ns
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + random_suffix()
        if not meta.get("name"):
            raise invalid(res, "", "metadata.name",
                          "Required value: name or generateName is required", "FieldValueRequired")
        validate_name(res, meta["name"])
        with self.cluster.cond:
            return self.cluster.create(res, obj)

    def _record(self, res, body):
        if not self.record_dir:
            return
        try:
            name = json.loads(body)["metadata"].get("name") or "unnamed"
        except (ValueError, KeyError, TypeError, AttributeError):
            name = "unparsable"
        name = re.sub(r"[^A-Za-z0-9._-]", "_", str(name))[:100]
        with Handler.record_lock:
            Handler.record_count += 1
            path = os.path.join(self.record_dir,
                                f"{Handler.record_count:04d}-{RESOURCES[res][1]}-{name}.json")
        with open(path, "wb") as f:
            f.write(body)

    # -- watches --

    def _watch(self, res, ns, labels, fields, query):
        cluster, store = self.cluster, self.cluster.store
        timeout = float(query.get("timeoutSeconds") or 0)
        deadline = time.monotonic() + timeout if timeout > 0 else None
        rv = query.get("resourceVersion", "")
        lines, expired = [], None
        with cluster.cond:
            generation = store.watch_generation
            if rv in ("", "0"):
                cursor = store.rv
                for obj in store.list(res, ns, labels, fields):
                    lines.append((json.dumps({"type": "ADDED", "object": obj},
                                             separators=(",", ":")) + "\n").encode())
            else:
                try:
                    cursor = int(rv)
                except ValueError:
                    raise bad_request(f'invalid resource version "{rv}"') from None
                if cursor < store.floor:
                    expired = expired_line(cursor, store.floor)
        self._start_stream("application/json")
        if expired:
            self._chunk(expired)
            return self._end_stream()

        def wanted(event):
            return event.resource == res and ns in (None, event.namespace) and \
                selector_matches(event.labels, labels) and \
                all(((event.name if f == "name" else event.namespace) == v) == eq
                    for f, v, eq in fields)

        while True:
            for line in lines:
                self._chunk(line)
            lines, done = [], False
            with cluster.cond:
                while not lines and not done:
                    if store.watch_generation != generation or cluster.shutting_down or \
                            (deadline and time.monotonic() >= deadline):
                        done = True
                    elif cursor < store.floor:
                        lines, done = [expired_line(cursor, store.floor)], True
                    elif events := store.events_after(cursor):
                        cursor = events[-1].rv
                        lines = [e.line for e in events if wanted(e)]
                    else:
                        wait = 1.0 if deadline is None else min(1.0, deadline - time.monotonic())
                        cluster.cond.wait(max(wait, 0))
                        if self._client_gone():
                            self.close_connection = True
                            return
            if done:
                for line in lines:
                    self._chunk(line)
                return self._end_stream()

    def _client_gone(self):
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    # -- logs --

    def _logs(self, ns, name, query):
        cluster = self.cluster
        with cluster.cond:
            pod = cluster.store.get("pods", ns, name)
            if pod is None:
                raise not_found("pods", name)
            runner = cluster.runners.get(pod["metadata"]["uid"])
            main = [c["name"] for c in pod["spec"]["containers"]]
            init = [c["name"] for c in pod["spec"].get("initContainers") or []]
            container = query.get("container")
            if not container:
                if len(main) != 1:
                    raise bad_request(f"a container name must be specified for pod {name}, "
                                      f"choose one of: [{' '.join(main)}] or one of the init "
                                      f"containers: [{' '.join(init)}]")
                container = main[0]
            if container not in main + init:
                raise bad_request(f"container {container} is not valid for pod {name}")
            if runner is None or not runner.node:  # no host yet: an empty log, as the API does
                return self._send(200, b"", "text/plain")
            waiting = (runner.container_state(container) or {}).get("waiting")
            if waiting:
                why = {"ErrImagePull": "image can't be pulled",
                       "ImagePullBackOff": "trying and failing to pull image"}.get(
                    waiting["reason"], waiting["reason"])
                raise bad_request(f'container "{container}" in pod "{name}" is waiting to start: '
                                  f'{why}')
        path = runner.log_path(container)
        data = open(path, "rb").read() if os.path.exists(path) else b""
        offset = len(data)  # follow from exactly what was read
        tail = query.get("tailLines")
        if tail not in (None, ""):
            try:
                lines = data.splitlines(keepends=True)[-int(tail):] if int(tail) > 0 else []
            except ValueError:
                raise bad_request(f"invalid tailLines: {tail!r}") from None
            data = b"".join(lines)
        if query.get("follow") not in ("true", "1"):
            return self._send(200, data, "text/plain")
        self._start_stream("text/plain")
        self._chunk(data)
        while True:
            with cluster.cond:
                state = runner.container_state(container) or {}
                ended = "terminated" in state or runner.finished or cluster.shutting_down
            chunk = b""
            if os.path.exists(path):
                with open(path, "rb") as f:
                    f.seek(offset)
                    chunk = f.read()
            if chunk:
                offset += len(chunk)
                self._chunk(chunk)
            elif ended:
                return self._end_stream()
            else:
                with cluster.cond:
                    cluster.cond.wait(0.05)  # log growth notifies nobody: poll briefly
                if self._client_gone():
                    self.close_connection = True
                    return

    # -- responses --

    def _send(self, code, data, content_type):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _send_json(self, code, obj):
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _start_stream(self, content_type):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()

    def _chunk(self, data):
        if data:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _end_stream(self):
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, fmt, *args):
        sys.stderr.write(f"fake_kube: {self.address_string()} {fmt % args}\n")


def expired_line(rv, floor):
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": f"too old resource version: {rv} ({floor})", "reason": "Expired",
              "code": 410}
    return (json.dumps({"type": "ERROR", "object": status}, separators=(",", ":")) + "\n").encode()


def write_kubeconfig(path, port, token):
    text = (f"apiVersion: v1\nkind: Config\n"
            f"clusters:\n- name: fake-kube\n  cluster:\n    server: http://127.0.0.1:{port}\n"
            f"users:\n- name: fake-kube\n  user:\n    token: {json.dumps(token)}\n"
            f"contexts:\n- name: fake-kube\n  context:\n    cluster: fake-kube\n"
            f"    user: fake-kube\n    namespace: default\n"
            f"current-context: fake-kube\npreferences: {{}}\n")
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "w") as f:
        f.write(text)
    os.replace(temporary, path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--state-dir", required=True, help="pod logs, volumes and hosts files")
    parser.add_argument("--kubeconfig", required=True, help="written once listening")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--token", default="fake-token", help="the bearer token requests need")
    parser.add_argument("--node", action="append", default=[],
                        help="NAME:cpu=8,memory=16Gi,gpus=2,labels=k=v;k2=v2 (repeatable)")
    parser.add_argument("--pvc", action="append", default=[], help="NAME=HOSTDIR (repeatable)")
    parser.add_argument("--record", help="save every created object's body here")
    args = parser.parse_args()

    nodes = [make_node(spec) for spec in args.node] or [make_node(
        "node-1:cpu=8,memory=16Gi,gpus=2,labels=nvidia.com/gpu.product=NVIDIA-A100-SXM4-80GB")]
    pvcs = {}
    for item in args.pvc:
        name, sep, host_dir = item.partition("=")
        if not sep or not name:
            parser.error(f"--pvc {item}: expected NAME=HOSTDIR")
        pvcs[name] = os.path.abspath(host_dir)
    os.makedirs(args.state_dir, exist_ok=True)
    if args.record:
        os.makedirs(args.record, exist_ok=True)

    cluster = Cluster(os.path.abspath(args.state_dir), nodes, pvcs)
    Handler.cluster, Handler.token, Handler.record_dir = cluster, args.token, args.record
    ThreadingHTTPServer.request_queue_size = 128  # many clients hold watches open at once
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    cluster.port = server.server_address[1]

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    write_kubeconfig(args.kubeconfig, cluster.port, args.token)
    print(f"ready {cluster.port}", flush=True)
    while not stop.wait(1.0):
        pass
    with cluster.cond:
        cluster.shutdown()
    server.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # pod runner and stream threads are daemons; pod mounts die with their namespaces


if __name__ == "__main__":
    main()
