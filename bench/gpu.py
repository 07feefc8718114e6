"""GPU evidence in one prepared run: every speed figure the README lacks, written to one JSON file.

    python bench/gpu.py --out gpu.json               # on the GPU machine (bench/gpu.sh wraps it)
    python bench/gpu.py --smoke --out smoke.json     # the same measurements at tiny sizes on a CPU
    python bench/gpu.py --only edm_train/cifar/eager,closed_set_point --budget-s 200
    python bench/gpu.py --table gpu.json             # markdown rows for docs/speed.md

Measurements run one after another in a worker process (bench/gpu_measure.py), each with a
warm-up inside it and a hard time limit outside it: one that overruns is killed and recorded as
timed out, one that raises is recorded with its error, and the rest go on (in a fresh worker
after either). A global budget keeps
the whole run inside its slot (what does not fit is recorded as skipped). The JSON file is
rewritten after every measurement, so a run cut short still leaves what it measured.
Plan order puts the figures README needs first and the torch.compile variants (minutes of
compilation) last.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKER = Path(__file__).with_name("gpu_measure.py")
RESULT, READY = "@@RESULT ", "@@READY "

# Published figures the measurements sit beside (docs/speed.md gives the sources).
ANCHORS = {
    "edm_sample": "paper (arXiv 2508.09550): 0.06 s/image, 32x32, RTX A4500, batch 100",
    "edm_train": "NVlabs/edm DDPM++ CIFAR-10 (the cifar preset's size): ~145 images/s per V100",
    "classifier_train/resnet110": "ResNet-110 on CIFAR: ~717 images/s on a GTX 980",
    "classifier_train/resnet50": "NVIDIA DeepLearningExamples ResNet-50 AMP: 2,470 images/s on one A100",
}


# Sizes of the real run (on a GPU) and of --smoke (a CPU check that every path works). EDM trains
# at its presets' own batches (edm_train.PRESET_TRAINING); the 224x224 classifiers at the paper's
# batch of 192; DiT at its paper's batch of 256 on 224x224 images (28x28 latents of the f8 VAE).
SIZES = {
    "gpu": dict(res=32, edm_batch={"small": 256, "cifar": 512}, sample_batches=(256, 1024), heun=18,
                warmup=5, min_steps=5, target_s=5.0, classifier_batch={}, classifier_warmup=10,
                point=dict(resolution=32, n_base=500, n_test=1000, preset="small", train_images=51_200,
                           generator_batch=256, classifier="resnet110", iterations=300),
                vae="f8", vae_batch=32, dit_res=224, dit_presets=("XL/2", "B/2"), dit_batch=256, dit_sample_batch=256,
                dit_steps=(2, 12), limits=dict(edm_train=45, edm_sample=60, classifier_train=45, closed_set_point=120,
                                               vae_train=60, dit_train=90, dit_sample=90, compiled=150)),
    "smoke": dict(res=8, edm_batch={"small": 4, "cifar": 2}, sample_batches=(2, 4), heun=2,
                  warmup=1, min_steps=1, target_s=0.2, classifier_batch={128: 2, 512: 4, 192: 1}, classifier_warmup=1,
                  point=dict(resolution=8, n_base=20, n_test=20, preset="tiny", train_images=256,
                             generator_batch=64, classifier="smallcnn", iterations=5),
                  vae="tiny", vae_batch=4, dit_res=8, dit_presets=("tiny",), dit_batch=4, dit_sample_batch=2,
                  dit_steps=(1, 3), limits={}),  # on a busy CPU any limit is a guess: 120 s each guards hangs
}


def plan(smoke: bool, backend: str) -> list[dict]:
    """Every measurement in the order it runs: name, kind (a function of gpu_measure), params, limit.
    The figures README needs come first, DiT (if present) next, the torch.compile variants last."""
    z = SIZES["smoke" if smoke else "gpu"]
    timing = {"warmup_steps": z["warmup"], "min_steps": z["min_steps"], "target_s": z["target_s"]}
    out = []

    def add(name, kind, params, needs=None, skip=None, limit=None):
        out.append({"name": name, "kind": kind, "params": params, "needs": needs, "skip": skip,
                    "limit_s": z["limits"].get(limit or kind, 120)})

    def edm(compile: bool):
        variant = "compiled" if compile else "eager"
        limit = "compiled" if compile else None
        # Tracing a network for torch.compile takes 5-15 s of a small CPU: the smoke run traces the
        # small preset at one batch only (the same code path as the others).
        def skip(preset, batch=None):
            if smoke and compile and (preset == "cifar" or batch not in (None, z["sample_batches"][0])):
                return "--smoke compiles the small preset at one batch only"
        for preset in ("small", "cifar"):
            add(f"edm_train/{preset}/{variant}", "edm_train",
                {"preset": preset, "resolution": z["res"], "batch": z["edm_batch"][preset], "compile": compile,
                 "backend": backend, **timing}, skip=skip(preset), limit=limit)
        for preset in ("small", "cifar"):
            for batch in z["sample_batches"]:
                add(f"edm_sample/{preset}/b{batch}/{variant}", "edm_sample",
                    {"preset": preset, "resolution": z["res"], "batch": batch, "num_steps": z["heun"],
                     "compile": compile, "backend": backend, "target_s": z["target_s"], "max_reps": 1 if smoke else 3},
                    skip=skip(preset, batch), limit=limit)

    edm(False)
    for classifier, size, batch in (("resnet110", 32, 128), ("resnet110", 32, 512), ("resnet50", 224, 192),
                                    ("vit-b32", 224, 192)):
        batch = z["classifier_batch"].get(batch, batch)
        add(f"classifier_train/{classifier}/b{batch}", "classifier_train",
            {"classifier": classifier, "data_size": size, "batch": batch, **timing,
             "warmup_steps": z["classifier_warmup"], "probe": not smoke})
    add("closed_set_point", "closed_set_point", z["point"])
    dit = {"vae_preset": z["vae"], "resolution": z["dit_res"]}
    add(f"vae_train/{z['vae']}", "vae_train", {"preset": z["vae"], "resolution": z["dit_res"],
                                              "batch": z["vae_batch"], **timing}, needs="engine.generators.vae")
    for i, preset in enumerate(z["dit_presets"]):
        name = preset.replace("/", "-")
        add(f"dit_train/{name}", "dit_train", {"preset": preset, **dit, "batch": z["dit_batch"], **timing},
            needs="engine.generators.dit_train")
        if i == 0:
            add(f"dit_sample/{name}", "dit_sample", {"preset": preset, **dit, "batch": z["dit_sample_batch"],
                                                     "short_steps": z["dit_steps"][0], "num_steps": z["dit_steps"][1]},
                needs="engine.generators.dit_train")
    edm(True)
    return out


def module_exists(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


class Worker:
    """One gpu_measure.py process: requests on its stdin, results read off its stdout by a thread."""

    def __init__(self, device: str):
        env = dict(os.environ, GPU_BENCH_DEVICE=device, PYTHONUNBUFFERED="1",
                   PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
        # Its own process group, so that a kill also ends torch.compile's helper processes.
        self.proc = subprocess.Popen([sys.executable, str(WORKER)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, env=env, cwd=ROOT, start_new_session=True)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            if line.startswith((RESULT, READY)):
                self.lines.put(line)
            else:
                sys.stderr.write(line)
        self.lines.put(None)  # end of output: the process is gone

    def receive(self, prefix: str, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                return None
            if line is None:
                return None
            if line.startswith(prefix):
                return json.loads(line[len(prefix):])

    def ask(self, request: dict, timeout: float) -> dict | None:
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        return self.receive(RESULT, timeout)

    def why_gone(self) -> str:
        code = self.proc.poll()
        if code is None:
            return ""
        return f"worker exited with code {code}" + (f" ({signal.Signals(-code).name})" if code < 0 else "")

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()

    def close(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def write_json(path: Path, report: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def run(args) -> dict:
    started = time.monotonic()
    deadline = started + args.budget_s
    measurements = plan(args.smoke, args.compile_backend)
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if not any(m["name"].startswith(w) for m in measurements)]
        if unknown:
            raise SystemExit(f"--only {unknown[0]!r} matches no measurement; names: "
                             f"{', '.join(m['name'] for m in measurements)}")
        measurements = [m for m in measurements if any(m["name"].startswith(w) for w in wanted)]
    report = {"benchmark": "GPU evidence (bench/gpu.py)", "smoke": args.smoke,
              "started_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "budget_s": args.budget_s, "compile_backend": args.compile_backend, "anchors": ANCHORS,
              "environment": None, "measurements": [], "wall_s": None}
    worker = None
    for m in measurements:
        entry = {"name": m["name"], "kind": m["kind"], "params": m["params"], "limit_s": m["limit_s"]}
        report["measurements"].append(entry)
        remaining = deadline - time.monotonic()
        if m.get("skip"):
            entry.update(status="skipped", error=m["skip"])
        elif m.get("needs") and not module_exists(m["needs"]):
            entry.update(status="skipped", error=f"{m['needs']} is not in this checkout")
        elif remaining < min(m["limit_s"], args.min_slot_s):
            entry.update(status="skipped", error=f"the run's budget of {args.budget_s:.0f} s was spent "
                                                 f"({remaining:.0f} s left)")
        else:
            if worker is None:
                worker = Worker(args.device)
                ready = worker.receive(READY, max(1.0, deadline - time.monotonic()))
                if ready is None:
                    why = worker.why_gone() or "it did not start within the budget"
                    worker.kill()
                    worker = None
                    entry.update(status="error", error=f"worker did not start: {why}")
                    write_json(args.out, report)
                    continue
                if not args.smoke and args.device == "auto" and ready["device"].startswith("cpu"):
                    worker.kill()
                    raise SystemExit("bench/gpu.py: no CUDA GPU here; the full sizes take hours on a CPU "
                                     "(use --smoke to check the script, or --device cpu to insist)")
                report["environment"] = report["environment"] or ready
            limit = min(m["limit_s"], deadline - time.monotonic())
            print(f"[gpu bench] {m['name']} (limit {limit:.0f} s)", file=sys.stderr, flush=True)
            answer = worker.ask({"kind": m["kind"], "params": m["params"]}, limit)
            if answer is None:
                why = worker.why_gone() or f"timed out after {limit:.0f} s (limit; warm-up and compilation included)"
                worker.kill()
                worker = None
                entry.update(status="error", error=why)
            else:
                entry.update(answer)
                if answer["status"] != "ok":  # CUDA errors are sticky: the next one starts afresh
                    worker.kill()
                    worker = None
        print(f"[gpu bench] {m['name']}: {entry['status']}"
              + (f" ({entry['error']})" if entry.get("error") else ""), file=sys.stderr, flush=True)
        report["wall_s"] = round(time.monotonic() - started, 2)
        write_json(args.out, report)
    if worker is not None:
        worker.close()
    report["wall_s"] = round(time.monotonic() - started, 2)
    write_json(args.out, report)
    return report


FIGURE = {"edm_train": ("images_per_s", "images/s"), "edm_sample": ("s_per_image", "s/image"),
          "classifier_train": ("images_per_s", "images/s"), "closed_set_point": ("wall_s", "s wall"),
          "vae_train": ("images_per_s", "images/s"), "dit_train": ("images_per_s", "images/s"),
          "dit_sample": ("s_per_image", "s/image")}


def table(report: dict) -> str:
    """Markdown rows (measurement, figure, peak memory) from a written JSON file, for docs/speed.md."""
    rows = ["| measurement | figure | peak memory |", "| --- | --- | --- |"]
    for m in report["measurements"]:
        if m["status"] != "ok":
            rows.append(f"| {m['name']} | {m['status']}: {m['error']} | |")
            continue
        key, unit = FIGURE[m["kind"]]
        mem = m.get("peak_memory") or {}
        peak = mem.get("gpu_allocated_mib", mem.get("process_rss_mib"))
        rows.append(f"| {m['name']} | {m['result'][key]:,} {unit} | {f'{peak:,.0f} MiB' if peak else ''} |")
    return "\n".join(rows)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("gpu.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU, to check the script works")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda:K (default: cpu with --smoke, else auto)")
    parser.add_argument("--budget-s", type=float, default=None,
                        help="wall time for all measurements (default 420 s; 300 s with --smoke)")
    parser.add_argument("--min-slot-s", type=float, default=15.0,
                        help="do not start a measurement with less than this much budget left")
    parser.add_argument("--compile-backend", default=None,
                        help="torch.compile backend (default inductor; aot_eager with --smoke: dynamo and "
                             "AOTAutograd trace the graphs as inductor would get them, without the code "
                             "generation that takes minutes on a CPU)")
    parser.add_argument("--only", default=None, help="comma-separated name prefixes of the measurements to run")
    parser.add_argument("--table", type=Path, default=None, help="print a written JSON file as markdown rows, and exit")
    args = parser.parse_args(argv)
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return 0
    args.device = args.device or ("cpu" if args.smoke else "auto")
    args.budget_s = args.budget_s or (300.0 if args.smoke else 420.0)
    args.compile_backend = args.compile_backend or ("aot_eager" if args.smoke else "inductor")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    report = run(args)
    counts = {s: sum(m["status"] == s for m in report["measurements"]) for s in ("ok", "error", "skipped")}
    print(json.dumps({"out": str(args.out), "wall_s": report["wall_s"], **counts}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
