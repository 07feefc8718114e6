"""`engine synthetic generate`: an open-set synthetic set made here, with a local diffusers
text-to-image pipeline (SD 1.x, 2, 3 through AutoPipelineForText2Image), the paper's prompt
protocols (engine.generators.prompts) and its CLIP filter (engine.generators.clip_filter).

Nothing is downloaded: every model is a folder on this machine, read with local_files_only.
Everything a user can get wrong (folders, amounts, names) is checked before a model is loaded,
and nothing is stored until the whole set is made, filtered and hashed; it is then stored exactly
as an imported set is (engine.generators.open_set.assemble and store_set), with its provenance.

Work in progress lies in <artifacts>/synthetic/generate/<work id>/, named by everything that decides
the images (dataset, model folder hashes, protocol, amounts, sampling settings, seed): chunks of
images at the dataset's resolution with their CLIP scores, each written whole (tmp file, then
rename). A killed run loses at most the chunk it was making; run again, it skips the chunks that
exist. Chunk k always holds the jobs [k*B, (k+1)*B) of the plan, and every image's noise comes
from its own generator seeded from (seed, class, caption, image), so a run resumed with the same
batch size makes bit for bit the images an uninterrupted one would (on the same device and
software).
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from engine.generators.generate_checks import DTYPES, GenerateFailed, Request, check_request, folder_sha256
from engine.generators.open_set import MAX_IMAGES

WORK_FORMAT = 1
# A test may set this to a function called after each chunk is written, with the chunks written so
# far by this run: raising there is a kill at a chunk boundary.
AFTER_CHUNK: Optional[Callable[[int], None]] = None


# ----------------------------------------------------------------------------- models

def resolve_dtype(name: str, device):
    import torch
    if name not in DTYPES:
        raise GenerateFailed(f"--dtype {name!r}; valid: {', '.join(DTYPES)}")
    if name == "auto":  # half precision is what SD pipelines run in on a GPU; a CPU computes float32 fastest
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, name)


@contextlib.contextmanager
def quiet_libraries():
    """diffusers' and transformers' own progress bars and advice (install accelerate, torch_dtype is
    renamed, a prompt was truncated) would bury the command's one progress bar and its errors."""
    import warnings

    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog
    levels = dlog.get_verbosity(), tlog.get_verbosity()
    bars = dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled()
    dlog.set_verbosity_error()
    tlog.set_verbosity_error()
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        dlog.set_verbosity(levels[0])
        tlog.set_verbosity(levels[1])
        if bars[0]:
            dlog.enable_progress_bar()
        if bars[1]:
            tlog.enable_progress_bar()


def _load(what: str, folder: Path, load):
    try:
        return load()
    except Exception as err:  # whatever a broken folder raises (missing weights, bad JSON, a wrong class)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise GenerateFailed(f"cannot load {what} from {folder}: {first}") from None


def load_pipeline(folder: Path, device, dtype):
    from diffusers import AutoPipelineForText2Image

    def load():
        pipe = AutoPipelineForText2Image.from_pretrained(str(folder), local_files_only=True, torch_dtype=dtype)
        pipe.set_progress_bar_config(disable=True)
        return pipe.to(device)
    return _load("the diffusers pipeline", folder, load)


