"""Closed-set runs through the CLI and a miniature `engine study digits`: stored, reused, resumed."""
import json

from typer.testing import CliRunner

from engine.cli import app
from store import artifacts
from store import runs as store_runs

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
