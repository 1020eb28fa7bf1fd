#!/usr/bin/python3
"""How far las and gittins are from the oracle as the load rises: one Philly window on clusters
of 4 to 48 nodes of 8 GPUs.

For each window of bench/sched/run.py's Philly cases (jobs FIRST:COUNT) and each cluster size,
runs build/bin/dlab-sim under fifo, las, gittins and oracle-srtf with their default parameters
and prints a markdown row: the offered load, fifo's, las's and gittins' average JCT over
oracle-srtf's, and gittins' over fifo's; then, by offered load, how many cells where queues form
(fifo at least 2.5x the oracle) each of las and gittins brings within 1.3x of the oracle. The
offered load is the GPU-seconds the window's jobs ask for over the GPU-seconds the cluster has
during the window's arrival span (first to last submit); jobs that run longer than the span push
it above what the cluster could ever keep up with. dlab-sim is deterministic: one
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
POLICIES = ["fifo", "las", "gittins", "oracle-srtf"]
BANDS = [(0, 3, "under 3"), (3, 5, "3 to 5"), (5, float("inf"), "5 or more")]


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
    print("| Philly jobs | cluster | offered load | fifo / oracle | las / oracle | gittins / oracle"
          " | gittins / fifo |")
    print("|---|---|---|---|---|---|---|")
    bands = {label: [0, 0, 0] for _, _, label in BANDS}  # queues form, las within, gittins within
    for first, count in WINDOWS:
        for nodes in NODES:
            jct = {}
            for policy in POLICIES:
                r = results[((first, count), nodes, policy)]
                if "error" in r:
                    sys.exit("%d:%d on %dx8, %s: %s" % (first, count, nodes, policy, r["error"]))
                jct[policy] = r["avg_jct_s"]
            load = offered_load(rows, first, count, nodes * 8)
            over = {p: jct[p] / jct["oracle-srtf"] for p in ("fifo", "las", "gittins")}
            print("| %s-%s | %dx8 | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                format(first, ","), format(first + count - 1, ","), nodes, load, over["fifo"],
                over["las"], over["gittins"], jct["gittins"] / jct["fifo"]))
            if over["fifo"] >= 2.5:
                band = next(label for low, high, label in BANDS if low <= load < high)
                bands[band][0] += 1
                bands[band][1] += over["las"] <= 1.3
                bands[band][2] += over["gittins"] <= 1.3
    print()
    print("| offered load | cells where queues form | las within 1.3x | gittins within 1.3x |")
    print("|---|---|---|---|")
    for _, _, label in BANDS:
        print("| %s | %d | %d | %d |" % (label, *bands[label]))


if __name__ == "__main__":
    main()
