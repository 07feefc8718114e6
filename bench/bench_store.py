"""The store at 10 k and 1 M runs, in one run so the numbers are ratios on the same machine; prints JSON.

    python bench/make_large_store.py /tmp/equiv-bench --datasets 1 --classifiers 1   # ~10 k runs
    python bench/make_large_store.py /tmp/equiv-bench                                # ~1 M runs
    python bench/bench_store.py /tmp/equiv-bench/runs_1x1x10x20.parquet /tmp/equiv-bench/runs_20x5x10x20.parquet

For each runs file: `engine runs import` into a fresh store (wall seconds, peak memory of the
process), optionally the same import with the code of an older commit (--baseline-rev), `engine
--help`, `engine fit` and `engine equiv` on one setting (wall including start-up, peak memory),
the one-setting query in-process (and on a shuffled copy of the table, which is what the sort
order on import is for), and with --pages the dashboard: a real Streamlit server in headless
Chromium, seconds from navigation to each page's first chart (first visit, then again with the
caches warm) and the server's memory. Every step has a time limit; nothing touches the real store.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], capture_output=True, text=True)
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{wall:.3f} {peak:.1f} {proc.returncode}")
sys.stderr.write(proc.stderr[-500:])
"""


# What `engine fit` imports from outside the project: the CLI, the store, the tables, the solvers, the OLS.
LIBRARIES = "typer, rich.table, duckdb, numpy, pandas, scipy.optimize, statsmodels.regression.linear_model"


def measured(cmd: list[str], env: dict | None = None, timeout: float = 600, cwd: Path = ROOT) -> dict:
    """Wall seconds and peak resident MB of one command, run in a fresh process."""
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, timeout=timeout,
                         env=env or os.environ.copy(), cwd=cwd)
    wall, peak, rc = out.stdout.split()
    if rc != "0":
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {rc}"}
    return {"wall_s": round(float(wall), 2), "peak_mb": round(float(peak))}


def engine(*args) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *map(str, args)]


def fresh_store(work: Path, name: str) -> Path:
    from store.runs import init_store
    path = work / f"{name}.duckdb"
    path.unlink(missing_ok=True)
    init_store(path)
    return path


def one_setting(store: Path) -> tuple:
    from store.runs import setting_keys
    keys = setting_keys(store)
    wanted = ("CIFAR-10", "WRN-28-10", "closed", "EDM")  # in every store make_large_store.py writes
    return wanted if wanted in keys else keys[0]


def query_ms(store: Path, setting, table: str = "runs", repeat: int = 5) -> float:
    """Median milliseconds of the per-setting query (what `engine fit` and a dashboard fit read)."""
    import duckdb
    dataset, classifier, augmentation, generator = setting
    sql = (f"SELECT * FROM {table} WHERE dataset = ? AND classifier = ? AND (augmentation = 'real' OR "
           f"(augmentation = ? AND generator = ?))")
    times = []
    with duckdb.connect(str(store), read_only=True) as con:
        for _ in range(repeat):
            start = time.perf_counter()
            con.execute(sql, [dataset, classifier, augmentation, generator]).df()
            times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def fit_in_process(store: Path, setting, repeat: int = 3) -> dict:
    """What `engine fit` costs after start-up when it reads one setting: the query, then the fit."""
    from engine.analysis.fit import analyse
    from store.runs import setting_runs
    query, fit = [], []
    for _ in range(repeat):
        start = time.perf_counter()
        runs = setting_runs(store, *setting)
        query.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        analyse(runs, *setting, n_boot=0)
        fit.append((time.perf_counter() - start) * 1000)
    return {"runs": len(runs), "query_ms": round(statistics.median(query), 1),
            "fit_ms": round(statistics.median(fit), 1)}


def shuffled_query_ms(store: Path, setting, work: Path) -> float:
    """The same query on the same rows in random order: what the sort on import saves."""
    import duckdb
    copy = work / "shuffled.duckdb"
    copy.unlink(missing_ok=True)
    with duckdb.connect(str(copy)) as con:
        con.execute("SET enable_progress_bar = false")
        con.execute(f"ATTACH '{store}' AS src (READ_ONLY)")
        con.execute("CREATE TABLE runs AS SELECT * FROM src.runs ORDER BY random()")
    try:
        return query_ms(copy, setting)
    finally:
        copy.unlink(missing_ok=True)


