#!/usr/bin/env bash
# Runs every dlab benchmark in turn (called by `make bench`); results go to stdout.
# Each benchmark starts its own dlabd on 127.0.0.1 with a temporary data dir and stops it.
# Record the figures in docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
[[ -x build/bin/dlabd && -x build/bin/dlab ]] || { echo "build first: make build" >&2; exit 1; }
echo "# dlab benchmarks, $(date -u +%FT%TZ), $(nproc) CPUs, $(uname -r)"
timeout 1200 bench/submit_throughput.py
echo
timeout 1500 bench/memory.py
echo
timeout 900 bench/training_overhead.sh
echo
timeout 900 bench/recovery.py --runs 5
echo
timeout 900 bench/metrics_ingest.py --runs 3
echo
timeout 900 bench/signed_requests.py --runs 3
echo
timeout 1800 bench/sched/run.py
echo
timeout 600 bench/sched/gittins_bound.py
echo
timeout 600 bench/sched/load_sweep.py
echo
timeout 600 build/bin/dlab-sched-bench
echo
timeout 1500 bench/slurm_overhead.py
echo
(cd python && timeout 600 /usr/bin/python3 bench_report.py)
