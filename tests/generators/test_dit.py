"""DiT on a VAE trained from scratch: adaLN-Zero init, the sampling loop and guidance, the closed-set
guard, checkpoints and resume, and a tiny VAE + DiT that learns digits."""
import numpy as np
import pytest
import torch
from diffusers import DiTTransformer2DModel

from engine.data.loaders import load_digits_dataset
from engine.generators.checkpoints import CheckpointError, LossCurve
from engine.generators.dit import PRESETS, DiffusionLoss, DiT, image_generators, make_scheduler, sample_latents
from engine.generators.dit_train import (PRESET_TRAINING, default_config, load_ema, sample_balanced,
                                         train_dit)
from engine.generators.guard import ClosedSetView, ClosedSetViolation
from engine.generators.vae import LatentCodec, default_vae_config, train_vae
from engine.data.subsets import base_indices

CPU = torch.device("cpu")


def test_fresh_dit_predicts_exactly_zero_and_shares_one_embedder():
    torch.manual_seed(0)
    net = DiT(4, 4, 10, "tiny")
    x = torch.randn(6, 4, 4, 4)
    out = net(x, torch.tensor([0, 1, 250, 500, 998, 999]), torch.tensor([0, 3, 9, 10, 10, 2]))
    assert out.shape == x.shape and torch.equal(out, torch.zeros_like(out))
    blocks = net.model.transformer_blocks
    for block in blocks:  # adaLN-Zero: every block starts as the identity
        assert not block.norm1.linear.weight.any() and not block.norm1.linear.bias.any()
        assert block.norm1.emb is blocks[0].norm1.emb
    assert net.model.pos_embed.proj.weight.std() > 0  # the rest is not zero
    # diffusers alone does not do this: its freshly built DiT predicts non-zero noise.
    torch.manual_seed(0)
    plain = DiTTransformer2DModel(sample_size=4, in_channels=4, out_channels=4, num_embeds_ada_norm=10,
                                  **PRESETS["tiny"]).eval()
    assert plain(x, timestep=torch.full((6,), 10), class_labels=torch.zeros(6, dtype=torch.long)).sample.abs().max() > 0


def test_registry_names_match_what_the_engine_builds():
    from engine.generators.dit_train import DiTConfig, SAMPLING_DEFAULTS
    from engine.generators.vae import PRESETS as VAE_PRESETS
    from engine.generators.dit import SAMPLERS
    from engine.catalog.generators import DIT_OPTIONS, GENERATORS
    dit = next(g for g in GENERATORS.values() if g.trainer.endswith(":DiTKind"))
    assert dit.presets == tuple(PRESETS) and set(PRESET_TRAINING) == set(PRESETS)
    trainable = {f for f in DiTConfig.__dataclass_fields__ if f != "preset"}
    assert set(dit.options) == trainable | set(SAMPLING_DEFAULTS) | {"sample_seed"}
    assert DIT_OPTIONS["vae"] == tuple(VAE_PRESETS) and DIT_OPTIONS["sampler"] == tuple(SAMPLERS)


class GaussianEps(torch.nn.Module):
    """The exact noise predictor for data ~ N(mu_y, s^2) per latent value (null class: mu = 0)."""
    latent_channels, latent_size, null_class = 1, 4, 3

    def __init__(self, mus=(1.0, -1.0, 0.5), s=0.3):
        super().__init__()
        self.mus, self.s, self.calls = torch.tensor([*mus, 0.0]), s, 0
        self.ac = make_scheduler().alphas_cumprod

    def forward(self, x, t, y):
        self.calls += 1
        a = self.ac[t.long()].reshape(-1, 1, 1, 1).to(x.dtype)
        mu = self.mus[y].reshape(-1, 1, 1, 1).to(x.dtype)
        return (1 - a).sqrt() * (x - a.sqrt() * mu) / (a * self.s ** 2 + 1 - a)


