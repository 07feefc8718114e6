"""The paper's figures rebuilt from the store: every one listed, the store's runs drawn, the published
values overlaid where the paper gives them (fast: the figures are built, not exported)."""
import numpy as np
import pytest

from engine.analysis.equivalence import eq1
from engine.report import published
from engine.report.paper_figures import paper_figures
from store import runs as store_runs
from tests.report.stores import toy_store

NAMES = ["fig02a", "fig02b", "fig02c", "fig05", "fig06", "fig07", "fig08", "fig10",
         "eq2", "eq3", "eq4", "eq5", "eq6", "eq8", "eq9"]


@pytest.fixture(scope="module")
def figs(_paper_store):
    return {f.name: f for f in paper_figures(_paper_store, n_boot=0)}


def traces(fig, start: str):
    return [t for t in fig.figure.data if (t.name or "").startswith(start)]


def test_every_listed_figure_is_drawn_from_the_shipped_store(figs):
    assert list(figs) == NAMES
    assert all(f.figure is not None and f.skipped is None for f in figs.values())
    assert [figs[n].label for n in ("fig02b", "fig07", "eq3")] == ["Fig. 2(b)", "Fig. 7", "Eq. 3"]
    assert figs["fig06"].manifest("svg")["file"] == "fig06.svg"


def test_accuracy_curves_are_the_stores_runs_under_the_published_means(figs):
    runs = published.published_runs()
    fig = figs["fig06"]
    tab = runs[runs.table.isin([9, 10, 11])]
    crosses = traces(fig, "published: ")
    assert {t.name for t in crosses} == {"published: real (Tab. 9)", "published: closed set (EDM) (Tab. 10)",
                                         "published: open set (CIFAKE) (Tab. 11)"}
    # Each cross is a published mean at k = added / n_base; the store holds only these, so each curve runs
    # through its crosses.
    for t in crosses:
        for x, y in zip(t.x, t.y):
            assert ((abs(tab.added / tab.n_base - x) < 1e-9) & (abs(tab.top1 - y) < 1e-9)).any(), (t.name, x, y)
    lines = [t for t in fig.figure.data if t.mode == "lines+markers"]
    assert {t.name for t in lines} == {"real", "closed set (EDM)", "open set (CIFAKE)"}
    at_5000 = tab[(tab.n_base == 5000) & (tab.augmentation == "closed")].sort_values("added")
    closed = next(t for t in lines if t.name == "closed set (EDM)" and t.xaxis == "x2")  # the n_base 5,000 panel
    np.testing.assert_allclose(closed.y, at_5000.top1)


def test_curves_of_other_sources_are_drawn_apart_never_averaged(paper_db):
    cifar = store_runs.query_runs(paper_db, dataset="CIFAR-10", classifier="ResNet-110")
    mine = cifar[(cifar.n_base == 500) & (cifar.augmentation == "real")].assign(
        source="engine", top1=lambda f: f.top1 + 7.0, seed=0, run_id=lambda f: f.run_id + "-e",
        run_key=lambda f: f.run_key + "-e", note=None)
    store_runs.insert_runs(mine.drop(columns=["created_at"]).to_dict("records"), paper_db)
    fig = next(f for f in paper_figures(paper_db, n_boot=0) if f.name == "fig06")
    names = {t.name for t in fig.figure.data if t.mode == "lines+markers"}
    assert {"real, engine runs", "real, paper runs", "closed set (EDM), paper runs"} <= names
    mine_curve = next(t for t in fig.figure.data if t.name == "real, engine runs")
    np.testing.assert_allclose(mine_curve.y, mine.sort_values("n_real_added").drop_duplicates("n_real_added").top1)


def test_fig7_sets_the_published_ir_and_the_papers_stated_value_over_the_stores(figs):
    fig = figs["fig07"]
    pub = traces(fig, "published means")[0]
    runs = published.published_runs()
    at = runs[(runs.n_base == 50_000) & (runs.table.isin([9, 10, 11]))]
    base = at[at.added == 0].top1.iloc[0]  # the whole training set: no real runs, the base-only run in Tab. 10, 11
    gain = {aug: at[(at.augmentation == aug) & (at.added == 50_000)].top1.iloc[0] - base for aug in ("closed", "open")}
    expected = gain["closed"] / gain["open"]
    assert pub.y[list(pub.x).index(50_000)] == pytest.approx(expected) == pytest.approx(2.80, abs=0.005)
    stated = traces(fig, "the paper's text")[0]
    assert list(stated.y) == [2.80] and list(stated.x) == [50_000]


def test_equation_figures_draw_the_published_equation_beside_the_refit(figs):
    eq = published.equation(3)
    fig = figs["eq3"]
    dashed = traces(fig, "published Eq. 3, n_base ")
    assert {t.name for t in dashed} == {f"published Eq. 3, n_base {b:,}" for b in (500, 5000, 25000)}
    for t in dashed:
        b = int(t.name.rsplit(" ", 1)[1].replace(",", ""))
        r = np.asarray(t.x)
        np.testing.assert_allclose(t.y, eq1(b, r * b, 0.88, 2.53, 1 / 5000) / b)
    # n_base 50,000 is the whole training set: no real runs there, so no tuples and no curve.
    assert eq["published_c1"] == 0.88 and "dashed: published (c1 0.88, c2 2.53)" in fig.title


def test_fig2_panels_show_the_papers_bases_with_the_published_runs(figs):
    for name, number, n_base in (("fig02a", 2, 6000), ("fig02b", 3, 5000), ("fig02c", 5, 26000)):
        eq = published.equation(number)
        fig = figs[name].figure
        crosses = next(t for t in fig.data if (t.name or "").startswith("published runs"))
        pts = published.setting_points(eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"], n_base)
        np.testing.assert_allclose(crosses.customdata, pts.top1)
        assert f"n_base {n_base:,}" in fig.layout.title.text
        assert any(f"published Eq. {number}" in (t.name or "") for t in fig.data)


def test_a_store_without_the_papers_runs_skips_each_figure_with_its_reason(tmp_path):
    made = paper_figures(toy_store(tmp_path / "toy.duckdb"), n_boot=0)
    assert [f.name for f in made] == NAMES and all(f.figure is None for f in made)
    reasons = {f.name: f.skipped for f in made}
    assert "engine store init" in reasons["fig06"] and "1:1" in reasons["fig07"]
    assert all(reasons[n] for n in NAMES)