def baseline_import(rev: str, parquet: Path, work: Path) -> dict:
    """The import of an older commit, on the same file, for the 'x times faster' ratio."""
    old = work / f"code-{rev}"
    if not old.exists():
        old.mkdir()
        archive = subprocess.run(["git", "archive", rev, "store", "engine"], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
    store = work / "baseline.duckdb"
    store.unlink(missing_ok=True)
    env = dict(os.environ, PYTHONPATH=str(old))
    subprocess.run([sys.executable, "-c", f"from store.runs import init_store; init_store({str(store)!r})"],
                   env=env, check=True, cwd=old)
    # Through the old CLI, like the new import, and from the old code's folder: `python -c`
    # would put this checkout first on sys.path.
    try:
        return measured([sys.executable, "-m", "engine.cli", "runs", "import", str(parquet), "--db", str(store)],
                        env=env, timeout=900, cwd=old)
    finally:
        store.unlink(missing_ok=True)


# Sidebar title -> the key of the page's first chart (the Queue page has none: its title is the
# floor any page pays for a rerun on this machine).
CHARTS = {"queue": ("Queue", None), "contours": ("Contours", "contours_figure"),
          "budget": ("Budget calculator", "budget_figure"), "scaling": ("Scaling", "scaling_ir"),
          "runs": ("Runs", "runs_figure")}


def pages(store: Path, timeout_s: float) -> dict:
    """Seconds from navigation to the first chart of each page, on a real server, and its memory."""
    from playwright.sync_api import sync_playwright
    from tests.browser import chromium_path, dashboard
    result = {}
    with dashboard(store, timeout=120) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)  # the Runs page; its first visit warms the server
        page.wait_for_selector(".st-key-runs_figure", timeout=timeout_s * 1000)
        # One first visit per page, then three warm rounds: one sample of a page that is drawn by a
        # browser sharing the machine's two cores with the server is too noisy to read alone.
        for round_ in ("first_visit_s", "warm_1", "warm_2", "warm_3"):
            for name, (title, chart) in CHARTS.items():
                start = time.perf_counter()
                # Navigate inside the running app, as a user does: a click in the sidebar.
                page.click(f'[data-testid="stSidebarNav"] a:has-text("{title}")')
                try:
                    page.wait_for_selector(f".st-key-{chart} .js-plotly-plot" if chart else
                                           f'h1:has-text("{title}")', timeout=timeout_s * 1000)
                    seconds = round(time.perf_counter() - start, 2)
                except Exception:
                    seconds = f"> {timeout_s:g}"
                result.setdefault(name, {})[round_] = seconds
        for name, seconds in result.items():
            warm = [seconds.pop(k) for k in ("warm_1", "warm_2", "warm_3")]
            numbers = [w for w in warm if isinstance(w, float)]
            seconds["warm_s"] = warm
            seconds["warm_median_s"] = statistics.median(numbers) if len(numbers) == len(warm) else None
        server = _server_pid(url)
        if server:
            status = Path(f"/proc/{server}/status").read_text()
            mem = {k: int(v.split()[0]) // 1024 for k, v in (line.split(":", 1) for line in status.splitlines())
                   if k in ("VmRSS", "VmHWM")}
            result["server_mb"] = {"now": mem.get("VmRSS"), "peak": mem.get("VmHWM")}
        browser.close()
    return result


def _server_pid(url: str) -> int | None:
    port = url.rsplit(":", 1)[1]
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"streamlit" in b" ".join(cmd) and port.encode() in cmd:
                return int(proc.name)
    return None


