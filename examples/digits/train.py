#!/usr/bin/env python3
"""Small CNN classifier on scikit-learn's 8x8 digits (offline, CPU), one process or DDP.

What it uses of dlab (through the SDK, `import dlab`; outside dlab it just prints):
  dlab.report(step, loss=...)        the training curve, every batch
  dlab.checkpoint(path, step, ...)   after each epoch (rank 0 writes it), and on SIGTERM
  dlab.resume_from()                 the latest recorded checkpoint, on a restarted attempt
  dlab.should_stop()                 True after SIGTERM (cancel, preemption): save and exit
With --distributed it trains with DistributedDataParallel over gloo, taking RANK, WORLD_SIZE,
MASTER_ADDR and MASTER_PORT from the environment (dlab sets them for every task).
"""
import argparse
import hashlib
import os
import random
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

try:
    import dlab
except ImportError:  # a plain run without the SDK on PYTHONPATH
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                    "python"))
    import dlab

SEED = 0


def log(msg):
    print(msg, flush=True)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 4 * 4, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 8x8 -> 4x4
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def load_data():
    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(
        x, y, test_size=0.2, stratify=y, random_state=SEED)
    return (torch.from_numpy(xtr), torch.from_numpy(ytr),
            torch.from_numpy(xte), torch.from_numpy(yte))


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    return (model(x).argmax(1) == y).float().mean().item()


def weights_sha256(model):
    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(ckpt_dir, state):
    """Writes ckpt_dir/step-NNNNNN/model.pt atomically (temp dir, then rename); returns the dir."""
    os.makedirs(ckpt_dir, exist_ok=True)
    final = os.path.join(ckpt_dir, "step-%06d" % state["step"])
    tmp = tempfile.mkdtemp(prefix=".tmp-step-", dir=ckpt_dir)
    try:
        with open(os.path.join(tmp, "model.pt"), "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):  # e.g. the same step saved again after a restart
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32, help="global batch size")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--distributed", action="store_true",
                    help="DistributedDataParallel over gloo (one process per dlab task)")
    args = ap.parse_args()

    threads = int(os.environ.get("OMP_NUM_THREADS") or 2)
    torch.set_num_threads(max(1, threads))
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    rank, world = 0, 1
    if args.distributed:
        dist.init_process_group("gloo")  # env://: RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
        rank, world = dist.get_rank(), dist.get_world_size()
        log("rank %d of %d (master %s:%s)" % (rank, world, os.environ.get("MASTER_ADDR"),
                                              os.environ.get("MASTER_PORT")))

    xtr, ytr, xte, yte = load_data()
    model = Net()  # same seed on every rank: identical initial weights
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    net = nn.parallel.DistributedDataParallel(model) if args.distributed else model
    ckpt_dir = dlab.checkpoint_dir() or "./checkpoints"

    epoch0, batch0, step = 1, 0, 0
    resume = dlab.resume_from()
    if resume:
        state = torch.load(os.path.join(resume, "model.pt"), map_location="cpu")
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        epoch0, batch0, step = state["epoch"], state["batch"], state["step"]
        log("resumed from step %d (epoch %d, batch %d) of %s" % (step, epoch0, batch0, resume))

    def checkpoint(epoch, batch, **metrics):
        """Rank 0 saves; `batch` batches of `epoch` are done."""
        if rank != 0:
            return
        path = save_checkpoint(ckpt_dir, {"epoch": epoch, "batch": batch, "step": step,
                                          "model": model.state_dict(),
                                          "optimizer": opt.state_dict()})
        dlab.checkpoint(path, step, **metrics)

    # Per-epoch permutation: a resumed run sees the same batches as an uninterrupted one.
    gen = torch.Generator()
    n = len(xtr)
    for epoch in range(epoch0, args.epochs + 1):
        net.train()
        gen.manual_seed(SEED * 1000 + epoch)
        perm = torch.randperm(n, generator=gen)
        batches = [perm[i:i + args.batch_size] for i in range(0, n, args.batch_size)]
        total = 0.0
        for b in range(batch0 if epoch == epoch0 else 0, len(batches)):
            if dlab.should_stop():  # SIGTERM: save where we are, then leave
                checkpoint(epoch, b)
                log("stopping at step %d on request" % step)
                return 0
            idx = batches[b][rank::world]  # this rank's share of the global batch
            opt.zero_grad()
            loss = F.cross_entropy(net(xtr[idx]), ytr[idx])
            loss.backward()  # DDP averages the gradients over the ranks
            opt.step()
            step += 1
            total += loss.item() * len(idx)
            dlab.report(step, loss=loss.item())
        train_acc, test_acc = accuracy(model, xtr, ytr), accuracy(model, xte, yte)
        dlab.report(step, train_acc=train_acc, test_acc=test_acc, epoch=epoch)
        log("epoch %d/%d step %d loss %.4f train_acc %.4f test_acc %.4f" % (
            epoch, args.epochs, step, total * world / n, train_acc, test_acc))
        checkpoint(epoch + 1, 0, test_acc=test_acc)

    log("final test_acc %.4f" % accuracy(model, xte, yte))
    log("weights sha256 %s" % weights_sha256(model))
    if args.distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