class CaptionModel:
    """A local text-generation model (transformers AutoModelForCausalLM) as the caption writer of the
    captions protocol: prompted with a few examples of each template family, it continues the line
    for a class. A caption that does not name the class is asked for again (three tries), then the
    template writer's is used and recorded as such."""

    EXAMPLES = ("Write one short caption of a photo for each request.\n"
                "c: teapot => A white teapot on a kitchen counter, steam rising from its spout.\n"
                "c, bg: fox, in a snowy field => A red fox standing alert in a snowy field at dawn.\n"
                "c, rel: bicycle, next to => A bicycle leaning next to a blue wooden door.\n")
    TRIES = 3
    MAX_NEW_TOKENS = 48

    def __init__(self, folder: Path, device, dtype):
        from transformers import AutoModelForCausalLM, AutoTokenizer
        self.device = device
        self.tokenizer = _load("the caption model's tokenizer", folder,
                               lambda: AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
        self.model = _load("the caption model", folder, lambda: AutoModelForCausalLM.from_pretrained(
            str(folder), local_files_only=True, torch_dtype=dtype).to(device).eval())

    def request(self, phrase: str, family: str, inputs: dict) -> str:
        if family == "c,bg":
            return f"c, bg: {phrase}, {inputs['bg']} =>"
        if family == "c,rel":
            return f"c, rel: {phrase}, {inputs['rel']} =>"
        return f"c: {phrase} =>"

    def __call__(self, phrase: str, family: str, inputs: dict, seed: int) -> Optional[str]:
        import torch

        from engine.generators.prompts import clean_caption, mentions
        prompt = self.EXAMPLES + self.request(phrase, family, inputs)
        ids = self.tokenizer(prompt, return_tensors="pt").to(self.device)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        for attempt in range(self.TRIES):
            # Seeded per caption and try, in a forked RNG: the captions do not depend on what ran before.
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed(seed + attempt)
                with torch.no_grad():
                    out = self.model.generate(**ids, do_sample=True, top_p=0.9, temperature=0.8,
                                              max_new_tokens=self.MAX_NEW_TOKENS, pad_token_id=pad)
            text = clean_caption(self.tokenizer.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True))
            if text and mentions(text, phrase):
                return text
        return None


# ----------------------------------------------------------------------------- the work folder

class WorkFolder:
    """Chunks of finished images; see the module's docstring. One process at a time (a lock)."""

    def __init__(self, root: Path, work_id: str, manifest: dict):
        self.root, self.work_id, self.manifest = root, work_id, manifest
        self._lock = None

    def open(self) -> "WorkFolder":
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = open(self.root / ".lock", "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise GenerateFailed(f"another `engine synthetic generate` is making these images ({self.root}): "
                                 f"wait for it, or stop it") from None
        for tmp in self.root.glob("*.tmp*"):  # a chunk or manifest a kill left half-written
            tmp.unlink()
        path = self.root / "manifest.json"
        if path.exists():
            try:
                stored = json.loads(path.read_text())
            except (OSError, ValueError):
                stored = None
            if not isinstance(stored, dict) or stored.get("identity") != self.manifest["identity"]:
                raise GenerateFailed(f"work folder {self.root} does not hold this generation's manifest: remove "
                                     f"the folder and run again")
            self.manifest = stored  # the captions as first written: a resumed run never re-writes them
        else:
            self._write(path, json.dumps(self.manifest, indent=1).encode())
        return self

    def remove(self):
        """The whole folder, unless another process holds it."""
        if not self.root.exists():
            return
        if self._lock is None:
            try:
                self.open()
            except GenerateFailed:
                return
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def close(self):
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    @staticmethod
    def _write(path: Path, data: bytes):
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)

    def chunks(self) -> list[Path]:
        return sorted(self.root.glob("chunk-*.npz"))

    def done(self) -> set[int]:
        done = set()
        for path in self.chunks():
            try:
                with np.load(path, allow_pickle=False) as npz:
                    done.update(int(j) for j in npz["job"])
            except (OSError, ValueError, KeyError, EOFError) as err:
                raise GenerateFailed(f"work folder chunk {path} is unreadable ({str(err).splitlines()[0]}): "
                                     f"remove it and run again") from None
        return done

    def write_chunk(self, jobs: list[int], images: np.ndarray, scores: np.ndarray, top: np.ndarray,
                    seconds: float, device: str):
        path = self.root / f"chunk-{jobs[0]:09d}.npz"
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, job=np.asarray(jobs, np.int64), images=images, score=scores, clip_top=top,
                 seconds=np.float64(seconds), device=np.str_(device))
        os.replace(tmp, path)

    def gather(self, n_jobs: int) -> dict:
        """Every job's image, score, CLIP top class, and the seconds and devices spent, by job index."""
        parts = {"job": [], "images": [], "score": [], "clip_top": []}
        seconds, devices = 0.0, set()
        for path in self.chunks():
            with np.load(path, allow_pickle=False) as npz:
                for k in parts:
                    parts[k].append(npz[k])
                seconds += float(npz["seconds"])
                devices.add(str(npz["device"]))
        out = {k: np.concatenate(v) for k, v in parts.items()}
        order = np.argsort(out["job"], kind="stable")
        out = {k: v[order] for k, v in out.items()}
        if not np.array_equal(out["job"], np.arange(n_jobs)):
            raise GenerateFailed(f"work folder {self.root} holds {len(out['job'])} images for a plan of {n_jobs} "
                                 f"(duplicated or missing jobs): remove it and run again")
        return dict(out, seconds=seconds, devices=sorted(devices))