@pytest.mark.parametrize("sampler,steps", [("ddpm", 250), ("ddim", 250)])
def test_sampling_loop_reproduces_gaussian_data(sampler, steps):
    net = GaussianEps()
    labels = torch.arange(600) % 3  # 200 images x 16 latent values per class
    z = sample_latents(net, labels, image_generators(0, 0, 600, CPU), cfg_scale=1.0, num_steps=steps, sampler=sampler)
    assert net.calls == steps  # scale 1: the conditional model alone, one evaluation a step
    for k, mu in enumerate((1.0, -1.0, 0.5)):
        assert z[labels == k].mean().item() == pytest.approx(mu, abs=0.02)
        assert z[labels == k].std().item() == pytest.approx(0.3, rel=0.1)


def test_guidance_scale_follows_the_cfg_formula():
    # For Gaussians the guided noise eps_u + s (eps_c - eps_u) is exact at every t, and the
    # deterministic sampler lands on mean s * mu_c (s = 0: the null class, mean 0).
    labels = torch.zeros(2000, dtype=torch.long)
    gens = lambda: image_generators(1, 0, 2000, CPU)  # noqa: E731
    uncond = sample_latents(GaussianEps(), labels, gens(), cfg_scale=0.0, num_steps=50, sampler="ddim")
    cond = sample_latents(GaussianEps(), labels, gens(), cfg_scale=1.0, num_steps=50, sampler="ddim")
    net = GaussianEps()
    guided = sample_latents(net, labels, gens(), cfg_scale=3.0, num_steps=50, sampler="ddim")
    assert net.calls == 50  # conditional and null predictions share one batched evaluation
    assert abs(uncond.mean().item()) < 0.02 and cond.mean().item() == pytest.approx(1.0, abs=0.02)
    assert guided.mean().item() > cond.mean().item() + 0.5


def test_each_image_has_its_own_noise_whatever_the_batch():
    net = GaussianEps()
    labels = torch.arange(12) % 3
    whole = sample_latents(net, labels, image_generators(5, 0, 12, CPU), 2.0, 20, "ddpm")
    tail = sample_latents(net, labels[7:], image_generators(5, 7, 12, CPU), 2.0, 20, "ddpm")
    torch.testing.assert_close(whole[7:], tail)
    other = sample_latents(net, labels, image_generators(6, 0, 12, CPU), 2.0, 20, "ddpm")
    assert (other - whole).abs().mean() > 0.05


def test_loss_drops_labels_to_the_null_class_at_the_given_rate():
    seen = []

    class Spy(torch.nn.Module):
        null_class = 10

        def forward(self, x, t, y):
            seen.append(y.clone())
            return torch.zeros_like(x)
    gen = torch.Generator().manual_seed(0)
    DiffusionLoss(0.1)(Spy(), torch.zeros(20_000, 1, 1, 1), torch.zeros(20_000, dtype=torch.long), gen)
    assert (seen[0] == 10).float().mean().item() == pytest.approx(0.1, abs=0.01)
    assert set(seen[0].unique().tolist()) == {0, 10}


def test_loss_curve_keeps_at_most_about_a_thousand_window_means():
    curve = LossCurve(total_steps=10_000)
    for step in range(1, 10_001):
        curve.add(step * 2, float(step % 10))
    assert len(curve.points) == 1000 and curve.points[0] == [20, 4.5]


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


class SpyView(ClosedSetView):
    """Records every index the trainers ask for."""

    def __init__(self, *args):
        super().__init__(*args)
        self.asked = []

    def load(self, indices):
        self.asked.extend(int(i) for i in np.asarray(indices))
        return super().load(indices)


