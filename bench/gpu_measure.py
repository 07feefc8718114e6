"""The measurements behind bench/gpu.py, run one at a time inside a worker process.

Every measurement goes through the engine's own code: EDM training is
engine.generators.edm_train.train_generator itself (its per-step loss.item(), EMA and gradient
clean-up included), sampling is its sample_balanced (the 18-step Heun sampler plus the uint8
conversion and copy to the host), classifiers are engine.classifiers.train.train_classifier (augmentation,
resize, bf16 autocast and channels_last on CUDA), and the closed-set point is engine.execution.local.run_grid,
what `engine run` calls; DiT and its VAE are engine.generators.dit_train.train_dit /
sample_balanced and engine.generators.vae.train_vae, when those modules exist. Nothing here sets
cudnn.benchmark or TF32 flags: the engine does not.

Protocol: bench/gpu.py writes one JSON request a line on stdin; the worker answers each with a
line `@@RESULT {json}` on stdout. Anything else a library prints is passed on as log. A
measurement that raises is answered with its error; one that overruns its limit is killed by the
parent. Either way the parent starts a fresh worker for the rest.
"""
from __future__ import annotations

import contextlib
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
import torch

RESULT, READY = "@@RESULT ", "@@READY "
NUM_CLASSES = 10


class Enough(Exception):
    """Raised from a progress callback to end a training loop once it has been timed."""


class StepClock:
    """The on_progress callback of a training loop: timestamps every step and ends the loop
    (by raising Enough) once `min_steps` steps after `warmup` steps took at least `target_s`."""

    def __init__(self, warmup: int, min_steps: int, target_s: float):
        if warmup < 1 or min_steps < 1:
            raise ValueError("StepClock needs at least one warm-up step and one timed step")
        self.warmup, self.min_steps, self.target_s = warmup, min_steps, target_s
        self.start = time.perf_counter()
        self.times: list[float] = []

    def __call__(self, *_):
        self.times.append(time.perf_counter())
        timed = len(self.times) - self.warmup
        if timed >= self.min_steps and self.times[-1] - self.times[self.warmup - 1] >= self.target_s:
            raise Enough

    def result(self, batch: int) -> dict:
        if len(self.times) < self.warmup + self.min_steps:
            raise RuntimeError(f"the loop stopped after {len(self.times)} steps, before it was timed")
        window = np.asarray(self.times[self.warmup - 1:])
        steps = np.diff(window)
        return {"images_per_s": round(batch * len(steps) / (window[-1] - window[0]), 2),
                "images_per_s_per_step": {q: round(float(batch / np.quantile(steps, p)), 2)
                                          for q, p in (("slowest", 1.0), ("median", 0.5), ("fastest", 0.0))},
                "timed_steps": int(len(steps)), "timed_s": round(float(window[-1] - window[0]), 3),
                "warmup_steps": self.warmup, "warmup_s": round(self.times[self.warmup - 1] - self.start, 3)}


def random_images(n: int, resolution: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC noise with balanced labels: speed does not depend on what the pixels show."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, resolution, resolution, 3), dtype=np.uint8),
            np.arange(n, dtype=np.int64) % NUM_CLASSES)


def n_parameters(net) -> float:
    return round(sum(p.numel() for p in net.parameters()) / 1e6, 2)


@contextlib.contextmanager
def edm_builder(compile: bool, backend: str, built: list):
    """train_generator builds its network through edm_train.build_net; wrap it so that the bench
    sees the network and, for the compiled variant, trains it through nn.Module.compile (which
    keeps parameter names, so EMA and checkpoints work unchanged)."""
    from engine.generators import edm_train
    original = edm_train.build_net

    def build(*args, **kwargs):
        net = original(*args, **kwargs)
        built.append(net)
        if compile:
            net.compile(backend=backend)
        return net

    edm_train.build_net = build
    try:
        yield
    finally:
        edm_train.build_net = original


def edm_train(device, preset: str, resolution: int, batch: int, compile: bool = False, backend: str = "inductor",
              warmup_steps: int = 5, min_steps: int = 5, target_s: float = 5.0) -> dict:
    from engine.generators.edm_train import default_config, train_generator
    from engine.generators.guard import ClosedSetView
    x, y = random_images(max(batch, 64), resolution)
    # Never reach the end of training nor a checkpoint: the clock ends the loop.
    from engine.generators.presets import MAX_TRAIN_IMAGES
    # As long as training may be (the clock stops it), and no checkpoint in the way.
    config = default_config(preset, train_images=MAX_TRAIN_IMAGES, batch_size=batch,
                            checkpoint_every_images=10 * MAX_TRAIN_IMAGES)
    clock, built = StepClock(warmup_steps, min_steps, target_s), []
    with tempfile.TemporaryDirectory() as tmp, edm_builder(compile, backend, built):
        try:
            train_generator(ClosedSetView(x, y, np.arange(len(x))), NUM_CLASSES, config, Path(tmp), device,
                            on_progress=clock)
        except Enough:
            pass
    return {**clock.result(batch), "parameters_M": n_parameters(built[0]), "batch": batch,
            "resolution": resolution, "lr_rampup_note": "lr ramps from 0 as in training; speed does not depend on it"}