# ----------------------------------------------------------------------------- the command

def work_root(db) -> Path:
    from store import artifacts
    return artifacts.artifacts_dir(db) / "synthetic" / "generate"


def generate_set(name: str, dataset: str, pipeline, **kwargs) -> tuple[str, dict]:
    """Generate, filter and store the open-set synthetic set NAME for DATASET. Returns ('added' or
    'present', the set's row). Keywords: _generate's and check_request's."""
    own = ("db", "data_root", "size", "device", "dtype", "keep_work", "log", "progress")
    req = check_request(name, dataset, pipeline, **{k: v for k, v in kwargs.items() if k not in own})
    if kwargs.get("dtype", "auto") not in DTYPES:
        raise GenerateFailed(f"--dtype {kwargs['dtype']!r}; valid: {', '.join(DTYPES)}")
    with quiet_libraries():
        return _generate(req, **{k: v for k, v in kwargs.items() if k in own})


def _generate(req: Request, *, db=None, data_root=None, size=None, device: str = "auto", dtype: str = "auto",
              keep_work: bool = False, log: Callable[[str], None] = print,
              progress: Optional[Callable[[int, int], None]] = None) -> tuple[str, dict]:
    from engine.data.loaders import load_dataset
    from engine.generators import prompts as P
    from engine.device.runtime import resolve_device
    from engine.spec import paths_and_size
    from store import synthetic as store_synthetic

    data_root, size, _ = paths_and_size(req.dataset, data_root, size)
    ds = load_dataset(req.dataset, data_root, size)
    if req.per_class * ds.num_classes > MAX_IMAGES:
        raise GenerateFailed(f"--per-class {req.per_class:,} x {ds.num_classes} classes is more than {MAX_IMAGES:,} "
                             f"images, the most a set may hold")
    existing = store_synthetic.open_set(req.name, db)
    if existing is None and store_synthetic.open_runs_elsewhere(req.name, "", db):
        raise GenerateFailed(f"stored runs use an earlier set named {req.name!r}: choose another name, so that their "
                             f"results are never pooled with these images")
    dev = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, dev)
    log("hashing the model folders (a changed file is another model)")
    identity = {"format": WORK_FORMAT, "dataset": ds.name, "classes": list(ds.classes), "image_size": ds.size,
                "channels": ds.channels, "pipeline_sha256": folder_sha256(req.pipeline, "--pipeline"),
                "pipeline_class": req.pipeline_class,
                "clip_sha256": folder_sha256(req.clip, "--clip") if req.clip else None,
                "caption_model_sha256": folder_sha256(req.caption_model, "--caption-model") if req.caption_model else None,
                "protocol": req.protocol, "per_class": req.per_class, "images_per_caption": req.images_per_caption,
                "steps": req.steps, "guidance": req.guidance, "resolution": req.resolution,
                "dtype": str(torch_dtype).removeprefix("torch."), "seed": req.seed}
    work_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]
    work = WorkFolder(work_root(db) / work_id, work_id, {"identity": identity})
    if existing is not None:
        made = existing.get("provenance") or {}
        if made.get("work_id") != work_id:
            raise GenerateFailed(f"a synthetic set named {req.name!r} already holds other images: choose another "
                                 f"name, or `engine synthetic remove {req.name}` first")
        if made["filter"]["fraction"] != req.filter_fraction:
            raise GenerateFailed(f"synthetic set {req.name!r} holds these images filtered with --filter-fraction "
                                 f"{made['filter']['fraction']}: choose another name for another cut")
        if not keep_work:  # a run killed after storing its set left its work behind
            work.remove()
        return "present", existing

    jobs = P.plan_jobs(ds.num_classes, req.protocol, req.per_class, req.images_per_caption or 1, req.seed)
    models = None
    if not (work.root / "manifest.json").exists():
        if req.caption_model:
            log(f"writing captions with {req.caption_model}")
        writer = CaptionModel(req.caption_model, dev, torch_dtype) if req.caption_model else None
        plan = P.plan_captions(list(ds.classes), req.protocol, req.per_class, req.images_per_caption or 1,
                               req.seed, writer)
        del writer  # its memory is the pipeline's now
        work.manifest["captions"] = [[asdict(c) for c in per] for per in plan]
        # Loaded before the work folder is made: a folder that does not load leaves nothing behind.
        models = _models(req, ds, dev, torch_dtype)
    work.open()  # a resumed run takes the captions from the manifest: they are never written twice
    try:
        done = work.done()
        if done:
            log(f"resuming: {len(done):,} of {len(jobs):,} images already made in {work.root}")
        if len(done) < len(jobs):
            _make_images(work, jobs, done, req, ds, models or _models(req, ds, dev, torch_dtype), dev, progress)
        elif progress:
            progress(len(done), len(jobs))
        state, row = _store(work, jobs, req, ds, db)
        if not keep_work:
            work.remove()
    finally:
        work.close()
    return state, row