def bench(parquet: Path, work: Path, args) -> dict:
    from store.runs import summary
    out = {"file": str(parquet), "load_average_before": os.getloadavg()}
    if "import" in args.skip:  # the store a run with --keep left in --work
        store = work / f"{parquet.stem}.duckdb"
        if not store.exists():
            raise SystemExit(f"--skip import needs {store} from an earlier run with --keep")
    else:
        store = fresh_store(work, parquet.stem)
        out["import"] = measured(engine("runs", "import", parquet, "--db", store), timeout=900)
    out["runs"] = summary(store)["total"]
    if args.baseline_rev and "import" not in args.skip:
        out["import_baseline"] = baseline_import(args.baseline_rev, parquet, work)
    setting = one_setting(store)
    out["setting"] = " / ".join(map(str, setting))
    d, c, a, g = setting
    if "cli" not in args.skip:
        out["help"] = measured(engine("--help"), timeout=120)
        out["fit"] = measured(engine("fit", "--dataset", d, "--classifier", c, "--augmentation", a, "--generator", g,
                                     "--n-boot", 0, "--json", "--db", store), timeout=300)
        out["equiv"] = measured(engine("equiv", "--dataset", d, "--classifier", c, "--augmentation", a, "--generator",
                                       g, "--n-base", 5000, "--n-real-added", 5000, "--n-boot", 0, "--json", "--db",
                                       store), timeout=300)
        # What the fit's start-up is made of: the imports it cannot do without.
        # (engine.cli.analysis itself imports them inside the commands, so name them.)
        out["import_analysis"] = measured([sys.executable, "-c", "import engine.cli.analysis, engine.analysis.fit, "
                                           "store.runs"], timeout=120)
        # The floor under that: the libraries alone, no project code, then without statsmodels (the
        # one a fit could do without, by computing its OLS statistics itself).
        out["import_libraries"] = measured([sys.executable, "-c", f"import {LIBRARIES}"], timeout=120)
        out["import_libraries_no_statsmodels"] = measured(
            [sys.executable, "-c", "import " + LIBRARIES.replace(", statsmodels.regression.linear_model", "")],
            timeout=120)
    if "query" not in args.skip:
        out["setting_query_ms"] = query_ms(store, setting)
        out["fit_in_process_ms"] = fit_in_process(store, setting)
        out["setting_query_shuffled_ms"] = shuffled_query_ms(store, setting, work)
    if "export" not in args.skip:
        export = work / "export.parquet"
        out["export"] = measured(engine("runs", "export", export, "--db", store), timeout=600)
        export.unlink(missing_ok=True)
    if args.pages and "pages" not in args.skip:
        out["pages"] = pages(store, args.page_timeout)
    out["load_average_after"] = os.getloadavg()
    if not args.keep:
        store.unlink(missing_ok=True)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", type=Path, help="Runs files from bench/make_large_store.py, small first.")
    parser.add_argument("--work", type=Path, default=None, help="Scratch folder (default: a new temporary one).")
    parser.add_argument("--baseline-rev", default=None, help="Also time the import of this commit (e.g. 63902a6).")
    parser.add_argument("--pages", action="store_true", help="Also time the dashboard's pages in headless Chromium.")
    parser.add_argument("--page-timeout", type=float, default=120.0)
    parser.add_argument("--keep", action="store_true", help="Keep the stores built.")
    parser.add_argument("--skip", type=lambda t: set(t.split(",")), default=set(),
                        help="Steps to leave out, comma-separated: import (reuse the stores --keep left in --work), "
                             "cli, query, export, pages.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="equiv-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = [bench(f, work, args) for f in args.files]
    ratios = {}
    if len(results) >= 2:
        small, large = results[0], results[-1]
        for key in ("import", "import_baseline", "help", "fit", "equiv", "import_analysis", "import_libraries",
                    "import_libraries_no_statsmodels", "export"):
            if "wall_s" in small.get(key, {}) and "wall_s" in large.get(key, {}):
                ratios[f"{key}_wall_large_over_small"] = round(large[key]["wall_s"] / small[key]["wall_s"], 2)
        if "wall_s" in large.get("import_baseline", {}) and "wall_s" in large.get("import", {}):
            ratios["import_speedup_vs_baseline"] = round(large["import_baseline"]["wall_s"] / large["import"]["wall_s"], 1)
    print(json.dumps({"benchmark": "store at two sizes", "cpus": os.cpu_count(), "results": results,
                      "ratios": ratios}, indent=2))
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