def test_vae_and_dit_read_only_through_the_closed_set_guard(digits, tmp_path):
    base = base_indices(digits.train_y, 20, 0)
    view = SpyView(digits.train_x, digits.train_y, base)
    train_vae(view, default_vae_config("tiny", train_images=64), tmp_path / "vae", CPU)
    train_dit(view, LatentCodec(tmp_path / "vae", CPU), 10, default_config("tiny", train_images=128),
              tmp_path / "dit", CPU)
    assert view.asked and set(view.asked) <= set(base.tolist())

    class Greedy(ClosedSetView):  # a trainer that reached past its base set would be stopped
        def load_base(self):
            return self.load(np.arange(len(digits.train_y)))
    with pytest.raises(ClosedSetViolation):
        train_vae(Greedy(digits.train_x, digits.train_y, base), default_vae_config("tiny", train_images=64),
                  tmp_path / "vae2", CPU)
    with pytest.raises(ClosedSetViolation):
        train_dit(Greedy(digits.train_x, digits.train_y, base), LatentCodec(tmp_path / "vae", CPU), 10,
                  default_config("tiny", train_images=128), tmp_path / "dit2", CPU)


@pytest.mark.slow
def test_resume_after_interruption_matches_uninterrupted_training(digits, tmp_path):
    base = base_indices(digits.train_y, 30, 0)
    view = ClosedSetView(digits.train_x, digits.train_y, base)
    vae_cfg = default_vae_config("tiny", train_images=256, batch_size=32, checkpoint_every_images=64)
    straight = train_vae(view, vae_cfg, tmp_path / "va", CPU)
    partial = train_vae(view, vae_cfg, tmp_path / "vb", CPU, stop_after_images=128)
    assert not partial["finished"] and not (tmp_path / "vb" / "vae.safetensors").exists()
    resumed = train_vae(view, vae_cfg, tmp_path / "vb", CPU)
    assert resumed["finished"] and resumed["loss_curve"] == straight["loss_curve"]
    a, b = LatentCodec(tmp_path / "va", CPU), LatentCodec(tmp_path / "vb", CPU)
    assert (a.shift, a.scale) == (b.shift, b.scale)
    for k, v in a.vae.state_dict().items():
        torch.testing.assert_close(v, b.vae.state_dict()[k])

    cfg = default_config("tiny", train_images=512, batch_size=32, checkpoint_every_images=128)
    straight = train_dit(view, a, 10, cfg, tmp_path / "da", CPU)
    partial = train_dit(view, a, 10, cfg, tmp_path / "db", CPU, stop_after_images=256)
    assert not partial["finished"] and not (tmp_path / "db" / "ema.safetensors").exists()
    resumed = train_dit(view, a, 10, cfg, tmp_path / "db", CPU)
    assert resumed["finished"] and resumed["nimg"] == straight["nimg"]
    assert resumed["loss_curve"] == straight["loss_curve"]
    ea = load_ema(tmp_path / "da", 4, 4, 10, "tiny", CPU).state_dict()
    eb = load_ema(tmp_path / "db", 4, 4, 10, "tiny", CPU).state_dict()
    for k in ea:
        torch.testing.assert_close(ea[k], eb[k])


def test_corrupt_checkpoints_and_weights_are_reported(digits, tmp_path):
    base = base_indices(digits.train_y, 20, 0)
    view = ClosedSetView(digits.train_x, digits.train_y, base)
    train_vae(view, default_vae_config("tiny", train_images=64, batch_size=32), tmp_path / "vae", CPU)
    codec = LatentCodec(tmp_path / "vae", CPU)
    cfg = default_config("tiny", train_images=256, batch_size=32, checkpoint_every_images=64)
    train_dit(view, codec, 10, cfg, tmp_path / "dit", CPU, stop_after_images=96)
    ckpt = tmp_path / "dit" / "training.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="training.pt is corrupt.*delete it to retrain"):
        train_dit(view, codec, 10, cfg, tmp_path / "dit", CPU)
    weights = tmp_path / "vae" / "vae.safetensors"
    weights.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="VAE in .* is missing or corrupt"):
        LatentCodec(tmp_path / "vae", CPU)