def _models(req: Request, ds, dev, dtype):
    from engine.generators.prompts import class_phrase
    pipe = load_pipeline(req.pipeline, dev, dtype)
    if req.clip is None:
        return pipe, None
    from engine.generators.clip_filter import ClipScorer
    phrases = [class_phrase(c) for c in ds.classes]
    return pipe, _load("the CLIP model", req.clip, lambda: ClipScorer(req.clip, phrases, dev, dtype))


def _make_images(work: WorkFolder, jobs, done: set, req: Request, ds, models, dev, progress) -> None:
    """Every chunk not yet in the work folder: chunk k holds the jobs [k*B, (k+1)*B) not already made."""
    import torch
    from PIL import Image

    from engine.data.loaders import image_pixels
    from engine.device.runtime import device_name
    pipe, scorer = models
    captions = work.manifest["captions"]
    n, size = len(jobs), req.batch_size
    if progress:
        progress(len(done), n)
    written = 0
    for start in range(0, n, size):
        batch = [j for j in range(start, min(start + size, n)) if j not in done]
        if not batch:
            continue
        begin = time.perf_counter()
        # Each image's noise comes from its own CPU generator: the same on any device, in any batch.
        generators = [torch.Generator("cpu").manual_seed(jobs[j].seed) for j in batch]
        try:
            with torch.no_grad():
                out = pipe(prompt=[captions[jobs[j].label][jobs[j].caption]["text"] for j in batch],
                           num_inference_steps=req.steps, guidance_scale=req.guidance, height=req.resolution,
                           width=req.resolution, generator=generators, output_type="np")
        except torch.cuda.OutOfMemoryError:
            raise GenerateFailed(f"out of GPU memory at --batch-size {size}: run again with a smaller one (the "
                                 f"{len(done):,} images made so far are kept)") from None
        full = (np.clip(np.asarray(out.images, np.float32), 0, 1) * 255).round().astype(np.uint8)
        labels = np.asarray([jobs[j].label for j in batch], np.int64)
        # CLIP sees the image as generated, before it is resized to the dataset's resolution.
        scores, top = scorer(full, labels) if scorer else (np.full(len(batch), np.nan), np.full(len(batch), -1))
        # The path imported images take to the dataset's channels and resolution.
        small = np.stack([image_pixels(Image.fromarray(a), ds.channels == 1, ds.size) for a in full])
        work.write_chunk(batch, small, scores, top, time.perf_counter() - begin, device_name(dev))
        done.update(batch)
        written += 1
        if progress:
            progress(len(done), n)
        if AFTER_CHUNK is not None:
            AFTER_CHUNK(written)


