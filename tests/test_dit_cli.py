"""`--generator dit` through engine run and the job spec: rows, ids, one VAE per base, bad input."""
import json

import pytest
from typer.testing import CliRunner

from engine import jobspec
from engine.cli import app
from engine.spec import SpecError
from store import artifacts
from store import runs as store_runs

runner = CliRunner()
# Seconds, not quality: a few steps of everything.
FAST = ["--recipe", "iterations=10", "--generator", "dit", "--generator-option", "train_images=256",
        "--generator-option", "vae_train_images=128", "--generator-option", "sampling_steps=4"]


@pytest.mark.slow
def test_dit_runs_are_stored_with_their_vae_and_costs(tmp_path):
    db = tmp_path / "s.duckdb"
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed",
                              "--added", "0,N", "--seeds", "1", *FAST])
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, augmentation="closed")
    assert len(rows) == 1 and rows.generator.iloc[0] == "DiT-tiny"
    gid = rows.generator_id.iloc[0]
    assert gid.startswith("dit-") and rows.synthetic_set_id.iloc[0] == f"{gid}-cfg4-ddpm4-s0"
    config = json.loads(rows.config.iloc[0])
    assert config["generator_train_time_s"] > 0 and config["sampling_s_per_image"] > 0
    assert config["sampling"] == {"cfg_scale": 4.0, "sampling_steps": 4, "sampler": "ddpm"}
    gen = artifacts.get_generator(gid, db)
    gconf = json.loads(gen["config"])
    assert gconf["name"] == "DiT-tiny" and gconf["latent_size"] == 4 and gconf["loss_curve"]
    assert gconf["vae"]["heldout_reconstruction"]["n_images"] == 780  # 800 - the 20 of the base
    vaes = list((tmp_path / "artifacts" / "vaes").iterdir())
    assert len(vaes) == 1 and gconf["vae"]["vae_id"] == vaes[0].name
    # Another DiT on the same base (other guidance, other DiT seed) reuses the base's VAE.
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed", "--added", "N",
                              "--seeds", "1", *FAST, "--generator-option", "seed=1"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "artifacts" / "vaes").iterdir())) == 2  # the VAE seed follows the generator's
    res = runner.invoke(app, ["run", "--db", str(db), "--n-base", "20", "--augmentation", "closed", "--added", "N",
                              "--seeds", "1", *FAST, "--generator-option", "cfg_scale=1.5"])
    assert res.exit_code == 0, res.output
    assert len(list((tmp_path / "artifacts" / "vaes").iterdir())) == 2
    ids = store_runs.query_runs(db, augmentation="closed").synthetic_set_id
    assert f"{gid}-cfg1.5-ddpm4-s0" in set(ids)


@pytest.mark.parametrize("args,message", [
    (["--generator", "gan"], "unknown generator 'gan'; valid: edm, dit"),
    (["--generator", "dit", "--generator-preset", "cifar"], "unknown generator preset 'cifar' for dit"),
    (["--generator", "dit", "--generator-option", "sampler=euler"], "unknown sampler 'euler'"),
    (["--generator", "edm", "--generator-option", "cfg_scale=4"], "unknown edm generator option 'cfg_scale'"),
])
def test_bad_generator_choices_are_one_line(tmp_path, args, message):
    res = runner.invoke(app, ["run", "--db", str(tmp_path / "s.duckdb"), "--n-base", "20", "--augmentation",
                              "closed", "--added", "N", "--seeds", "1", *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output


def test_job_spec_takes_the_generator_kind():
    spec = jobspec.validate({"n_base": 50, "augmentation": "closed", "generator": "dit", "generator_preset": "XL/2",
                             "generator_options": "cfg_scale=4, sampler=ddim"})
    assert spec["generator"] == "dit" and spec["generator_preset"] == "XL/2"
    assert jobspec.validate({"n_base": 50})["generator"] == "edm"  # the default stays EDM
    assert jobspec.validate({"n_base": 50, "generator": "dit"})["generator_preset"] == "tiny"
    with pytest.raises(SpecError, match="unknown generator preset 'small' for dit"):
        jobspec.validate({"n_base": 50, "generator": "dit", "generator_preset": "small"})
    with pytest.raises(SpecError, match="unknown generator option key 'cfg_scale'"):
        jobspec.validate({"n_base": 50, "generator_options": "cfg_scale=4"})