def edm_sample(device, preset: str, resolution: int, batch: int, num_steps: int = 18, compile: bool = False,
               backend: str = "inductor", target_s: float = 5.0, max_reps: int = 3) -> dict:
    from engine.generators.edm_train import build_net, sample_balanced
    torch.manual_seed(0)
    # Random weights in the state load_ema leaves a trained network in: the cost of a network
    # evaluation does not depend on what it learned.
    net = build_net(resolution, 3, NUM_CLASSES, preset).to(device).eval().requires_grad_(False)
    if compile:
        net.compile(backend=backend)
    start = time.perf_counter()
    sample_balanced(net, NUM_CLASSES, 0, batch, 0, device, chunk=batch, num_steps=2)  # warm-up, same shapes
    warmup_s = time.perf_counter() - start
    reps = []
    while not reps or (sum(reps) < target_s and len(reps) < max_reps):
        start = time.perf_counter()
        images, _ = sample_balanced(net, NUM_CLASSES, 0, batch, len(reps) + 1, device, chunk=batch,
                                    num_steps=num_steps)  # ends with a copy to the host: synchronised
        reps.append(time.perf_counter() - start)
    assert images.shape == (batch, resolution, resolution, 3)
    per_image = [r / batch for r in reps]
    return {"s_per_image": round(float(np.mean(per_image)), 6),
            "s_per_image_range": [round(min(per_image), 6), round(max(per_image), 6)],
            "images_per_s": round(batch / float(np.mean(reps)), 2), "reps": len(reps),
            "network_evaluations": 2 * num_steps - 1, "heun_steps": num_steps, "batch": batch,
            "resolution": resolution, "warmup_s": round(warmup_s, 3), "parameters_M": n_parameters(net)}


def classifier_train(device, classifier: str, data_size: int, batch: int, compile: bool = False,
                     warmup_steps: int = 10, min_steps: int = 5, target_s: float = 5.0, probe: bool = True) -> dict:
    """train_classifier times its own loop: a warm-up call, a probe (a quarter of the target) to
    size the timed call, since the warm-up's rate includes its first steps, then the timed call.
    The probe is a second reading of the same rate."""
    from engine.catalog.defaults import default_recipe
    from engine.classifiers.train import train_classifier
    n = 2 * batch
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, data_size, data_size), dtype=torch.uint8, generator=gen).to(device)
    y = (torch.arange(n) % NUM_CLASSES).to(device)
    test_x, test_y = x[:min(n, 256)], y[:min(n, 256)]
    base = default_recipe(classifier, "bench", n, n, n)

    def train(steps: int):
        recipe = base.with_overrides({"iterations": str(steps), "batch_size": str(batch)})
        result = train_classifier(classifier, x, y, test_x, test_y, NUM_CLASSES, recipe, 0, device, compile)
        return result.train_seconds / steps, result

    start = time.perf_counter()
    step_s, _ = train(warmup_steps)
    warmup_s = time.perf_counter() - start
    probed = None
    if probe:
        step_s, probed = train(max(min_steps, int(0.25 * target_s / step_s)))
    _, timed = train(max(min_steps, int(target_s / step_s)))
    return {"images_per_s": round(timed.images_per_second, 2),
            "images_per_s_probe": round(probed.images_per_second, 2) if probed else None,
            "timed_steps": timed.steps, "timed_s": round(timed.train_seconds, 3), "batch": batch,
            "input_size": base.input_size, "data_size": data_size, "warmup_s": round(warmup_s, 3),
            "parameters_M": n_parameters(timed.model)}


def write_image_folder(root: Path, n_train: int, n_test: int, resolution: int) -> None:
    """A folder dataset (train/<class>/*.png, test/<class>/*.png) of noise images."""
    from PIL import Image
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        x, y = random_images(n, resolution, seed)
        for i, (img, label) in enumerate(zip(x, y)):
            folder = root / split / f"class{label}"
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(img).save(folder / f"{i}.png")


