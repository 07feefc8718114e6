"""k CPU workers at once against the same jobs one after the other (issue 18), printed as JSON.

Two digits jobs of 12 runs each (n_base 20 and 30, 0,N,2N,3N x 3 seeds). For each k in 1, 2:
`sequential` runs k jobs with one `engine worker --once` after another; `concurrent` starts k
workers together. The ratio concurrent / sequential is what matters (1.0: no loss from running
side by side). `--threads-policy oversubscribe` gives every worker all the cores, as torch does by
default, to show what the default thread policy prevents.

    .venv/bin/python bench/bench_workers.py [--threads-policy share|oversubscribe]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.spec import validate  # noqa: E402
from engine.device.threads import usable_cores  # noqa: E402
from store import jobs  # noqa: E402
from store import runs as store_runs  # noqa: E402


def queue(db: Path, bases) -> None:
    for n_base in bases:
        jobs.submit(validate({"n_base": n_base, "added": "0,N,2N,3N", "seeds": 3}).to_dict(), db)


def worker(db: Path, policy: str) -> subprocess.Popen:
    extra = ["--threads", str(usable_cores())] if policy == "oversubscribe" else []
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "worker", "--db", str(db), "--device", "cpu",
                             "--once", "--poll", "0.2", *extra], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def timed(db: Path, k: int, together: bool, policy: str) -> float:
    queue(db, [20, 30][:k])
    start = time.perf_counter()
    if together:
        procs = [worker(db, policy) for _ in range(k)]
        for p in procs:
            p.wait()
    else:
        for _ in range(k):
            worker(db, policy).wait()
    seconds = time.perf_counter() - start
    done = jobs.list_jobs(db)
    assert (done.status == "done").all(), done[["status", "error"]]
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads-policy", choices=["share", "oversubscribe"], default="share")
    parser.add_argument("--ks", default="1,2")
    args = parser.parse_args()
    out = {"benchmark": "k workers at once vs one after another", "cores": usable_cores(),
           "threads_policy": args.threads_policy, "jobs": "digits n_base 20 / 30, 0,N,2N,3N x 3 seeds", "k": {}}
    for k in (int(v) for v in args.ks.split(",")):
        result = {}
        for mode, together in (("sequential", False), ("concurrent", True)):
            with tempfile.TemporaryDirectory() as tmp:
                db = Path(tmp) / "bench.duckdb"
                store_runs.init_store(db)
                result[f"{mode}_s"] = round(timed(db, k, together, args.threads_policy), 1)
        result["ratio"] = round(result["concurrent_s"] / result["sequential_s"], 3)
        out["k"][k] = result
    print(json.dumps(out))


if __name__ == "__main__":
    main()
