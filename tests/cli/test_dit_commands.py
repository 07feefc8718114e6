"""`--generator dit` through engine run and the job spec: rows, ids, one VAE per base, bad input."""
import json

import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.spec import SpecError, validate
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
    (["--generator", "dit", "--generator-option", "sampler=euler"], "sampler='euler' must be one of ddpm, ddim, dpm"),
    (["--generator", "edm", "--generator-option", "cfg_scale=4"], "unknown generator option 'cfg_scale'"),
])
def test_bad_generator_choices_are_one_line(tmp_path, args, message):
    res = runner.invoke(app, ["run", "--db", str(tmp_path / "s.duckdb"), "--n-base", "20", "--augmentation",
                              "closed", "--added", "N", "--seeds", "1", *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output


def test_job_spec_takes_the_generator_kind():
    spec = validate({"n_base": 50, "augmentation": "closed", "generator": "dit", "generator_preset": "XL/2",
                     "generator_options": "cfg_scale=4, sampler=ddim"})
    assert spec.generator == "dit" and spec.generator_preset == "XL/2"
    assert validate({"n_base": 50}).generator == "edm"  # the default stays EDM
    assert validate({"n_base": 50, "generator": "dit"}).generator_preset == "tiny"
    assert validate({"n_base": 50}).generator_preset == "tiny"
    with pytest.raises(SpecError, match="unknown generator preset 'small' for dit"):
        validate({"n_base": 50, "generator": "dit", "generator_preset": "small"})
    with pytest.raises(SpecError, match="unknown generator option 'cfg_scale'"):
        validate({"n_base": 50, "augmentation": "closed", "generator_options": "cfg_scale=4"})
    with pytest.raises(SpecError, match="generator option cfg_scale=1000.0 must be between 0 and 100"):
        validate({"n_base": 50, "augmentation": "closed", "generator": "dit", "generator_options": "cfg_scale=1000"})
    with pytest.raises(SpecError, match="generator option sampler='euler' must be one of ddpm, ddim, dpm"):
        validate({"n_base": 50, "augmentation": "closed", "generator": "dit", "generator_options": "sampler=euler"})


def test_queue_page_offers_dit_and_its_presets(tmp_path, monkeypatch):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    from store import jobs
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "main.py"), default_timeout=60)
    at.switch_page("views/queue.py")
    at.run()
    assert not at.exception
    assert list(at.selectbox(key="queue_generator").options) == ["EDM", "DiT"]
    at.radio(key="queue_augmentation").set_value("closed").run()
    at.selectbox(key="queue_generator").set_value("dit").run()
    assert list(at.selectbox(key="queue_preset_dit").options) == ["tiny", "S/2", "B/2", "L/2", "XL/2"]
    at.selectbox(key="queue_preset_dit").set_value("XL/2").run()
    at.text_input(key="queue_gen_opts").set_value("cfg_scale=2").run()
    at.button(key="queue_submit").click().run()
    assert not at.exception and any("Queued job" in s.value for s in at.success)
    spec = json.loads(jobs.list_jobs(db).spec.iloc[0])
    assert (spec["generator"], spec["generator_preset"], spec["generator_options"]) == ("dit", "XL/2", {"cfg_scale": "2"})
    assert "DiT-XL/2" in " ".join(at.dataframe[-1].value.what)
