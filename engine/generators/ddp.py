"""One EDM generator trained by several processes (one per GPU) with DistributedDataParallel.

`--generator-option nproc=K` makes engine.generators.edm_train.train_generator call launch(),
which runs this module under torchrun and, in every rank, the trainer it names (NCCL on GPUs, gloo on the CPU). Every rank runs the same
training loop with a Shard:
- the global batch (config.batch_size) is drawn on every rank from the same seeded generator,
  exactly as one process draws it (indices, noise levels, noise), and each rank evaluates the
  network on its own slice only; DDP averages the gradients, which is the gradient of the
  global batch's mean loss. The random streams stay in step on every rank, so the result is
  the one-process generator up to float summation order, and rank 0's checkpoint (with its
  generator state) resumes every rank;
- rank 0 alone writes the checkpoint and the EMA weights.
Presets with dropout (small, cifar) draw their dropout masks per rank, so there the match with
one process is statistical, not numerical.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist


class ShardNet:
    """The denoiser as seen by the loss: the whole global batch goes in, only this rank's slice
    goes through the network; the other entries pass through detached and are never averaged."""

    def __init__(self, ddp, shard):
        self.ddp, self.shard = ddp, shard

    def __call__(self, x, sigma, labels):
        lo, hi = self.shard.bounds(len(x))
        out = self.ddp(x[lo:hi], sigma.reshape(-1)[lo:hi], labels[lo:hi])
        return torch.cat([x[:lo].detach(), out, x[hi:].detach()])


class Shard:
    def __init__(self, rank: int, world: int, device: torch.device):
        self.rank, self.world, self.device = rank, world, device
        self.net = None

    def bounds(self, batch: int) -> tuple[int, int]:
        per = batch // self.world
        return self.rank * per, (self.rank + 1) * per

    def wrap(self, net):
        from torch.nn.parallel import DistributedDataParallel
        self.net = net
        # Dropout masks come from the global RNG: different per rank, like different samples.
        torch.manual_seed(torch.initial_seed() + 1_000_003 * self.rank)
        ddp = DistributedDataParallel(net, device_ids=[self.device] if self.device.type == "cuda" else None)
        return ShardNet(ddp, self)

    def mean(self, loss: torch.Tensor) -> torch.Tensor:
        """This rank's part of the global batch's mean loss (DDP averages the gradients)."""
        lo, hi = self.bounds(len(loss))
        return loss[lo:hi].mean()

    def global_mean(self, loss: torch.Tensor) -> float:
        value = loss.detach().clone()
        dist.all_reduce(value)
        return value.item() / self.world

    def weight_spread(self) -> float:
        """Largest difference between this rank's weights and rank 0's, over all ranks."""
        flat = torch.nn.utils.parameters_to_vector(self.net.parameters()).detach()
        ref = flat.clone()
        dist.broadcast(ref, 0)
        spread = (flat - ref).abs().max()
        dist.all_reduce(spread, op=dist.ReduceOp.MAX)
        return spread.item()


def launch(trainer: str, view, num_classes: int, config, out_dir: Path, device: torch.device, on_progress=None,
           stop_after_images: int | None = None) -> dict:
    """Run `trainer` ("module:function", e.g. engine.generators.edm_train:train_generator) on
    config.nproc processes under torchrun; returns rank 0's stats. Each rank imports the trainer by
    name, as torchrun imports this module: the launcher depends on no trainer."""
    k = config.nproc
    if config.batch_size % k:
        raise ValueError(f"generator batch_size {config.batch_size} does not split over nproc={k} processes")
    if device.type == "cuda" and torch.cuda.device_count() < k:
        raise ValueError(f"nproc={k} asks for {k} GPUs, but {torch.cuda.device_count()} are visible")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ddp-", dir=out_dir) as work:
        x, y = view.load_base()  # the base set only: the ranks never see another image
        np.savez(Path(work) / "base.npz", x=x, y=y)
        (Path(work) / "job.json").write_text(json.dumps({
            "trainer": trainer, "config": {**config.to_dict(), "nproc": k}, "num_classes": num_classes,
            "out_dir": str(out_dir),
            "device": device.type, "stop_after_images": stop_after_images}))
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={k}",
               "-m", "engine.generators.ddp", work]
        with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
            for line in proc.stdout:
                parts = line.split()
                if len(parts) == 4 and parts[0] == "progress" and on_progress is not None:
                    on_progress(int(parts[1]), int(parts[2]), float(parts[3]))
            rc = proc.wait()
        if rc:
            raise RuntimeError(f"DDP generator training on {k} processes exited with status {rc} (see its stderr)")
        return json.loads((Path(work) / "stats.json").read_text())


def main(work: str) -> None:
    import importlib

    from engine.generators.guard import ClosedSetView
    from engine.generators.presets import GeneratorConfig
    job = json.loads((Path(work) / "job.json").read_text())
    module, name = job["trainer"].split(":")
    train_generator = getattr(importlib.import_module(module), name)
    cuda = job["device"] == "cuda"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group("nccl" if cuda else "gloo")
    try:
        rank, world = dist.get_rank(), dist.get_world_size()
        device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
        with np.load(Path(work) / "base.npz") as npz:
            x, y = npz["x"], npz["y"]
        view = ClosedSetView(x, y, np.arange(len(x)))
        shard = Shard(rank, world, device)

        def on_progress(nimg, total, loss):
            if rank == 0:
                print(f"progress {nimg} {total} {loss!r}", flush=True)

        stats = train_generator(view, job["num_classes"], GeneratorConfig(**job["config"]), Path(job["out_dir"]),
                                device, on_progress, job["stop_after_images"], shard=shard)
        spread = shard.weight_spread()
        if rank == 0:
            stats.update(nproc=world, rank_weight_spread=spread)
            (Path(work) / "stats.json").write_text(json.dumps(stats))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="One rank of a DDP generator training (started by launch()).")
    parser.add_argument("work")
    main(parser.parse_args().work)
