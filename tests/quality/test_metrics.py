"""Quality metrics, offline: Fréchet distance, IS, the Inception path on random weights, the domain
classifier, diversity, the store and the CLI."""
import json

import numpy as np
import pytest
import scipy.linalg
import torch
from typer.testing import CliRunner

from engine.quality import fid as fidlib
from engine.quality.diversity import diversity
from engine.quality.domain import train_domain_classifier
from store import quality as store_quality
from tests.quality_store import make_store_with_set


def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q


def test_frechet_distance_matches_the_closed_form_for_commuting_gaussians():
    # S1 = Q D1 Q', S2 = Q D2 Q' commute, so FD = |mu1 - mu2|^2 + sum (sqrt d1 - sqrt d2)^2.
    rng = np.random.default_rng(0)
    d = 6
    q = _rotation(d, 1)
    d1, d2 = rng.uniform(0.1, 3, d), rng.uniform(0.1, 3, d)
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(d1) - np.sqrt(d2)) ** 2)
    got = fidlib.frechet_distance(mu1, q @ np.diag(d1) @ q.T, mu2, q @ np.diag(d2) @ q.T)
    assert got == pytest.approx(expected, rel=1e-9)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert fidlib.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)


def test_frechet_distance_agrees_with_the_sqrtm_formula_for_general_covariances():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(7, 7)), rng.normal(size=(7, 7))
    s1, s2 = a @ a.T + 0.1 * np.eye(7), b @ b.T + 0.1 * np.eye(7)
    mu1, mu2 = rng.normal(size=7), rng.normal(size=7)
    covmean = scipy.linalg.sqrtm(s1 @ s2).real
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean)
    assert fidlib.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    with pytest.raises(ValueError, match="mismatched"):
        fidlib.frechet_distance(mu1, s1, mu2[:3], s2[:3, :3])


def test_fd_of_a_set_with_itself_is_zero_and_grows_with_a_shift():
    feats = np.random.default_rng(3).normal(size=(300, 16))
    assert fidlib.feature_fd(feats, feats) == pytest.approx(0, abs=1e-8)
    assert fidlib.feature_fd(feats, feats + 1.0) == pytest.approx(16, rel=1e-6)  # |shift|^2
    value, lo, hi = fidlib.fd_with_interval(feats[:150], feats[150:], n_boot=30)
    assert lo <= value <= hi


def test_inception_score_is_one_for_uniform_and_k_for_confident_balanced_predictions():
    k = 10
    assert fidlib.inception_score(np.full((200, k), 1 / k), splits=1)[0] == pytest.approx(1.0)
    confident = np.eye(k)[np.arange(200) % k]
    assert fidlib.inception_score(confident, splits=1)[0] == pytest.approx(k, rel=1e-6)
    mean, sd = fidlib.inception_score(confident, splits=10)
    assert mean == pytest.approx(k, rel=1e-6) and sd == pytest.approx(0, abs=1e-6)


@pytest.mark.slow
def test_inception_path_reads_a_local_weights_file_and_never_downloads(tmp_path, monkeypatch):
    from pytorch_fid import inception as pf
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(fidlib.InceptionWeightsMissing) as missing:
        fidlib.find_weights()
    where = tmp_path / "torch" / "hub" / "checkpoints"
    assert fidlib.WEIGHTS_FILE in str(missing.value) and str(where) in str(missing.value)
    fidlib.write_random_weights(where / fidlib.WEIGHTS_FILE)

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")
    monkeypatch.setattr(pf, "load_state_dict_from_url", no_network)
    path = fidlib.find_weights()
    net = fidlib.FIDInception(path, torch.device("cpu"))
    assert pf.load_state_dict_from_url is no_network  # the loader is put back
    images = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 1), dtype=np.uint8)
    feats, probs = net(images, batch=2)
    assert feats.shape == (4, 2048) and probs.shape == (4, 1008)
    assert np.allclose(probs.sum(axis=1), 1)
    assert not fidlib.sha256_of(path).startswith(fidlib.OFFICIAL_SHA256_PREFIX)


@pytest.fixture(scope="module")
def digits():
    from engine.data.loaders import load_digits_dataset
    return load_digits_dataset()


@pytest.mark.slow
def test_domain_classifier_separates_noise_from_digits(digits):
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, digits.train_x.shape, dtype=np.uint8)
    res = train_domain_classifier(digits.train_x, digits.train_y, noise, digits.train_y, "smallcnn", "digits",
                                  torch.device("cpu"))
    assert res.accuracy >= 97 and res.ci_low > 90


