"""Train a class-conditional DiT on the latents of a VAE trained on the base set only, with
checkpoints and exact resume, and sample class-balanced images with classifier-free guidance.

Both stages read images through a ClosedSetView (engine.generators.guard). The VAE is cached per
base under artifacts/vaes/<vae id>, the DiT under artifacts/generators/<generator id>; the DiT's id
includes the VAE's, so a changed VAE recipe retrains the DiT on top of it.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_model, save_model

from engine.generators.checkpoints import CheckpointError, Training
from engine.generators.dit import PRESETS, SAMPLERS, DiffusionLoss, DiT, image_generators, sample_latents
from engine.generators.guard import ClosedSetView
from engine.generators.vae import LatentCodec, default_vae_config, to_uint8, to_unit, train_vae


@dataclass(frozen=True)
class DiTConfig:
    preset: str = "tiny"
    seed: int = 0
    vae: str = "tiny"                  # VAE preset (engine.generators.vae.PRESETS)
    vae_train_images: int = 10_000
    train_images: int = 102_400_000    # DiT: 400k steps at batch 256
    batch_size: int = 256
    lr: float = 1e-4                   # DiT: AdamW, constant 1e-4, no weight decay
    ema_decay: float = 0.9999
    label_dropout: float = 0.1
    checkpoint_every_images: int = 2_560_000
    grad_checkpointing: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


# DiT's recipe for every DiT-sized preset; the VAE is Stable Diffusion's f8 architecture, as under
# DiT-XL/2. `tiny` is CPU-sized for 8x8 digits and departs from DiT where a minute of CPU
# demands it: lr 2e-3 (1e-4 barely moves in ~470 steps), EMA 0.99 (0.9999 averages over 10,000
# steps, far longer than the whole run), batch 128, and see dit.CLASS_EMBED_STD. Measured on a
# 200-image digits base: after 30k images a digits classifier recognised 44 % of CFG-4 samples,
# after 60k images 89 % (50 DDIM steps) and 70 % without guidance (250 DDPM steps).
PRESET_TRAINING = {
    "tiny": dict(vae="tiny", vae_train_images=10_000, train_images=60_000, batch_size=128, lr=2e-3,
                 ema_decay=0.99, checkpoint_every_images=20_000),
    **{p: dict(vae="f8", vae_train_images=4_000_000) for p in ("S/2", "B/2", "L/2")},
    "XL/2": dict(vae="f8", vae_train_images=4_000_000, grad_checkpointing=True),
}
SAMPLING_DEFAULTS = {"cfg_scale": 4.0, "sampling_steps": 250, "sampler": "ddpm"}  # the paper: CFG 4, 250 steps


def default_config(preset: str, seed: int = 0, **overrides) -> DiTConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown DiT preset {preset!r}; valid: {', '.join(PRESETS)}")
    return DiTConfig(preset=preset, seed=seed, **{**PRESET_TRAINING[preset], **overrides})


def vae_config_for(config: DiTConfig):
    return default_vae_config(config.vae, config.seed, train_images=config.vae_train_images)


def train_dit(view: ClosedSetView, codec: LatentCodec, num_classes: int, config: DiTConfig, out_dir: Path,
              device: torch.device, on_progress=None, stop_after_images: int | None = None) -> dict:
    """Train (or resume) until config.train_images; writes out_dir/ema.safetensors when done.

    stop_after_images ends this call early (as an interruption would), leaving a checkpoint.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "training.pt"
    x_u8, y = view.load_base()
    z_mean, z_std = codec.posterior(to_unit(x_u8, device))
    labels = torch.from_numpy(y).to(device)
    torch.manual_seed(config.seed)
    net = DiT(codec.latent_size, codec.latent_channels, num_classes, config.preset).to(device).train()
    if config.grad_checkpointing:
        net.model.enable_gradient_checkpointing()
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    t = Training(ckpt_path, "generator", {"net": net, "ema": ema, "opt": opt}, gen, config.train_images,
                 config.batch_size, config.checkpoint_every_images, stop_after_images)
    loss_fn = DiffusionLoss(config.label_dropout)
    autocast = device.type == "cuda"
    while t.running:
        idx = torch.randint(0, len(labels), (config.batch_size,), device=device, generator=gen)
        # DiT samples the VAE posterior afresh at every step (latent_dist.sample()).
        z = z_mean[idx] + z_std[idx] * torch.randn(z_mean[idx].shape, device=device, generator=gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(net, z, labels[idx], gen).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for p_ema, p_net in zip(ema.parameters(), net.parameters()):
                p_ema.lerp_(p_net.detach(), 1 - config.ema_decay)
        t.step(config.batch_size, loss.item(), on_progress)
    if t.finished:
        tmp = out_dir / "ema.safetensors.tmp"
        save_model(ema, str(tmp))  # save_model: the shared embedder is stored once
        os.replace(tmp, out_dir / "ema.safetensors")
    return {**t.stats(), "final_loss": t.loss_ema,
            "latent_size": codec.latent_size, "latent_channels": codec.latent_channels}


def load_ema(out_dir: Path, latent_size: int, latent_channels: int, num_classes: int, preset: str,
             device: torch.device) -> DiT:
    path = out_dir / "ema.safetensors"
    net = DiT(latent_size, latent_channels, num_classes, preset)
    try:
        load_model(net, str(path))
    except Exception as err:
        raise CheckpointError(f"generator weights {path} are corrupt ({type(err).__name__}); "
                              f"delete {out_dir} to retrain") from err
    return net.to(device).eval().requires_grad_(False)


@torch.no_grad()
def sample_balanced(net: DiT, codec: LatentCodec, num_classes: int, start: int, stop: int, seed: int,
                    device: torch.device, cfg_scale: float = 4.0, num_steps: int = 250, sampler: str = "ddpm",
                    batch: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Images start..stop of the class-balanced synthetic stream of this seed, as uint8 NHWC.

    Labels cycle through the classes, so every prefix is balanced (within one image). Every image
    has its own noise generator, so image i is the same whichever batch it is sampled in, and a
    stored set is extended by sampling only the new indices.
    """
    out_x, out_y = [], []
    autocast = device.type == "cuda"
    for lo in range(start, stop, batch):
        hi = min(stop, lo + batch)
        labels = torch.arange(lo, hi, device=device) % num_classes
        z = sample_latents(net, labels, image_generators(seed, lo, hi, device), cfg_scale, num_steps, sampler,
                           autocast)
        out_x.append(to_uint8(codec.decode(z)))
        out_y.append(labels.cpu().numpy())
    return np.concatenate(out_x), np.concatenate(out_y).astype(np.int64)


def _hash(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


class DiTKind:
    """What closed_set.SyntheticSource needs from a DiT: ids, training (VAE first), sampling."""

    def __init__(self, preset: str, options: dict, ds, artifacts_root: Path):
        num_classes = ds.num_classes
        opts = dict(options)
        self.sampling = {k: type(v)(opts.pop(k, v)) for k, v in SAMPLING_DEFAULTS.items()}
        if self.sampling["sampler"] not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampling['sampler']!r}; valid: {', '.join(SAMPLERS)}")
        seed = int(opts.pop("seed", 0))
        base = default_config(preset, seed)
        self.config = replace(base, **{k: _parse(getattr(base, k), v) for k, v in opts.items()})
        self.vae_config = vae_config_for(self.config)
        self.num_classes, self.root = num_classes, artifacts_root

    def identity(self, base_ident: dict) -> tuple[str, str]:
        """(VAE id, generator id) from the base's identity (data, n_base, indices hash)."""
        vae_id = "vae-" + _hash({**base_ident, "vae_config": self.vae_config.to_dict()})
        self.vae_dir = self.root / "vaes" / vae_id
        gen_id = "dit-" + _hash({**base_ident, "vae_id": vae_id, "config": self.config.to_dict()})
        return vae_id, gen_id

    def sampling_tag(self) -> str:
        s = self.sampling
        return f"cfg{s['cfg_scale']:g}-{s['sampler']}{s['sampling_steps']}"

    def train(self, view: ClosedSetView, out_dir: Path, device, on_progress=None) -> dict:
        if not (self.vae_dir / "vae.json").exists():
            train_vae(view, self.vae_config, self.vae_dir, device, on_progress)
        codec = LatentCodec(self.vae_dir, device)
        stats = train_dit(view, codec, self.num_classes, self.config, out_dir, device, on_progress)
        vae_meta = {k: codec.meta[k] for k in ("train_seconds", "images_per_second", "final_l1", "scale", "shift")}
        return {**stats, "vae": {"vae_id": self.vae_dir.name, **vae_meta},
                "train_seconds_total": stats["train_seconds"] + codec.meta["train_seconds"]}

    def sample(self, out_dir: Path, start: int, stop: int, seed: int, device) -> tuple[np.ndarray, np.ndarray]:
        codec = LatentCodec(self.vae_dir, device)
        net = load_ema(out_dir, codec.latent_size, codec.latent_channels, self.num_classes, self.config.preset, device)
        s = self.sampling
        return sample_balanced(net, codec, self.num_classes, start, stop, seed, device, s["cfg_scale"],
                               s["sampling_steps"], s["sampler"])

    def reconstruction_error(self, images_u8: np.ndarray, device) -> dict:
        return LatentCodec(self.vae_dir, device).reconstruction_error(images_u8)


def _parse(current, raw):
    if isinstance(current, bool):
        if str(raw).lower() not in ("true", "false", "1", "0"):
            raise ValueError(f"generator option value {raw!r} should be true or false")
        return str(raw).lower() in ("true", "1")
    return type(current)(raw)
