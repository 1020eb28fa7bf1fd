#!/usr/bin/env python3
"""Benchmark 2: dlabd resident memory.

Starts a dlabd (temporary data dir, node declared with 2000 CPUs / 1Ti / no GPUs) and reads VmRSS from
/proc/PID/status: idle right after start, then after J trivial jobs (default 10,000) were submitted
(8 keep-alive clients) and have all finished, then after one GET /api/v1/jobs?limit=500, then after
paging through the whole list. Targets: <= 50 MB idle, <= 100 MB with 10,000 finished jobs.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlabd_harness import Dlabd, request, list_all_jobs, wait_all_terminal  # noqa: E402

CONFIG = "node: {cpus: 2000, memory: 1Ti, gpus: none}\n"
BODY = {"spec": {"name": "t", "command": ["true"],
                 "resources": {"cpus": "1", "memory": "64Mi"}}}


def hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--timeout", type=float, default=1200, help="waiting for the jobs to end")
    a = ap.parse_args()

    print("== dlabd memory (VmRSS), %d trivial jobs" % a.jobs)
    rows = []
    with Dlabd(CONFIG) as d:
        time.sleep(1.0)
        rows.append(("idle, 1 s after start", d.vmrss_kib()))
        print("%-48s %8.1f MiB" % (rows[-1][0], rows[-1][1] / 1024), flush=True)

        lock = threading.Lock()
        counter = iter(range(a.jobs))
        errors = []

        def worker():
            c = d.conn()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                status, body = request(c, "POST", "/api/v1/jobs", BODY)
                if status != 201:
                    errors.append((status, body))
            c.close()

        t0 = time.time()
        threads = [threading.Thread(target=worker) for _ in range(a.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError("%d submits failed, first: %r" % (len(errors), errors[0]))
        submitted = time.time() - t0
        rows.append(("after submitting %d jobs" % a.jobs, d.vmrss_kib()))
        print("%-48s %8.1f MiB   (submits took %.1f s)" % (rows[-1][0], rows[-1][1] / 1024,
                                                          submitted), flush=True)
        # Wait for the jobs by polling one job at a time (the newest), so that the wait itself
        # does not page through the whole list; then confirm with one full listing.
        c = d.conn()
        deadline = time.time() + a.timeout
        while True:
            status, body = request(c, "GET", "/api/v1/jobs?limit=1&state=QUEUED,STARTING,RUNNING")
            if status == 200 and not body["jobs"]:
                break
            if time.time() > deadline:
                raise RuntimeError("timeout waiting for jobs to finish")
            time.sleep(1.0)
        finished = time.time() - t0
        c.close()
        time.sleep(2.0)
        rows.append(("%d jobs finished (%.0f s after first submit)" % (a.jobs, finished),
                     d.vmrss_kib()))
        print("%-48s %8.1f MiB" % (rows[-1][0], rows[-1][1] / 1024), flush=True)

        c = d.conn()
        status, body = request(c, "GET", "/api/v1/jobs?limit=500")
        assert status == 200 and len(body["jobs"]) == min(500, a.jobs), status
        rows.append(("after GET /api/v1/jobs?limit=500", d.vmrss_kib()))
        print("%-48s %8.1f MiB" % (rows[-1][0], rows[-1][1] / 1024), flush=True)

        t1 = time.time()
        jobs = list_all_jobs(c)
        paged = time.time() - t1
        c.close()
        states = {}
        for j in jobs:
            states[j["state"]] = states.get(j["state"], 0) + 1
        rows.append(("after paging all %d jobs (limit=500)" % len(jobs), d.vmrss_kib()))
        print("%-48s %8.1f MiB   (%.1f s; %s)" % (rows[-1][0], rows[-1][1] / 1024, paged,
              ",".join("%s=%d" % kv for kv in sorted(states.items()))), flush=True)
        reasons = {}
        for j in jobs:
            if j["state"] != "SUCCEEDED":
                r = "%s: %s" % (j["state"], j.get("reason", ""))
                reasons[r] = reasons.get(r, 0) + 1
        for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:5]:
            print("  %5d jobs %s" % (n, r))
        print("%-48s %8.1f MiB" % ("peak (VmHWM)", hwm_kib(d.proc.pid) / 1024), flush=True)
        db = os.path.join(d.tmp, "data", "dlab.db")
        dbsize = sum(os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s))
        print("%-48s %8.1f MiB" % ("dlab.db + dlab.db-wal size", dbsize / 1048576), flush=True)

    idle = rows[0][1] / 1024
    full = rows[2][1] / 1024
    print("idle %.1f MiB (target <= 50 MB: %s); %d finished jobs %.1f MiB (target <= 100 MB: %s)"
          % (idle, "met" if idle * 1.048576 <= 50 else "MISSED", a.jobs, full,
             "met" if full * 1.048576 <= 100 else "MISSED"))


if __name__ == "__main__":
    main()
