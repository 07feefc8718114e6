"""Dashboard pages under streamlit's AppTest: change a widget, rerun, check what changed."""
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from store import db as store_db
from store import exchange as store_exchange
from store import runs as store_runs
pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")


def open_app(db, monkeypatch, page=None):
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(MAIN, default_timeout=60)
    if page:
        at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def figure(at, index=0) -> dict:
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def values(v):
    """Plotly 6 serialises numpy arrays as base64 typed arrays; give them back as lists."""
    if isinstance(v, dict) and "bdata" in v:
        import base64
        import numpy as np
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return arr.reshape(v["shape"] if isinstance(v.get("shape"), list) else
                           [int(x) for x in str(v.get("shape", len(arr))).split(",")]).tolist()
    return v


def table_with(at, column: str):
    """The page's one table with this column (pages show several)."""
    [table] = [d.value for d in at.dataframe if column in d.value.columns]
    return table


def text_of(at) -> str:
    parts = [e.value for e in at.caption] + [e.value for e in at.markdown] + [e.value for e in at.info] + \
            [e.value for e in at.success] + [e.value for e in at.warning] + [e.value for e in at.error]
    return " ".join(str(p) for p in parts)


def test_runs_page_filters_chart_and_table9_note(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch)
    assert "168 of 168 runs" in text_of(at)
    assert any("Table 9 prints" in w.value for w in at.warning)
    at.multiselect(key="runs_dataset").set_value(["BloodMNIST"]).run()
    assert not at.exception
    assert "25 of 168 runs" in text_of(at)
    assert not any("Table 9 prints" in w.value for w in at.warning)
    fig = figure(at)
    names = {t["name"] for t in fig["data"]}
    assert names == {"n_base 1,200 · real", "n_base 1,200 · closed (EDM)", "n_base 6,000 · real",
                     "n_base 6,000 · closed (EDM)", "n_base 12,000 · closed (EDM)"}
    assert fig["layout"]["xaxis"]["title"]["text"].startswith("augmentation scale")
    real_1200 = next(t for t in fig["data"] if t["name"] == "n_base 1,200 · real")
    assert values(real_1200["y"]) == [91.8, 94.55, 96.46, 96.77]
    at.multiselect(key="runs_augmentation").set_value(["real"]).run()
    assert "7 of 168 runs" in text_of(at)


def test_contours_page_refits_on_base_and_eps(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "contours")
    at.selectbox(key="contours_dataset").set_value("CIFAR-10").run()
    at.selectbox(key="contours_augmentation").set_value("closed").run()
    fig = figure(at)
    assert fig["data"][0]["type"] == "contour" and fig["data"][0]["contours"]["showlabels"] is True
    assert "n_base 500" in fig["layout"]["title"]["text"]
    measured = next(t for t in fig["data"] if t["name"] == "measured runs (mean)")
    assert len(values(measured["x"])) == 9
    at.selectbox(key="contours_n_base").set_value(5000).run()
    fig2 = figure(at)
    assert "n_base 5,000" in fig2["layout"]["title"]["text"] and values(fig2["data"][0]["z"]) != values(fig["data"][0]["z"])
    before = text_of(at)
    at.number_input(key="contours_eps").set_value(0.5).run()
    after = text_of(at)
    assert "eps = 0.5" in after and before != after
    at.selectbox(key="contours_best").set_value("bic").run()
    assert not at.exception and "best:bic" in text_of(at)


