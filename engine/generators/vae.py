"""The VAE under DiT, trained from scratch on the base set only (the paper retrains it "to enforce a
strict closed-set"), with checkpoints and exact resume.

The paper does not give its VAE recipe, and Stable Diffusion's (L1 + LPIPS + patch GAN) needs
downloaded VGG weights for LPIPS. Ours: diffusers' AutoencoderKL, loss = per-image sum of
|x - D(z)| + kl_weight * KL(q(z|x) || N(0, I)), z sampled from the posterior, AdamW. Without a
perceptual or adversarial term reconstructions are blurrier than SD's; docs/generators.md reports
the reconstruction error on held-out real images.

After training, the latents of the base set are standardised (shift = mean, scale = 1 / std), the
role of Stable Diffusion's 0.18215 in DiT: the diffusion model sees unit-variance latents.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from diffusers import AutoencoderKL
from safetensors.torch import load_file, save_file

from engine.generators.checkpoints import CheckpointError, Training
from engine.generators.guard import ClosedSetView

# Architectures. `tiny` halves the resolution once (8x8 digits -> 4x4x4 latents); `f8` is Stable
# Diffusion's autoencoder (4 latent channels, 1/8 resolution: 224 -> 28x28x4), as under DiT-XL/2.
PRESETS = {
    "tiny": dict(block_out_channels=(16, 32), layers_per_block=1, latent_channels=4, norm_num_groups=8,
                 mid_block_add_attention=False),
    "f4": dict(block_out_channels=(64, 128, 256), layers_per_block=2, latent_channels=4, norm_num_groups=32),
    "f8": dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4, norm_num_groups=32),
}


@dataclass(frozen=True)
class VAEConfig:
    preset: str = "tiny"
    seed: int = 0
    train_images: int = 10_000
    batch_size: int = 64
    lr: float = 1e-3
    kl_weight: float = 1e-4
    checkpoint_every_images: int = 20_000

    def to_dict(self) -> dict:
        return asdict(self)


PRESET_TRAINING = {
    # tiny, on a 200-image digits base (measured): 10k images (~30 s on 2 busy CPU cores) give a
    # held-out mean absolute error of 17 grey levels, and a digits classifier reads 94 % of
    # reconstructed test digits correctly.
    "tiny": dict(train_images=10_000, batch_size=64, lr=1e-3, checkpoint_every_images=5_000),
    "f4": dict(train_images=2_000_000, batch_size=32, lr=1e-4, checkpoint_every_images=200_000),
    "f8": dict(train_images=4_000_000, batch_size=32, lr=1e-4, checkpoint_every_images=200_000),
}


def default_vae_config(preset: str, seed: int = 0, **overrides) -> VAEConfig:
    if preset not in PRESETS:
        raise ValueError(f"unknown VAE preset {preset!r}; valid: {', '.join(PRESETS)}")
    return VAEConfig(preset=preset, seed=seed, **{**PRESET_TRAINING[preset], **overrides})


def downsampling(preset: str) -> int:
    return 2 ** (len(PRESETS[preset]["block_out_channels"]) - 1)


def build_vae(channels: int, preset: str) -> AutoencoderKL:
    p = dict(PRESETS[preset])
    n = len(p["block_out_channels"])
    return AutoencoderKL(in_channels=channels, out_channels=channels, down_block_types=("DownEncoderBlock2D",) * n,
                         up_block_types=("UpDecoderBlock2D",) * n, **p)


def to_unit(x_u8: np.ndarray, device) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [-1, 1]."""
    return torch.from_numpy(x_u8).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.float() + 1) * 127.5).clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def vae_loss(vae: AutoencoderKL, x: torch.Tensor, kl_weight: float, generator: torch.Generator | None):
    posterior = vae.encode(x).latent_dist
    z = posterior.sample(generator=generator)
    recon = vae.decode(z).sample
    rec = (recon.float() - x).abs().flatten(1).sum(1)
    kl = posterior.kl()
    return (rec + kl_weight * kl).mean(), rec.mean() / x[0].numel()


