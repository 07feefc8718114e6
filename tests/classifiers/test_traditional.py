"""The traditional-augmentation baseline (issue 13, the paper's Tab. 6): --traditional is validated
once, decides the recipe's crop and flip, is stored in its own column (migrated, exported, imported),
and is part of a setting's identity: a fit never pools runs trained with different ones."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.analysis.fit import analyse
from engine.analysis.select import one_traditional, settings
from engine.analysis.surface import FitError
from engine.cli import app
from engine.catalog.defaults import default_recipe
from engine.catalog.vocab import TRADITIONAL
from engine.catalog.recipes import traditional_of, with_traditional
from engine.catalog.datasets import default_traditional
from engine.spec import SpecError, StudySpec, summary, validate
from engine.execution.study import tab6_grids, tab6_rows
from store import exchange as store_exchange
from store import runs as store_runs
from store.db import connect, migrate
from store.migrations import MIGRATIONS

runner = CliRunner()


def test_names_and_recipes_agree():
    recipe = default_recipe("resnet110", "CIFAR-10", 500, 500, 50_000)
    for name in TRADITIONAL:
        r = with_traditional(recipe, name)
        assert traditional_of(r) == name
        assert (r.crop_pad == recipe.crop_pad) == ("crop" in name) and r.flip == ("flip" in name)
    with pytest.raises(ValueError, match="'rotate'"):
        with_traditional(recipe, "rotate")


@pytest.mark.parametrize("raw, want", [
    ({"dataset": "digits"}, "crop"),                                   # a flipped digit is another digit
    ({"dataset": "cifar10", "added": "0"}, "crop+flip"),               # the paper's, everywhere else
    ({"dataset": "digits", "traditional": "none"}, "none"),
    ({"dataset": "cifar10", "added": "0", "traditional": "flip"}, "flip"),
    ({"dataset": "cifar10", "added": "0", "recipe": "flip=false"}, "crop"),   # overrides say it without the flag
    ({"dataset": "digits", "traditional": "crop", "recipe": "crop_pad=2"}, "crop"),
])
def test_validate_resolves_the_traditional_augmentation(raw, want):
    spec = validate(raw)
    assert spec.traditional == want
    assert validate(spec.to_dict()) == spec   # what a queued job stores validates to itself


@pytest.mark.parametrize("raw, message", [
    ({"traditional": "rotate"}, "'rotate'; valid: crop+flip, crop, flip, none"),
    ({"traditional": 3}, "traditional = 3 must be text"),
    ({"traditional": "none", "recipe": "flip=true"}, "make the traditional augmentation 'flip', not the 'none'"),
    ({"traditional": "crop", "recipe": "crop_pad=0"}, "'none', not the 'crop'"),
])
def test_bad_traditional_is_one_line(raw, message):
    with pytest.raises(SpecError, match=message.replace("+", r"\+").replace("(", r"\(")):
        validate(raw)


def test_cli_refuses_a_bad_value_before_anything_runs(tmp_path):
    db = tmp_path / "s.duckdb"
    res = runner.invoke(app, ["run", "--dataset", "digits", "--traditional", "mixup", "--db", str(db)])
    assert res.exit_code != 0 and "mixup" in res.output and not db.exists()
    res = runner.invoke(app, ["queue", "add", "--dataset", "digits", "--traditional", "none", "--json",
                              "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["spec"]["traditional"] == "none"


def test_plan_keys_runs_by_their_traditional_augmentation():
    from engine.data.loaders import load_digits_dataset
    from engine.execution.local import plan
    ds = load_digits_dataset()
    keys = {}
    for name in TRADITIONAL:
        runs = plan(validate({"dataset": "digits", "added": "0", "seeds": 1, "traditional": name}), ds)
        assert [p.traditional for p in runs] == [name]
        assert traditional_of(type(default_recipe("smallcnn", "digits", 1, 1, 1))(
            **{**runs[0].config["recipe"], "milestones": tuple(runs[0].config["recipe"]["milestones"])})) == name
        keys[name] = runs[0].key
    assert len(set(keys.values())) == 4
    # The default names what digits always trained with: the same run, the same key as before the option.
    default = plan(validate({"dataset": "digits", "added": "0", "seeds": 1}), ds)[0]
    assert default.key == keys["crop"]
    old = default_recipe("smallcnn", "digits", 50, 50, 800, traditional="crop").to_dict()
    assert default.config["recipe"] == old


def test_summary_names_a_non_default_traditional():
    assert "none" in summary(validate({"dataset": "digits", "traditional": "none"}))
    assert "crop" not in summary(validate({"dataset": "digits"}))
    assert default_traditional("digits") == "crop" and default_traditional("BloodMNIST") == "crop+flip"
    assert StudySpec().traditional is None


def _store_before_traditional(path):
    with connect(path) as con:
        # the schema just before the step that adds the column, wherever later steps put it
        migrate(con, target=next(i for i, step in enumerate(MIGRATIONS) if "ADD COLUMN traditional" in step[0]))
        assert "traditional" not in {r[0] for r in con.execute("DESCRIBE runs").fetchall()}
        recipe = lambda crop, flip: json.dumps({"recipe": {"crop_pad": crop, "flip": flip}})  # noqa: E731
        rows = [("e1", "engine", "digits", recipe(1, False)), ("e2", "engine", "CIFAR-10", recipe(4, True)),
                ("e3", "engine", "CIFAR-10", recipe(0, True)), ("e4", "engine", "digits", recipe(0, False)),
                ("p1", "paper", "CIFAR-10", '{"table": 9}'), ("i1", "import", "digits", None),
                ("i2", "import", "Mine", None)]
        for key, source, dataset, config in rows:
            con.execute("INSERT INTO runs (run_id, run_key, source, dataset, classifier, augmentation, n_base, "
                        "n_real_added, n_syn_added, top1, config) VALUES (?, ?, ?, ?, 'Net', 'real', 10, 0, 0, 50, ?)",
                        [key, key, source, dataset, config])


def test_migration_fills_the_column_from_what_each_run_did(tmp_path):
    db = tmp_path / "old.duckdb"
    _store_before_traditional(db)
    with connect(db) as con:
        migrate(con)
        got = dict(con.execute("SELECT run_key, traditional FROM runs").fetchall())
    assert got == {"e1": "crop", "e2": "crop+flip", "e3": "flip", "e4": "none", "p1": "crop+flip",
                   "i1": "crop", "i2": "crop+flip"}


def test_published_runs_used_crop_and_flip(paper_runs):
    assert set(paper_runs.traditional) == {"crop+flip"}


def test_export_import_round_trip_and_default(tmp_path):
    db = tmp_path / "a.duckdb"
    store_runs.insert_runs([
        {"run_id": f"r{i}", "run_key": f"k{i}", "source": "engine", "dataset": "digits", "classifier": "SmallCNN",
         "augmentation": "real", "n_base": 50, "n_real_added": 0, "n_syn_added": 0, "seed": i, "top1": 80.0 + i,
         "n_total": 800, "traditional": t} for i, t in enumerate(TRADITIONAL)], db)
    out = tmp_path / "runs.csv"
    store_exchange.export_runs(out, db)
    assert list(pd.read_csv(out).traditional) == list(TRADITIONAL)
    db2 = tmp_path / "b.duckdb"
    assert store_exchange.import_runs(out, db2) == (4, 0)
    back = store_runs.query_runs(db2).sort_values("top1")
    assert list(back.traditional) == list(TRADITIONAL)
    # A file without the column (every file made before it) imports with each dataset's default.
    plain = pd.read_csv(out).drop(columns=["traditional"]).head(1)
    plain = pd.concat([plain, plain.assign(dataset="Mine", top1=70.0, n_total=None)])
    plain.to_csv(tmp_path / "plain.csv", index=False)
    db3 = tmp_path / "c.duckdb"
    store_exchange.import_runs(tmp_path / "plain.csv", db3)
    assert dict(store_runs.query_runs(db3)[["dataset", "traditional"]].values) == {"digits": "crop",
                                                                                    "Mine": "crop+flip"}
    bad = pd.read_csv(out).assign(traditional=["crop", "rotate", "none", "flip"])
    bad.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(Exception, match="row 2: traditional = 'rotate' is not one of crop\\+flip, crop, flip, none"):
        store_exchange.import_runs(tmp_path / "bad.csv", tmp_path / "d.duckdb")


def test_a_fit_never_pools_traditional_augmentations(paper_runs):
    cifar = paper_runs[(paper_runs.dataset == "CIFAR-10")]
    other = cifar.assign(traditional="none", top1=cifar.top1 - 4 + 0.02 * cifar.n_real_added ** 0.5,
                         run_id=cifar.run_id + "-none")
    both = pd.concat([cifar, other], ignore_index=True)
    kw = dict(source="paper", n_boot=0)
    plain = analyse(cifar, "CIFAR-10", "ResNet-110", "closed", "EDM", **kw)
    alone = analyse(other, "CIFAR-10", "ResNet-110", "closed", "EDM", **kw)
    default = analyse(both, "CIFAR-10", "ResNet-110", "closed", "EDM", **kw)
    chosen = analyse(both, "CIFAR-10", "ResNet-110", "closed", "EDM", "none", **kw)
    assert default.traditional == "crop+flip" and (default.c1, default.c2) == (plain.c1, plain.c2)
    assert chosen.traditional == "none" and (chosen.c1, chosen.c2) == (alone.c1, alone.c2)
    assert (alone.c1, alone.c2) != (plain.c1, plain.c2)
    assert any("none" in w and "never pooled" in w for w in default.warnings)
    with pytest.raises(FitError, match="traditional augmentation 'flip'"):
        analyse(both, "CIFAR-10", "ResNet-110", "closed", "EDM", "flip", **kw)
    keys = [s for s in settings(both) if s[:4] == ("CIFAR-10", "ResNet-110", "closed", "EDM")]
    assert sorted(k[4] for k in keys) == ["crop+flip", "none"]
    # With a source named, the default is counted within it.
    engine = pd.concat([other.assign(source="engine", run_id=other.run_id + f"-e{k}") for k in range(2)])
    mixed = pd.concat([cifar, engine], ignore_index=True)
    assert analyse(mixed, "CIFAR-10", "ResNet-110", "closed", "EDM", source="paper", n_boot=0).traditional == "crop+flip"
    picked = analyse(mixed, "CIFAR-10", "ResNet-110", "closed", "EDM", n_boot=0)
    assert (picked.traditional, picked.source) == ("none", "engine")
    # Most synthetic runs win when none is asked for.
    fewer = pd.concat([cifar, other[other.augmentation == "real"], other[other.augmentation == "closed"].head(2)])
    assert one_traditional(fewer, "closed", "EDM", None)[1] == "crop+flip"


def test_runs_page_curves_keep_traditional_augmentations_apart(tmp_path):
    db = tmp_path / "s.duckdb"
    rows = []
    for t, acc in (("crop", 80.0), ("none", 70.0)):
        for added in (0, 50):
            rows.append({"run_id": f"{t}{added}", "run_key": f"{t}{added}", "source": "engine", "dataset": "digits",
                         "classifier": "SmallCNN", "augmentation": "real", "n_base": 50, "n_real_added": added,
                         "n_syn_added": 0, "seed": 0, "top1": acc + added / 10, "traditional": t})
    store_runs.insert_runs(rows, db)
    pts = store_runs.point_means(db)
    assert dict(pts[pts.added == 0][["traditional", "acc"]].values) == {"crop": 80.0, "none": 70.0}
    assert store_runs.picker_values(db)["traditional"] == ["crop", "none"]
    assert len(store_runs.query_runs(db, traditional="none")) == 2


def test_tab6_grid_and_table():
    grids = tab6_grids([50])
    assert [(a, x, t) for _, a, x, t in grids] == [("real", "0", "none"), ("real", "0", "flip"), ("real", "0", "crop"),
                                                   ("real", "0", "crop+flip"), ("closed", "N", "none")]
    for n_base, aug, added, trad in grids:
        validate({"dataset": "digits", "n_base": n_base, "augmentation": aug, "added": added, "traditional": trad,
                  "generator_preset": "tiny"})
    runs = pd.DataFrame([{"n_base": 50, "augmentation": aug, "traditional": t, "generator": g, "seed": s,
                          "top1": acc + s} for aug, t, g, acc in (("real", "none", None, 80), ("real", "crop", None, 83),
                                                                  ("closed", "none", "EDM-tiny", 81))
                         for s in range(3)])
    rows = {(r["traditional"], r["generative"]): r for r in tab6_rows(runs)}
    assert rows[("none", "—")]["gain"] is None and rows[("none", "—")]["acc"] == 81
    assert rows[("crop", "—")]["gain"] == 3 and rows[("crop", "—")]["gain_sd"] == 0
    assert rows[("none", "EDM-tiny")]["gain"] == 1 and rows[("none", "EDM-tiny")]["seeds"] == 3
    assert np.isclose(rows[("crop", "—")]["acc_sd"], 1.0)


def test_improvement_ratio_never_pools_traditional_augmentations():
    from engine.analysis.ir import improvement_ratio
    rows = []
    for t, shift in (("crop+flip", 0.0), ("none", -10.0)):
        for aug, gen, syn in (("real", None, 0), ("closed", "EDM", 100), ("open", "SD", 100)):
            for s in range(3):
                gain = {"real": 0, "closed": 2, "open": 4}[aug] * (3 if t == "none" else 1)
                rows.append({"source": "engine", "dataset": "Toy", "classifier": "Net", "augmentation": aug,
                             "generator": gen, "n_base": 100, "n_real_added": 0, "n_syn_added": syn, "seed": s,
                             "top1": 60 + shift + gain + s, "traditional": t})
    frame = pd.DataFrame(rows)
    frame = pd.concat([frame, frame[(frame.traditional == "crop+flip") & (frame.augmentation == "closed")]
                       .assign(n_base=100, seed=frame.seed + 10)])   # crop+flip has the most closed runs
    # Each traditional augmentation on its own row, against its own base-only runs.
    ir = improvement_ratio(frame, "Toy", "Net", n_boot=50)
    assert list(zip(ir.traditional, ir.gain_closed, ir.gain_open)) == [("crop+flip", 2.0, 4.0), ("none", 6.0, 12.0)]
    ir = improvement_ratio(frame, "Toy", "Net", n_boot=50, traditional="none")
    assert list(zip(ir.traditional, ir.gain_closed, ir.gain_open)) == [("none", 6.0, 12.0)]
    # Runs that record none are a group of their own, never pooled with those that do.
    unrecorded = frame[frame.traditional == "none"].assign(traditional=None, top1=lambda f: f.top1 + 1)
    ir = improvement_ratio(pd.concat([frame[frame.traditional == "crop+flip"], unrecorded]), "Toy", "Net", n_boot=50)
    assert [t if isinstance(t, str) else None for t in ir.traditional] == ["crop+flip", None]
    assert list(ir.gain_closed) == [2.0, 6.0]
    with pytest.raises(FitError, match="no closed-set runs with traditional augmentation 'flip'"):
        improvement_ratio(frame, "Toy", "Net", traditional="flip")



@pytest.mark.slow
def test_runs_page_filters_on_traditional_and_queue_page_offers_it(tmp_path, monkeypatch):
    from pathlib import Path
    from streamlit.testing.v1 import AppTest
    db = tmp_path / "s.duckdb"
    store_runs.insert_runs([
        {"run_id": f"{t}{a}{s}", "run_key": f"{t}{a}{s}", "source": "engine", "dataset": "digits",
         "classifier": "SmallCNN", "augmentation": "real", "n_base": 50, "n_real_added": a, "n_syn_added": 0,
         "seed": s, "top1": 70.0 + a / 10 + s, "traditional": t}
        for t in ("crop", "none") for a in (0, 50) for s in range(2)], db)
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "main.py"), default_timeout=60)
    at.run()
    assert not at.exception
    names = {t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]}
    assert names == {"n_base 50 · real · crop", "n_base 50 · real · none"}
    at.multiselect(key="runs_traditional").set_value(["none"]).run()
    assert any("4 of 8 runs" in str(c.value) for c in at.caption)
    assert {t["name"] for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"]} == {"n_base 50 · real"}
    at.switch_page("views/queue.py").run()
    at.selectbox(key="queue_traditional").set_value("none").run()
    assert not at.exception and not at.error


@pytest.mark.slow
def test_study_digits_traditional_baseline_prints_tab6(tmp_path):
    db = tmp_path / "s.duckdb"
    args = ["study", "digits", "--traditional-baseline", "--bases", "20", "--seeds", "2", "--db", str(db),
            "--recipe", "iterations=20", "--generator-option", "train_images=2000"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, source="engine")
    assert len(rows) == 5 * 2 and sorted(set(rows.traditional)) == sorted(TRADITIONAL)
    closed = rows[rows.augmentation == "closed"]
    assert set(closed.traditional) == {"none"} and set(closed.n_syn_added) == {20}
    text = " ".join(res.output.split())
    assert "the paper's Tab. 6" in text and "EDM-tiny" in text
    again = runner.invoke(app, args)   # resumable: nothing is trained twice
    assert again.exit_code == 0 and len(store_runs.query_runs(db, source="engine")) == 10
