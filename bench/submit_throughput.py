#!/usr/bin/env python3
"""Benchmark 1: job submission throughput and latency.

For each client count N (default 8 and 1) and each of R repetitions (default 3), start a fresh
dlabd (temporary data dir, node declared with 2000 CPUs / 1Ti / no GPUs so nothing waits for resources),
submit J trivial jobs (default 1000) through POST /api/v1/jobs from N threads, each on its own
keep-alive connection, then wait until every job is terminal. Reports per run and the median over
the runs: submissions/s (J / wall time for all acks), submit latency p50/p99 (request to 201),
submit-to-running latency p50/p99 (start_time - submit_time of each job).
Targets: >= 500 submissions/s, p50 submit-to-running <= 50 ms.
"""
import argparse
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlabd_harness import Dlabd, request, wait_all_terminal, parse_time, pct, median  # noqa: E402

CONFIG = "node: {cpus: 2000, memory: 1Ti, gpus: none}\n"
BODY = {"spec": {"name": "t", "command": ["true"],
                 "resources": {"cpus": "1", "memory": "64Mi"}}}


def one_run(jobs, clients, timeout):
    with Dlabd(CONFIG) as d:
        lat = []
        errors = []
        lock = threading.Lock()
        counter = iter(range(jobs))
        barrier = threading.Barrier(clients + 1)

        def worker():
            c = d.conn()
            c.connect()
            mine = []
            barrier.wait()
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    break
                t0 = time.perf_counter()
                status, body = request(c, "POST", "/api/v1/jobs", BODY)
                mine.append(time.perf_counter() - t0)
                if status != 201:
                    errors.append((status, body))
            c.close()
            with lock:
                lat.extend(mine)

        threads = [threading.Thread(target=worker) for _ in range(clients)]
        for t in threads:
            t.start()
        barrier.wait()
        t0 = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        if errors:
            raise RuntimeError("%d submits failed, first: %r" % (len(errors), errors[0]))
        t1 = time.perf_counter()
        all_jobs = wait_all_terminal(d, jobs, timeout)
        drain = time.perf_counter() - t1
        s2r = [parse_time(j["start_time"]) - parse_time(j["submit_time"])
               for j in all_jobs if j.get("start_time")]
        states = {}
        for j in all_jobs:
            states[j["state"]] = states.get(j["state"], 0) + 1
        return {
            "rate": jobs / wall,
            "wall": wall,
            "submit_p50": pct(lat, 50) * 1e3,
            "submit_p99": pct(lat, 99) * 1e3,
            "s2r_p50": pct(s2r, 50) * 1e3,
            "s2r_p99": pct(s2r, 99) * 1e3,
            "started": len(s2r),
            "drain": drain,
            "states": states,
        }


def isolated(count, timeout):
    """Submit-to-running of jobs submitted one at a time into an idle dlabd: each job is submitted
    only after the previous one is terminal, so no job queues behind another."""
    with Dlabd(CONFIG) as d:
        c = d.conn()
        s2r = []
        for _ in range(count):
            status, job = request(c, "POST", "/api/v1/jobs", BODY)
            if status != 201:
                raise RuntimeError("submit: HTTP %d %r" % (status, job))
            deadline = time.time() + timeout
            while job["state"] not in ("SUCCEEDED", "FAILED", "CANCELLED"):
                if time.time() > deadline:
                    raise RuntimeError("timeout waiting for job %d" % job["id"])
                time.sleep(0.02)
                status, job = request(c, "GET", "/api/v1/jobs/%d" % job["id"])
            s2r.append(parse_time(job["start_time"]) - parse_time(job["submit_time"]))
        c.close()
        return s2r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--clients", type=int, nargs="+", default=[8, 1])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300, help="per run, waiting for jobs to end")
    ap.add_argument("--isolated", type=int, default=20,
                    help="then submit this many jobs one at a time into an idle dlabd (0: skip)")
    a = ap.parse_args()

    print("== submit throughput: %d trivial jobs per run, %d runs per client count" %
          (a.jobs, a.runs))
    fmt = "%-8s %-5s %10s %10s %10s %12s %12s %9s  %s"
    print(fmt % ("clients", "run", "submits/s", "submit50", "submit99", "s2run p50", "s2run p99",
                 "drain s", "states"))
    summary = []
    for n in (a.clients if a.runs > 0 else []):
        runs = []
        for r in range(a.runs):
            res = one_run(a.jobs, n, a.timeout)
            runs.append(res)
            print(fmt % (n, r + 1, "%.0f" % res["rate"], "%.2f ms" % res["submit_p50"],
                         "%.2f ms" % res["submit_p99"], "%.1f ms" % res["s2r_p50"],
                         "%.1f ms" % res["s2r_p99"], "%.1f" % res["drain"],
                         ",".join("%s=%d" % kv for kv in sorted(res["states"].items()))),
                  flush=True)
        med = {k: median([x[k] for x in runs]) for k in
               ("rate", "submit_p50", "submit_p99", "s2r_p50", "s2r_p99", "drain")}
        summary.append((n, med))
        print(fmt % (n, "med", "%.0f" % med["rate"], "%.2f ms" % med["submit_p50"],
                     "%.2f ms" % med["submit_p99"], "%.1f ms" % med["s2r_p50"],
                     "%.1f ms" % med["s2r_p99"], "%.1f" % med["drain"], ""), flush=True)
    for n, med in summary:
        print("clients=%d: median %.0f submissions/s (target >= 500: %s), "
              "median p50 submit-to-running %.1f ms (target <= 50 ms: %s)" %
              (n, med["rate"], "met" if med["rate"] >= 500 else "MISSED",
               med["s2r_p50"], "met" if med["s2r_p50"] <= 50 else "MISSED"))
    if a.isolated:
        s2r = isolated(a.isolated, a.timeout)
        print("isolated: %d jobs submitted one at a time into an idle dlabd: submit-to-running "
              "p50 %.1f ms, max %.1f ms" % (len(s2r), pct(s2r, 50) * 1e3, max(s2r) * 1e3))


if __name__ == "__main__":
    main()
