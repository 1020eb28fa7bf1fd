#!/usr/bin/env python3
"""Metric ingestion: reports per second that dlabd sustains through POST /api/v1/jobs/{id}/metrics.

Starts a private dlabd, submits one job (it just sleeps), and has C client threads each post
B batches of R reports (3 metrics each, increasing steps, disjoint per client) with the job's
token. Prints reports/s per run and the median over runs. Standard library only.

    bench/metrics_ingest.py [--runs 3] [--clients 4] [--batches 50] [--reports 1000]
"""
import argparse
import hashlib
import hmac
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dlabd_harness import Dlabd, median, request  # noqa: E402

CONFIG = "node: {cpus: 2, memory: 4Gi, gpus: none}\nkill_grace: 1s\n"


def job_token(data_dir, job_id):
    with open(os.path.join(data_dir, "secret")) as f:
        secret = f.read().strip()
    return hmac.new(secret.encode(), b"dlab-job:%d" % job_id, hashlib.sha256).hexdigest()


def one_run(args):
    with Dlabd(CONFIG) as d:
        c = d.conn()
        status, job = request(c, "POST", "/api/v1/jobs",
                              {"spec": {"name": "sink", "command": "sleep 600"}})
        assert status == 201, job
        token = job_token(os.path.join(d.tmp, "data"), job["id"])
        bodies = []
        for client in range(args.clients):
            mine = []
            for b in range(args.batches):
                base = (client * args.batches + b) * args.reports
                reports = [{"step": base + i, "time": 1763800000.0 + i,
                            "metrics": {"loss": 1.0 / (base + i + 1), "accuracy": 0.5,
                                        "lr": 0.001}} for i in range(args.reports)]
                mine.append(json.dumps({"attempt": 1, "reports": reports}).encode())
            bodies.append(mine)
        errors = []

        def client(mine):
            conn = d.conn()
            for body in mine:
                conn.request("POST", "/api/v1/jobs/%d/metrics" % job["id"], body=body,
                             headers={"Content-Type": "application/json",
                                      "Authorization": "Bearer " + token})
                resp = conn.getresponse()
                payload = resp.read()
                if resp.status != 200:
                    errors.append((resp.status, payload[:200]))

        threads = [threading.Thread(target=client, args=(m,)) for m in bodies]
        start = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        if errors:
            raise RuntimeError("ingestion errors: %r" % errors[:3])
        total = args.clients * args.batches * args.reports
        status, series = request(c, "GET", "/api/v1/jobs/%d/metrics?name=loss&max_points=2" % job["id"])
        assert series["series"][0]["count"] == total, series
        request(c, "POST", "/api/v1/jobs/%d/cancel" % job["id"])
        return total / elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--batches", type=int, default=50)
    ap.add_argument("--reports", type=int, default=1000)
    args = ap.parse_args()
    print("## metric ingestion: %d clients x %d batches x %d reports (3 metrics each)" % (
        args.clients, args.batches, args.reports))
    rates = []
    for run in range(args.runs):
        rate = one_run(args)
        rates.append(rate)
        print("run %d: %.0f reports/s" % (run + 1, rate), flush=True)
    print("median: %.0f reports/s (%.0f metric values/s)" % (median(rates), 3 * median(rates)))


if __name__ == "__main__":
    main()
