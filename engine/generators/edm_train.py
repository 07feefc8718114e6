"""Train a class-conditional EDM on the base set only (closed set), with checkpoints and resume,
and sample class-balanced images from it.

Training gets a ClosedSetView (engine.generators.guard), which holds the full train split but
hands out only the base indices; asking it for any other image raises.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from engine.generators.checkpoints import CheckpointError, Training
from engine.generators.edm import EDMLoss, EDMPrecond
from engine.generators.presets import GeneratorConfig, PRESET_TRAINING, default_config  # noqa: F401
from engine.generators.guard import ClosedSetView


def build_net(resolution: int, channels: int, num_classes: int, preset: str, sigma_data: float = 0.5) -> EDMPrecond:
    return EDMPrecond(resolution, channels, num_classes, preset, sigma_data)


def train_generator(view: ClosedSetView, num_classes: int, config: GeneratorConfig, out_dir: Path,
                    device: torch.device, on_progress=None, stop_after_images: int | None = None,
                    shard=None) -> dict:
    """Train (or resume) until config.train_images; returns stats. Writes out_dir/ema.safetensors.

    stop_after_images ends this call early (as an interruption would), leaving a checkpoint.
    config.nproc > 1 runs this under torchrun, one process per GPU; each of them calls back in
    here with its `shard` (engine.generators.ddp.Shard) and only rank 0 writes.
    """
    if config.nproc > 1 and shard is None:
        from engine.generators.ddp import launch
        return launch(f"{__name__}:train_generator", view, num_classes, config, out_dir, device, on_progress,
                      stop_after_images)
    writes = shard is None or shard.rank == 0
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "training.pt"
    x_u8, y = view.load_base()
    # (N, H, W, C) uint8 -> (N, C, H, W) in [-1, 1], EDM's data range
    images = torch.from_numpy(x_u8).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
    labels = torch.from_numpy(y).to(device)
    res, ch = images.shape[-1], images.shape[1]
    torch.manual_seed(config.seed)
    net = build_net(res, ch, num_classes, config.preset, config.sigma_data).to(device).train()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    model = net if shard is None else shard.wrap(net)
    opt = torch.optim.Adam(net.parameters(), lr=config.lr, betas=(0.9, 0.999), eps=1e-8)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    t = Training(ckpt_path, "generator", {"net": net, "ema": ema, "opt": opt}, gen, config.train_images,
                 config.batch_size, config.checkpoint_every_images, stop_after_images, writes=writes)
    loss_fn = EDMLoss(config.P_mean, config.P_std, config.sigma_data)
    n = len(images)
    batch = config.batch_size
    while t.running:
        idx = torch.randint(0, n, (batch,), device=device, generator=gen)
        x = images[idx]
        if config.augment_flip:
            flip = torch.rand(batch, device=device, generator=gen) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        for g in opt.param_groups:
            g["lr"] = config.lr * min(t.nimg / max(config.lr_rampup_images, 1e-8), 1)
        loss = loss_fn(model, x, labels[idx], gen)
        loss = loss.mean() if shard is None else shard.mean(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for p in net.parameters():
            if p.grad is not None:
                torch.nan_to_num(p.grad, nan=0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()
        # EMA with EDM's half-life in images and its ramp-up early in training.
        ema_nimg = min(config.ema_halflife_images, (t.nimg + batch) * config.ema_rampup_ratio)  # seen after this step
        ema_beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for p_ema, p_net in zip(ema.parameters(), net.parameters()):
                p_ema.copy_(p_net.detach().lerp(p_ema, ema_beta))
            for b_ema, b_net in zip(ema.buffers(), net.buffers()):
                b_ema.copy_(b_net)
        t.step(batch, loss.item() if shard is None else shard.global_mean(loss), on_progress)
    if writes and t.finished:
        tmp = out_dir / "ema.safetensors.tmp"
        save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, str(tmp))
        os.replace(tmp, out_dir / "ema.safetensors")
    return {**t.stats(), "final_loss": t.loss_ema, "resolution": res, "channels": ch}


def load_ema(out_dir: Path, resolution: int, channels: int, num_classes: int, preset: str,
             device: torch.device) -> EDMPrecond:
    path = out_dir / "ema.safetensors"
    net = build_net(resolution, channels, num_classes, preset)
    try:
        net.load_state_dict(load_file(str(path)))
    except Exception as err:
        raise CheckpointError(f"generator weights {path} are corrupt ({type(err).__name__}); "
                              f"delete {out_dir} to retrain") from err
    return net.to(device).eval().requires_grad_(False)


# Chunk c of sample seed s draws its noise from seed s * stride + c: a prime stride larger than any
# chunk count, so that no two (seed, chunk) pairs share a noise stream.
CHUNK_SEED_STRIDE = 1_000_003


@torch.no_grad()
def sample_balanced(net: EDMPrecond, num_classes: int, start: int, stop: int, seed: int, device: torch.device,
                    chunk: int = 500, num_steps: int = 18) -> tuple[np.ndarray, np.ndarray]:
    """Images start..stop of the class-balanced synthetic stream of this seed, as uint8 NHWC.

    Labels cycle through the classes (0, 1, ..., K-1, 0, ...), so every prefix has an equal
    number of images per class (within one). Each chunk of the stream has its own seed, so image
    i always starts from the same noise, and a stored set is extended by sampling only the new
    indices (a different batch composition can move float rounding by one grey level at most).
    """
    from engine.generators.edm import edm_sampler
    out_x, out_y = [], []
    first_chunk, last_chunk = start // chunk, (stop - 1) // chunk
    for c in range(first_chunk, last_chunk + 1):
        gen = torch.Generator(device=device).manual_seed(seed * CHUNK_SEED_STRIDE + c)
        lo, hi = c * chunk, (c + 1) * chunk
        labels = torch.arange(lo, hi, device=device) % num_classes
        # The whole chunk's latents are drawn (cheap) so that image i always gets the same noise;
        # only the images asked for go through the sampler.
        latents = torch.randn([chunk, net.img_channels, net.img_resolution, net.img_resolution],
                              device=device, generator=gen)
        keep = slice(max(start, lo) - lo, min(stop, hi) - lo)
        x = edm_sampler(net, latents[keep], labels[keep], num_steps=num_steps)
        # (n, C, H, W) in [-1, 1] -> (n, H, W, C) uint8, as datasets and synthetic sets are stored
        x = ((x + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
        out_x.append(x)
        out_y.append(labels[keep].cpu().numpy())
    return np.concatenate(out_x), np.concatenate(out_y).astype(np.int64)
