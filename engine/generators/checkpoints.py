"""Checkpoints written atomically and read without unpickling arbitrary objects."""
from __future__ import annotations

import os
from pathlib import Path

import torch


class CheckpointError(RuntimeError):
    """A checkpoint exists but cannot be read; it is reported, never silently trained over."""


def atomic_torch_save(obj, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_training_state(path: Path) -> dict:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # truncated, not a zip, wrong pickle: all mean the same to the user
        raise CheckpointError(f"checkpoint {path} is corrupt ({type(err).__name__}: "
                              f"{str(err).splitlines()[0][:120]}); delete it to retrain from scratch") from err