@pytest.mark.slow
def test_domain_classifier_is_at_chance_on_two_halves_of_real_digits(digits):
    x, y = digits.train_x, digits.train_y
    res = train_domain_classifier(x[:400], y[:400], x[400:], y[400:], "smallcnn", "digits", torch.device("cpu"))
    assert res.ci_low <= 50 <= res.ci_high, (res.accuracy, res.ci_low, res.ci_high)
    assert res.n_heldout == 240


def test_diversity_is_higher_for_real_digits_than_for_repeated_images(digits):
    feats = digits.train_x.reshape(len(digits.train_x), -1).astype(float)
    first = np.array([np.flatnonzero(digits.train_y == c)[0] for c in range(10)])
    repeated = np.repeat(first, 10)
    assert diversity(feats, digits.train_y) > 0
    assert diversity(feats[repeated], digits.train_y[repeated]) == 0
    with pytest.raises(ValueError):
        diversity(feats[:1], digits.train_y[:1])


def test_store_replaces_a_metric_and_resolves_sets_by_id_generator_id_and_name(tmp_path):
    db = make_store_with_set(tmp_path)
    store_quality.write_metrics("gen-a-s0", [{"metric": "fd", "value": 1.0}], db)
    store_quality.write_metrics("gen-a-s0", [{"metric": "fd", "value": 2.0, "config": {"k": 1}}], db)
    q = store_quality.query_quality(db, "gen-a-s0")
    fd = q[q.metric == "fd"]
    assert len(fd) == 1 and fd.value.iloc[0] == 2.0 and json.loads(fd.config.iloc[0]) == {"k": 1}
    for query in ("gen-a-s0", "gen-a", "EDM-tiny"):
        assert store_quality.resolve_sets(query, db).synthetic_set_id.tolist() == ["gen-a-s0"]
    assert store_quality.resolve_sets("nothing", db).empty
    gains = store_quality.gains_at_ratio(db)
    assert gains.synthetic_set_id.tolist() == ["gen-a-s0"] and gains.pairs.iloc[0] == 2


@pytest.mark.slow
def test_cli_computes_cheap_metrics_and_names_the_missing_inception_file(tmp_path, monkeypatch):
    from engine.cli import app
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    db = make_store_with_set(tmp_path)
    runner = CliRunner()
    out = runner.invoke(app, ["quality", "gen-a-s0", "--metrics", "fd,diversity,memorisation,fid", "--json",
                              "--device", "cpu", "--db", str(db)])
    assert out.exit_code == 0, out.output
    rows = {r["metric"]: r for r in json.loads(out.stdout.strip().splitlines()[-1])}
    assert {"fd", "fd_real", "diversity", "diversity_real", "memorisation"} <= set(rows)
    assert "fid" not in rows and fidlib.WEIGHTS_FILE in out.stderr
    assert rows["fd"]["ci_low"] <= rows["fd"]["value"] <= rows["fd"]["ci_high"]
    # The fixture's "synthetic" images are base images themselves: memorisation must see copies.
    assert rows["memorisation"]["value"] < 0.2
    bad = runner.invoke(app, ["quality", "nope", "--db", str(db)])
    assert bad.exit_code == 2 and "no synthetic set" in bad.stderr
    bad = runner.invoke(app, ["quality", "gen-a-s0", "--metrics", "fidd", "--db", str(db)])
    assert bad.exit_code == 2 and "unknown metric 'fidd'" in bad.stderr


def test_generator_training_records_its_loss_curve_across_a_resume(tmp_path, digits):
    from engine.generators.edm_train import default_config, train_generator
    from engine.generators.guard import ClosedSetView
    view = ClosedSetView(digits.train_x, digits.train_y, np.arange(50))
    cfg = default_config("tiny", train_images=1280, batch_size=64, checkpoint_every_images=640)
    first = train_generator(view, 10, cfg, tmp_path / "g", torch.device("cpu"), stop_after_images=640)
    assert not first["finished"] and first["loss_curve"][-1][0] == 640
    done = train_generator(view, 10, cfg, tmp_path / "g", torch.device("cpu"))
    steps = [p[0] for p in done["loss_curve"]]
    assert steps[:len(first["loss_curve"])] == [p[0] for p in first["loss_curve"]]
    assert steps == sorted(steps) and steps[-1] == 1280 and len(steps) >= 10
