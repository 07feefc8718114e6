"""DDP generator training (torchrun, gloo, 2 CPU processes) is the one-process training with the
same global batch: same loss trajectory and EMA weights within float tolerance, identical weights
on every rank, only rank 0 writes, and an interrupted run resumes to the same generator."""
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.data.loaders import load_digits_dataset
from engine.generators.edm_train import default_config, train_generator
from engine.generators.guard import ClosedSetView
from engine.data.subsets import base_indices


def train(view, out: Path, nproc: int, stop_after=None):
    losses = []
    config = default_config("tiny", 0, train_images=640, batch_size=64, checkpoint_every_images=10**9, nproc=nproc)
    stats = train_generator(view, 10, config, out, torch.device("cpu"), lambda n, total, loss: losses.append((n, loss)),
                            stop_after_images=stop_after)
    return stats, losses


@pytest.mark.slow
def test_two_gloo_processes_train_the_one_process_generator_and_resume(tmp_path):
    ds = load_digits_dataset()
    view = ClosedSetView(ds.train_x, ds.train_y, base_indices(ds.train_y, 20, 0))
    single, single_losses = train(view, tmp_path / "one", 1)

    # Interrupted after half the images: a checkpoint and no EMA weights yet.
    half, first_losses = train(view, tmp_path / "ddp", 2, stop_after=320)
    assert not half["finished"] and half["nimg"] == 320
    assert (tmp_path / "ddp" / "training.pt").exists() and not (tmp_path / "ddp" / "ema.safetensors").exists()
    stats, rest_losses = train(view, tmp_path / "ddp", 2)
    assert stats["finished"] and stats["nproc"] == 2
    assert stats["rank_weight_spread"] == 0.0  # DDP keeps every rank's weights identical
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["ema.safetensors", "training.pt"]

    ddp_losses = first_losses + rest_losses
    assert [n for n, _ in ddp_losses] == [n for n, _ in single_losses] == list(range(64, 641, 64))
    np.testing.assert_allclose([v for _, v in ddp_losses], [v for _, v in single_losses], rtol=1e-5)
    assert abs(stats["final_loss"] - single["final_loss"]) < 1e-5
    one, two = load_file(str(tmp_path / "one" / "ema.safetensors")), load_file(str(tmp_path / "ddp" / "ema.safetensors"))
    assert one.keys() == two.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-4, atol=1e-5)
    # How many processes trained it is not part of the generator's identity (its id hashes to_dict).
    assert default_config("tiny", 0).to_dict() == default_config("tiny", 0, nproc=2).to_dict()


def test_batch_must_split_over_the_processes():
    # Refused when the config is built, so a queued job with such options never reaches a worker.
    with pytest.raises(ValueError, match=r"batch_size=63 must be a multiple of nproc \(2\)"):
        default_config("tiny", 0, train_images=64, batch_size=63, nproc=2)
    from engine.spec import SpecError, validate
    with pytest.raises(SpecError, match=r"batch_size=63 must be a multiple of nproc \(2\)"):
        validate({"n_base": 20, "augmentation": "closed", "generator_options": "batch_size=63, nproc=2"})
    assert default_config("tiny", 0, train_images=64, batch_size=64, nproc=2).nproc == 2
