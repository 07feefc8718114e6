"""`engine fit / equiv / report / paper-check`: sources said, bad amounts refused, no answer is an error."""
import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from engine.analysis.fit import MAX_N_BOOT
from engine.cli import app
from store import runs as store_runs
from store.db import connect, migrate

runner = CliRunner()
CIFAR = ["--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--augmentation", "closed"]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def one_line_error(res, text):
    assert res.exit_code != 0
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and text in lines[0], res.output


@pytest.mark.parametrize("cmd", [["fit", *CIFAR], ["equiv", *CIFAR, "--n-base", 5000, "--n-real-added", 5000]])
def test_n_boot_is_capped_with_one_line(paper_db, cmd):
    res = invoke(*cmd, "--n-boot", 2_000_000, "--db", paper_db)
    one_line_error(res, f"between 0 and {MAX_N_BOOT:,}")


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("flag", ["--n-real-added", "--n-syn-added"])
def test_equiv_refuses_non_finite_amounts(paper_db, flag, value):
    res = invoke("equiv", *CIFAR, "--n-base", 5000, flag, value, "--db", paper_db)
    one_line_error(res, value)


def test_report_without_any_answer_exits_nonzero(tmp_path):
    path = tmp_path / "empty.duckdb"
    with connect(path) as con:
        migrate(con)
    res = invoke("report", "--n-boot", 0, "--db", path)
    assert res.exit_code != 0 and "no setting" in res.output


