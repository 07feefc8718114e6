import os
import shutil

import pandas as pd
import pytest

from store import runs as store_runs


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium (Debian's: Playwright's own download needs the internet), one per test module;
    skipped where it is not installed, a failure in CI, which installs it."""
    from tests.browser import chromium_path
    path = chromium_path()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


@pytest.fixture(scope="session")
def _paper_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("paper") / "paper.duckdb"
    store_runs.init_store(path)
    return path


@pytest.fixture
def paper_db(_paper_store, tmp_path):
    """A private copy of a store holding the published runs."""
    path = tmp_path / "store.duckdb"
    shutil.copy(_paper_store, path)
    return path


@pytest.fixture(scope="session")
def paper_runs(_paper_store):
    return store_runs.query_runs(_paper_store)


def make_runs(points, dataset="Toy", classifier="Net", augmentation="closed", generator="EDM",
              n_total=10_000, seeds=(None,)):
    """Runs rows from (n_base, kind, n_added, acc or [acc per seed]) tuples."""
    rows = []
    for n_base, kind, n_added, acc in points:
        accs = acc if isinstance(acc, (list, tuple)) else [acc] * len(seeds)
        for seed, a in zip(seeds, accs):
            rows.append({"run_id": f"{n_base}-{kind}-{n_added}-{seed}", "dataset": dataset,
                         "classifier": classifier, "augmentation": "real" if kind == "real" else augmentation,
                         "generator": None if kind == "real" else generator, "n_base": n_base,
                         "n_real_added": n_added if kind == "real" else 0,
                         "n_syn_added": n_added if kind != "real" else 0, "seed": seed, "top1": float(a),
                         "n_total": n_total})
    frame = pd.DataFrame(rows)
    frame["seed"] = frame.seed.astype("Int64")
    return frame


def pytest_collection_modifyitems(config, items):
    # A browser test starts a Streamlit server and Chromium: never part of the fast loop.
    for item in items:
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)
