"""EDM: preconditioning, the Heun sampler, training, conditioning, the closed-set guard, checkpoints."""
import math

import numpy as np
import pytest
import torch

from engine.data.loaders import load_digits_dataset
from engine.generators.edm import EDMLoss, EDMPrecond, edm_sampler, preconditioning
from engine.generators.checkpoints import CheckpointError
from engine.generators.closed_set import memorisation
from engine.generators.edm_train import default_config, load_ema, sample_balanced, train_generator
from engine.generators.guard import ClosedSetView, ClosedSetViolation
from engine.data.subsets import base_indices
from engine.catalog.defaults import default_recipe
from engine.classifiers.train import predict, train_classifier

CPU = torch.device("cpu")


def test_preconditioning_matches_hand_computed_values():
    c = preconditioning(torch.tensor([1.0, 0.5, 80.0]))
    # sigma = 1, sigma_data = 0.5: c_skip = .25/1.25, c_out = .5/sqrt(1.25), c_in = 1/sqrt(1.25), c_noise = 0
    assert c["c_skip"][0].item() == pytest.approx(0.2)
    assert c["c_out"][0].item() == pytest.approx(0.5 / math.sqrt(1.25))
    assert c["c_in"][0].item() == pytest.approx(1 / math.sqrt(1.25))
    assert c["c_noise"][0].item() == pytest.approx(0.0)
    # sigma = sigma_data: c_skip = 1/2, c_out = sigma_data/sqrt(2), c_noise = ln(0.5)/4
    assert c["c_skip"][1].item() == pytest.approx(0.5)
    assert c["c_out"][1].item() == pytest.approx(0.5 / math.sqrt(2))
    assert c["c_noise"][1].item() == pytest.approx(math.log(0.5) / 4)
    assert c["c_in"][2].item() == pytest.approx(1 / math.sqrt(80 ** 2 + 0.25))


def test_precond_network_uses_the_same_coefficients():
    net = EDMPrecond(8, 1, 10, "tiny")
    # With F's output forced to zero, D(x; sigma) must be exactly c_skip(sigma) * x.
    for p in net.model.conv_out.parameters():
        torch.nn.init.zeros_(p)
    x = torch.randn(3, 1, 8, 8)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    out = net(x, sigma, torch.tensor([0, 1, 2]))
    expected = preconditioning(sigma)["c_skip"].float().reshape(-1, 1, 1, 1) * x
    torch.testing.assert_close(out, expected)


def test_precond_network_feeds_F_the_scaled_input_and_noise_level():
    """D(x; sigma) = c_skip x + c_out F(c_in x; c_noise), checked through the network with an F that
    echoes its input and records its noise level."""
    from types import SimpleNamespace
    net = EDMPrecond(8, 1, 10, "tiny")
    seen = {}

    def echo(x_in, c_noise, class_labels):
        seen["c_noise"], seen["labels"] = c_noise, class_labels
        return SimpleNamespace(sample=x_in)
    net.model.forward = echo
    x = torch.randn(3, 1, 8, 8)
    sigma = torch.tensor([0.1, 1.0, 10.0])
    out = net(x, sigma, torch.tensor([0, 1, 2]))
    c = {k: v.float().reshape(-1, 1, 1, 1) for k, v in preconditioning(sigma.double()).items()}
    torch.testing.assert_close(out, c["c_skip"] * x + c["c_out"] * c["c_in"] * x)
    torch.testing.assert_close(seen["c_noise"], sigma.log() / 4)
    assert seen["labels"].tolist() == [0, 1, 2]


class GaussianDenoiser:
    """The ideal denoiser for data ~ N(mu, s^2) per pixel: E[y | y + n] = mu + s^2/(s^2+sigma^2) (x - mu)."""

    def __init__(self, mu, s):
        self.mu, self.s, self.calls = mu, s, 0

    def __call__(self, x, sigma, labels):
        self.calls += 1
        sigma = sigma.reshape(-1, 1, 1, 1).to(x.dtype)
        return self.mu + self.s ** 2 / (self.s ** 2 + sigma ** 2) * (x - self.mu)


