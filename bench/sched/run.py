#!/usr/bin/python3
"""Scheduling policies on real traces: replays public GPU-cluster traces through dlab-sim.

Runs build/bin/dlab-sim (docs/simulator.md) under every policy on a standard set of cases:
windows of the Philly trace where FIFO queues form, on 32 to 256 GPUs; the Alibaba
cluster-trace-gpu-v2023 pods on the trace's own node list; and the whole Philly trace under fifo,
timed (median of 3). Prints a markdown table; with --write-docs it also replaces the section
"## 8. Scheduling policies on real traces" of docs/benchmarks.md (added when absent).
Standard library only; runs the cases over 2 processes.
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import dlabd_harness  # noqa: E402  (write_docs_section)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECTION = "## 8. Scheduling policies on real traces (issue 5)"
POLICIES = ["fifo", "priority", "backfill", "fair-share", "las", "gittins", "oracle-srtf"]
# Variants with parameters other than the defaults: (label, policy, --param values).
VARIANTS = [("fair-share, no moves", "fair-share", ["fair_share.move=0"]),
            ("fair-share, min_runtime 0, no history", "fair-share",
             ["preemption.min_runtime=0", "fair_share.half_life=0"])]
LABELS = POLICIES + [label for label, _, _ in VARIANTS]


def policy_args(label):
    for name, policy, params in VARIANTS:
        if name == label:
            return ["--policy", policy] + [a for p in params for a in ("--param", p)]
    return ["--policy", label]

# (name, trace file, dlab-sim arguments). Philly windows: consecutive jobs in submit order,
# chosen where FIFO queues form on the cluster given (see the section text).
CASES = [
    ("Philly jobs 40,000-41,999 on 8x4", "philly_jobs.csv", ["--jobs", "40000:2000", "--cluster", "8x4"]),
    ("Philly jobs 20,000-24,999 on 16x8", "philly_jobs.csv", ["--jobs", "20000:5000", "--cluster", "16x8"]),
    ("Philly jobs 10,000-12,999 on 32x8", "philly_jobs.csv", ["--jobs", "10000:3000", "--cluster", "32x8"]),
    ("Philly jobs 60,000-63,999 on 32x8", "philly_jobs.csv", ["--jobs", "60000:4000", "--cluster", "32x8"]),
    ("Philly jobs 0-3,999 on 8x8", "philly_jobs.csv", ["--jobs", "0:4000", "--cluster", "8x8"]),
    ("Philly jobs 0-3,999 on 16x8", "philly_jobs.csv", ["--jobs", "0:4000", "--cluster", "16x8"]),
    ("Philly jobs 20,000-23,999 on 8x8", "philly_jobs.csv", ["--jobs", "20000:4000", "--cluster", "8x8"]),
    ("Philly jobs 40,000-43,999 on 8x8", "philly_jobs.csv", ["--jobs", "40000:4000", "--cluster", "8x8"]),
    ("Philly jobs 40,000-43,999 on 16x8", "philly_jobs.csv", ["--jobs", "40000:4000", "--cluster", "16x8"]),
    ("Philly jobs 60,000-63,999 on 8x8", "philly_jobs.csv", ["--jobs", "60000:4000", "--cluster", "8x8"]),
    ("Philly jobs 60,000-63,999 on 16x8", "philly_jobs.csv", ["--jobs", "60000:4000", "--cluster", "16x8"]),
    ("Alibaba v2023 on its 1,213 nodes", "alibaba_v2023_jobs.csv",
     ["--cluster", "@alibaba_v2023_gpu_nodes.csv"]),
]
FULL_PHILLY = ("philly_jobs.csv", ["--cluster", "64x8", "--policy", "fifo"])
FULL_PHILLY_RUNS = 3


def sim_command(args, traces, trace, extra):
    extra = [os.path.join(traces, a[1:]) if a.startswith("@") else a for a in extra]
    return [args.bin, "--trace", os.path.join(traces, trace), "--json"] + extra


def run_sim(command, timeout):
    """The report of one dlab-sim run, or {"error": ...}."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": "timed out after %d s" % timeout}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[0] if done.stderr.strip()
                else "exit status %d" % done.returncode}
    return json.loads(done.stdout)