def closed_set_point(device, resolution: int, n_base: int, n_test: int, preset: str, train_images: int,
                     generator_batch: int, classifier: str, iterations: int) -> dict:
    """One point of a closed-set study, as `engine run --augmentation closed --added N` runs it:
    load a folder of images, train an EDM on the base set, sample N synthetic images, train and
    evaluate one classifier on base + synthetic, store the row."""
    from rich.console import Console

    from engine.execution.local import Runtime, run_grid
    from store import runs as store_runs
    with tempfile.TemporaryDirectory() as tmp:
        write_image_folder(Path(tmp) / "data", 2 * n_base, n_test, resolution)
        db = Path(tmp) / "store.duckdb"
        fields = {"dataset": f"folder:{Path(tmp) / 'data'}", "classifier": classifier, "n_base": n_base,
                  "augmentation": "closed", "added": "N", "seeds": 1, "generator_preset": preset,
                  "generator_options": {"train_images": str(train_images), "batch_size": str(generator_batch)},
                  "recipe": {"iterations": str(iterations)}}
        start = time.perf_counter()
        summary, _, _ = run_grid(fields, db, Console(stderr=True, quiet=True), Runtime(device=str(device)))
        wall = time.perf_counter() - start
        rows = store_runs.query_runs(db)
    if summary["written"] != 1 or len(rows) != 1:
        raise RuntimeError(f"expected one stored run, got {summary['written']} written and {len(rows)} rows")
    row = rows.iloc[0]
    config = json.loads(row.config)
    return {"wall_s": round(wall, 3), "generator_train_s": round(config["generator_train_time_s"], 3),
            "sampling_s_per_image": round(config["sampling_s_per_image"], 6),
            "classifier_train_s": round(float(row.wall_time_s), 3), "top1": float(row.top1),
            "n_base": n_base, "n_syn_added": int(row.n_syn_added), "resolution": resolution,
            "generator": row.generator, "generator_train_images": train_images, "classifier": row.classifier,
            "classifier_steps": int(config["steps"])}


def base_view(n: int, resolution: int):
    from engine.generators.guard import ClosedSetView
    x, y = random_images(n, resolution)
    return ClosedSetView(x, y, np.arange(n))


def vae_train(device, preset: str, resolution: int, batch: int, warmup_steps: int = 5, min_steps: int = 5,
              target_s: float = 5.0) -> dict:
    """engine.generators.vae.train_vae (DiT's autoencoder, trained from scratch), timed per step."""
    from engine.generators.vae import build_vae, default_vae_config, train_vae
    config = default_vae_config(preset, train_images=10 ** 12, batch_size=batch, checkpoint_every_images=10 ** 13)
    clock = StepClock(warmup_steps, min_steps, target_s)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            train_vae(base_view(max(batch, 64), resolution), config, Path(tmp), device, on_progress=clock)
        except Enough:
            pass
    return {**clock.result(batch), "parameters_M": n_parameters(build_vae(3, preset)), "batch": batch,
            "resolution": resolution}


def one_step_codec(view, vae_preset: str, device, folder: Path):
    """A VAE after one training step: DiT needs a codec, whose quality does not change its speed."""
    from engine.generators.vae import LatentCodec, default_vae_config, train_vae
    config = default_vae_config(vae_preset)
    train_vae(view, default_vae_config(vae_preset, train_images=config.batch_size), folder, device)
    return LatentCodec(folder, device)


def dit_train(device, preset: str, vae_preset: str, resolution: int, batch: int, warmup_steps: int = 3,
              min_steps: int = 3, target_s: float = 5.0) -> dict:
    """engine.generators.dit_train.train_dit on the latents of a (one-step) VAE, timed per step;
    gradient checkpointing and bf16 autocast as the preset trains."""
    from engine.generators.dit_train import default_config, train_dit
    view = base_view(max(batch, 64), resolution)
    config = default_config(preset, vae=vae_preset, train_images=10 ** 12, batch_size=batch,
                            checkpoint_every_images=10 ** 13)
    with tempfile.TemporaryDirectory() as tmp:
        codec = one_step_codec(view, vae_preset, device, Path(tmp) / "vae")
        clock = StepClock(warmup_steps, min_steps, target_s)
        try:
            train_dit(view, codec, NUM_CLASSES, config, Path(tmp) / "dit", device, on_progress=clock)
        except Enough:
            pass
    return {**clock.result(batch), "batch": batch, "resolution": resolution, "latent_size": codec.latent_size,
            "grad_checkpointing": config.grad_checkpointing}


