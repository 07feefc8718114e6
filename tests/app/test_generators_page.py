"""The Generators page under AppTest and in headless Chromium, on a store with one set."""
import json
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from store import quality as store_quality
from tests.quality_store import make_store_with_set

pytestmark = pytest.mark.slow  # each test runs dashboard pages under Streamlit's AppTest

MAIN = str(Path(__file__).resolve().parents[2] / "app" / "main.py")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _tsne(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return {"x": rng.normal(size=2 * n).round(3).tolist(), "y": rng.normal(size=2 * n).round(3).tolist(),
            "domain": ["real"] * n + ["synthetic"] * n, "class": [i % 10 for i in range(2 * n)]}


@pytest.fixture
def quality_db(tmp_path):
    """One set with metrics as `engine quality` stores them (values written here, not computed)."""
    db = make_store_with_set(tmp_path)
    pairs = tmp_path / "pairs.npz"
    img = np.zeros((3, 8, 8, 1), np.uint8)
    np.savez(pairs, synthetic=img, base=img + 10, distance=np.array([0.0, 0.1, 0.2]))
    store_quality.write_metrics("gen-a-s0", [
        {"metric": "fd", "value": 1.5, "ci_low": 0.8, "ci_high": 2.2, "extractor": "reference smallcnn",
         "n_real": 200, "n_syn": 200},
        {"metric": "domain", "value": 87.5, "ci_low": 82.0, "ci_high": 91.0, "n_real": 140, "n_syn": 140},
        {"metric": "memorisation", "value": 0.0, "detail": {"pairs": str(pairs), "syn_to_base_median": 0.0,
                                                           "heldout_to_base_median": 1.0, "ratio": 0.0}},
        {"metric": "tsne_domain", "value": None, "detail": _tsne()},
        {"metric": "tsne_reference", "value": None, "detail": _tsne(seed=1)},
    ], db)
    return db


def _open(db, monkeypatch):
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(MAIN, default_timeout=60)
    at.switch_page("views/generators.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_generators_page_shows_curve_samples_pairs_metrics_tsne_and_comparison(quality_db, monkeypatch):
    at = _open(quality_db, monkeypatch)
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert titles[0].startswith("Training loss")
    assert "Domain classifier features (Fig. 1a)" in titles and "Reference classifier features (Fig. 1b)" in titles
    assert any(t.startswith("Does better quality go with a bigger gain") for t in titles)
    images = at.get("image")
    assert len(images) == 10 + 2  # a row per class, then the memorisation pair rows
    captions = " ".join(c.value for c in at.caption)
    assert "Uncurated" in captions and "ratio 0.00" in captions
    metrics = at.dataframe[0].value
    assert "domain classifier accuracy % (chance 50)" in metrics.metric.tolist()
    assert "[82.000, 91.000]" in metrics["95% interval"].tolist()
    comparison = at.dataframe[1].value
    assert comparison["gain at 1:1 (points)"].iloc[0] == pytest.approx(3.5)
    at.radio(key="gen_tsne_colour").set_value("class").run()
    assert not at.exception
    tsne = [json.loads(c.proto.spec) for c in at.get("plotly_chart")
            if "Fig. 1a" in json.loads(c.proto.spec)["layout"]["title"]["text"]][0]
    assert len(tsne["data"]) == 10  # one trace per class


def test_generators_page_without_sets_says_how_to_make_one(tmp_path, monkeypatch):
    from store.db import connect, migrate
    db = tmp_path / "empty.duckdb"
    with connect(db) as con:
        migrate(con)
    at = _open(db, monkeypatch)
    assert "No synthetic sets in the store yet" in at.info[0].value


@pytest.mark.browser
@pytest.mark.slow
def test_generators_page_in_chromium(quality_db, browser):
    from tests.browser import dashboard, wait_until_idle
    ARTIFACTS.mkdir(exist_ok=True)
    with dashboard(quality_db) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 3000})
        page.goto(f"{url}/generators")
        wait_until_idle(page)
        for text in ("Generators and synthetic sets", "Uncurated", "Fig. 1a", "gain at 1:1"):
            # visible matches only: the comparison table's header cell is in the DOM but hidden (the grid
            # draws on a canvas), and whether it or the chart's axis title comes first varies with load
            page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(timeout=30_000)
        page.wait_for_selector(".js-plotly-plot", timeout=30_000)
        assert page.locator('[data-testid="stException"]').count() == 0
        page.screenshot(path=str(ARTIFACTS / "generators.png"), full_page=True)
        page.close()


def test_generators_page_shows_the_papers_quality_and_cost_tables_beside_ours(quality_db, paper_db, monkeypatch):
    from store.paper_tables import load_paper_tables
    at = _open(paper_db, monkeypatch)  # no set of ours: the published tables still show
    quality = next(d.value for d in at.dataframe if "FID" in d.value.columns)
    edm = quality[(quality.dataset == "CIFAR-10") & (quality.generator == "EDM")].iloc[0]
    assert (edm.FID, edm.IS) == (pytest.approx(8.33), pytest.approx(6.23))  # Tab. 2
    sd3 = quality[(quality.dataset == "ImageNet-10") & (quality.generator == "SD3")].iloc[0]
    assert (sd3.FID, sd3["CFG scale"]) == (pytest.approx(24.79), pytest.approx(2.0))  # Tab. 7
    cost = next(d.value for d in at.dataframe if "s/image" in d.value.columns)
    assert cost[cost.generator == "DiT"]["s/image"].iloc[0] == pytest.approx(3.5)  # Tab. 8

    load_paper_tables(quality_db)
    store_quality.write_metrics("gen-a-s0", [{"metric": "fid", "value": 12.5, "n_real": 200, "n_syn": 200,
                                              "extractor": "inception"}], quality_db)
    ours = _open(quality_db, monkeypatch)
    quality = next(d.value for d in ours.dataframe if "FID" in d.value.columns)
    assert quality[quality.table.astype(str) == "ours"].FID.tolist() == [pytest.approx(12.5)]
