"""Checkpoints written atomically and read without unpickling arbitrary objects."""
from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from engine.messages import InputError


class CheckpointError(InputError):
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


class LossCurve:
    """Mean training loss over windows of `every` steps, as [images seen, loss] pairs (<= ~1,000),
    for every trainer (EDM, VAE, DiT). Its open window is part of the checkpoint (`state()`), so a
    resumed run draws exactly the curve an uninterrupted one would."""

    def __init__(self, total_steps: int):
        self.every = max(1, total_steps // 1000)
        self.points, self._sum, self._n = [], 0.0, 0

    def state(self) -> dict:
        return {"loss_curve": torch.tensor(self.points, dtype=torch.float64).reshape(-1, 2),
                "loss_window": torch.tensor([self._sum, self._n], dtype=torch.float64)}

    def load(self, state: dict) -> None:
        self.points = state["loss_curve"].tolist()
        self._sum, self._n = float(state["loss_window"][0]), int(state["loss_window"][1])

    def add(self, nimg: int, value: float) -> None:
        self._sum, self._n = self._sum + value, self._n + 1
        if self._n == self.every:
            self.points.append([nimg, self._sum / self._n])
            self._sum, self._n = 0.0, 0


class Training:
    """The bookkeeping every trainer shares (EDM, VAE, DiT): resume from `path` if it exists, count
    images, time and loss, and checkpoint `modules` every `checkpoint_every` images and at the end.
    Only the training step itself stays in each trainer. `writes` is False on DDP ranks other than 0.
    `smoothing` is the weight of the past in the progress bar's loss (the curve keeps raw window means)."""

    def __init__(self, path: Path, what: str, modules: dict, generator, train_images: int, batch_size: int,
                 checkpoint_every: int, stop_after_images: int | None = None, smoothing: float = 0.98,
                 writes: bool = True):
        self.path, self.modules, self.generator, self.writes = path, modules, generator, writes
        self.train_images, self.checkpoint_every, self.smoothing = train_images, checkpoint_every, smoothing
        self.target = train_images if stop_after_images is None else min(train_images, stop_after_images)
        self.nimg, seconds, self.loss_ema = 0, 0.0, float("nan")
        self.curve = LossCurve(train_images // batch_size)
        if path.exists():
            state, self.nimg, seconds, self.loss_ema = resume(path, what, modules, generator)
            self.curve.load(state)
        self.start = time.perf_counter() - seconds  # the clock continues across interruptions
        self.last_checkpoint = self.nimg

    @property
    def running(self) -> bool:
        return self.nimg < self.target

    @property
    def finished(self) -> bool:
        return self.nimg >= self.train_images

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start

    def step(self, images: int, loss: float, on_progress=None) -> None:
        """Account for one optimiser step over `images` images whose mean loss was `loss`."""
        self.nimg += images
        self.loss_ema = loss if self.loss_ema != self.loss_ema else (
            self.smoothing * self.loss_ema + (1 - self.smoothing) * loss)
        self.curve.add(self.nimg, loss)
        if on_progress is not None:
            on_progress(min(self.nimg, self.train_images), self.train_images, self.loss_ema)
        if self.writes and (self.nimg - self.last_checkpoint >= self.checkpoint_every or self.nimg >= self.target):
            atomic_torch_save({**{k: m.state_dict() for k, m in self.modules.items()},
                               "gen_state": self.generator.get_state(), "nimg": self.nimg,
                               "train_seconds": self.seconds, "loss": self.loss_ema, **self.curve.state()}, self.path)
            self.last_checkpoint = self.nimg

    def stats(self) -> dict:
        seconds = self.seconds
        return {"nimg": self.nimg, "train_seconds": seconds, "finished": self.finished,
                "images_per_second": self.nimg / max(seconds, 1e-9), "loss_curve": self.curve.points}
