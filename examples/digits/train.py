#!/usr/bin/env python3
"""Small CNN classifier on scikit-learn's 8x8 digits (offline, CPU).

Env contract (dlab):
  DLAB_CHECKPOINT_DIR  where to write epoch-NNN/model.pt each epoch (default ./checkpoints)
  DLAB_RESUME_FROM     a checkpoint directory (epoch-NNN, or the directory holding them,
                       or a model.pt file) to resume from
  OMP_NUM_THREADS      torch intra-op threads (default 2)
"""
import argparse
import os
import random
import shutil
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

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


def find_checkpoint(path):
    """Return the model.pt to resume from, or None."""
    if os.path.isfile(path):
        return path
    if not os.path.isdir(path):
        return None
    direct = os.path.join(path, "model.pt")
    if os.path.isfile(direct):
        return direct
    epochs = sorted(d for d in os.listdir(path)
                    if d.startswith("epoch-")
                    and os.path.isfile(os.path.join(path, d, "model.pt")))
    return os.path.join(path, epochs[-1], "model.pt") if epochs else None


def save_checkpoint(ckpt_dir, epoch, model, opt):
    """Write ckpt_dir/epoch-NNN/model.pt atomically: temp dir, then rename."""
    os.makedirs(ckpt_dir, exist_ok=True)
    final = os.path.join(ckpt_dir, "epoch-%03d" % epoch)
    tmp = tempfile.mkdtemp(prefix=".tmp-epoch-%03d-" % epoch, dir=ckpt_dir)
    try:
        path = os.path.join(tmp, "model.pt")
        with open(path, "wb") as f:
            torch.save({"epoch": epoch, "model": model.state_dict(),
                        "optimizer": opt.state_dict()}, f)
            f.flush()
            os.fsync(f.fileno())
        if os.path.exists(final):  # e.g. re-running an epoch after a restart
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args()

    threads = int(os.environ.get("OMP_NUM_THREADS") or 2)
    torch.set_num_threads(max(1, threads))
    random.seed(SEED)
    np.random.seed(SEED)
    torch.manual_seed(SEED)

    xtr, ytr, xte, yte = load_data()
    model = Net()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    ckpt_dir = os.environ.get("DLAB_CHECKPOINT_DIR") or "./checkpoints"

    start = 0
    resume = os.environ.get("DLAB_RESUME_FROM")
    if resume:
        path = find_checkpoint(resume)
        if path is None:
            log("warning: DLAB_RESUME_FROM=%s has no checkpoint; starting fresh" % resume)
        else:
            state = torch.load(path, map_location="cpu")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start = int(state["epoch"])
            log("resumed from %s at epoch %d" % (os.path.dirname(path), start))

    # Per-epoch generator so a resumed run shuffles like an uninterrupted one.
    gen = torch.Generator()
    n = len(xtr)
    for epoch in range(start + 1, args.epochs + 1):
        model.train()
        gen.manual_seed(SEED * 1000 + epoch)
        perm = torch.randperm(n, generator=gen)
        total = 0.0
        for i in range(0, n, args.batch_size):
            idx = perm[i:i + args.batch_size]
            opt.zero_grad()
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        log("epoch %d/%d loss %.4f train_acc %.4f test_acc %.4f" % (
            epoch, args.epochs, total / n,
            accuracy(model, xtr, ytr), accuracy(model, xte, yte)))
        save_checkpoint(ckpt_dir, epoch, model, opt)

    log("final test_acc %.4f" % accuracy(model, xte, yte))
    return 0


if __name__ == "__main__":
    sys.exit(main())
