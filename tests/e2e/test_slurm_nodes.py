"""A gang across the nodes of a Slurm cluster: two slurmd, each in its own network namespace
(scripts/slurm-cluster.sh --nodes 2: hosts n1 and n2, 2 CPUs and one fake a100 each). A job of
two 2-CPU tasks fits no single node, so dlab admits it against the cluster and Slurm places one
task on each node; each task is a job step of its own, and the environment contract comes from
where Slurm put them: MASTER_ADDR is rank 0's node, NODE_RANK and the hostfile name both nodes,
and a gloo all-reduce between the two nodes goes through."""
import re

import pytest

from conftest import Cli, Dlabd, private_slurm_cluster, write_job

CONFIG = """
backend: {type: slurm, partition: debug, poll_interval: 200ms, queue_ahead: 0}
kill_grace: 2s
"""

ALLREDUCE = r'''
import os, socket
import torch
import torch.distributed as dist
dist.init_process_group("gloo")  # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
t = torch.tensor([float(dist.get_rank() + 1)])
dist.all_reduce(t)
e = os.environ
print(f"rank {e['RANK']} on {socket.gethostname()} master {e['MASTER_ADDR']} "
      f"node_rank {e['NODE_RANK']} local_rank {e['LOCAL_RANK']} "
      f"gpus {e.get('CUDA_VISIBLE_DEVICES')} sum {t.item():g}", flush=True)
print("hostfile " + open(e["DLAB_HOSTFILE"]).read().replace("\n", ";"), flush=True)
dist.destroy_process_group()
'''


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    with private_slurm_cluster(tmp_path_factory.mktemp("slurm2"), "--nodes", "2", "--cpus", "2",
                               "--gpus", "1", "--gpu-type", "a100", ports_from=31800) as cluster:
        yield cluster


@pytest.fixture
def dlabd(two_nodes, tmp_path):
    server = Dlabd(tmp_path, CONFIG).start()
    yield server
    server.stop()


def test_a_gang_too_big_for_one_node_runs_across_two(tmp_path, dlabd):
    cli = Cli(dlabd)
    spec = write_job(tmp_path / "spans", """
name: spans
command: [/usr/bin/python3, allreduce.py]
tasks: 2
resources: {cpus: 2, memory: 512Mi, gpus: 1}
""", {"allreduce.py": ALLREDUCE})
    run = cli("run", spec, "--follow", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = {int(m.group(1)): m.group(0)
             for m in re.finditer(r"\[rank (\d)\] rank \d on .*", run.stdout)}
    assert sorted(lines) == [0, 1], run.stdout
    hosts = set()
    for rank, line in lines.items():
        m = re.search(r"rank (\d) on (\S+) master (\S+) node_rank (\d) local_rank (\d) "
                      r"gpus (\S+) sum (\S+)", line)
        assert m, line
        assert int(m.group(1)) == rank
        hosts.add(m.group(2))
        assert m.group(3) == "n1", "MASTER_ADDR is the node of rank 0"
        assert m.group(4) == str(rank) and m.group(5) == "0", line
        assert m.group(6) == "0", "each step sees its node's one GPU"
        assert m.group(7) == "3", "the all-reduce summed 1 + 2 across the nodes"
    assert hosts == {"n1", "n2"}, lines
    assert "[rank 0] hostfile n1 slots=1;n2 slots=1;" in run.stdout
    assert "[dlab] tasks run as Slurm steps of job" in run.stdout


def test_a_gang_that_fits_no_way_on_the_nodes_is_refused_at_submit(tmp_path, dlabd):
    spec = write_job(tmp_path / "toobig", """
name: toobig
command: [/bin/true]
tasks: 3
resources: {cpus: 2, memory: 512Mi}
""")
    run = Cli(dlabd)("run", spec, check=False)
    assert run.returncode != 0
    assert "tasks: the 3 tasks do not fit on the cluster's 2 nodes together" in run.stderr