def hours(seconds):
    return "%.2f h" % (seconds / 3600)


def days(seconds):
    return "%.1f d" % (seconds / 86400)


def ratio(value, base):
    if base is None or "error" in base or base["avg_jct_s"] <= 0:
        return "–"
    return "%.2f" % (value / base["avg_jct_s"])


def table(results):
    lines = ["| case | policy | avg JCT | p50 JCT | p99 JCT | avg queue | makespan | GPU util "
             "| preemptions | fairness min | JCT / fifo | JCT / oracle-srtf |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    errors = []
    for name, _, _ in CASES:
        by_policy = results[name]
        for policy in LABELS:
            r = by_policy[policy]
            if "error" in r:
                errors.append("%s, %s: %s" % (name, policy, r["error"]))
                lines.append("| %s | %s | error (%d) | | | | | | | | | |"
                             % (name, policy, len(errors)))
                continue
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %.1f%% | %d | %.3g | %s | %s |" % (
                name, policy, hours(r["avg_jct_s"]), hours(r["p50_jct_s"]), hours(r["p99_jct_s"]),
                hours(r["avg_queue_s"]), days(r["makespan_s"]), 100 * r["gpu_utilization"],
                r["preemptions"], r["fairness_min"], ratio(r["avg_jct_s"], by_policy["fifo"]),
                ratio(r["avg_jct_s"], by_policy["oracle-srtf"])))
    out = "\n".join(lines) + "\n"
    if errors:
        out += "\nErrors:\n\n" + "\n".join("%d. %s" % (i + 1, e) for i, e in enumerate(errors)) + "\n"
    return out


def fairness(r):
    """Fair share's four readings: the lowest tenant ratio; the same over tenants that queued for
    an hour or more; the lowest fair up to one job and the minimum run time; and the lowest
    ratio over the time tenants had work (GPU-seconds held over entitled)."""
    if "error" in r:
        return "error | error | error | error"
    long_queued = [t["ratio"] for t in r["tenant_fairness"].values() if t["queued_s"] >= 3600]
    return "%.2f | %s | %.2f | %.2f" % (
        r["fairness_min"], "%.2f" % min(long_queued) if long_queued else "none queued",
        r["fairness_min_one_job"], r["fairness_min_busy"])


def targets(results):
    """The issue's targets per case: las and gittins (the non-clairvoyant policies) against fifo
    and the oracle; then fair share's readings of fairness (see fairness()) with its defaults
    and variants."""
    lines = ["| case | fifo / oracle | queues form (>= 2.5) | las speed-up over fifo "
             "| las / oracle | gittins speed-up over fifo | gittins / oracle |",
             "|---|---|---|---|---|---|---|"]
    fair = ["| case | variant | lowest tenant ratio | tenants queued >= 1 h "
            "| fair up to one job and min_runtime | held / entitled over busy time |",
            "|---|---|---|---|---|---|"]
    for name, _, _ in CASES:
        r = results[name]
        if any("error" in r[p] for p in ("fifo", "las", "gittins", "oracle-srtf")):
            continue
        fifo, las, gittins, oracle = (
            r[p]["avg_jct_s"] for p in ("fifo", "las", "gittins", "oracle-srtf"))
        if oracle <= 0 or las <= 0 or gittins <= 0:
            continue
        lines.append("| %s | %.2f | %s | %.2fx | %.2f | %.2fx | %.2f |" % (
            name, fifo / oracle, "yes" if fifo / oracle >= 2.5 else "no", fifo / las, las / oracle,
            fifo / gittins, gittins / oracle))
        for label in ["fair-share"] + [v[0] for v in VARIANTS]:
            fair.append("| %s | %s | %s |" % (name, label, fairness(r[label])))
    return "\n".join(lines) + "\n\nFair share:\n\n" + "\n".join(fair) + "\n"


def case_notes(results):
    """Jobs simulated and left out per case, from the fifo run."""
    lines = []
    for name, _, _ in CASES:
        r = results[name]["fifo"]
        if "error" in r:
            continue
        left = []
        if r["skipped"]:
            left.append("%d could never run on the cluster" % r["skipped"])
        if r["no_duration"]:
            left.append("%d without a duration (Pending pods)" % r["no_duration"])
        if r["fractional_gpu"]:
            left.append("%d asked for a share of one GPU and got a whole one" % r["fractional_gpu"])
        lines.append("- %s: %d jobs, %d tenant%s, %d GPUs%s." % (
            name, r["jobs"], r["tenants"], "" if r["tenants"] == 1 else "s", r["cluster_gpus"],
            "; " + ", ".join(left) if left else ""))
    return "\n".join(lines) + "\n"


