"""Closed-set runs through the CLI and a miniature `engine study digits`: stored, reused, resumed."""
import json

import pytest

from typer.testing import CliRunner

from engine.cli import app
from store import artifacts
from store import runs as store_runs

pytestmark = pytest.mark.slow  # every test here trains generators and classifiers end to end

runner = CliRunner()
FAST = ["--recipe", "iterations=20", "--generator-option", "train_images=2000"]


def test_closed_runs_reuse_the_generator_and_extend_the_synthetic_set(tmp_path):
    db = tmp_path / "s.duckdb"
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed",
                              "--added", "0,N", "--seeds", "2", *FAST])
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, augmentation="closed")
    assert len(rows) == 2 and set(rows.generator) == {"EDM-tiny"} and rows.generator_id.nunique() == 1
    config = json.loads(rows.config.iloc[0])
    assert config["generator_train_time_s"] > 0 and config["sampling_s_per_image"] > 0
    gid = rows.generator_id.iloc[0]
    gen = artifacts.get_generator(gid, db)
    assert gen["n_base"] == 20 and gen["train_images"] == 2000 and json.loads(gen["memorisation"])["ratio"] > 0
    first_set = artifacts.get_synthetic_set(rows.synthetic_set_id.iloc[0], db)
    assert first_set["n_images"] == 20
    # A larger amount reuses the generator (same id, no retraining) and extends the set.
    mtime = (tmp_path / "artifacts" / "generators" / gid / "ema.safetensors").stat().st_mtime
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed",
                              "--added", "N,3N", "--seeds", "2", *FAST])
    assert res.exit_code == 0 and "2 runs written, 2 already stored" in " ".join(res.output.split())
    assert (tmp_path / "artifacts" / "generators" / gid / "ema.safetensors").stat().st_mtime == mtime
    assert artifacts.get_synthetic_set(rows.synthetic_set_id.iloc[0], db)["n_images"] == 60


def test_corrupt_generator_checkpoint_is_one_line(tmp_path):
    db = tmp_path / "s.duckdb"
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed", "--added", "N",
                              "--seeds", "1", *FAST])
    assert res.exit_code == 0
    gid = store_runs.query_runs(db, augmentation="closed").generator_id.iloc[0]
    weights = tmp_path / "artifacts" / "generators" / gid / "ema.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed", "--added", "2N",
                              "--seeds", "1", *FAST])
    assert res.exit_code == 2 and "are corrupt" in " ".join(res.output.split())


def test_mini_digits_study_runs_and_resumes(tmp_path):
    db = tmp_path / "s.duckdb"
    args = ["study", "digits", "--db", str(db), "--bases", "20,40", "--seeds", "3", *FAST]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, source="engine")
    # per base: 4 real points (incl. the base run) + 4 synthetic points, 3 seeds each
    assert len(rows) == 2 * 8 * 3
    assert set(rows[rows.augmentation == "closed"].n_syn_added // rows[rows.augmentation == "closed"].n_base) == {1, 2, 4, 8}
    text = " ".join(res.output.split())
    assert "Gains over the base run, paired by seed" in text and "Memorisation check" in text
    again = runner.invoke(app, args)
    assert again.exit_code == 0 and len(store_runs.query_runs(db, source="engine")) == 48
    fit = runner.invoke(app, ["fit", "--dataset", "digits", "--classifier", "SmallCNN", "--augmentation", "closed",
                              "--json", "--n-boot", "50", "--db", str(db)])
    out = json.loads(fit.stdout)
    assert {s["n_base"] for s in out["surfaces"]} == {20, 40}
    assert all(s["noise_check"]["tested"] for s in out["surfaces"])


def test_cifar_format_with_resnet110_and_an_rgb_generator(tmp_path):
    # The 32x32 RGB path end to end on a miniature CIFAR-10: ResNet-110 real runs, then a
    # closed-set run whose tiny EDM trains on the 3-channel base.
    from tests.data.test_loaders import write_cifar
    write_cifar(tmp_path / "cifar")
    db = tmp_path / "s.duckdb"
    common = ["run", "--db", str(db), "--dataset", "cifar10", "--data-root", str(tmp_path / "cifar"),
              "--classifier", "resnet110", "--n-base", "20", "--seeds", "1", "--recipe", "epochs=1",
              "--recipe", "batch_size=10"]
    res = runner.invoke(app, [*common, "--added", "0,N"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*common, "--augmentation", "closed", "--added", "N",
                              "--generator-option", "train_images=256", "--generator-option", "batch_size=32"])
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db)
    assert set(rows.dataset) == {"CIFAR-10"} and set(rows.classifier) == {"ResNet-110"}
    assert sorted(rows.augmentation) == ["closed", "real", "real"]
    config = json.loads(rows[rows.augmentation == "real"].config.iloc[0])
    assert config["recipe"]["epochs"] == 1 and config["recipe"]["input_size"] == 32
