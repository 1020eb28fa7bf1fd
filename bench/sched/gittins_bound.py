#!/usr/bin/python3
"""How close can a policy that does not know durations get to oracle SRTF on a Philly window?

A simplified model, separate from dlab-sim: one pool of G GPUs (no nodes, no gangs, no restart
cost), preemption free and instant, the schedule recomputed at every arrival, completion and
change of standing. On it, it compares:

  srtf          shortest remaining time first, knowing true durations (the oracle);
  las           dlab's las order: queues by attained GPU-seconds (300, 3000, 30000, 300000),
                fewer GPUs first, then FIFO;
  gittins       the Gittins index of the job's attained GPU-seconds, computed from the true
                distribution of the window's job sizes: the optimal order for a single server
                among policies that know only the attained service and the size distribution
                (Gittins 1989; Tiresias' "2D-Gittins");
  gittins-vc    the same with each virtual cluster's own true size distribution.

gittins and gittins-vc know more than any real scheduler (the distribution of exactly these
jobs), so their ratio to srtf is a generous estimate of what any non-clairvoyant order can reach.
Standard library only. Usage: gittins_bound.py [FIRST:COUNT:GPUS ...]
"""
import bisect
import csv
import math
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRACE = os.path.join(os.path.dirname(REPO), "shared", "traces", "philly_jobs.csv")
# The windows of bench/sched/run.py where las missed 1.3x of oracle-srtf (GPUs = nodes x GPUs).
DEFAULT_CASES = ["40000:2000:32", "20000:5000:128", "20000:4000:64", "40000:4000:64",
                 "60000:4000:64"]
LAS_THRESHOLDS = [300, 3000, 30000, 300000]
GRID = [60 * 1.5 ** k for k in range(40)]  # attained GPU-seconds at which Gittins is evaluated
POLICIES = ["srtf", "las", "gittins", "gittins-vc"]


def gittins_table(sizes):
    """Index at each GRID point: max over B > A of P(S <= B | S > A) / E[min(S, B) - A | S > A]."""
    s = sorted(sizes)
    prefix = [0.0]
    for x in s:
        prefix.append(prefix[-1] + x)
    table = []
    for a in GRID:
        j = bisect.bisect_right(s, a)
        best = 0.0
        for b in GRID:
            if b <= a:
                continue
            k = bisect.bisect_right(s, b)
            cost = (prefix[k] - prefix[j]) - (k - j) * a + (len(s) - k) * (b - a)
            if cost > 0:
                best = max(best, (k - j) / cost)
        table.append(best)
    return table


def simulate(jobs, gpus, policy):
    if policy == "gittins":
        table = gittins_table([j["size"] for j in jobs])
        tables = {j["vc"]: table for j in jobs}
    elif policy == "gittins-vc":
        by_vc = {}
        for j in jobs:
            by_vc.setdefault(j["vc"], []).append(j["size"])
        tables = {vc: gittins_table(sizes) for vc, sizes in by_vc.items()}

    def key(j):
        if policy == "srtf":
            return (j["left"], j["submit"])
        if policy == "las":
            return (bisect.bisect_right(LAS_THRESHOLDS, j["got"]), j["gpus"], j["submit"])
        level = min(bisect.bisect_right(GRID, j["got"]), len(GRID) - 1)
        return (-tables[j["vc"]][level], j["submit"])

    def next_change(j):  # when the job's standing changes while it runs
        marks = LAS_THRESHOLDS if policy == "las" else GRID if policy != "srtf" else []
        for m in marks:
            if j["got"] < m:
                return (m - j["got"]) / j["gpus"]
        return math.inf

    arrivals = sorted(jobs, key=lambda j: j["submit"])
    for j in arrivals:
        j["left"], j["got"] = float(j["duration"]), 0.0
    nxt_arrival, active, now, jct = 0, [], 0.0, []
    while nxt_arrival < len(arrivals) or active:
        if not active:
            now = max(now, arrivals[nxt_arrival]["submit"])
        while nxt_arrival < len(arrivals) and arrivals[nxt_arrival]["submit"] <= now:
            active.append(arrivals[nxt_arrival])
            nxt_arrival += 1
        active.sort(key=key)
        free, running = gpus, []
        for j in active:
            if j["gpus"] <= free:
                free -= j["gpus"]
                running.append(j)
        step = arrivals[nxt_arrival]["submit"] - now if nxt_arrival < len(arrivals) else math.inf
        for j in running:
            step = min(step, j["left"], next_change(j))
        now += step
        for j in running:
            j["left"] -= step
            j["got"] += step * j["gpus"]
        ended = [j for j in running if j["left"] <= 1e-6]
        jct.extend(now - j["submit"] for j in ended)
        active = [j for j in active if j["left"] > 1e-6]
    return sum(jct) / len(jct)


def main():
    rows = list(csv.DictReader(open(TRACE)))
    print("| Philly jobs | GPUs | " + " | ".join(POLICIES[1:]) + " |  (avg JCT / srtf's)")
    print("|---|---|" + "---|" * (len(POLICIES) - 1))
    for case in sys.argv[1:] or DEFAULT_CASES:
        first, count, gpus = (int(x) for x in case.split(":"))
        jobs = [{"submit": int(r["submit_s"]), "gpus": int(r["num_gpus"]), "vc": r["vc"],
                 "duration": max(1, int(r["duration_s"]))} for r in rows[first:first + count]]
        jobs = [j for j in jobs if j["gpus"] <= gpus]
        for j in jobs:
            j["size"] = j["duration"] * j["gpus"]
        avg = {p: simulate([dict(j) for j in jobs], gpus, p) for p in POLICIES}
        print("| %d-%d | %d | %s |" % (first, first + count - 1, gpus, " | ".join(
            "%.2f" % (avg[p] / avg["srtf"]) for p in POLICIES[1:])), flush=True)


if __name__ == "__main__":
    main()