def _noise_store(tmp_path):
    """Engine runs whose synthetic images gain nothing beyond seed noise, while real ones do."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(3):
        base = 80 + rng.normal(0, 0.3)
        for kind, n, acc in [("real", 0, base), ("real", 500, base + 4 + rng.normal(0, 0.2)),
                             ("real", 1000, base + 6 + rng.normal(0, 0.2)),
                             ("closed", 500, base + rng.normal(0, 0.5)), ("closed", 1000, base + rng.normal(0, 0.5)),
                             ("closed", 2000, base + rng.normal(0, 0.5))]:
            rows.append({"run_key": f"t:{kind}:{n}:{seed}", "run_id": f"t-{kind}-{n}-{seed}", "source": "engine",
                         "dataset": "Toy", "classifier": "Net", "augmentation": kind,
                         "generator": None if kind == "real" else "EDM", "n_base": 500,
                         "n_real_added": n if kind == "real" else 0, "n_syn_added": n if kind != "real" else 0,
                         "seed": seed, "top1": float(acc), "n_total": 5000})
    path = tmp_path / "noise.duckdb"
    with connect(path) as con:
        migrate(con)
    store_runs.insert_runs(rows, path)
    return path


TOY = ["--dataset", "Toy", "--classifier", "Net", "--augmentation", "closed"]


def test_equiv_within_noise_says_more_than_k(tmp_path):
    db = _noise_store(tmp_path)
    res = invoke("equiv", *TOY, "--n-base", 500, "--n-real-added", 500, "--json", "--db", db)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["bound"]["kind"] == "more_than" and out["bound"]["n_syn_added"] == 2000
    assert out["source"] == "engine"
    text = invoke("equiv", *TOY, "--n-base", 500, "--n-real-added", 500, "--db", db)
    assert "more than 2,000 synthetic images" in text.output and "source: engine" in text.output


def test_equiv_between_the_base_run_and_the_first_real_run_reads_the_measured_curves(tmp_path):
    db = _noise_store(tmp_path)
    # 100 real images: no real run at or below it, so the seed-paired bound cannot say; the
    # verdict reads the real curve between the base-only run and 500 added, and the synthetic
    # runs never reach it: a one-sided answer, graded low, exit 0.
    res = invoke("equiv", *TOY, "--n-base", 500, "--n-real-added", 100, "--db", db)
    assert res.exit_code == 0, res.output
    assert "verdict (grade D)" in res.output and "more than 2,000" in res.output
    assert "at this base: not measurable" in res.output


def test_equiv_without_answer_exits_nonzero(tmp_path):
    db = _noise_store(tmp_path)
    # No runs at n_base 300 and no Eq. 1 (synthetic gains are noise): nothing can answer.
    res = invoke("equiv", *TOY, "--n-base", 300, "--n-real-added", 100, "--db", db)
    assert res.exit_code == 1 and "error: no answer:" in res.output
    assert "no equivalence can be estimated" in res.output
    res = invoke("equiv", *TOY, "--n-base", 300, "--n-real-added", 100, "--json", "--db", db)
    assert res.exit_code == 1 and json.loads(res.stdout)["verdict"]["value"] is None


def test_fit_says_its_source_and_the_bounds(tmp_path, paper_db):
    res = invoke("fit", *CIFAR, "--n-boot", 0, "--db", paper_db)
    assert res.exit_code == 0 and "source: paper" in res.output
    res = invoke("fit", *TOY, "--n-boot", 0, "--db", _noise_store(tmp_path))
    assert res.exit_code != 0 and "more than 2,000 synthetic images" in res.output


def test_fit_refuses_a_source_without_runs(paper_db):
    res = invoke("fit", *CIFAR, "--source", "engine", "--db", paper_db)
    one_line_error(res, "source 'engine'")


def test_degenerate_fit_exits_nonzero_and_says_not_identified(paper_db):
    res = invoke("fit", "--dataset", "ImageNet-100", "--classifier", "ResNet-50", "--augmentation", "closed",
                 "--features", "best:aic", "--n-boot", 0, "--db", paper_db)
    assert res.exit_code != 0 and "not identified" in res.output and "1.2e+08" not in res.output.split("not identified")[0]


def test_paper_check_json_has_all_seven_equations_and_both_table9_readings():
    res = invoke("paper-check", "--json", "--n-boot", 30)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert [r["equation"] for r in rows] == [2, 3, 4, 5, 6, 8, 9]
    keys = {"equation", "dataset", "classifier", "augmentation", "published_c1", "published_c2", "c1", "c2",
            "c1_ci", "c2_ci", "inside", "note"}
    assert all(keys <= set(r) for r in rows)
    eq3 = rows[1]
    assert (eq3["published_c1"], eq3["published_c2"]) == (0.88, 2.53)
    assert eq3["tab9"] == "total" and eq3["tab9_other_reading"]["tab9"] == "printed"
    assert eq3["c1"] != pytest.approx(eq3["tab9_other_reading"]["c1"], rel=1e-3)
    printed = json.loads(invoke("paper-check", "--json", "--n-boot", 30, "--tab9", "printed").stdout)
    assert printed[1]["c1"] == pytest.approx(eq3["tab9_other_reading"]["c1"])
    eq5 = rows[3]
    assert "extrapolated" in eq5["note"] and "n_base 26,000 alone" in eq5["note"]


def test_paper_check_refuses_an_unknown_reading():
    one_line_error(invoke("paper-check", "--tab9", "both"), "unknown --tab9 reading 'both'")


# ------------------------------------------------------------------------- engine ir (Eq. 7)

def test_ir_of_the_published_runs_is_each_gain_over_the_other(paper_db, paper_runs):
    res = invoke("ir", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--json", "--db", paper_db)
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    cifar = paper_runs[(paper_runs.dataset == "CIFAR-10") & (paper_runs.classifier == "ResNet-110")]

    def top1(aug, n_base, n_syn):
        hit = cifar[(cifar.augmentation.isin(aug)) & (cifar.n_base == n_base) & (cifar.n_syn_added == n_syn)
                    & (cifar.n_real_added == 0)]
        assert hit.top1.nunique() == 1  # the base-only run is listed under each augmentation with one value
        return float(hit.top1.iloc[0])

    assert [r["n_base"] for r in rows] == [500, 5000, 25000, 50000]
    for r in rows:
        b = top1(["real", "closed", "open"], r["n_base"], 0)
        closed, opened = top1(["closed"], r["n_base"], r["n_base"]) - b, top1(["open"], r["n_base"], r["n_base"]) - b
        assert r["IR"] == pytest.approx(closed / opened)
        assert (r["generator_closed"], r["generator_open"], r["source"], r["traditional"]) == (
            "EDM", "CIFAKE", "paper", "crop+flip")
        assert r["IR_lo"] is None and r["n_seeds"] == 0  # published means: no interval
    text = invoke("ir", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--db", paper_db).output
    assert f"{rows[0]['IR']:.3g}" in text and "no seeds, no interval" in text and "crop+flip" in text


def _ir_store(tmp_path, open_gains):
    """Engine runs at one base with three seeds: closed-set +4 points, open-set `open_gains` per seed."""
    rows = []
    for seed, gain_open in enumerate(open_gains):
        for aug, n_syn, acc in (("real", 0, 70.0 + seed / 10), ("closed", 100, 74.0 + seed / 5),
                                ("open", 100, 70.0 + seed / 10 + gain_open)):
            rows.append({"run_key": f"ir:{aug}:{seed}", "run_id": f"ir-{aug}-{seed}", "source": "engine",
                         "dataset": "Toy", "classifier": "Net", "augmentation": aug,
                         "generator": {"real": None, "closed": "EDM", "open": "SD"}[aug], "n_base": 100,
                         "n_real_added": 0, "n_syn_added": n_syn, "seed": seed, "top1": acc, "n_total": 1000})
    path = tmp_path / "ir.duckdb"
    store_runs.insert_runs(rows, path)
    return path


def test_ir_of_seeded_runs_has_a_paired_interval_or_says_it_is_unbounded(tmp_path):
    toy = ["ir", "--dataset", "Toy", "--classifier", "Net"]
    db = _ir_store(tmp_path, [2.0, 2.5, 1.5])
    row, = json.loads(invoke(*toy, "--json", "--db", db).stdout)
    assert row["n_seeds"] == 3 and row["IR_lo"] < row["IR"] < row["IR_hi"]
    assert row["note"] == "95% interval over 3 seeds (resampled, paired)"
    text = invoke(*toy, "--db", db).output
    assert f"[{row['IR_lo']:.3g}, {row['IR_hi']:.3g}]" in text
    assert json.loads(invoke(*toy, "--json", "--db", db).stdout)[0] == row  # the resampling seed is fixed
    (tmp_path / "u").mkdir()
    # One seed's open-set run loses a point: resamples of that seed alone flip the open gain's sign.
    unbounded = _ir_store(tmp_path / "u", [-1.0, 2.5, 2.5])
    res = invoke(*toy, "--n-boot", 4000, "--db", unbounded)
    assert res.exit_code == 0 and "unbounded" in res.output and "changes sign" in res.output
    # JSON has no infinity: the bounds are null, and a field says which null this is.
    row, = json.loads(invoke(*toy, "--n-boot", 4000, "--json", "--db", unbounded).stdout)
    assert (row["IR_lo"], row["IR_hi"], row["IR_unbounded"]) == (None, None, True)
    assert json.loads(invoke(*toy, "--json", "--db", db).stdout)[0]["IR_unbounded"] is False


def _add_engine_runs(db, runs, traditional, augmentations, seeds=(0, 1), shift=0.0):
    """Engine copies of some published runs, with seeds and one traditional augmentation."""
    copies = [runs[runs.augmentation.isin(augmentations)].assign(
        source="engine", traditional=traditional, seed=s, top1=runs.top1 + shift + s / 10,
        run_id=runs.run_id + f"-{traditional}-{s}", run_key=runs.run_key + f"-{traditional}-{s}")
        for s in seeds]
    store_runs.insert_runs(pd.concat(copies).drop(columns=["created_at"]).to_dict("records"), db)


def test_ir_shows_every_source_and_traditional_augmentation_on_its_own_rows(paper_db, paper_runs):
    cifar = paper_runs[(paper_runs.dataset == "CIFAR-10") & (paper_runs.classifier == "ResNet-110")]
    args = ["ir", "--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--json", "--db", paper_db]
    published = json.loads(invoke(*args).stdout)
    # More closed-set runs of another traditional augmentation, without open-set ones, used to take
    # the default and leave no IR at all.
    _add_engine_runs(paper_db, cifar, "crop", ["real", "closed"], seeds=range(5))
    assert json.loads(invoke(*args).stdout) == published
    # Engine runs with an open-set triple of their own: their rows beside the published ones.
    _add_engine_runs(paper_db, cifar, "none", ["real", "closed", "open"], shift=-3.0)
    rows = json.loads(invoke(*args).stdout)
    assert [r for r in rows if r["source"] == "paper"] == published
    engine = [r for r in rows if r["source"] == "engine"]
    assert {r["traditional"] for r in engine} == {"none"} and all(r["n_seeds"] == 2 for r in engine)
    assert [r["n_base"] for r in engine] == [p["n_base"] for p in published]
    only = json.loads(invoke(*args, "--traditional", "none").stdout)
    assert only == engine
    res = invoke(*args[:-3], "--traditional", "crop", "--db", paper_db)
    assert res.exit_code == 1 and "(with --traditional crop)" in " ".join(res.output.split())


@pytest.mark.parametrize("args, text", [
    (["--dataset", "Nope", "--classifier", "ResNet-110"], "unknown dataset 'Nope'"),
    (["--dataset", "CIFAR-10", "--classifier", "Nope"], "unknown classifier 'Nope'; valid: ResNet-110"),
    (["--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--source", "engine"], "unknown source 'engine'"),
    (["--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--traditional", "none"],
     "no closed-set runs with traditional augmentation 'none'"),
    (["--dataset", "CIFAR-10", "--classifier", "ResNet-110", "--n-boot", 0], "--n-boot 0 must be between 1"),
])
def test_ir_refuses_bad_input_in_one_line(paper_db, args, text):
    one_line_error(invoke("ir", *args, "--db", paper_db), text)


def test_ir_where_the_open_set_runs_gain_nothing_is_undefined_without_an_interval(tmp_path):
    db = _ir_store(tmp_path, [0.0, 0.0, 0.0])
    row, = json.loads(invoke("ir", "--dataset", "Toy", "--classifier", "Net", "--json", "--db", db).stdout)
    assert row["gain_open"] == 0 and row["IR"] is None and (row["IR_lo"], row["IR_hi"]) == (None, None)
    assert row["note"] == "the open-set runs gain nothing over the base: IR is undefined"
    assert "undefined" in invoke("ir", "--dataset", "Toy", "--classifier", "Net", "--db", db).output


def test_ir_without_open_set_runs_exits_1_and_says_what_it_needs(paper_db):
    res = invoke("ir", "--dataset", "BloodMNIST", "--classifier", "ResNet-110", "--db", paper_db)
    assert res.exit_code == 1 and "an open-set run at 1:1" in res.output
    assert len(res.output.strip().splitlines()) == 1  # one line, however narrow the terminal


# --------------------------------------------------------------------------------- engine report

def test_report_fits_every_setting_reading_one_dataset_and_classifier_at_a_time(paper_db, paper_runs, monkeypatch):
    from engine.analysis.fit import analyse
    from engine.analysis.select import settings
    cifar = paper_runs[paper_runs.dataset == "CIFAR-10"]
    other = cifar.assign(traditional="none", top1=cifar.top1 - 4 + 0.02 * cifar.n_real_added ** 0.5,
                         run_id=cifar.run_id + "-none", run_key=cifar.run_key + "-none")
    store_runs.insert_runs(other.drop(columns=["created_at"]).to_dict("records"), paper_db)
    reads = []
    query = store_runs.query_runs
    monkeypatch.setattr(store_runs, "query_runs", lambda *a, **kw: reads.append(kw) or query(*a, **kw))
    monkeypatch.setenv("COLUMNS", "200")  # rich's width: one table row a line
    res = runner.invoke(app, ["report", "--n-boot", "0", "--db", str(paper_db)])
    assert res.exit_code == 0, res.output
    # Never the whole store: each read names one dataset and one classifier.
    assert reads and all(set(kw) >= {"dataset", "classifier"} for kw in reads)
    assert {(kw["dataset"], kw["classifier"]) for kw in reads} == set(map(tuple, paper_runs[["dataset", "classifier"]]
                                                                         .drop_duplicates().to_numpy()))
    summary = res.output[res.output.index("Eq. 1 for every setting"):]
    both = pd.concat([paper_runs, other])
    for setting in settings(both):  # the seven published settings and the two CIFAR-10 ones again, without crop/flip
        a = analyse(both, *setting, n_boot=0)
        label = f"{setting[0]} · {setting[1]} · {setting[2]} ({setting[3]}) · {setting[4]}"
        line = next(line for line in summary.splitlines() if label in line)
        assert f"{a.c1:.3g} n/a" in line and f"{a.c2:.3g} n/a" in line, line
    assert len(settings(both)) == 9
