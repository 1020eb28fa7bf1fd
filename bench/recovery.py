#!/usr/bin/env python3
"""Recovery time: from the SIGKILL of one task of a running 2-task DDP job (gloo, CPU) to the
first training step of the next attempt, which resumes from the latest checkpoint.

Each run starts a private dlabd and submits a fresh job (restart_backoff as given, default the
spec's default 1s) whose tasks import torch, join a gloo group, and all-reduce a tensor every
50 ms, rank 0 recording a checkpoint through the SDK every 20 steps. Once a checkpoint exists,
rank 1 gets SIGKILL. Printed per run: the total (kill -> first step of the new attempt), the
platform's part (kill -> the new attempt's process starts: detection, gang stop, backoff,
launch) and the job's own start-up (process start -> first step: imports, rendezvous, loading
the checkpoint). Standard library only.

    bench/recovery.py [--runs 5] [--backoff 1s]
"""
import argparse
import json
import os
import re
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlabd_harness import Dlabd, median, request  # noqa: E402

CONFIG = "node: {cpus: 2, memory: 4Gi, gpus: none}\nkill_grace: 5s\n"

JOB = r'''
import time
BOOT = time.time()
import os, torch, torch.distributed as dist, dlab
dist.init_process_group("gloo")
rank = dist.get_rank()
start = 0
if dlab.resume_from():
    with open(os.path.join(dlab.resume_from(), "step")) as f:
        start = int(f.read())
first = True
for step in range(start + 1, 10**9):
    t = torch.ones(1000)
    dist.all_reduce(t)
    if first:
        print("boot %.6f first step %d %.6f" % (BOOT, step, time.time()), flush=True)
        first = False
    if step % 20 == 0 and rank == 0:
        path = os.path.join(dlab.checkpoint_dir(), "step-%d" % step)
        os.makedirs(path, exist_ok=True)
        with open(os.path.join(path, "step"), "w") as f:
            f.write(str(step))
        dlab.checkpoint(path, step)
    time.sleep(0.05)
'''


def wait(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.01)
    raise RuntimeError("timed out waiting for " + what)


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return ""


def one_run(backoff):
    with Dlabd(CONFIG) as d:
        c = d.conn()
        code = os.path.join(d.tmp, "code")
        os.makedirs(code)
        with open(os.path.join(code, "job.py"), "w") as f:
            f.write(JOB)
        spec = {"name": "recovery", "command": ["/usr/bin/python3", "job.py"], "tasks": 2,
                "resources": {"cpus": "1", "memory": "1Gi"}, "env": {"OMP_NUM_THREADS": "1"},
                "restart_backoff": backoff}
        # The code goes up as a snapshot through the SDK's client.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
            __file__))), "python"))
        import dlab
        job = dlab.Client(d.url).submit(spec, code_dir=code)
        jobs_dir = os.path.join(d.tmp, "data", "jobs", str(job["id"]))
        attempt1 = os.path.join(jobs_dir, "attempts", "1")
        wait(lambda: "first step" in read(os.path.join(attempt1, "task-1.log")), 120,
             "the first attempt to train")
        wait(lambda: request(c, "GET", "/api/v1/jobs/%d/checkpoints" % job["id"])[1]["checkpoints"],
             60, "a checkpoint")
        pids = json.loads(read(os.path.join(attempt1, "started.json")))["task_pids"]
        t_kill = time.time()
        os.kill(pids[1], signal.SIGKILL)
        log2 = os.path.join(jobs_dir, "attempts", "2", "task-0.log")
        line = wait(lambda: re.search(r"boot ([0-9.]+) first step (\d+) ([0-9.]+)", read(log2)),
                    120, "the second attempt's first step")
        boot, first = float(line.group(1)), float(line.group(3))
        request(c, "POST", "/api/v1/jobs/%d/cancel" % job["id"])
        return first - t_kill, boot - t_kill, first - boot


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--backoff", default="1s", help="the job's restart_backoff")
    args = ap.parse_args()
    print("## recovery: SIGKILL of rank 1 of a 2-task DDP job -> first step of the next attempt"
          " (restart_backoff %s)" % args.backoff)
    totals, platform, startup = [], [], []
    for run in range(args.runs):
        t, p, s = one_run(args.backoff)
        totals.append(t)
        platform.append(p)
        startup.append(s)
        print("run %d: total %.2f s = platform %.2f s + job start-up %.2f s" % (run + 1, t, p, s),
              flush=True)
    print("median: total %.2f s, platform %.2f s, job start-up %.2f s" % (
        median(totals), median(platform), median(startup)))


if __name__ == "__main__":
    main()
