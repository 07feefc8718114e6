import os
import shutil


def _give_each_xdist_worker_its_own_cores():
    """Under `pytest -n N`, pin worker i to every N-th core, before torch is imported.

    Without this, two workers that train at once each take all the cores (engine/device/threads.py
    sizes a process by the cores it may use), and oversubscribed OpenMP threads ran 6x slower
    (issue 18). Pinned, each worker and the processes it starts see only its share, as two engine
    workers on one host would."""
    worker, count = os.environ.get("PYTEST_XDIST_WORKER"), int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < count:
        return
    mine = cores[int(worker.removeprefix("gw")) % count::count]
    os.sched_setaffinity(0, mine)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(len(mine))


_give_each_xdist_worker_its_own_cores()
# xdist sets COLUMNS=80 in its workers; the CLI's consoles are made at import and would keep that
# width, so a test's own COLUMNS (CliRunner env, monkeypatch) would be ignored there and not here.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)

import pandas as pd  # noqa: E402
import pytest  # noqa: E402

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