def test_budget_page_answers_and_refits_live(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("CIFAR-10").run()
    at.selectbox(key="budget_augmentation").set_value("closed").run()
    at.selectbox(key="budget_n_base").set_value(5000).run()
    at.text_input(key="budget_n_real_added").set_value("5000").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["c1"] == "0.9694" and metrics["c2"] == "2.734"  # Table 9's row read as 20,000 (issue 10)
    surface = int(metrics["This base's surface: synthetic images"].replace(",", ""))
    assert 6900 <= surface <= 7000  # the Eq. 12 tuple at n_base 5,000, ratio 1
    text = text_of(at)
    assert "Verdict, grade" in text and "in simulation" in text  # each interval says what it covered
    at.text_input(key="budget_n_real_added").set_value("10000").run()
    more = int({m.label: m.value for m in at.metric}["This base's surface: synthetic images"].replace(",", ""))
    assert more > surface
    at.text_input(key="budget_n_real_added").set_value("40000").run()
    assert any("extrapolation" in w.value for w in at.warning)
    # The inverse question.
    at.radio(key="budget_question").set_value("real for synthetic").run()
    assert any(m.label == "Eq. 1: real images" for m in at.metric)
    # Leaving runs out refits c1 and c2.
    labels = at.multiselect(key="budget_excluded").options
    drop = [label for label in labels if "n_base 5,000 +25,000 synthetic" in label]
    at.multiselect(key="budget_excluded").set_value(drop).run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["c2"] != "2.734"
    fig = figure(at)
    assert any(t["name"].startswith("Eq. 1, n_base") for t in fig["data"])
    assert any(t["name"].startswith("tuples, n_base") for t in fig["data"])


def test_budget_page_says_when_no_equivalence(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("CIFAR-10").run()
    at.selectbox(key="budget_augmentation").set_value("closed").run()
    at.multiselect(key="budget_features").set_value(["n_real"]).run()
    assert not at.exception
    assert any("No equivalence can be estimated" in e.value or "No fit" in e.value for e in at.error)


def test_scaling_page_lists_every_setting(paper_db, monkeypatch):
    at = open_app(paper_db, monkeypatch, "scaling")
    ir = figure(at, 0)
    assert {t["name"] for t in ir["data"] if t.get("mode") == "lines+markers"} == {
        "CIFAR-10 · ResNet-110 · EDM vs CIFAKE (paper)", "ImageNet-100 · ResNet-50 · DiT vs SD3 (paper)",
        "ImageNet-100 · ViT-B/32 · DiT vs SD3 (paper)"}
    c = figure(at, 1)
    assert {t["name"] for t in c["data"]} == {"closed set", "open set"}
    table = table_with(at, "c2 [interval]")
    assert len(table) == 7 and table["c2 [interval]"].str.len().gt(0).all()
    assert "covers 35 % in simulation" in table["intervals covered"].iloc[0]


@pytest.mark.parametrize("page", ["runs", "contours", "budget", "scaling"])
def test_empty_and_missing_store(tmp_path, monkeypatch, page):
    empty = tmp_path / "empty.duckdb"
    with duckdb.connect(str(empty)) as con:
        store_db.migrate(con)
    at = open_app(empty, monkeypatch, None if page == "runs" else page)
    assert any("no runs yet" in i.value for i in at.info)
    at = open_app(tmp_path / "missing.duckdb", monkeypatch, None if page == "runs" else page)
    assert any("No store at" in i.value for i in at.info)


@pytest.mark.parametrize("page", ["contours", "budget", "scaling"])
def test_store_whose_fits_fail(tmp_path, monkeypatch, page):
    db = tmp_path / "thin.duckdb"
    rows = pd.DataFrame({"dataset": ["Mine"] * 3, "classifier": ["Net"] * 3,
                         "augmentation": ["real", "real", "closed"], "generator": [None, None, "EDM"],
                         "n_base": [50] * 3, "n_real_added": [0, 50, 0], "n_syn_added": [0, 0, 50],
                         "seed": [0] * 3, "top1": [50.0, 60.0, 52.0], "n_total": [500] * 3})
    rows.to_csv(tmp_path / "thin.csv", index=False)
    store_exchange.import_runs(tmp_path / "thin.csv", db)
    at = open_app(db, monkeypatch, page)
    message = text_of(at) + " ".join(str(v) for d in at.dataframe for v in d.value.to_numpy().ravel())
    assert "needs at least" in message


def test_a_store_of_an_older_version_is_brought_forward_once(tmp_path, monkeypatch):
    """The Runs page's pickers read `traditional` (migration 11): a store last written before it
    crashed the page until the app brought the schema forward, as any engine write does."""
    db = tmp_path / "v10.duckdb"
    rows = pd.DataFrame(store_runs.paper_rows())
    cols = ["run_id", "run_key", "source", "dataset", "classifier", "augmentation", "generator", "n_base",
            "n_real_added", "n_syn_added", "top1", "top5", "n_total", "config", "note"]
    with duckdb.connect(str(db)) as con:
        store_db.migrate(con, target=10)
        con.register("old", rows[cols])
        con.execute(f"INSERT INTO runs ({', '.join(cols)}) SELECT {', '.join(cols)} FROM old")
    at = open_app(db, monkeypatch)
    assert "sources: paper" in text_of(at)
    with store_db.connect(db, read_only=True) as con:
        assert store_db.current_version(con) == store_db.SCHEMA_VERSION
        assert con.execute("SELECT count(*) FROM runs").fetchall()[0][0] == len(rows)


def test_a_store_of_a_newer_version_is_refused_in_one_line(tmp_path, monkeypatch):
    db = tmp_path / "future.duckdb"
    with duckdb.connect(str(db)) as con:
        store_db.migrate(con)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [store_db.SCHEMA_VERSION + 1])
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(MAIN, default_timeout=60).run()
    assert not at.exception
    assert [e.value for e in at.error] == [f"Cannot use the store {db.resolve()}: store schema version "
                                           f"{store_db.SCHEMA_VERSION + 1} is newer than this program's "
                                           f"{store_db.SCHEMA_VERSION}: upgrade the program"]


def test_runs_chart_draws_the_generators_picked_when_there_are_many(tmp_path, monkeypatch):
    db = tmp_path / "many.duckdb"
    gens = [f"G{k}" for k in range(1, 7)]
    rows = [dict(augmentation="real", generator=None, n_real_added=r, n_syn_added=0, top1=50.0 + r / 10)
            for r in (0, 50)]
    rows += [dict(augmentation="closed", generator=g, n_real_added=0, n_syn_added=50, top1=51.0 + k)
             for k, g in enumerate(gens)]
    frame = pd.DataFrame(rows).assign(dataset="Mine", classifier="Net", n_base=50, seed=0, n_total=500)
    frame.to_csv(tmp_path / "many.csv", index=False)
    store_exchange.import_runs(tmp_path / "many.csv", db)
    at = open_app(db, monkeypatch)
    names = lambda: sorted(t["name"] for t in figure(at)["data"])  # noqa: E731
    assert at.multiselect(key="runs_generators").value == ["G1", "G2"]
    assert names() == ["n_base 50 · closed (G1)", "n_base 50 · closed (G2)", "n_base 50 · real"]
    at.multiselect(key="runs_generators").set_value(["G5"]).run()
    assert names() == ["n_base 50 · closed (G5)", "n_base 50 · real"]
    at.multiselect(key="runs_augmentation").set_value(["closed"]).run()
    at.multiselect(key="runs_generators").set_value([]).run()
    assert not at.exception and "No curve to draw: pick a generator above." in text_of(at)


def test_scaling_chart_draws_the_generators_picked_when_there_are_many(tmp_path, monkeypatch):
    db = tmp_path / "ir.duckdb"
    rows = []
    for n_base in (50, 100):
        rows.append(dict(augmentation="real", generator=None, n_base=n_base, n_syn_added=0, top1=50.0))
        rows += [dict(augmentation="closed", generator=f"C{k}", n_base=n_base, n_syn_added=n_base, top1=52.0 + k)
                 for k in range(3)]
        rows += [dict(augmentation="open", generator=f"O{k}", n_base=n_base, n_syn_added=n_base, top1=54.0 + k)
                 for k in range(2)]
    pd.DataFrame(rows).assign(dataset="Mine", classifier="Net", n_real_added=0, seed=0, n_total=500) \
        .to_csv(tmp_path / "ir.csv", index=False)
    store_exchange.import_runs(tmp_path / "ir.csv", db)
    at = open_app(db, monkeypatch, "scaling")
    lines = lambda: sorted(t["name"].split(" · ")[-1] for t in figure(at)["data"])  # noqa: E731
    assert at.multiselect(key="scaling_closed").value == ["C0", "C1"]
    assert lines() == ["C0 vs O0 (import)", "C0 vs O1 (import)", "C1 vs O0 (import)", "C1 vs O1 (import)"]
    at.multiselect(key="scaling_closed").set_value(["C2"]).run()
    at.multiselect(key="scaling_open").set_value(["O1"]).run()
    assert lines() == ["C2 vs O1 (import)"]
    assert len(at.dataframe[0].value) == 12  # the table keeps every generator pair at both bases


@pytest.fixture
def two_traditional_db(paper_db):
    """The published runs plus every CIFAR-10 run again, as if trained without crop and flip (another
    accuracy curve): a setting whose runs have two traditional augmentations, never pooled."""
    cifar = store_runs.query_runs(paper_db, dataset="CIFAR-10")
    other = cifar.assign(traditional="none", top1=cifar.top1 - 4 + 0.02 * cifar.n_real_added ** 0.5,
                         run_id=cifar.run_id + "-none", run_key=cifar.run_key + "-none")
    assert store_runs.insert_runs(other.drop(columns=["created_at"]).to_dict("records"), paper_db) == len(cifar)
    return paper_db, cifar, other


def _cifar_closed(at, page):
    at.selectbox(key=f"{page}_dataset").set_value("CIFAR-10").run()
    at.selectbox(key=f"{page}_augmentation").set_value("closed").run()
    assert not at.exception, [e.value for e in at.exception]


def test_budget_page_fits_the_traditional_augmentation_picked(two_traditional_db, monkeypatch):
    from engine.analysis.fit import analyse
    db, cifar, other = two_traditional_db
    at = open_app(db, monkeypatch, "budget")
    _cifar_closed(at, "budget")
    picker = at.radio(key="budget_traditional")
    assert picker.options == ["crop+flip (most synthetic runs)", "none"]  # a tie goes to crop+flip
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["c1"], metrics["c2"]) == ("0.9694", "2.734")  # the published runs alone, as without the copies
    n_setting = ((cifar.augmentation == "real") | (cifar.augmentation == "closed")).sum()
    assert f"Runs in the fit ({n_setting}): leave some out" in [e.label for e in at.expander]
    picker.set_value("none").run()
    assert not at.exception
    alone = analyse(other, "CIFAR-10", "ResNet-110", "closed", "EDM", n_boot=0)
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["c1"], metrics["c2"]) == (f"{alone.c1:.4g}", f"{alone.c2:.4g}") != ("0.9694", "2.734")
    assert f"Runs in the fit ({n_setting}): leave some out" in [e.label for e in at.expander]
    assert "trained with traditional augmentation none" in text_of(at)
    labels = at.multiselect(key="budget_excluded").options
    assert labels and all(f"{r:.2f}%" in " ".join(labels) for r in other[other.augmentation == "closed"].top1)


