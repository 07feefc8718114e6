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


def resume(path: Path, what: str, modules: dict, generator) -> tuple[dict, int, float, float]:
    """Load a training checkpoint into `modules` (name in the file -> module or optimizer) and the
    random generator: (state, images seen, training seconds, smoothed loss). A checkpoint that does
    not fit is a CheckpointError naming `what`, never a silent restart."""
    state = load_training_state(path)
    try:
        for key, module in modules.items():
            module.load_state_dict(state[key])
        generator.set_state(state["gen_state"])
    except (KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {path} does not match this {what} "
                              f"({str(err).splitlines()[0][:120]}); delete it to retrain") from err
    return state, int(state["nimg"]), float(state["train_seconds"]), float(state["loss"])