def _store(work: WorkFolder, jobs, req: Request, ds, db) -> tuple[str, dict]:
    """Filter the finished images, hash and store them as an imported set is stored, with the
    provenance in the row and every image's prompt, seed and score in a records file beside it."""
    from engine.generators import prompts as P
    from engine.generators.clip_filter import SCOPE, SCORE, dropped_per_class, keep_mask
    from engine.generators.open_set import assemble, store_set
    from engine.device.runtime import versions
    from store import artifacts
    made = work.gather(len(jobs))
    captions, identity = work.manifest["captions"], work.manifest["identity"]
    labels = np.asarray([j.label for j in jobs], np.int64)
    keep = keep_mask(labels, made["score"], req.filter_fraction)
    kept = np.flatnonzero(keep)
    imported = assemble(list(made["images"][kept]), labels[kept].tolist(), ds)
    positions = _stored_positions(imported, made["images"], labels, kept)
    records_path = artifacts.artifacts_dir(db) / "synthetic" / f"{imported.set_id}.generation.json"
    score = [None if np.isnan(v) else float(v) for v in made["score"]]
    records = {"prompts": {ds.classes[c]: per for c, per in enumerate(captions)},
               "images": [{"class": ds.classes[job.label], "label": job.label, "caption": job.caption,
                           "image": job.image, "seed": job.seed, "score": score[k],
                           "clip_top": None if made["clip_top"][k] < 0 else ds.classes[int(made["clip_top"][k])],
                           "kept": bool(keep[k]), "position": positions.get(k)} for k, job in enumerate(jobs)]}
    data = json.dumps(records, indent=0).encode()
    by_class = {}
    if req.clip:
        for c, cls in enumerate(ds.classes):
            mine, kept_mine = made["score"][labels == c], made["score"][(labels == c) & keep]
            by_class[cls] = {"mean": float(mine.mean()), "lowest_kept": float(kept_mine.min()) if len(kept_mine) else None}
    provenance = {
        "kind": "text-to-image", "work_id": work.work_id,
        "pipeline": {"path": str(req.pipeline), "sha256": identity["pipeline_sha256"], "class": req.pipeline_class},
        "clip": {"path": str(req.clip), "sha256": identity["clip_sha256"]} if req.clip else None,
        "caption_model": ({"path": str(req.caption_model), "sha256": identity["caption_model_sha256"]}
                          if req.caption_model else None),
        "protocol": req.protocol,
        "template": P.SIMPLE_TEMPLATE if req.protocol == "simple" else [P.FAMILY_LABELS[f] for f in P.FAMILIES],
        "per_class": req.per_class, "images_per_caption": req.images_per_caption, "steps": req.steps,
        "guidance": req.guidance, "resolution": req.resolution, "dtype": identity["dtype"], "seed": req.seed,
        "batch_size": req.batch_size, "generated": len(jobs), "kept": int(len(kept)),
        "filter": {"fraction": req.filter_fraction, "scope": SCOPE, "score": SCORE if req.clip else None,
                   "dropped": int((~keep).sum()), "dropped_per_class": dropped_per_class(req.per_class, req.filter_fraction),
                   "scores": by_class},
        "devices": made["devices"], "seconds": made["seconds"],
        "records": {"path": str(records_path), "sha256": hashlib.sha256(data).hexdigest()},
        "versions": versions(),
    }
    extra = {"seed": req.seed, "sampling_s_per_image": made["seconds"] / len(jobs), "provenance": provenance}
    return store_set(req.name, ds, imported, str(req.pipeline), db, extra, {records_path: data})


def _stored_positions(imported, images: np.ndarray, labels: np.ndarray, kept: np.ndarray) -> dict[int, int]:
    """Job index -> its image's position in the stored stream (identical images share positions in order)."""
    slots: dict[tuple, list[int]] = {}
    for pos, (img, y) in enumerate(zip(imported.images, imported.labels)):
        slots.setdefault((int(y), hashlib.sha256(img.tobytes()).hexdigest()), []).append(pos)
    out = {}
    for k in kept:
        out[int(k)] = slots[(int(labels[k]), hashlib.sha256(images[k].tobytes()).hexdigest())].pop(0)
    return out
