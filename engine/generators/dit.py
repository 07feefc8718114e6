"""DiT (Peebles & Xie 2023, "Scalable Diffusion Models with Transformers") on VAE latents.

The network is diffusers' DiTTransformer2DModel, changed in three ways to be DiT as trained from
scratch (diffusers builds it for loading converted weights, not for training):
- one timestep and one class embedder shared by every block, as in DiT (diffusers gives each
  block its own copy; sharing also gives XL/2 DiT's 675 M parameters);
- DiT's initialisation (`initialize_weights`): xavier-uniform linears, N(0, 0.02) embeddings, and
  adaLN-Zero: every block's modulation and the final layer start at zero, so a fresh DiT predicts
  exactly zero noise and each block starts as the identity;
- label dropout for classifier-free guidance is done once per image by the trainer with its own
  generator (diffusers drops labels inside every block independently, from the global RNG); the
  null class is the extra embedding row `num_classes`.

Diffusion follows DiT: 1,000-step linear beta schedule (1e-4 .. 0.02), epsilon prediction with
the simple MSE loss. We fix the variance (DiT learns it with the hybrid VLB loss) and sample with
the DDPM posterior variance ("fixed small"); the sampling loop with classifier-free guidance is
ours, because diffusers' DiTPipeline assumes ImageNet's 1,000 classes.
"""
from __future__ import annotations

import torch
import torch.nn as nn
from diffusers import DDIMScheduler, DDPMScheduler, DiTTransformer2DModel, DPMSolverMultistepScheduler
from diffusers.utils.torch_utils import randn_tensor

# DiT's model table (Tab. 1 of the DiT paper), plus a CPU-sized `tiny` for digits-sized latents.
PRESETS = {
    "tiny": dict(num_layers=3, num_attention_heads=2, attention_head_dim=32, patch_size=1),
    "S/2": dict(num_layers=12, num_attention_heads=6, attention_head_dim=64, patch_size=2),
    "B/2": dict(num_layers=12, num_attention_heads=12, attention_head_dim=64, patch_size=2),
    "L/2": dict(num_layers=24, num_attention_heads=16, attention_head_dim=64, patch_size=2),
    "XL/2": dict(num_layers=28, num_attention_heads=16, attention_head_dim=72, patch_size=2),
}
# DiT initialises the class embedding with N(0, 0.02^2). `tiny` trains for a few hundred steps
# only, in which so small an embedding barely moves and the samples ignore their class (measured:
# 12 % agreement on digits after 313 steps); it starts at N(0, 1), the scale diffusers' UNet
# (under our EDM) gives its class embedding.
CLASS_EMBED_STD = {"tiny": 1.0}
NUM_TRAIN_TIMESTEPS = 1000
SAMPLERS = ("ddpm", "ddim", "dpm")


class DiT(nn.Module):
    """eps(x_t; t, class) with DiT's architecture and initialisation; class `num_classes` is null."""

    def __init__(self, latent_size: int, latent_channels: int, num_classes: int, preset: str = "tiny"):
        super().__init__()
        if preset not in PRESETS:
            raise ValueError(f"unknown DiT preset {preset!r}; valid: {', '.join(PRESETS)}")
        p = PRESETS[preset]
        if latent_size % p["patch_size"]:
            raise ValueError(f"latent size {latent_size} is not a multiple of DiT-{preset}'s patch size "
                             f"{p['patch_size']}; resize the images (--size)")
        self.latent_size, self.latent_channels, self.num_classes = latent_size, latent_channels, num_classes
        self.model = DiTTransformer2DModel(sample_size=latent_size, in_channels=latent_channels,
                                           out_channels=latent_channels, num_embeds_ada_norm=num_classes, **p)
        blocks = self.model.transformer_blocks
        for block in blocks[1:]:
            block.norm1.emb = blocks[0].norm1.emb  # DiT: one t_embedder and one y_embedder
        blocks[0].norm1.emb.class_embedder.dropout_prob = 0.0  # the trainer drops labels (see module doc)
        self.initialize_weights(CLASS_EMBED_STD.get(preset, 0.02))

    @property
    def null_class(self) -> int:
        return self.num_classes

    def initialize_weights(self, class_embed_std: float = 0.02) -> None:
        """DiT's `initialize_weights`, on diffusers' module names."""
        m = self.model

        def basic(module):
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        m.apply(basic)
        w = m.pos_embed.proj.weight.data
        nn.init.xavier_uniform_(w.view([w.shape[0], -1]))
        nn.init.zeros_(m.pos_embed.proj.bias)
        emb = m.transformer_blocks[0].norm1.emb
        nn.init.normal_(emb.class_embedder.embedding_table.weight, std=class_embed_std)
        nn.init.normal_(emb.timestep_embedder.linear_1.weight, std=0.02)
        nn.init.normal_(emb.timestep_embedder.linear_2.weight, std=0.02)
        for block in m.transformer_blocks:  # adaLN-Zero
            nn.init.zeros_(block.norm1.linear.weight)
            nn.init.zeros_(block.norm1.linear.bias)
        for layer in (m.proj_out_1, m.proj_out_2):  # the final layer's modulation and projection
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        return self.model(x, timestep=t, class_labels=class_labels).sample


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())  # shared parameters count once


