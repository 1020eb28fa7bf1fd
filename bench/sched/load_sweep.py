#!/usr/bin/python3
"""How far las is from the oracle as the load rises: one Philly window on clusters of 4 to 48
nodes of 8 GPUs.

For each window of bench/sched/run.py's Philly cases (jobs FIRST:COUNT) and each cluster size,
runs build/bin/dlab-sim under fifo, las and oracle-srtf with their default parameters and prints
a markdown row: the offered load, fifo's and las's average JCT over oracle-srtf's, and las's over
fifo's. The offered load is the GPU-seconds the window's jobs ask for over the GPU-seconds the
cluster has during the window's arrival span (first to last submit); jobs that run longer than
the span push it above what the cluster could ever keep up with. dlab-sim is deterministic: one
run per cell. Standard library only; runs over 2 processes.
"""
import concurrent.futures
import csv
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import checked_args, run_sim, sim_arguments  # noqa: E402

WINDOWS = [(40000, 2000), (0, 4000), (10000, 3000), (20000, 4000), (20000, 5000), (40000, 4000),
           (60000, 4000)]
NODES = [4, 8, 12, 16, 24, 32, 48]
POLICIES = ["fifo", "las", "oracle-srtf"]


def offered_load(rows, first, count, gpus):
    window = rows[first:first + count]
    work = sum(int(r["num_gpus"]) * float(r["duration_s"] or 0) for r in window)
    span = float(window[-1]["submit_s"]) - float(window[0]["submit_s"])
    return work / (gpus * span)


def main():
    args = checked_args(sim_arguments(__doc__))
    trace = os.path.join(args.traces, "philly_jobs.csv")
    with open(trace) as f:
        rows = list(csv.DictReader(f))

    cells = [(w, n, p) for w in WINDOWS for n in NODES for p in POLICIES]
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.processes) as pool:
        futures = {cell: pool.submit(run_sim, [
            args.bin, "--trace", trace, "--jobs", "%d:%d" % cell[0], "--cluster",
            "%dx8" % cell[1], "--policy", cell[2], "--json"], args.timeout) for cell in cells}
        results = {cell: future.result() for cell, future in futures.items()}
    print("| Philly jobs | cluster | offered load | fifo / oracle | las / oracle | las / fifo |")
    print("|---|---|---|---|---|---|")
    for first, count in WINDOWS:
        for nodes in NODES:
            jct = {}
            for policy in POLICIES:
                r = results[((first, count), nodes, policy)]
                if "error" in r:
                    sys.exit("%d:%d on %dx8, %s: %s" % (first, count, nodes, policy, r["error"]))
                jct[policy] = r["avg_jct_s"]
            print("| %s-%s | %dx8 | %.2f | %.2f | %.2f | %.2f |" % (
                format(first, ","), format(first + count - 1, ","), nodes,
                offered_load(rows, first, count, nodes * 8), jct["fifo"] / jct["oracle-srtf"],
                jct["las"] / jct["oracle-srtf"], jct["las"] / jct["fifo"]))


if __name__ == "__main__":
    main()
