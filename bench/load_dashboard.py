"""Load test: concurrent dashboard sessions against a store that two workers are writing (issue 30).

`--sessions` headless Chromium contexts (default 20) each cycle Budget, Contours and Runs for
`--minutes` (default 5) while two `engine worker` processes train and store digits runs. Each visit
is timed from navigation to a drawn chart (a Plotly plot on screen, the Streamlit run finished).
Printed as JSON: p50/p95/max of those times per page, visits, exceptions shown on a page, failed
visits, the server's peak memory (its process tree), and the workers' rows: every run a finished
job lists must be in the store (lost rows: 0 is the bar, as is 0 exceptions).

    .venv/bin/python bench/load_dashboard.py [--sessions 20] [--minutes 5] [--out result.json]

It starts its own store, server and workers in a temporary folder; nothing else is touched.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.spec import validate  # noqa: E402
from store import jobs  # noqa: E402
from store import runs as store_runs  # noqa: E402
from tests.browser import chromium_path, dashboard  # noqa: E402

PAGES = ("budget", "contours", "")   # "" is the Runs page (the default page)
NAMES = {"budget": "Budget", "contours": "Contours", "": "Runs"}


def tree_rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (Streamlit's server is one process)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            todo += [int(c) for c in children]
        except (OSError, StopIteration, ValueError):
            continue
    return total / 1024


class Sampler(threading.Thread):
    """The server's peak memory, sampled every half second."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self):
        while not self.stop.wait(0.5):
            self.peak = max(self.peak, tree_rss_mb(self.pid))


def queue_jobs(db: Path, n_jobs: int) -> None:
    """Digits jobs small enough that two CPU workers keep writing throughout the test."""
    for k in range(n_jobs):
        spec = validate({"n_base": 20 + k, "added": "0,N", "seeds": 2, "recipe": "iterations=40"})
        jobs.submit(spec.to_dict(), db)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children, from /proc."""
    total, todo, tick = 0.0, [pid], os.sysconf("SC_CLK_TCK")
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
            todo += [int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split()]
        except (OSError, ValueError, IndexError):
            continue
    return total


def start_workers(db: Path, folder: Path, n: int, nice: int) -> list[subprocess.Popen]:
    procs = []
    for i in range(n):
        log = open(folder / f"worker-{i}.log", "w")
        procs.append(subprocess.Popen([sys.executable, "-m", "engine.cli", "worker", "--db", str(db), "--device",
                                       "cpu", "--poll", "0.5", "--threads", "1"], cwd=ROOT, stdout=log,
                                      stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                                      preexec_fn=(lambda: os.nice(nice)) if nice else None))
    return procs


async def session(browser, url: str, deadline: float, index: int, record: dict) -> None:
    context = await browser.new_context(viewport={"width": 1300, "height": 1100})
    page = await context.new_page()
    k = index  # sessions start on different pages
    while time.monotonic() < deadline:
        name = PAGES[k % len(PAGES)]
        k += 1
        start = time.perf_counter()
        try:
            await page.goto(f"{url}/{name}", timeout=120_000)
            await page.wait_for_selector('[data-testid="stMain"] h1', timeout=120_000)
            await page.wait_for_selector(".js-plotly-plot", state="visible", timeout=120_000)
            await page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')",
                                         timeout=120_000)
            record["times"][NAMES[name]].append(time.perf_counter() - start)
            shown = await page.locator('[data-testid="stException"]').count()
            if shown:
                text = await page.locator('[data-testid="stException"]').first.inner_text()
                record["exceptions"].append(f"{NAMES[name]}: {text.splitlines()[0] if text else '?'}")
        except Exception as err:  # a visit that never drew its chart: counted, and the session goes on
            record["failed"].append(f"{NAMES[name]}: {type(err).__name__}: {str(err).splitlines()[0][:200]}")
    await context.close()


async def drive(url: str, sessions: int, minutes: float, record: dict) -> None:
    from playwright.async_api import async_playwright
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium_path(),
                                          args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        deadline = time.monotonic() + minutes * 60
        await asyncio.gather(*(session(browser, url, deadline, i, record) for i in range(sessions)))
        # Chromium's processes are this process's descendants (Playwright's driver starts them).
        record["browser_cpu"] = cpu_seconds(os.getpid())
        await browser.close()


def quantiles(values: list[float]) -> dict:
    if not values:
        return {"visits": 0}
    values = sorted(values)
    pick = lambda q: values[min(len(values) - 1, int(q * len(values)))]  # noqa: E731
    return {"visits": len(values), "p50_s": round(statistics.median(values), 2), "p95_s": round(pick(0.95), 2),
            "max_s": round(values[-1], 2)}


def lost_rows(db: Path) -> dict:
    """Runs the finished jobs list that the store does not hold."""
    table = jobs.list_jobs(db)
    listed = [r for ids in table.run_ids.dropna() for r in json.loads(ids)]
    stored = set(store_runs.query_runs(db, source="engine", columns=["run_id"]).run_id)
    return {"jobs_done": int((table.status == "done").sum()), "jobs_total": len(table),
            "runs_listed_by_jobs": len(listed), "runs_stored": len(stored),
            "lost": sum(1 for r in listed if r not in stored)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--worker-nice", type=int, default=0,
                        help="Niceness of the workers: on a GPU server their training is not on the dashboard's CPU.")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        db = folder / "load.duckdb"
        store_runs.init_store(db)
        queue_jobs(db, args.jobs)
        record = {"times": {n: [] for n in NAMES.values()}, "exceptions": [], "failed": []}
        workers = start_workers(db, folder, args.workers, args.worker_nice)
        cpu = {}
        try:
            with dashboard(db) as url:
                server = next(int(p) for p in os.listdir("/proc") if p.isdigit()
                              and "streamlit" in Path(f"/proc/{p}/cmdline").read_bytes().decode(errors="replace")
                              and str(db) in Path(f"/proc/{p}/environ").read_bytes().decode(errors="replace"))
                sampler = Sampler(server)
                sampler.start()
                started = time.perf_counter()
                asyncio.run(drive(url, args.sessions, args.minutes, record))
                sampler.stop.set()
                wall = time.perf_counter() - started
                cpu["server_s"] = round(cpu_seconds(server), 1)
                cpu["workers_s"] = round(sum(cpu_seconds(w.pid) for w in workers), 1)
                cpu["browser_s"] = round(record.pop("browser_cpu", 0.0), 1)
        finally:
            for w in workers:
                w.send_signal(2)
            for w in workers:
                try:
                    w.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    w.kill()
        rows = lost_rows(db)
    out = {"benchmark": "dashboard sessions while workers write", "sessions": args.sessions,
           "minutes": args.minutes, "workers": args.workers, "wall_s": round(wall, 1), "cpu_cores": os.cpu_count(),
           "time_to_chart": {name: quantiles(v) for name, v in record["times"].items()},
           "exceptions": len(record["exceptions"]), "exception_examples": record["exceptions"][:5],
           "failed_visits": len(record["failed"]), "failed_examples": record["failed"][:5],
           "server_peak_rss_mb": round(sampler.peak, 1), "cpu_seconds": cpu, "worker_nice": args.worker_nice,
           "rows": rows}
    text = json.dumps(out, indent=2)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
