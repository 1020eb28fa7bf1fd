"""The bundled example trains to at least 95% test accuracy under dlab."""
import re

from conftest import REPO


def test_digits_example_trains(dlabd, cli):
    run = cli("run", REPO / "examples" / "digits" / "job.yaml", "--follow", timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    accuracy = float(re.search(r"final test_acc ([0-9.]+)", run.stdout).group(1))
    assert accuracy >= 0.95, run.stdout
    job = cli.json("ls")["jobs"][0]
    assert job["state"] == "SUCCEEDED"
    checkpoints = list((dlabd.data_dir / "jobs" / str(job["id"]) / "checkpoints").iterdir())
    assert checkpoints, "the example writes a checkpoint each epoch into DLAB_CHECKPOINT_DIR"