def test_contours_page_draws_the_traditional_augmentation_picked(two_traditional_db, monkeypatch):
    db, cifar, other = two_traditional_db
    at = open_app(db, monkeypatch, "contours")
    _cifar_closed(at, "contours")
    def base_500(runs):  # the measured points the map of n_base 500 shows (published means: one run a point;
        # the base-only run is listed under real and under closed, one point on the map)
        return sorted({f"{a:.1f}" for a in runs[(runs.n_base == 500) & runs.augmentation.isin(["real", "closed"])].top1})

    measured = next(t for t in figure(at)["data"] if t["name"] == "measured runs (mean)")
    assert sorted(set(values(measured["text"]))) == base_500(cifar) and len(values(measured["text"])) == 9
    at.radio(key="contours_traditional").set_value("none").run()
    measured = next(t for t in figure(at)["data"] if t["name"] == "measured runs (mean)")
    assert sorted(set(values(measured["text"]))) == base_500(other) != base_500(cifar)
    assert "trained with traditional augmentation none" in text_of(at)


def test_pages_ask_for_a_traditional_augmentation_only_when_there_are_several(paper_db, monkeypatch):
    for page in ("budget", "contours"):
        at = open_app(paper_db, monkeypatch, page)
        _cifar_closed(at, page)
        assert not [r for r in at.radio if r.key == f"{page}_traditional"]
        assert "trained with traditional augmentation crop+flip" in text_of(at)