def full_philly(args, traces):
    runs = [run_sim(sim_command(args, traces, *FULL_PHILLY), args.timeout)
            for _ in range(FULL_PHILLY_RUNS)]
    if any("error" in r for r in runs):
        return "Whole Philly trace under fifo on 64x8: error: %s\n" % next(
            r["error"] for r in runs if "error" in r)
    walls = [r["sim_wall_s"] for r in runs]
    r = runs[0]
    return ("Whole Philly trace (%d jobs) under fifo on 64x8 (512 GPUs): **%.2f s** wall, median of "
            "%d (%s; %.2f s of the first inside the scheduler, %d cycles); avg JCT %s, makespan "
            "%s, GPU utilization %.1f%%.\n" % (
                r["jobs"], statistics.median(walls), len(walls),
                ", ".join("%.2f" % w for w in walls), r["scheduler_wall_s"], r["cycles"],
                hours(r["avg_jct_s"]), days(r["makespan_s"]), 100 * r["gpu_utilization"]))


def section(body):
    return (
        "%s\n\n"
        "Command: `bench/sched/run.py --write-docs` (after `make build`; the traces are read from\n"
        "`../shared/traces/`, see its README). Each case is replayed by `dlab-sim`\n"
        "([simulator.md](simulator.md)) under every policy with its default parameters and a restart\n"
        "cost of 30 s per preemption. Times are job completion times (end minus submit) in hours,\n"
        "percentiles nearest-rank; avg queue is first start minus submit; fairness min is the lowest\n"
        "time-averaged ratio of GPUs held to the max-min fair share, over the tenants while they had\n"
        "GPUs queued (the fair-share table below reads it three more ways, see\n"
        "[simulator.md](simulator.md)); the last two columns divide the policy's average JCT by fifo's and\n"
        "oracle-srtf's on the same case. The Philly windows are runs of consecutive jobs where FIFO\n"
        "queues form on the cluster given. Measured %s on %s (%d CPUs).\n\n%s"
        % (SECTION, datetime.date.today().isoformat(), platform.node() or "this machine",
           os.cpu_count() or 0, body))




def sim_arguments(doc):
    """The command line of a script that runs dlab-sim over the traces (this one and its
    siblings in bench/sched)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--bin", default=os.path.join(REPO, "build", "bin", "dlab-sim"))
    parser.add_argument("--traces", default=os.environ.get(
        "DLAB_TRACES", os.path.join(os.path.dirname(REPO), "shared", "traces")))
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=1800, help="per dlab-sim run, seconds")
    return parser


def checked_args(parser):
    args = parser.parse_args()
    if not os.access(args.bin, os.X_OK):
        sys.exit("no %s: build first (make build)" % args.bin)
    return args


def main():
    parser = sim_arguments(__doc__)
    parser.add_argument("--write-docs", action="store_true",
                        help="replace the section in docs/benchmarks.md")
    args = checked_args(parser)

    results = {name: {} for name, _, _ in CASES}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.processes) as pool:
        futures = {}
        for name, trace, extra in CASES:
            for policy in LABELS:
                command = sim_command(args, args.traces, trace, extra + policy_args(policy))
                futures[pool.submit(run_sim, command, args.timeout)] = (name, policy)
        for future in concurrent.futures.as_completed(futures):
            name, policy = futures[future]
            results[name][policy] = future.result()
            print("done: %s, %s" % (name, policy), file=sys.stderr)
    body = (table(results) + "\n" + case_notes(results) + "\nAgainst the targets:\n\n" +
            targets(results) + "\n" + full_philly(args, args.traces))
    text = section(body)
    print(text)
    if args.write_docs:
        dlabd_harness.write_docs_section(os.path.join(REPO, "docs", "benchmarks.md"), SECTION,
                                         text)


if __name__ == "__main__":
    main()
