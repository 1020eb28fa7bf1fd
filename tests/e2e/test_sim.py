"""dlab-sim end to end: the real binary on hand-made traces (answers worked out by hand) and, where
the shared traces are present, the whole Philly trace."""
import json
import os
import subprocess

import pytest

from conftest import BIN, REPO

TRACES = REPO.parent / "shared" / "traces"


def sim(*args):
    return subprocess.run([str(BIN / "dlab-sim"), *map(str, args)], capture_output=True,
                          text=True, timeout=120)


def sim_json(*args):
    done = sim(*args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_fifo_on_one_pool(tmp_path):
    # A (0 s, 4 GPUs, 100 s) runs 0-100; B (10 s, 2, 50 s) and C (20 s, 2, 30 s) start at 100
    # and end at 150 and 130. JCT 100, 140, 110.
    trace = tmp_path / "abc.csv"
    trace.write_text("job_id,submit_s,num_gpus,duration_s\nA,0,4,100\nB,10,2,50\nC,20,2,30\n")
    report = sim_json("--trace", trace, "--cluster", "1x4", "--policy", "fifo")
    assert report["jobs"] == 3
    assert report["avg_jct_s"] == pytest.approx(350 / 3)
    assert (report["p50_jct_s"], report["p99_jct_s"]) == (110, 140)
    assert report["makespan_s"] == 150
    assert report["gpu_utilization"] == pytest.approx(560 / 600)
    text = sim("--trace", trace, "--cluster", "1x4")
    assert text.returncode == 0
    assert "JCT               avg 116.7 s, p50 110.0 s, p99 140.0 s" in text.stdout


def test_alibaba_format_and_node_file(tmp_path):
    # p1 asks for 0.5 GPU and gets a whole one; p3 is Pending (no duration) and left out; p2 is
    # CPU-only. On one node with 1 GPU: p0 runs 0-100, p1 (a BE pod) waits for the GPU: 100-150.
    trace = tmp_path / "pods.csv"
    trace.write_text(
        "job_id,submit_s,num_gpus,duration_s,gpu_type,gpu_milli,cpu_milli,memory_mib,qos,phase,"
        "queue_s\n"
        "p0,1000,1,100.0,,1000,4000,8192,LS,Running,0\n"
        "p1,1010,1,50.0,,500,2000,4096,BE,Failed,0\n"
        "p2,1020,0,10.0,,0,1000,1024,LS,Succeeded,0\n"
        "p3,1030,1,,,1000,1000,1024,LS,Pending,\n")
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("sn,cpu_milli,memory_mib,gpu,model\nn0,16000,65536,1,T4\n")
    report = sim_json("--trace", trace, "--cluster", nodes)
    assert report["trace_format"] == "alibaba-v2023"
    assert (report["jobs"], report["no_duration"], report["fractional_gpu"]) == (3, 1, 1)
    assert report["cluster_gpus"] == 1
    assert report["makespan_s"] == 150
    assert report["avg_jct_s"] == pytest.approx((100 + 140 + 10) / 3)


def test_usage_errors_exit_2(tmp_path):
    trace = tmp_path / "t.csv"
    trace.write_text("job_id,submit_s,num_gpus,duration_s\n1,0,1,10\n")
    bad = sim("--trace", trace, "--cluster", "8xbig")
    assert bad.returncode == 2
    assert "--cluster: expected NODESxGPUS[:TYPE]" in bad.stderr
    unknown = sim("--trace", trace, "--cluster", "1x1", "--param", "nonsense=1")
    assert unknown.returncode == 2
    assert "nonsense" in unknown.stderr and "restart_cost (default 30)" in unknown.stderr
    assert "rounded up to a whole GPU" in sim("--help").stdout


@pytest.mark.skipif(not (TRACES / "philly_jobs.csv").exists(), reason="no shared traces")
def test_whole_philly_trace_replays_under_fifo():
    # Its speed is a benchmark (bench/sched/run.py), not asserted here.
    report = sim_json("--trace", TRACES / "philly_jobs.csv", "--cluster", "64x8")
    assert report["jobs"] + report["skipped"] == 82247
    assert report["finished"] == report["jobs"]