def make_scheduler(kind: str = "ddpm"):
    """DiT's diffusion (linear betas 1e-4..0.02, 1,000 steps) as a diffusers scheduler."""
    common = dict(num_train_timesteps=NUM_TRAIN_TIMESTEPS, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
                  prediction_type="epsilon", timestep_spacing="trailing")
    if kind == "ddpm":
        return DDPMScheduler(variance_type="fixed_small", clip_sample=False, **common)
    if kind == "ddim":
        return DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **common)
    if kind == "dpm":
        return DPMSolverMultistepScheduler(**common)
    raise ValueError(f"unknown sampler {kind!r}; valid: {', '.join(SAMPLERS)}")


class DiffusionLoss:
    """DiT's L_simple: || eps - eps_theta(sqrt(a_t) x0 + sqrt(1 - a_t) eps; t, y) ||^2, t ~ U{0..999}."""

    def __init__(self, label_dropout: float = 0.1):
        self.alphas_cumprod = make_scheduler("ddpm").alphas_cumprod.to(torch.float64)
        self.label_dropout = label_dropout

    def __call__(self, net: DiT, x0, labels, generator: torch.Generator | None = None):
        n = x0.shape[0]
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (n,), device=x0.device, generator=generator)
        eps = torch.randn(x0.shape, device=x0.device, generator=generator)
        a = self.alphas_cumprod.to(x0.device)[t].reshape(-1, 1, 1, 1)
        x_t = (a.sqrt() * x0 + (1 - a).sqrt() * eps).to(x0.dtype)
        drop = torch.rand(n, device=x0.device, generator=generator) < self.label_dropout
        labels = torch.where(drop, torch.full_like(labels, net.null_class), labels)
        return (net(x_t, t, labels).float() - eps) ** 2


@torch.no_grad()
def sample_latents(net: DiT, labels: torch.Tensor, generators: list[torch.Generator], cfg_scale: float = 4.0,
                   num_steps: int = 250, sampler: str = "ddpm", autocast: bool = False) -> torch.Tensor:
    """Latents for `labels`, one generator per image so that image i's noise never depends on the batch.

    Classifier-free guidance (Ho & Salimans 2022) on the noise prediction:
    eps = eps(x; null) + s (eps(x; y) - eps(x; null)); s = 1 is the plain conditional model.
    """
    device = labels.device
    sched = make_scheduler(sampler)
    sched.set_timesteps(num_steps, device=device)
    shape = (len(labels), net.latent_channels, net.latent_size, net.latent_size)
    x = randn_tensor(shape, generator=generators, device=device) * sched.init_noise_sigma
    null = torch.full_like(labels, net.null_class)
    for t in sched.timesteps:
        x_in = sched.scale_model_input(x, t)
        t_batch = t.reshape(1).expand(len(labels) * (1 if cfg_scale == 1 else 2)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            if cfg_scale == 1:
                eps = net(x_in, t_batch, labels)
            else:
                eps_c, eps_u = net(torch.cat([x_in, x_in]), t_batch, torch.cat([labels, null])).chunk(2)
                eps = eps_u.float() + cfg_scale * (eps_c.float() - eps_u.float())
        x = sched.step(eps.float(), t, x, generator=generators).prev_sample
    return x


def image_generators(seed: int, start: int, stop: int, device: torch.device) -> list[torch.Generator]:
    """A generator per image index of a seed's synthetic stream."""
    return [torch.Generator(device=device).manual_seed(seed * 1_000_003 + i) for i in range(start, stop)]