def train_vae(view: ClosedSetView, config: VAEConfig, out_dir: Path, device: torch.device,
              on_progress=None, stop_after_images: int | None = None) -> dict:
    """Train (or resume) until config.train_images; writes out_dir/vae.safetensors and vae.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "training.pt"
    x_u8, _ = view.load_base()
    images = to_unit(x_u8, device)
    res, ch = images.shape[-1], images.shape[1]
    f = downsampling(config.preset)
    if res % f:
        raise ValueError(f"image size {res} is not a multiple of VAE-{config.preset}'s downsampling {f}; "
                         f"resize the images (--size)")
    torch.manual_seed(config.seed)
    vae = build_vae(ch, config.preset).to(device).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=config.lr, weight_decay=0.0)
    gen = torch.Generator(device=device).manual_seed(config.seed)
    t = Training(ckpt_path, "VAE", {"vae": vae, "opt": opt}, gen, config.train_images, config.batch_size,
                 config.checkpoint_every_images, stop_after_images, smoothing=0.95)
    autocast = device.type == "cuda"
    while t.running:
        idx = torch.randint(0, len(images), (config.batch_size,), device=device, generator=gen)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss, l1 = vae_loss(vae, images[idx], config.kl_weight, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        t.step(config.batch_size, l1.item(), on_progress)  # progress and curve show the L1 a reader can judge
    stats = {**t.stats(), "final_l1": t.loss_ema, "resolution": res, "channels": ch}
    if stats["finished"]:
        vae.eval()
        shift, scale = latent_standardisation(vae, images)
        tmp = out_dir / "vae.safetensors.tmp"
        save_file({k: v.contiguous() for k, v in vae.state_dict().items()}, str(tmp))
        os.replace(tmp, out_dir / "vae.safetensors")
        meta = {"config": config.to_dict(), "shift": shift, "scale": scale, "resolution": res, "channels": ch,
                "latent_size": res // downsampling(config.preset),
                "latent_channels": PRESETS[config.preset]["latent_channels"],
                **{k: stats[k] for k in ("nimg", "train_seconds", "final_l1", "images_per_second")}}
        tmp = out_dir / "vae.json.tmp"
        tmp.write_text(json.dumps(meta, indent=1))
        os.replace(tmp, out_dir / "vae.json")
        stats.update(shift=shift, scale=scale)
    return stats


@torch.no_grad()
def latent_standardisation(vae: AutoencoderKL, images: torch.Tensor) -> tuple[float, float]:
    """Mean and 1/std of the posterior means over the base set: z_unit = (z - shift) * scale."""
    z = torch.cat([vae.encode(images[i:i + 256]).latent_dist.mean.float() for i in range(0, len(images), 256)])
    return float(z.mean()), float(1.0 / z.std())


class LatentCodec:
    """A trained VAE with its standardisation: images <-> unit-variance latents."""

    def __init__(self, out_dir: Path, device: torch.device):
        try:
            meta = json.loads((out_dir / "vae.json").read_text())
            vae = build_vae(meta["channels"], meta["config"]["preset"])
            vae.load_state_dict(load_file(str(out_dir / "vae.safetensors")))
        except Exception as err:
            raise CheckpointError(f"VAE in {out_dir} is missing or corrupt ({type(err).__name__}); "
                                  f"delete {out_dir} to retrain") from err
        self.meta, self.shift, self.scale = meta, float(meta["shift"]), float(meta["scale"])
        self.vae = vae.to(device).eval().requires_grad_(False)
        self.latent_size, self.latent_channels = int(meta["latent_size"]), int(meta["latent_channels"])

    @torch.no_grad()
    def posterior(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Unit-scaled posterior mean and std of each image (DiT samples z from it every step)."""
        means, stds = [], []
        for i in range(0, len(images), 256):
            d = self.vae.encode(images[i:i + 256]).latent_dist
            means.append((d.mean.float() - self.shift) * self.scale)
            stds.append(d.std.float() * self.scale)
        return torch.cat(means), torch.cat(stds)

    @torch.no_grad()
    def decode(self, z_unit: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.vae.decode(z_unit[i:i + 256] / self.scale + self.shift).sample.float()
                          for i in range(0, len(z_unit), 256)])

    @torch.no_grad()
    def reconstruction_error(self, x_u8: np.ndarray) -> dict:
        """Mean absolute error and PSNR of encode-decode (posterior mean) on uint8 images, in grey levels."""
        device = next(self.vae.parameters()).device
        x = to_unit(x_u8, device)
        mean, _ = self.posterior(x)
        recon = to_uint8(self.decode(mean)).astype(np.float64)
        err = recon - x_u8.astype(np.float64)
        mse = float((err ** 2).mean())
        return {"mae_grey_levels": float(np.abs(err).mean()), "psnr_db": float(10 * np.log10(255 ** 2 / max(mse, 1e-12))),
                "n_images": int(len(x_u8))}

