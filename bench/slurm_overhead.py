#!/usr/bin/python3
"""dlab on Slurm against sbatch (issue 6): N trivial jobs through dlab's Slurm backend, straight
to Slurm with sbatch, and through dlab's local backend, side by side in one session.

Brings up a private one-node Slurm cluster with slurmrestd (scripts/slurm-cluster.sh up DIR
--cpus 16 --gpus 0 --wait-scheduler --rest, on two free ports below 32768) and brings it down at
the end, also on errors. Each round runs seven variants one after another (the order reversed
every other round), each timed from the first submit to the moment all N jobs are seen finished:

  sbatch direct  N x `sbatch --parsable --output=/dev/null --nodes=1 --ntasks=1 --cpus-per-task=1
                 --no-requeue --mem=100 --wrap=/usr/bin/true` (what dlab's SbatchCommand asks for
                 a job with resources {cpus: 1, memory: 100Mi}, running the program dlab's job
                 runs), then `squeue --states=all` on the unfinished ids (chunks of 200) until
                 every job is COMPLETED;
  sbatch direct, builtin true  the same with --wrap=true: the shell's builtin, so the batch job
                 starts no process at all (the baseline of sessions 6 and 7);
  sbatch + dlab-shim  the same, but each batch job is what dlab's would be without dlabd: an
                 attempt directory with launch.json (the task `true`) and a batch script that
                 execs dlab-shim (what the shim, its files and its process tree cost);
  dlab on Slurm  a fresh dlabd (backend: {type: slurm, poll_interval: 1s, queue_ahead: 1}), N jobs
                 command [true], resources {cpus: 1, memory: 100Mi} through POST /api/v1/jobs,
                 then GET /api/v1/jobs?state=<not terminal>&limit=1 until none is left;
                 (queue_ahead: 1 by default, --queue-ahead); again submitting through the
                 cluster's slurmrestd (slurmrestd: unix:DIR/run/slurmrestd.sock) instead of
                 sbatch; and again with queue_ahead: 0;
  dlab local     the same against a fresh dlabd with node {cpus: 16, memory: 32Gi, gpus: none}.

Submissions are sequential from one client by default (--submitters K: K threads, for all three
variants alike; dlab's on keep-alive connections). Both dlab variants admit 16 one-CPU jobs at
a time, as Slurm does on the 16-CPU node. Every job must end SUCCEEDED (COMPLETED in Slurm): any
other ending is printed with its reason and the script exits non-zero. Prints a markdown table
(per-round and median seconds, jobs/s, ratio to sbatch direct) and dlab's overhead on Slurm
against the target of 10%; with --write-docs it also replaces (or adds) the section
"## 11. dlab on Slurm against sbatch (issue 6)" of docs/benchmarks.md. A node that Slurm drains
(a batch job slurmd could not start) ends the run at once with slurmd's last errors; Slurm runs
with cgroup v1 where usable, as in the tests (--slurm-cgroup none: without cgroups).
Needs root (slurmd runs the jobs as their owners) and Slurm installed
(scripts/slurm-cluster.sh install, or scripts/install-deps.sh). Standard library only.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dlabd_harness  # noqa: E402
from dlabd_harness import Dlabd, list_all_jobs, median, request  # noqa: E402

REPO = dlabd_harness.REPO
CLUSTER = os.path.join(REPO, "scripts", "slurm-cluster.sh")
SECTION = "## 11. dlab on Slurm against sbatch (issue 6)"
CPUS = 16
ACTIVE = "QUEUED,STARTING,RUNNING,PREEMPTED,RESTARTING"  # every state that is not terminal
BODY = {"spec": {"name": "t", "command": ["true"],
                 "resources": {"cpus": "1", "memory": "100Mi"}}}
# What SbatchCommand (src/backend/slurm/slurm_commands.cc) asks for BODY's job, less the batch
# script (dlab's execs dlab-shim; this one runs `true`), the job name and the output file.
SBATCH = ["sbatch", "--parsable", "--output=/dev/null", "--nodes=1", "--ntasks=1",
          "--cpus-per-task=1", "--no-requeue", "--mem=100", "--wrap=/usr/bin/true"]
# sh runs `true` as a builtin: a batch job that starts no process.
SBATCH_BUILTIN = SBATCH[:-1] + ["--wrap=true"]
SQUEUE_CHUNK = 200
SLURM_ACTIVE = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED",
                "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "SIGNALING", "STAGE_OUT",
                "RESIZING", "STOPPED", "SPECIAL_EXIT"}
VARIANTS = ["sbatch direct", "sbatch direct, builtin true", "sbatch + dlab-shim", "dlab on Slurm",
            "dlab on Slurm, slurmrestd", "dlab on Slurm, queue_ahead 0", "dlab local"]


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("0.0.0.0", port))
            return True
        except OSError:
            return False


def run(argv, timeout=60):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


def in_parallel(submitters, n, make_worker):
    """Calls the submit function of each of `submitters` workers (make_worker() -> (submit,
    close)) on the indices 0..n-1, each index once, until all are done; re-raises the first
    error."""
    lock = threading.Lock()
    counter = iter(range(n))
    errors = []

    def loop():
        submit, close = make_worker()
        try:
            while not errors:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                submit(i)
        except Exception as e:  # noqa: BLE001  (handed to the caller)
            errors.append(e)
        finally:
            close()

    if submitters <= 1:
        loop()
    else:
        threads = [threading.Thread(target=loop) for _ in range(submitters)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


# --- Slurm --------------------------------------------------------------------------------

def squeue_states(ids):
    """{id: state} for the ids Slurm still knows (finished jobs stay for MinJobAge)."""
    states = {}
    ids = sorted(ids)
    for k in range(0, len(ids), SQUEUE_CHUNK):
        chunk = ids[k:k + SQUEUE_CHUNK]
        r = run(["squeue", "--noheader", "--states=all", "--format=%i %T",
                 "--jobs=" + ",".join(map(str, chunk))])
        if r.returncode != 0:
            if "Invalid job id" in r.stderr:
                continue  # none of these is known any more
            raise BenchError("squeue failed: %s" % r.stderr.strip())
        for line in r.stdout.splitlines():
            words = line.split()
            if len(words) >= 2 and words[0].isdigit():
                states[int(words[0])] = words[1]
    return states


class NodeWatch:
    """Fails fast when Slurm's node is drained or down (a batch job slurmd could not start
    drains it, and the jobs would wait until --timeout): asks sinfo every few seconds."""

    def __init__(self, cluster, every=3.0):
        self.cluster = cluster
        self.every = every
        self.last = time.monotonic()

    def check(self):
        if time.monotonic() - self.last < self.every:
            return
        self.last = time.monotonic()
        r = run(["sinfo", "--noheader", "--Node", "--format=%N|%T|%E"])
        for line in r.stdout.splitlines():
            name, state, reason = (line.split("|", 2) + ["", ""])[:3]
            if state.startswith(("drain", "down", "fail")):
                raise BenchError("Slurm's node %s is %s (%s); the last errors of slurmd:\n%s%s"
                                 % (name, state, reason.strip(), self.slurmd_errors(),
                                    "\n(slurmd could not start a batch job. With many short "
                                    "jobs, task/cgroup on cgroup v1 has failed to set up a "
                                    "job's cgroup here now and then; --slurm-cgroup none runs "
                                    "without cgroups.)" if "complete failure" in reason else ""))

    def slurmd_errors(self):
        try:
            with open(os.path.join(self.cluster, "log", "slurmd.log")) as f:
                errors = [line.rstrip() for line in f if "error" in line]
        except OSError:
            return "  (no slurmd.log)"
        return "\n".join("  " + line for line in errors[-3:]) or "  (none)"


def wait_slurm_idle(timeout=120):
    """Waits until Slurm has no job pending, running or completing (the previous variant's batch
    jobs may still be completing when dlab has already recorded their ends)."""
    deadline = time.monotonic() + timeout
    while True:
        r = run(["squeue", "--noheader", "--states=PD,R,CG,CF,S", "--format=%i"])
        if r.returncode == 0 and not r.stdout.strip():
            return
        if time.monotonic() > deadline:
            raise BenchError("Slurm still has active jobs after %d s: %s"
                             % (timeout, (r.stdout + r.stderr).split()[:20]))
        time.sleep(0.2)


def shim_attempt(work, i, shim):
    """An attempt directory as dlab's Slurm backend prepares it for `true` (launch.json and the
    batch script that execs dlab-shim, SlurmBatchScript); returns the sbatch arguments for it."""
    d = os.path.join(work, "shim", str(i))
    os.makedirs(d, exist_ok=True)
    log_path = os.path.join(d, "log")
    launch = {"job_id": i + 1, "attempt": 1, "workdir": d, "env": {}, "log_path": log_path,
              "tasks": [{"rank": 0, "argv": ["true"], "env": {}, "log_path": log_path,
                         "cpu_millis": 1000, "memory_bytes": 100 << 20, "gpus": [],
                         "auxiliary": False}],
              "max_runtime_ms": 0, "kill_grace_ms": 10000, "notify_socket": ""}
    with open(os.path.join(d, "launch.json"), "w") as f:
        json.dump(launch, f)
    script = os.path.join(d, "batch.sh")
    with open(script, "w") as f:
        f.write("#!/bin/sh\nexport DLAB_NO_CGROUPS=1\nexport DLAB_GRANTED_GPUS=\"${CUDA_VISIBLE_DEVICES-}\"\n"
                "exec %s --attempt-dir %s\n" % (shim, d))
    return [x for x in SBATCH if not x.startswith(("--wrap", "--output"))] + [
        "--chdir=" + d, "--output=" + os.path.join(d, "shim.log"), script]


def sbatch_direct(a, work, watch, with_shim=False, builtin=False):
    """sbatch straight to Slurm: /usr/bin/true (builtin: the shell's `true`), or (with_shim)
    dlab-shim running `true` from an attempt directory, as dlab's batch jobs do, without dlabd:
    what the shim costs."""
    chdir = os.path.join(work, "sbatch")
    os.makedirs(chdir, exist_ok=True)
    argv = (SBATCH_BUILTIN if builtin else SBATCH) + ["--chdir=" + chdir]
    ids = [None] * a.jobs
    shim = os.path.join(a.bin_dir, "dlab-shim")
    if with_shim:
        shutil.rmtree(os.path.join(work, "shim"), ignore_errors=True)

    def worker():
        def submit(i):
            cmd = shim_attempt(work, i, shim) if with_shim else argv
            r = run(cmd[:-1] + ["--job-name=direct-%d" % i, cmd[-1]] if with_shim
                    else cmd + ["--job-name=direct-%d" % i])
            if r.returncode != 0:
                raise BenchError("sbatch exited %d: %s" % (r.returncode, r.stderr.strip()))
            ids[i] = int(r.stdout.strip().split(";")[0])
        return submit, lambda: None

    t0 = time.monotonic()
    in_parallel(a.submitters, a.jobs, worker)
    submitted = time.monotonic() - t0
    pending = set(ids)
    missing = {}
    deadline = t0 + a.timeout
    while pending:
        states = squeue_states(pending)
        for job in list(pending):
            state = states.get(job)
            if state is None:
                # Slurm knew it a moment ago (MinJobAge keeps finished jobs): not seen three times
                # in a row means it is gone without our seeing how it ended.
                missing[job] = missing.get(job, 0) + 1
                if missing[job] >= 3:
                    raise BenchError("Slurm job %d vanished from squeue before it was seen "
                                     "COMPLETED" % job)
                continue
            missing.pop(job, None)
            if state == "COMPLETED":
                pending.discard(job)
            elif state.split("+")[0] not in SLURM_ACTIVE:
                raise BenchError("Slurm job %d ended %s, not COMPLETED" % (job, state))
        if not pending:
            break
        if time.monotonic() > deadline:
            raise BenchError("timeout: %d of %d Slurm jobs not COMPLETED after %d s"
                             % (len(pending), a.jobs, a.timeout))
        watch.check()
        time.sleep(a.poll)
    return {"seconds": time.monotonic() - t0, "submit_s": submitted, "failed": 0}


# --- dlab ---------------------------------------------------------------------------------

def dlab_variant(a, config, watch):
    with Dlabd(config) as d:
        try:
            return dlab_jobs(a, d, watch)
        except BaseException:
            cancel_active(d)
            raise


def dlab_jobs(a, d, watch):
    def worker():
        c = d.conn()

        def submit(i):
            status, body = request(c, "POST", "/api/v1/jobs", BODY)
            if status != 201:
                raise BenchError("POST /api/v1/jobs: HTTP %d %r" % (status, body))
        return submit, c.close

    t0 = time.monotonic()
    in_parallel(a.submitters, a.jobs, worker)
    submitted = time.monotonic() - t0
    c = d.conn()
    deadline = t0 + a.timeout
    while True:
        status, body = request(c, "GET", "/api/v1/jobs?limit=1&state=" + ACTIVE)
        if status != 200:
            raise BenchError("GET /api/v1/jobs: HTTP %d %r" % (status, body))
        if not body["jobs"]:
            break
        if time.monotonic() > deadline:
            raise BenchError("timeout: jobs still not finished after %d s (e.g. job %s %s: %s)"
                             % (a.timeout, body["jobs"][0]["id"], body["jobs"][0]["state"],
                                body["jobs"][0].get("reason", "")))
        if watch:
            watch.check()
        time.sleep(a.poll)
    seconds = time.monotonic() - t0
    jobs = list_all_jobs(c)
    c.close()
    failed = [j for j in jobs if j["state"] != "SUCCEEDED"]
    if failed or len(jobs) != a.jobs:
        reasons = {}
        for j in failed:
            key = "%s: %s" % (j["state"], j.get("reason", ""))
            reasons.setdefault(key, []).append(j["id"])
        lines = ["%d of %d jobs did not succeed (%d listed):" % (len(failed), a.jobs, len(jobs))]
        for key, ids in sorted(reasons.items(), key=lambda kv: -len(kv[1]))[:10]:
            lines.append("  %5d jobs (e.g. %s) %s" % (len(ids), ids[0], key))
        raise BenchError("\n".join(lines))
    return {"seconds": seconds, "submit_s": submitted, "failed": 0}


def cancel_active(d):
    """Best effort, after an error: cancels what dlabd still has in flight."""
    try:
        c = d.conn()
        status, body = request(c, "GET", "/api/v1/jobs?limit=500&state=" + ACTIVE)
        for job in (body or {}).get("jobs", []) if status == 200 else []:
            request(c, "POST", "/api/v1/jobs/%s/cancel" % job["id"])
        c.close()
    except Exception as e:  # noqa: BLE001
        log("could not cancel the remaining jobs: %s" % e)


# --- the report ---------------------------------------------------------------------------

def table(results):
    base = median([r["seconds"] for r in results["sbatch direct"]])
    lines = ["| variant | median s | jobs/s | vs sbatch direct | each round, s | "
             "submitting took, s (median) |",
             "|---|---|---|---|---|---|"]
    for name in VARIANTS:
        runs = results[name]
        med = median([r["seconds"] for r in runs])
        lines.append("| %s | %.1f | %.1f | %.2f | %s | %.1f |" % (
            name, med, jobs_per_s(runs, med), med / base,
            ", ".join("%.1f" % r["seconds"] for r in runs),
            median([r["submit_s"] for r in runs])))
    return "\n".join(lines) + "\n"


def jobs_per_s(runs, med):
    return runs[0]["jobs"] / med if med > 0 else 0.0


def verdict(results):
    base = median([r["seconds"] for r in results["sbatch direct"]])
    shim = median([r["seconds"] for r in results["sbatch + dlab-shim"]])
    lines = []
    for name, how in (("dlab on Slurm", "submitting with sbatch"),
                      ("dlab on Slurm, slurmrestd", "submitting through slurmrestd")):
        dlab = median([r["seconds"] for r in results[name]])
        overhead = 100.0 * (dlab / base - 1.0)
        # Rounds drift on a busy machine: each round against sbatch direct of the same round.
        paired = median([r["seconds"] / d["seconds"]
                         for r, d in zip(results[name], results["sbatch direct"])])
        lines.append("dlab on Slurm overhead, %s: %.1f%% (target <= 10%%: %s); median of the "
                     "rounds' own ratios %+.1f%%; dlabd on top of dlab-shim: %+.1f%%" % (
                         how, overhead, "met" if overhead <= 10.0 else "MISSED",
                         100.0 * (paired - 1.0), 100.0 * (dlab / shim - 1.0)))
    lines.append("dlab-shim without dlabd: %+.1f%%" % (100.0 * (shim / base - 1.0)))
    return "\n\n".join(lines)


def command_line(a):
    words = ["bench/slurm_overhead.py"]
    if a.jobs != 500:
        words.append("--jobs %d" % a.jobs)
    if a.rounds != 3:
        words.append("--rounds %d" % a.rounds)
    if a.submitters != 1:
        words.append("--submitters %d" % a.submitters)
    if a.poll_interval != "1s":
        words.append("--poll-interval %s" % a.poll_interval)
    if a.queue_ahead != 1:
        words.append("--queue-ahead %d" % a.queue_ahead)
    if a.slurm_cgroup != "auto":
        words.append("--slurm-cgroup %s" % a.slurm_cgroup)
    words.append("--write-docs")
    return " ".join(words)


def section(a, results, env):
    def para(text, indent=""):
        return textwrap.fill(" ".join(text.split()), width=98, subsequent_indent=indent,
                             break_long_words=False, break_on_hyphens=False)

    intro = para(
        "Command: `sudo /usr/bin/python3 %s` (after `make build`; Slurm from "
        "`scripts/slurm-cluster.sh install`). It brings up a private one-node Slurm cluster "
        "(`scripts/slurm-cluster.sh up DIR --cpus %d --gpus 0 --wait-scheduler --rest`) and "
        "runs %d trivial jobs seven ways, one after another, in %d round(s), the order "
        "reversed every other round:" % (command_line(a), CPUS, a.jobs, a.rounds))
    variants = "\n".join(para(item, "  ") for item in [
        "- **sbatch direct**: `%s` for each job (the resources dlab asks for a job with "
        "`{cpus: 1, memory: 100Mi}`, running the program dlab's job runs), then `squeue "
        "--states=all` on the unfinished ids until all are COMPLETED;" % " ".join(SBATCH),
        "- **sbatch direct, builtin true**: the same with `--wrap=true`, which the shell runs as "
        "a builtin: a batch job that starts no process at all. Sessions 6 and 7 compared "
        "against this one;",
        "- **sbatch + dlab-shim**: the same, but each batch job is dlab's own without dlabd: an "
        "attempt directory with `launch.json` (the task `true`) and a batch script that execs "
        "`dlab-shim --attempt-dir DIR`, as dlab's Slurm backend writes them; it separates what "
        "the shim costs per job from what dlabd adds;",
        "- **dlab on Slurm**: a fresh dlabd with `backend: {type: slurm, poll_interval: %s, "
        "queue_ahead: %d}`; jobs `command: [true]`, `resources: {cpus: 1, memory: 100Mi}` through "
        "`POST /api/v1/jobs`, then `GET /api/v1/jobs?state=...` until none is in flight;"
        % (a.poll_interval, a.queue_ahead),
        "- **dlab on Slurm, slurmrestd**: the same, dlabd submitting through the cluster's "
        "slurmrestd (`slurmrestd: unix:DIR/run/slurmrestd.sock`, started by `up --rest`) "
        "instead of running sbatch;",
        "- **dlab on Slurm, queue_ahead 0**: the same as dlab on Slurm with `queue_ahead: 0`: "
        "dlab hands Slurm only what fits on the node;",
        "- **dlab local**: the same through dlab's local backend (`node: {cpus: %d, memory: 32Gi, "
        "gpus: none}`)." % CPUS])
    notes = para(
        "Submissions are %s. A time is from the first submit until all N jobs are seen finished "
        "(polled every %.1f s), all of them SUCCEEDED (COMPLETED). dlab runs as many one-CPU "
        "jobs at a time as the node has CPUs (%d), as Slurm does; with queue_ahead N it lets N "
        "nodes' worth more wait in Slurm's queue. Measured %s on %s (%d CPUs), "
        "%s." % ("sequential, from one client" if a.submitters <= 1
                 else "from %d threads" % a.submitters, a.poll, CPUS,
                 datetime.date.today().isoformat(), platform.node() or "this machine",
                 os.cpu_count() or 0, env["slurm"]))
    return "%s\n\n%s\n\n%s\n\n%s\n\n%s\n\n%s\n" % (
        SECTION, intro, variants, notes, table(results).rstrip("\n"), verdict(results))




# --- main ---------------------------------------------------------------------------------

def preflight(a):
    if os.geteuid() != 0:
        sys.exit("slurm_overhead.py needs root: it starts a private Slurm cluster "
                 "(slurmd runs jobs as their owners); run it with sudo")
    missing = [b for b in ("sbatch", "squeue", "sinfo", "slurmctld", "slurmd", "munged",
                           "slurmrestd")
               if not shutil.which(b)]
    if missing:
        sys.exit("Slurm is not installed (no %s): run scripts/slurm-cluster.sh install "
                 "(or scripts/install-deps.sh)" % ", ".join(missing))
    for b in ("dlabd", "dlab-shim"):
        if not os.access(os.path.join(a.bin_dir, b), os.X_OK):
            sys.exit("no %s in %s: build first (make build), or pass --bin-dir"
                     % (b, a.bin_dir))


def cluster_up(cluster, cgroup):
    ports = [p for p in range(31000, 32700, 7) if port_is_free(p)][:2]
    if len(ports) < 2:
        raise BenchError("no two free ports in 31000-32700 for slurmctld and slurmd")
    up = subprocess.run([CLUSTER, "up", cluster, "--cpus", str(CPUS), "--gpus", "0",
                         "--wait-scheduler", "--rest"], capture_output=True, text=True, timeout=180,
                        env=dict(os.environ, SLURM_CTLD_PORT=str(ports[0]),
                                 SLURM_D_PORT=str(ports[1]), SLURM_CGROUP=cgroup))
    if up.returncode != 0:
        raise BenchError("slurm-cluster.sh up failed:\n" + up.stderr)
    for line in up.stdout.splitlines():
        if line.startswith("export "):
            key, value = line[len("export "):].split("=", 1)
            os.environ[key] = value  # sbatch, squeue and dlabd find the cluster
    last = up.stderr.strip().splitlines()[-1] if up.stderr.strip() else "slurm cluster up"
    log(last)
    return "cgroup none" if "cgroup none" in last else "cgroup v1"


def cluster_down(cluster):
    down = subprocess.run([CLUSTER, "down", cluster], capture_output=True, text=True,
                          timeout=180)
    if down.returncode != 0:
        log("slurm-cluster.sh down failed:\n" + down.stderr)


def main():
    ap = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    ap.add_argument("--jobs", type=int, default=500, help="jobs per variant and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--submitters", type=int, default=1,
                    help="threads submitting (sbatch processes / dlab clients); 1: sequential")
    ap.add_argument("--poll-interval", default="1s",
                    help="dlab's backend.poll_interval (how often dlabd asks squeue)")
    ap.add_argument("--queue-ahead", type=int, default=1,
                    help="dlab's backend.queue_ahead (nodes' worth of attempts it lets wait in "
                         "Slurm's queue) for the 'dlab on Slurm' variant")
    ap.add_argument("--poll", type=float, default=0.5,
                    help="how often this script looks whether all jobs are finished, seconds")
    ap.add_argument("--timeout", type=float, default=1800, help="per variant, seconds")
    ap.add_argument("--bin-dir", default=os.path.join(REPO, "build", "bin"),
                    help="where dlabd and dlab-shim are (default: build/bin)")
    ap.add_argument("--slurm-cgroup", choices=["auto", "v1", "none"], default="auto",
                    help="SLURM_CGROUP for scripts/slurm-cluster.sh (auto: v1 where usable, "
                         "as in the tests)")
    ap.add_argument("--write-docs", action="store_true",
                    help="replace the section in docs/benchmarks.md")
    a = ap.parse_args()
    if a.jobs < 1 or a.rounds < 1 or a.submitters < 1:
        ap.error("--jobs, --rounds and --submitters must be at least 1")
    a.bin_dir = os.path.abspath(a.bin_dir)
    preflight(a)
    dlabd_harness.BIN = a.bin_dir

    work = tempfile.mkdtemp(prefix="dlab-slurm-bench-")
    cluster = os.path.join(work, "slurm")
    rest_socket = os.path.join(cluster, "run", "slurmrestd.sock")  # where up --rest starts it
    configs = {
        "dlab on Slurm": "backend: {type: slurm, poll_interval: %s, queue_ahead: %d}\n"
                         % (a.poll_interval, a.queue_ahead),
        "dlab on Slurm, slurmrestd": "backend: {type: slurm, poll_interval: %s, queue_ahead: %d, "
                                     "slurmrestd: '%s'}\n"
                                     % (a.poll_interval, a.queue_ahead, "unix:" + rest_socket),
        "dlab on Slurm, queue_ahead 0": "backend: {type: slurm, poll_interval: %s, "
                                        "queue_ahead: 0}\n" % a.poll_interval,
        "dlab local": "node: {cpus: %d, memory: 32Gi, gpus: none}\n" % CPUS,
    }
    results = {name: [] for name in VARIANTS}
    env = {}
    started = time.monotonic()
    failed = None
    try:
        env["cgroup"] = cluster_up(cluster, a.slurm_cgroup)
        watch = NodeWatch(cluster)
        r = run(["sinfo", "--version"])
        env["slurm"] = "%s, %s" % (r.stdout.strip() or "Slurm (version unknown)", env["cgroup"])
        log("== %d trivial jobs per variant, %d round(s), %s; dlab poll_interval %s, %s"
            % (a.jobs, a.rounds, env["slurm"], a.poll_interval,
               "sequential submits" if a.submitters <= 1 else "%d submitters" % a.submitters))
        for rnd in range(a.rounds):
            order = VARIANTS if rnd % 2 == 0 else VARIANTS[::-1]
            for name in order:
                wait_slurm_idle()
                if name.startswith("sbatch"):
                    res = sbatch_direct(a, work, watch, with_shim=name == "sbatch + dlab-shim",
                                        builtin=name == "sbatch direct, builtin true")
                else:
                    res = dlab_variant(a, configs[name],
                                       watch if name.startswith("dlab on Slurm") else None)
                res["jobs"] = a.jobs
                results[name].append(res)
                log("round %d  %-14s %7.1f s  %6.1f jobs/s  (submitting took %.1f s, "
                    "%.1f ms each)" % (rnd + 1, name, res["seconds"], a.jobs / res["seconds"],
                                       res["submit_s"], 1000 * res["submit_s"] / a.jobs))
    except (BenchError, RuntimeError, subprocess.SubprocessError) as e:
        failed = str(e)
    finally:
        cluster_down(cluster)
        if not os.environ.get("DLAB_BENCH_KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    if failed:
        sys.exit("slurm_overhead.py: " + failed)

    text = section(a, results, env)
    print(text)
    log("(whole run: %.0f s)" % (time.monotonic() - started))
    if a.write_docs:
        dlabd_harness.write_docs_section(os.path.join(REPO, "docs", "benchmarks.md"), SECTION,
                                         text)


if __name__ == "__main__":
    main()
