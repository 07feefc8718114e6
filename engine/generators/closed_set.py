"""Closed-set synthetic images for `engine run`: one generator per base set, reused by every run.

Generator id = hash of (dataset, n_base, base indices hash, preset, seed, training config; for a
DiT also its VAE's id, itself a hash of the base and the VAE config), so a second study on the
same base reuses the trained generator, and its synthetic set, extended by sampling more only
when a larger amount is needed (earlier images never change).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import time
from pathlib import Path

import numpy as np
import torch

from engine.data.dataset import Dataset
from engine.generators.edm_train import load_ema, sample_balanced, train_generator
from engine.generators.guard import ClosedSetView
from engine.generators.presets import config_from_options
from engine.catalog.generators import DEFAULT_GENERATOR, GENERATORS
from engine.data.subsets import base_indices, indices_hash


def generator_name(preset: str, kind: str = DEFAULT_GENERATOR) -> str:
    """Stored generator name: kind and preset (EDM-tiny, DiT-XL/2), so presets never share one surface."""
    return GENERATORS[kind].stored_name(preset)


class EDMKind:
    """EDM for SyntheticSource: pixel-space, no autoencoder."""

    def __init__(self, preset: str, options: dict, ds: Dataset, artifacts_root=None):
        # the one path from option text to a training config (engine.spec validated it the same way)
        self.config, _ = config_from_options(preset, dict(options))
        self.num_classes, self.resolution, self.channels = ds.num_classes, ds.size, ds.channels

    def identity(self, base_ident: dict) -> tuple[None, str]:
        c = self.config
        ident = {**base_ident, "preset": c.preset, "seed": c.seed, "train_images": c.train_images,
                 "config": c.to_dict()}
        return None, "edm-" + hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:16]

    def sampling_tag(self) -> str:
        return ""  # EDM's 18-step Heun sampler is fixed: ids stay those of earlier stores

    def train(self, view, out_dir, device, on_progress=None) -> dict:
        stats = train_generator(view, self.num_classes, self.config, out_dir, device, on_progress)
        return {**stats, "train_seconds_total": stats["train_seconds"]}

    def sample(self, out_dir, start, stop, seed, device):
        net = load_ema(out_dir, self.resolution, self.channels, self.num_classes, self.config.preset, device)
        return sample_balanced(net, self.num_classes, start, stop, seed, device)


class SyntheticSource:
    """One base set's generator and its synthetic set: their ids (known before anything trains), and what
    computes them (training, sampling, the memorisation check). Touches no store: the local run and the
    Ray cluster store what it computes with one writer (engine.execution.artifacts). `root` is where its
    files live: the store's artifacts folder here, a node's own folder on a cluster."""

    def __init__(self, spec, ds: Dataset, root: Path, device: str = "auto"):
        kind = getattr(spec, "generator", None) or DEFAULT_GENERATOR
        opts = dict(spec.generator_options)
        self.sample_seed = int(opts.pop("sample_seed", 0))
        self.kind_key, self.root = kind, Path(root)
        module, _, cls = GENERATORS[kind].trainer.partition(":")
        self.kind = getattr(importlib.import_module(module), cls)(spec.generator_preset, opts, ds, self.root)
        self.config = self.kind.config
        self.spec, self.ds, self.device = spec, ds, device
        self.base = base_indices(ds.train_y, spec.n_base, spec.subset_seed)
        self.base_hash = indices_hash(self.base)
        self.vae_id, self.generator_id = self.kind.identity(
            {"dataset": ds.name, "n_base": spec.n_base, "indices_hash": self.base_hash})
        tag = self.kind.sampling_tag()
        self.synthetic_set_id = f"{self.generator_id}-{tag + '-' if tag else ''}s{self.sample_seed}"
        # What a run's identity (run_key) names as its synthetic source. A DiT's guidance, sampler
        # and sample seed change the images, so they are part of it; EDM keeps the generator id
        # its stored runs were keyed with.
        self.run_identity = self.synthetic_set_id if tag else self.generator_id
        self.dir = self.root / "generators" / self.generator_id
        self.name = generator_name(self.config.preset, kind)

    # ----------------------------------------------------------------------------- files
    def file_dirs(self) -> list[Path]:
        """The folders holding this generator's files, relative to root: its weights (and a DiT's VAE)."""
        dirs = [self.dir.relative_to(self.root)]
        vae_dir = getattr(self.kind, "vae_dir", None)
        return dirs + ([Path(vae_dir).relative_to(self.root)] if vae_dir is not None else [])

    def trained(self) -> bool:
        return (self.dir / "ema.safetensors").exists()

    # ----------------------------------------------------------------------------- training
    def train(self, device, on_progress=None) -> dict:
        """Train on the base set only (the closed-set guard sees to it); the generator's store row, with
        its checkpoint relative to root."""
        view = ClosedSetView(self.ds.train_x, self.ds.train_y, self.base)
        stats = self.kind.train(view, self.dir, device, on_progress)
        extra = {k: stats[k] for k in ("resolution", "channels", "latent_size", "latent_channels", "vae", "loss_curve")
                 if k in stats}
        if self.vae_id is not None:  # the autoencoder's error on real images it never saw
            extra["vae"]["heldout_reconstruction"] = self.kind.reconstruction_error(self.heldout()[:2000], device)
        return {"generator_id": self.generator_id, "dataset": self.ds.name, "n_base": self.spec.n_base,
                "indices_hash": self.base_hash, "preset": self.config.preset, "seed": self.config.seed,
                "train_images": self.config.train_images,
                "checkpoint": str((self.dir / "ema.safetensors").relative_to(self.root)),
                # a DiT's training time includes its VAE's: both are the cost of this generator
                "train_time_s": stats["train_seconds_total"], "final_loss": stats["final_loss"],
                "loss_curve": stats.get("loss_curve"),
                "config": {**self.config.to_dict(), "kind": self.kind_key, "name": self.name,
                           "images_per_second": stats["images_per_second"], **extra}}

    # ----------------------------------------------------------------------------- sampling
    def sample(self, start: int, stop: int, device) -> tuple[np.ndarray, np.ndarray, float]:
        """Images start..stop of the set's stream (class-balanced, the same whatever was sampled before),
        and the seconds each took."""
        began = time.perf_counter()
        x, y = self.kind.sample(self.dir, start, stop, self.sample_seed, device)
        return x, y, (time.perf_counter() - began) / max(len(x), 1)

    def heldout(self) -> np.ndarray:
        """Real images the generator never saw: the train split outside the base (else the test split)."""
        heldout = np.setdiff1d(np.arange(len(self.ds.train_y)), self.base)
        return self.ds.train_x[heldout] if len(heldout) else self.ds.test_x

    def memorisation_of(self, samples: np.ndarray) -> dict:
        reference = self.heldout()
        pick = np.random.default_rng(0).choice(len(reference), size=min(MEMORISATION_SAMPLES, len(reference)),
                                               replace=False)
        return memorisation(samples[:MEMORISATION_SAMPLES], self.ds.train_x[self.base], reference[pick])

    def ids(self) -> dict:
        """What the store's writer needs to know of this source, plain enough to ship from a node."""
        return {"generator_id": self.generator_id, "synthetic_set_id": self.synthetic_set_id,
                "num_classes": self.ds.num_classes, "sample_seed": self.sample_seed,
                "file_dirs": [str(d) for d in self.file_dirs()], "image_shape": tuple(self.ds.train_x.shape[1:]),
                "nproc": getattr(self.config, "nproc", 1), "run_fields": self.run_fields({"train_time_s": None}, None)}

    def run_fields(self, generator_row: dict, sampling_s: float | None) -> dict:
        """The generator fields of this set's runs."""
        return {"generator": self.name, "generator_id": self.generator_id, "synthetic_set_id": self.synthetic_set_id,
                "config": {"generator_preset": self.config.preset,
                           "generator_train_time_s": generator_row["train_time_s"],
                           "sampling_s_per_image": sampling_s, "generator_config": self.config.to_dict(),
                           **({"generator_kind": self.kind_key, "sampling": self.kind.sampling, "vae_id": self.vae_id}
                              if self.vae_id else {})}}


MEMORISATION_SAMPLES = 1000


def memorisation(samples_u8: np.ndarray, base_u8: np.ndarray, heldout_u8: np.ndarray) -> dict:
    """Median distance of synthetic images to their nearest base image, against held-out real images.

    A generator that copies its training images puts samples far closer to the base set than
    real images that were never in it (ratio well below 1).
    """
    def flat(a):
        return torch.from_numpy(a.reshape(len(a), -1)).float() / 255.0
    base = flat(base_u8)
    syn = torch.cdist(flat(samples_u8), base).min(dim=1).values.median().item()
    held = torch.cdist(flat(heldout_u8), base).min(dim=1).values.median().item()
    return {"syn_to_base_median": syn, "heldout_to_base_median": held, "ratio": syn / held if held else None,
            "n_samples": int(len(samples_u8)), "n_heldout": int(len(heldout_u8)), "metric": "L2 on [0,1] pixels"}