@pytest.mark.slow
def test_heun_sampler_reproduces_gaussian_data():
    mu, s = 0.3, 0.4
    denoiser = GaussianDenoiser(mu, s)
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(20_000, 1, 2, 2, generator=gen)
    labels = torch.zeros(20_000, dtype=torch.long)
    out = edm_sampler(denoiser, latents, labels)
    assert out.dtype == torch.float64
    assert denoiser.calls == 35  # 18 steps: 17 Heun steps (2 evaluations) + a final Euler step
    # The exact probability-flow ODE maps each latent z to mu + s z. 18 steps carry a visible
    # discretisation error (~5 % in the spread here); it must vanish as a 2nd-order method's does.
    assert out.mean().item() == pytest.approx(mu, abs=0.01)
    assert out.std().item() == pytest.approx(s, rel=0.08)
    exact = mu + s * latents.double()
    errors = {n: (edm_sampler(denoiser, latents, labels, num_steps=n) - exact).pow(2).mean().sqrt().item()
              for n in (18, 36, 200)}
    assert errors[36] < errors[18] / 3.0           # halving the step: ~4x smaller error
    fine = edm_sampler(denoiser, latents, labels, num_steps=200)
    assert fine.mean().item() == pytest.approx(mu, abs=0.005)
    assert fine.std().item() == pytest.approx(s, rel=0.005)


def test_loss_weighting_is_edm():
    # With a denoiser that returns its input unchanged the per-pixel loss is lambda(sigma) * n^2,
    # so its mean over many draws equals E[lambda(sigma) sigma^2] = E[(sigma^2 + sd^2) / sd^2].
    torch.manual_seed(0)
    loss = EDMLoss()(lambda x, sigma, labels: x, torch.zeros(20_000, 1, 1, 1), None)
    sigma2 = torch.exp(2 * (torch.randn(2_000_000) * 1.2 - 1.2))
    expected = ((sigma2 + 0.25) / 0.25).mean().item()
    assert loss.mean().item() == pytest.approx(expected, rel=0.1)


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


@pytest.fixture(scope="module")
def trained_tiny(digits, tmp_path_factory):
    """A tiny EDM trained on a 200-image digits base (the default 60k images, ~30 s)."""
    out = tmp_path_factory.mktemp("gen")
    base = base_indices(digits.train_y, 200, 0)
    stats = train_generator(ClosedSetView(digits.train_x, digits.train_y, base), 10, default_config("tiny"), out, CPU)
    return out, base, stats


def fixed_loss(net, images, labels):
    gen = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return EDMLoss()(net, images, labels, gen).mean().item()


@pytest.mark.slow
def test_tiny_edm_learns_and_its_samples_are_class_conditional(digits, trained_tiny):
    out, base, stats = trained_tiny
    assert stats["finished"] and (out / "ema.safetensors").exists()
    images = torch.from_numpy(digits.train_x[base]).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = torch.from_numpy(digits.train_y[base])
    torch.manual_seed(0)
    untrained = EDMPrecond(8, 1, 10, "tiny").eval()
    trained = load_ema(out, 8, 1, 10, "tiny", CPU)
    assert fixed_loss(trained, images, labels) < 0.7 * fixed_loss(untrained, images, labels)
    # A classifier trained on real digits labels samples of class k as k far more often than
    # chance (10 %): we require at least 80 %.
    judge = train_classifier("smallcnn", *[torch.from_numpy(a) for a in (
        digits.train_x.transpose(0, 3, 1, 2).copy(), digits.train_y, digits.test_x.transpose(0, 3, 1, 2).copy(),
        digits.test_y)], 10, default_recipe("smallcnn", "digits", 800, 800, 800, traditional="crop"), 0, CPU).model
    x, y = sample_balanced(trained, 10, 0, 500, seed=0, device=CPU)
    assert np.bincount(y).tolist() == [50] * 10
    pred = predict(judge, torch.from_numpy(x).permute(0, 3, 1, 2), 8, CPU).numpy()
    assert (pred == y).mean() > 0.8


