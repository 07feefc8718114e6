"""EDM training presets and options, torch-free: a queued job's generator options are checked here,
by the same code that builds the training config, before anything is stored or trained."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

GENERATOR_OPTIONS = ("train_images", "batch_size", "lr", "sample_seed", "seed", "nproc")
MAX_NPROC = 64
# EDM trained CIFAR-10 for 200 M images; 500 M leaves room and still refuses a typo like 1e12.
MAX_TRAIN_IMAGES = 500_000_000
MAX_BATCH = 8_192
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class GeneratorConfig:
    preset: str = "tiny"
    seed: int = 0
    train_images: int = 60_000         # training length in images seen (EDM counts kimg)
    batch_size: int = 128
    lr: float = 2e-3
    lr_rampup_images: int = 5_000
    ema_halflife_images: int = 5_000   # EDM: ema_halflife_kimg, with ema_rampup_ratio
    ema_rampup_ratio: float = 0.05
    checkpoint_every_images: int = 50_000
    P_mean: float = -1.2
    P_std: float = 1.2
    sigma_data: float = 0.5
    augment_flip: bool = False
    nproc: int = 1                     # processes (GPUs) training it with DDP; not part of its identity

    def to_dict(self) -> dict:
        # How many processes shared the work does not change what is trained (engine.generators.ddp).
        return {k: v for k, v in asdict(self).items() if k != "nproc"}

    def check(self) -> None:
        def bad(name, rule):
            raise ValueError(f"generator option {name}={getattr(self, name)!r} must be {rule}")
        if not 0 <= self.seed <= MAX_SEED:
            bad("seed", f"between 0 and {MAX_SEED}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            bad("batch_size", f"between 1 and {MAX_BATCH:,}")
        if not self.batch_size <= self.train_images <= MAX_TRAIN_IMAGES:
            bad("train_images", f"between batch_size ({self.batch_size}) and {MAX_TRAIN_IMAGES:,}")
        if not (math.isfinite(self.lr) and 0 < self.lr <= 1):
            bad("lr", "a number in (0, 1]")
        if not 1 <= self.nproc <= MAX_NPROC:
            bad("nproc", f"between 1 and {MAX_NPROC}")
        if self.batch_size % self.nproc:
            bad("batch_size", f"a multiple of nproc ({self.nproc}): DDP splits the global batch evenly")


# Training defaults per preset. `tiny` is sized for a CPU: ~2,000 images/s on 2 cores. Measured
# on a 100-image digits base: after 60k images (~30 s) a digits classifier recognises >99 % of
# its samples; by 150k images the samples sit 5x closer to base images than held-out digits do
# (copying), so the default stops early.
# `cifar` follows EDM's CIFAR-10 setup (batch 512, lr 1e-3, EMA half-life 500k images) for a
# training length a single GPU finishes in hours rather than days; raise it with
# --generator-option train_images=N.
PRESET_TRAINING = {
    "tiny": dict(train_images=60_000, batch_size=128, lr=2e-3, lr_rampup_images=5_000,
                 ema_halflife_images=5_000, checkpoint_every_images=50_000),
    "small": dict(train_images=2_000_000, batch_size=256, lr=1e-3, lr_rampup_images=200_000,
                  ema_halflife_images=100_000, checkpoint_every_images=250_000, augment_flip=True),
    "cifar": dict(train_images=20_000_000, batch_size=512, lr=1e-3, lr_rampup_images=10_000_000,
                  ema_halflife_images=500_000, checkpoint_every_images=1_000_000, augment_flip=True),
}


def default_config(preset: str, seed: int = 0, **overrides) -> GeneratorConfig:
    if preset not in PRESET_TRAINING:
        raise ValueError(f"unknown generator preset {preset!r}; valid: {', '.join(PRESET_TRAINING)}")
    config = GeneratorConfig(preset=preset, seed=seed, **{**PRESET_TRAINING[preset], **overrides})
    config.check()
    return config


def config_from_options(preset: str, options: dict) -> tuple[GeneratorConfig, int]:
    """(training config, sample seed) from `--generator-option key=value` strings, each coerced to its
    field's type and range-checked: the one path from a user's text to a generator."""
    unknown = sorted(set(options) - set(GENERATOR_OPTIONS))
    if unknown:
        raise ValueError(f"unknown generator option {unknown[0]!r}; valid: {', '.join(GENERATOR_OPTIONS)}")
    values = {}
    for key, text in options.items():
        kind = int if key in ("seed", "sample_seed") else type(getattr(GeneratorConfig(), key))
        try:
            value = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"generator option {key}={text!r} is not a valid {kind.__name__}") from None
        values[key] = value
    sample_seed = values.pop("sample_seed", 0)
    if not 0 <= sample_seed <= MAX_SEED:
        raise ValueError(f"generator option sample_seed={sample_seed} must be between 0 and {MAX_SEED}")
    seed = values.pop("seed", 0)
    return default_config(preset, seed, **values), sample_seed