def test_scaling_table_fits_each_traditional_augmentation_apart(two_traditional_db, monkeypatch):
    from engine.analysis.fit import analyse
    db, cifar, other = two_traditional_db
    at = open_app(db, monkeypatch, "scaling")
    table = table_with(at, "c2 [interval]")
    cifar_rows = table[(table.dataset == "CIFAR-10") & (table.augmentation == "closed")]
    assert sorted(cifar_rows.traditional) == ["crop+flip", "none"]
    alone = analyse(other, "CIFAR-10", "ResNet-110", "closed", "EDM", n_boot=200)
    row = cifar_rows[cifar_rows.traditional == "none"].iloc[0]
    assert row["c2 [interval]"].startswith(f"{alone.c2:.3g} ")
    assert len(table) == 9  # the 7 published settings and the two CIFAR-10 ones again without crop and flip
    # IR: a line for each traditional augmentation of CIFAR-10, each against its own base-only run.
    lines = {t["name"] for t in figure(at, 0)["data"] if t.get("mode") == "lines+markers"}
    assert {"CIFAR-10 · ResNet-110 · EDM vs CIFAKE (paper, crop+flip)",
            "CIFAR-10 · ResNet-110 · EDM vs CIFAKE (paper, none)"} <= lines
    assert "ImageNet-100 · ResNet-50 · DiT vs SD3 (paper)" in lines