@pytest.fixture(scope="module")
def trained_tiny(digits, tmp_path_factory):
    """The `tiny` VAE + DiT with their default recipes on a 200-image digits base."""
    out = tmp_path_factory.mktemp("dit")
    base = base_indices(digits.train_y, 200, 0)
    view = ClosedSetView(digits.train_x, digits.train_y, base)
    config = default_config("tiny")
    from engine.generators.dit_train import vae_config_for
    vae_stats = train_vae(view, vae_config_for(config), out / "vae", CPU)
    codec = LatentCodec(out / "vae", CPU)
    stats = train_dit(view, codec, 10, config, out / "dit", CPU)
    return out, base, codec, vae_stats, stats


@pytest.mark.slow
def test_tiny_vae_and_dit_learn_digits_and_guidance_helps(digits, trained_tiny):
    from engine.catalog.defaults import default_recipe
    from engine.classifiers.train import predict, train_classifier
    out, base, codec, vae_stats, stats = trained_tiny
    assert stats["finished"] and vae_stats["finished"]
    first = np.mean([v for _, v in stats["loss_curve"][:5]])
    last = np.mean([v for _, v in stats["loss_curve"][-5:]])
    assert last < 0.6 * first
    vae_curve = vae_stats["loss_curve"]
    assert np.mean([v for _, v in vae_curve[-5:]]) < 0.5 * np.mean([v for _, v in vae_curve[:5]])
    # The VAE reconstructs real digits it never saw well enough for a classifier to read them.
    heldout = np.setdiff1d(np.arange(len(digits.train_y)), base)
    err = codec.reconstruction_error(digits.train_x[heldout])
    assert err["mae_grey_levels"] < 30
    judge = train_classifier("smallcnn", *[torch.from_numpy(a) for a in (
        digits.train_x.transpose(0, 3, 1, 2).copy(), digits.train_y, digits.test_x.transpose(0, 3, 1, 2).copy(),
        digits.test_y)], 10, default_recipe("smallcnn", "digits", 800, 800, 800, traditional="crop"), 0, CPU).model
    net = load_ema(out / "dit", codec.latent_size, codec.latent_channels, 10, "tiny", CPU)
    agreement = {}
    for scale in (1.0, 4.0):
        x, y = sample_balanced(net, codec, 10, 0, 100, seed=0, device=CPU, cfg_scale=scale)
        assert np.bincount(y).tolist() == [10] * 10
        pred = predict(judge, torch.from_numpy(x).permute(0, 3, 1, 2), 8, CPU).numpy()
        agreement[scale] = (pred == y).mean()
    print(f"digits agreement of DiT-tiny samples by guidance scale: {agreement}")
    assert agreement[4.0] >= 0.6, agreement
    assert agreement[4.0] > agreement[1.0], agreement


def test_memory_estimate_counts_what_backward_keeps():
    """bench/dit_memory.py: on the meta device, activations per image are what one more image adds
    to autograd's saved tensors; checkpointing keeps only the blocks' inputs."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("dit_memory", Path(__file__).resolve().parents[2] / "bench" / "dit_memory.py")
    dit_memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dit_memory)
    out = dit_memory.estimate("tiny", resolution=8, num_classes=10, batch=4, vae="tiny")
    net = DiT(4, 4, 10, "tiny")
    assert out["latent"] == [4, 4, 4] and out["tokens"] == 16
    assert out["parameters"] == sum(p.numel() for p in net.parameters())
    per = out["activations_per_image_mib"]
    assert 0 < per["checkpointing"] < per["no_checkpointing"]
    # One image's saved tensors counted by hand on CPU: the same bytes as on the meta device.
    kept = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t.numel() * t.element_size()) or t,
                                                  lambda t: t):
        net.train()(torch.zeros(2, 4, 4, 4), torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    two = sum(kept)
    kept.clear()
    with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.append(t.numel() * t.element_size()) or t,
                                                  lambda t: t):
        net(torch.zeros(1, 4, 4, 4), torch.zeros(1, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    assert per["no_checkpointing"] == round((two - sum(kept)) / 2 ** 20, 2)