@pytest.mark.slow
def test_sampling_extends_without_changing_earlier_images(trained_tiny):
    out, _, _ = trained_tiny
    net = load_ema(out, 8, 1, 10, "tiny", CPU)
    first, _ = sample_balanced(net, 10, 0, 30, seed=1, device=CPU, chunk=20)
    whole, labels = sample_balanced(net, 10, 0, 50, seed=1, device=CPU, chunk=20)
    rest, _ = sample_balanced(net, 10, 30, 50, seed=1, device=CPU, chunk=20)
    # Same noise per index; batch composition may only move float rounding by one grey level.
    assert np.abs(whole[:30].astype(int) - first).max() <= 1
    assert np.abs(whole[30:].astype(int) - rest).max() <= 1
    again, _ = sample_balanced(net, 10, 0, 30, seed=1, device=CPU, chunk=20)
    np.testing.assert_array_equal(again, first)  # the same request reproduces exactly
    other, _ = sample_balanced(net, 10, 0, 30, seed=2, device=CPU, chunk=20)
    assert np.abs(other.astype(int) - first).mean() > 5  # another seed gives other images
    assert labels.tolist()[:12] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]


def test_memorisation_check_detects_copies(digits):
    base = digits.train_x[:100]
    held = digits.train_x[100:300]
    copies = memorisation(base[:50], base, held)
    fresh = memorisation(held[:50], base, held[50:])
    assert copies["ratio"] == 0.0 and 0.7 < fresh["ratio"] < 1.3


def test_closed_set_guard(digits):
    base = base_indices(digits.train_y, 20, 0)
    view = ClosedSetView(digits.train_x, digits.train_y, base)
    x, y = view.load(base[:5])
    assert len(x) == 5
    outside = int(np.setdiff1d(np.arange(800), base)[0])
    with pytest.raises(ClosedSetViolation, match=f"index {outside} is not in the base set"):
        view.load([base[0], outside])


@pytest.mark.slow
def test_resume_after_interruption_matches_uninterrupted_training(digits, tmp_path):
    base = base_indices(digits.train_y, 30, 0)
    view = ClosedSetView(digits.train_x, digits.train_y, base)
    config = default_config("tiny", train_images=3_000, checkpoint_every_images=1_000)
    straight = train_generator(view, 10, config, tmp_path / "a", CPU)
    partial = train_generator(view, 10, config, tmp_path / "b", CPU, stop_after_images=1_500)
    assert not partial["finished"] and (tmp_path / "b" / "training.pt").exists()
    assert not (tmp_path / "b" / "ema.safetensors").exists()
    resumed = train_generator(view, 10, config, tmp_path / "b", CPU)
    assert resumed["finished"] and resumed["nimg"] == straight["nimg"]
    # the loss window open at the checkpoint is resumed too, so the curve is the uninterrupted one
    assert resumed["loss_curve"] == straight["loss_curve"] and len(straight["loss_curve"]) > 10
    a = load_ema(tmp_path / "a", 8, 1, 10, "tiny", CPU).state_dict()
    b = load_ema(tmp_path / "b", 8, 1, 10, "tiny", CPU).state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k])


def test_truncated_checkpoint_is_reported_not_retrained(digits, tmp_path):
    base = base_indices(digits.train_y, 30, 0)
    view = ClosedSetView(digits.train_x, digits.train_y, base)
    config = default_config("tiny", train_images=2_000, checkpoint_every_images=500)
    train_generator(view, 10, config, tmp_path, CPU, stop_after_images=600)
    ckpt = tmp_path / "training.pt"
    data = ckpt.read_bytes()
    ckpt.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="training.pt is corrupt.*delete it to retrain"):
        train_generator(view, 10, config, tmp_path, CPU)
    assert ckpt.stat().st_size == len(data) // 2  # left for the user to inspect