def test_a_new_setting_offers_its_own_default_source_and_traditional_augmentation(two_traditional_db, monkeypatch):
    db, cifar, other = two_traditional_db
    engine = cifar[cifar.augmentation.isin(["real", "closed"])].assign(
        source="engine", seed=0, run_id=cifar.run_id + "-e", run_key=cifar.run_key + "-e")
    store_runs.insert_runs(engine.drop(columns=["created_at"]).to_dict("records"), db)
    at = open_app(db, monkeypatch, "budget")
    at.selectbox(key="budget_dataset").set_value("BloodMNIST").run()
    assert at.radio(key="budget_source").value == "paper"  # BloodMNIST has only the published runs
    at.selectbox(key="budget_dataset").set_value("CIFAR-10").run()
    assert at.selectbox(key="budget_augmentation").value == "closed"
    assert at.radio(key="budget_source").value == "engine"  # its default, not BloodMNIST's choice carried over
    # ...sent as a value the browser must show, not only the server's (a deleted key is not: streamlit#16388).
    assert at.radio(key="budget_source").proto.set_value
    at.radio(key="budget_source").set_value("paper").run()
    at.radio(key="budget_traditional").set_value("none").run()
    at.number_input(key="budget_eps").set_value(0.01).run()
    # A choice on the same setting stays while other controls change...
    assert (at.radio(key="budget_source").value, at.radio(key="budget_traditional").value) == ("paper", "none")
    assert "trained with traditional augmentation none" in text_of(at)
    # ...and goes back to the default when the source changes.
    at.radio(key="budget_source").set_value("all").run()
    assert at.radio(key="budget_traditional").value == "crop+flip" and at.radio(key="budget_traditional").proto.set_value
    assert "trained with traditional augmentation crop+flip" in text_of(at)
