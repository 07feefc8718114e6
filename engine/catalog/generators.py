"""Closed-set generator kinds: their stored name, presets (the first is the default) and the options
`--generator-option key=value` accepts, checked here without torch by the code that later applies them.

EDM's options build its training config (engine.generators.presets, the one path from option text to a
config); DiT's are (type, low, high) ranges or allowed words, applied by engine.generators.dit_train
(tests/generators/test_dit*.py check that the two agree). Adding a kind is one entry here, its trainer
module, and its test.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from engine.generators.presets import GENERATOR_OPTIONS as EDM_OPTIONS
from engine.generators.presets import PRESET_TRAINING, config_from_options
from engine.messages import InputError

DIT_OPTIONS = {
    "train_images": (int, 1, 500_000_000), "batch_size": (int, 1, 8_192), "lr": (float, 1e-8, 1.0),
    "ema_decay": (float, 0.0, 0.999999), "label_dropout": (float, 0.0, 0.99), "grad_checkpointing": ("true", "false"),
    "checkpoint_every_images": (int, 1, 500_000_000), "vae": ("tiny", "f4", "f8"),
    "vae_train_images": (int, 1, 500_000_000), "cfg_scale": (float, 0.0, 100.0), "sampling_steps": (int, 1, 1_000),
    "sampler": ("ddpm", "ddim", "dpm"), "sample_seed": (int, 0, 2**31 - 1), "seed": (int, 0, 2**31 - 1),
}


def check_edm_options(preset: str, options: dict) -> None:
    config_from_options(preset, options)


def check_dit_options(preset: str, options: dict) -> None:
    for key, text in options.items():
        rule = DIT_OPTIONS.get(key)
        if rule is None:
            raise ValueError(f"unknown dit generator option {key!r}; valid: {', '.join(DIT_OPTIONS)}")
        if isinstance(rule[0], str):
            if text.lower() not in rule:
                raise ValueError(f"generator option {key}={text!r} must be one of {', '.join(rule)}")
            continue
        kind, low, high = rule
        try:
            value = kind(float(text)) if kind is int and float(text).is_integer() else kind(text)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"generator option {key}={text!r} is not a valid {kind.__name__}") from None
        if not (math.isfinite(value) and low <= value <= high):
            raise ValueError(f"generator option {key}={value!r} must be between {low:g} and {high:g}")


@dataclass(frozen=True)
class GeneratorKind:
    key: str                      # what users type: --generator edm
    name: str                     # stored generators are named <name>-<preset> (EDM-tiny, DiT-XL/2)
    presets: tuple                # the first is the default
    options: tuple                # option names --generator-option accepts
    check: Callable[[str, dict], None]   # (preset, options) -> None or ValueError naming the bad value
    trainer: str = ""             # "module:Class(preset, options, dataset, artifacts_root)": ids, training, sampling
    about: str = ""

    def stored_name(self, preset: str) -> str:
        return f"{self.name}-{preset}"


GENERATORS = {g.key: g for g in (
    GeneratorKind("edm", "EDM", tuple(PRESET_TRAINING), tuple(EDM_OPTIONS), check_edm_options,
                  "engine.generators.closed_set:EDMKind", "EDM diffusion in pixel space (32x32 and below)"),
    GeneratorKind("dit", "DiT", ("tiny", "S/2", "B/2", "L/2", "XL/2"), tuple(DIT_OPTIONS), check_dit_options,
                  "engine.generators.dit_train:DiTKind",
                  "DiT on the latents of a VAE trained on the base set (e.g. 224x224)"),
)}
DEFAULT_GENERATOR = "edm"


def generator_kind(key: str) -> GeneratorKind:
    try:
        return GENERATORS[key]
    except (KeyError, TypeError):
        raise InputError(f"unknown generator {key!r}; valid: {', '.join(GENERATORS)}") from None