def dit_sample(device, preset: str, vae_preset: str, resolution: int, batch: int, num_steps: int,
               short_steps: int, full_steps: int = 250, cfg_scale: float = 4.0, sampler: str = "ddpm") -> dict:
    """engine.generators.dit_train.sample_balanced (classifier-free guidance, VAE decode included)
    at num_steps and short_steps; the paper's full_steps are extrapolated from the per-step slope
    (the cost is linear in steps: one guided network evaluation each, plus a fixed decode)."""
    from engine.generators.dit import DiT
    from engine.generators.dit_train import sample_balanced
    view = base_view(64, resolution)
    with tempfile.TemporaryDirectory() as tmp:
        codec = one_step_codec(view, vae_preset, device, Path(tmp) / "vae")
        torch.manual_seed(0)
        net = DiT(codec.latent_size, codec.latent_channels, NUM_CLASSES, preset).to(device).eval().requires_grad_(False)

        def timed(steps: int, seed: int) -> float:
            start = time.perf_counter()
            images, _ = sample_balanced(net, codec, NUM_CLASSES, 0, batch, seed, device, cfg_scale, steps, sampler,
                                        batch=batch)
            assert images.shape == (batch, resolution, resolution, 3)
            return time.perf_counter() - start

        warmup_s = timed(short_steps, 0)
        short, full = timed(short_steps, 1), timed(num_steps, 2)
    per_step = (full - short) / (num_steps - short_steps)
    return {"s_per_image": round(full / batch, 6), "steps": num_steps, "sampler": sampler,
            "cfg_scale": cfg_scale, "s_per_image_short": round(short / batch, 6), "short_steps": short_steps,
            f"s_per_image_{full_steps}_steps": round((full + per_step * (full_steps - num_steps)) / batch, 6),
            "extrapolated": f"{full_steps} steps extrapolated linearly from {short_steps} and {num_steps} steps",
            "batch": batch, "resolution": resolution, "latent_size": codec.latent_size, "warmup_s": round(warmup_s, 3),
            "parameters_M": n_parameters(net)}


MEASUREMENTS = {"edm_train": edm_train, "edm_sample": edm_sample, "classifier_train": classifier_train,
                "closed_set_point": closed_set_point, "vae_train": vae_train, "dit_train": dit_train,
                "dit_sample": dit_sample}


def peak_memory_reset(device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    else:
        with contextlib.suppress(OSError):  # Linux: "5" resets the process's peak resident size
            Path("/proc/self/clear_refs").write_text("5")


def peak_memory(device) -> dict:
    if device.type == "cuda":
        return {"gpu_allocated_mib": round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1),
                "gpu_reserved_mib": round(torch.cuda.max_memory_reserved(device) / 2 ** 20, 1)}
    with contextlib.suppress(OSError, StopIteration, ValueError):
        line = next(ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM"))
        return {"process_rss_mib": round(int(line.split()[1]) / 1024, 1),
                "note": "peak resident size of the whole worker process, libraries included"}
    return {}


def run_one(request: dict, device) -> dict:
    torch._dynamo.reset()  # no compiled graph (nor a shape marked dynamic) carries over between measurements
    peak_memory_reset(device)
    start = time.perf_counter()
    try:
        result = MEASUREMENTS[request["kind"]](device, **request["params"])
        out = {"status": "ok", "result": result}
    except Exception as err:  # one failing measurement must not stop the others
        tail = traceback.format_exc().strip().splitlines()[-6:]
        out = {"status": "error", "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500],
               "traceback_tail": tail}
    out["wall_s"] = round(time.perf_counter() - start, 3)
    out["peak_memory"] = peak_memory(device)
    if device.type == "cuda":
        with contextlib.suppress(Exception):
            torch.cuda.synchronize(device)
    gc.collect()
    return out


def describe(device) -> dict:
    from engine.device.runtime import device_name, versions
    info = {"device": device_name(device), "versions": versions(), "torch_threads": torch.get_num_threads(),
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(cuda=torch.version.cuda, gpu_memory_gib=round(props.total_memory / 2 ** 30, 1),
                    multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}")
    return info


def main() -> None:
    # Each measurement imports what it needs itself, so that a missing package (diffusers, duckdb)
    # fails the measurements that need it and no others.
    from engine.device.runtime import resolve_device
    device = resolve_device(os.environ.get("GPU_BENCH_DEVICE", "auto"))
    print(READY + json.dumps(describe(device)), flush=True)
    for line in sys.stdin:
        if line.strip():
            print(RESULT + json.dumps(run_one(json.loads(line), device), default=str), flush=True)


if __name__ == "__main__":
    main()
