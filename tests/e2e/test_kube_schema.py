"""Tests of tests/kube_schema/validate.mjs, the Kubernetes schema validator (kubernetes-models).

Other test modules validate generated manifests with validate_manifests(), which skips the
calling test when node or the npm packages (scripts/install-deps.sh runs npm ci) are missing.

Run: /usr/bin/python3 -m pytest -q tests/e2e/test_kube_schema.py
"""
import json
import pathlib
import shutil
import subprocess

import pytest

KUBE_SCHEMA = pathlib.Path(__file__).resolve().parents[1] / "kube_schema"
VALIDATE = KUBE_SCHEMA / "validate.mjs"


def validate_manifests(paths):
    """Validates the JSON manifest files at paths; returns (ok, output), one output line per
    object ("ok KIND NAME" or "invalid KIND NAME: MESSAGE"). Skips the test when it cannot run."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node not found (scripts/install-deps.sh installs nodejs)")
    if not (KUBE_SCHEMA / "node_modules" / "kubernetes-models").is_dir():
        pytest.skip(f"{KUBE_SCHEMA}/node_modules missing (run scripts/install-deps.sh, or "
                    "npm ci --prefix tests/kube_schema)")
    proc = subprocess.run([node, str(VALIDATE), *map(str, paths)], capture_output=True,
                          text=True, timeout=60)
    return proc.returncode == 0, proc.stdout + proc.stderr


def write(tmp_path, name, obj):
    path = tmp_path / name
    path.write_text(json.dumps(obj, indent=2))
    return path


JOB_NAME = "dlab-job-42"
INDEX_ANNOTATION = "metadata.annotations['batch.kubernetes.io/job-completion-index']"


def indexed_job():
    """A 2-task Indexed Job like the Kubernetes backend's: one pod per task, no retries."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": JOB_NAME, "namespace": "dlab", "labels": {"dlab.io/job": "42"}},
        "spec": {
            "completionMode": "Indexed",
            "completions": 2,
            "parallelism": 2,
            "backoffLimit": 0,
            "successPolicy": {"rules": [{"succeededIndexes": "0"}]},
            "podFailurePolicy": {"rules": [
                {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [0]}}]},
            "template": {
                "metadata": {"labels": {"dlab.io/job": "42"}},
                "spec": {
                    "restartPolicy": "Never",
                    "subdomain": JOB_NAME,
                    "nodeSelector": {"nvidia.com/gpu.present": "true"},
                    "initContainers": [{
                        "name": "fetch-snapshot",
                        "image": "dlab/shim:latest",
                        "command": ["dlab-shim", "fetch", "--into", "/workspace"],
                        "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}],
                    }],
                    "containers": [{
                        "name": "task",
                        "image": "pytorch/pytorch:latest",
                        "command": ["python3", "train.py"],
                        "workingDir": "/workspace",
                        "env": [
                            {"name": "DLAB_TASK_INDEX",
                             "valueFrom": {"fieldRef": {"fieldPath": INDEX_ANNOTATION}}},
                            {"name": "MASTER_ADDR", "value": f"{JOB_NAME}-0.{JOB_NAME}"},
                        ],
                        "resources": {
                            "requests": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
                            "limits": {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"},
                        },
                        "volumeMounts": [
                            {"name": "workspace", "mountPath": "/workspace"},
                            {"name": "checkpoints", "mountPath": "/checkpoints"},
                        ],
                    }],
                    "volumes": [
                        {"name": "workspace", "emptyDir": {}},
                        {"name": "checkpoints",
                         "persistentVolumeClaim": {"claimName": "dlab-checkpoints"}},
                    ],
                },
            },
        },
    }


def headless_service():
    """The Job's headless Service (pod DNS for the tasks), owned by the Job."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": JOB_NAME,
            "namespace": "dlab",
            "ownerReferences": [{
                "apiVersion": "batch/v1", "kind": "Job", "name": JOB_NAME,
                "uid": "3f1c2a9e-8d7b-4c6a-9e5f-0a1b2c3d4e5f",
                "controller": True, "blockOwnerDeletion": True,
            }],
        },
        "spec": {
            "clusterIP": "None",
            "selector": {"dlab.io/job": "42"},
            "ports": [{"name": "rendezvous", "port": 29500, "targetPort": 29500}],
        },
    }


def test_valid_job_and_service(tmp_path):
    ok, out = validate_manifests([write(tmp_path, "job.json", indexed_job()),
                                  write(tmp_path, "service.json", headless_service())])
    assert ok, out
    assert out.splitlines() == [f"ok Job {JOB_NAME}", f"ok Service {JOB_NAME}"]


def test_list_and_array_files(tmp_path):
    items = [indexed_job(), headless_service()]
    ok, out = validate_manifests([write(tmp_path, "list.json",
                                        {"apiVersion": "v1", "kind": "List", "items": items}),
                                  write(tmp_path, "array.json", items)])
    assert ok, out
    assert len(out.splitlines()) == 4, out


def test_rejects_job_with_wrong_type(tmp_path):
    # kubernetes-models' schemas do not reject unknown fields (a misspelled `comand` passes),
    # so this checks a wrong type instead.
    job = indexed_job()
    job["spec"]["completions"] = "two"
    ok, out = validate_manifests([write(tmp_path, "job.json", job)])
    assert not ok
    assert f"invalid Job {JOB_NAME}:" in out and "/spec/completions must be integer" in out, out


def test_schema_knows_success_and_pod_failure_policy(tmp_path):
    # Mis-typed values inside them are caught only if the schema has the fields at all.
    job = indexed_job()
    job["spec"]["successPolicy"]["rules"][0]["succeededCount"] = "1"
    job["spec"]["podFailurePolicy"]["rules"][0]["action"] = "Explode"
    ok, out = validate_manifests([write(tmp_path, "job.json", job)])
    assert not ok
    assert "/spec/successPolicy/rules/0/succeededCount must be integer" in out, out
    assert "/spec/podFailurePolicy/rules/0/action must be equal to one of the allowed" in out, out


def test_rejects_service_with_string_port(tmp_path):
    service = headless_service()
    service["spec"]["ports"][0]["port"] = "29500"
    good = write(tmp_path, "job.json", indexed_job())
    ok, out = validate_manifests([good, write(tmp_path, "service.json", service)])
    assert not ok
    assert out.splitlines()[0] == f"ok Job {JOB_NAME}", out
    assert f"invalid Service {JOB_NAME}:" in out, out
    assert "/spec/ports/0/port must be integer" in out, out


def test_rejects_unknown_kind(tmp_path):
    obj = headless_service()
    obj["kind"] = "Servise"
    ok, out = validate_manifests([write(tmp_path, "svc.json", obj)])
    assert not ok
    assert f"invalid Servise {JOB_NAME}: unknown kind Servise in v1" in out, out
