"""How long the Budget page's verdict takes to update after a widget change, in headless Chromium (issue 26).

Each change is timed from the keystroke or pick to the verdict line on screen showing a new text
(the grade and number a person acts on), then the page is let settle before the next. Changes:
a new N typed, a new eps (a refit: every surface, the tuples, Eq. 1 and 200 bootstrap draws), and
a new dataset picked (a new setting: its runs read, fitted, its verdict computed). The first visit
of a setting is a cold cache; returning to one it has seen is warm, and both are reported.

    .venv/bin/python bench/bench_budget_latency.py [--repeats 3] [--out result.json]

It starts its own store (the paper's runs) and server in a temporary folder. Printed as JSON:
median/min/max milliseconds per kind of change, and the machine's load average at the start, since
the browser, the server and this script share the CPUs (an idle machine is the condition asked).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from store import runs as store_runs  # noqa: E402
from tests.browser import chromium_path, dashboard, wait_until_idle  # noqa: E402

VERDICT = """() => ([...document.querySelectorAll('[data-testid="stAlert"]')]
                     .find(el => el.innerText.includes("Verdict, grade")) || {}).innerText"""
# A new eps rarely moves the verdict (read off the measured runs, no surface), so a refit is timed to
# the c1 metric, redrawn in the same run of the page as the verdict.
C1 = """() => ([...document.querySelectorAll('[data-testid="stMetric"]')]
                .find(el => el.innerText.startsWith("c1")) || {}).innerText"""


def timed(page, act, watch: str = VERDICT) -> float:
    """ms from `act()` to the watched text differing from the one before."""
    before = page.evaluate(watch)
    start = time.perf_counter()
    act()
    page.wait_for_function(f"(old) => {{ const now = ({watch})(); return now && now !== old; }}", arg=before,
                           timeout=60_000)
    ms = (time.perf_counter() - start) * 1000
    wait_until_idle(page)
    return ms


def pick(page, label: str, option: str) -> None:
    page.get_by_label(label, exact=True).click()
    page.get_by_role("option", name=option, exact=True).click()


def summary(samples: list[float]) -> dict:
    return {"median_ms": round(statistics.median(samples), 1), "min_ms": round(min(samples), 1),
            "max_ms": round(max(samples), 1), "n": len(samples)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    if chromium_path() is None:
        sys.exit("error: chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "paper.duckdb"
        store_runs.init_store(db)
        samples = {"new N": [], "new eps (refit)": [], "new dataset, first visit": [], "new dataset, seen before": []}
        with dashboard(db) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1200})
            page.goto(f"{url}/budget")
            wait_until_idle(page)
            page.wait_for_function(VERDICT, timeout=60_000)
            n_field, eps_field = page.get_by_label("N: real images added"), page.get_by_label("eps", exact=True)
            for k in range(args.repeats):
                for value in (2000 + 1000 * k, 7000 + 1000 * k, 12000 + 1000 * k):
                    samples["new N"].append(timed(page, lambda: (n_field.fill(str(value)), n_field.press("Enter"))))
                for eps in ((2e-3, 5e-3, 2e-2)[k % 3], (3e-3, 7e-3, 3e-2)[k % 3]):
                    samples["new eps (refit)"].append(timed(page, lambda: (eps_field.fill(f"{eps:g}"),
                                                                           eps_field.press("Enter")), C1))
                eps_field.fill("0.001")
                eps_field.press("Enter")
                wait_until_idle(page)
                for dataset in ("ImageNet-100", "CIFAR-10", "BloodMNIST"):  # BloodMNIST is shown first
                    kind = "new dataset, first visit" if k == 0 else "new dataset, seen before"
                    samples[kind].append(timed(page, lambda: pick(page, "Dataset", dataset)))
            browser.close()
    result = {"bench": "budget_verdict_latency", "load_average_at_start": [round(x, 2) for x in load],
              "cpus": os.cpu_count(), **{k: summary(v) for k, v in samples.items() if v}}
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
