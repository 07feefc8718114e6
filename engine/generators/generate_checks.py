"""What `engine synthetic generate` checks before any model is loaded: the request (names, amounts,
sampling settings with the paper's Tab. 7 defaults), the model folders (a diffusers pipeline, a CLIP or
caption model: local folders only, never downloaded), and their content hashes for the provenance.
Everything a user can get wrong is one GenerateFailed line, with nothing stored."""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from engine.generators.open_set import MAX_IMAGES
from engine.messages import InputError

# Tab. 7 lists the CFG scale of each model: SD2 7.5, SD3 2.0. It lists no step counts: ours are
# diffusers' defaults for these pipelines (50 for SD 1.x/2, 28 for SD3).
TAB7_GUIDANCE = {"sd3": 2.0, "sd": 7.5}
DEFAULT_STEPS = {"sd3": 28, "sd": 50}
LIMITS = {"per_class": (1, MAX_IMAGES), "images_per_caption": (1, 1_000), "steps": (1, 1_000),
          "guidance": (0.0, 100.0), "resolution": (8, 4_096), "batch_size": (1, 4_096), "seed": (0, 2**31 - 1)}
DTYPES = ("auto", "float32", "float16", "bfloat16")


class GenerateFailed(InputError):
    """A generation that cannot be made; one line naming the bad option, folder or file (clipped when long)."""


@dataclass(frozen=True)
class Request:
    """What was asked, checked and with every default resolved (those that need no model loaded)."""
    name: str
    dataset: str
    pipeline: Path
    protocol: str
    per_class: int
    images_per_caption: Optional[int]     # None under the simple protocol: one prompt per class
    steps: int
    guidance: float
    resolution: int
    clip: Optional[Path]
    filter_fraction: float
    caption_model: Optional[Path]
    seed: int
    batch_size: int
    pipeline_class: str


# ----------------------------------------------------------------------------- checks (no models)

def _number(value, what: str, kind=int):
    lo, hi = LIMITS[what]
    flag = "--" + what.replace("_", "-")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise GenerateFailed(f"{flag} {value!r} must be a finite number")
    if kind is int and value != int(value):
        raise GenerateFailed(f"{flag} {value!r} must be a whole number")
    if not lo <= value <= hi:
        raise GenerateFailed(f"{flag} {value!r} must be between {lo:,} and {hi:,}")
    return kind(value)


def _folder(path, option: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise GenerateFailed(f"{option} {path}: no such folder (models are never downloaded: give a local folder)")
    if not path.is_dir():
        raise GenerateFailed(f"{option} {path} is not a folder")
    return path


def _json_file(path: Path, option: str, folder: Path) -> dict:
    from engine.data.dataset import check_regular
    check_regular(path, GenerateFailed)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise GenerateFailed(f"{option} {folder}: {path.name} is not readable JSON ({str(err).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise GenerateFailed(f"{option} {folder}: {path.name} is not a JSON object")
    return data


def check_pipeline_folder(path) -> tuple[Path, dict]:
    """A diffusers pipeline folder: model_index.json, and a subfolder for every component it names."""
    folder = _folder(path, "--pipeline")
    index = folder / "model_index.json"
    if not index.exists():
        raise GenerateFailed(f"--pipeline {folder} holds no model_index.json: not a diffusers pipeline folder "
                             f"(one made by pipeline.save_pretrained)")
    spec = _json_file(index, "--pipeline", folder)
    if not isinstance(spec.get("_class_name"), str):
        raise GenerateFailed(f"--pipeline {folder}: model_index.json names no pipeline class (_class_name)")
    for component, value in spec.items():
        if component.startswith("_") or not isinstance(value, list) or None in value:
            continue
        if not (folder / component).is_dir():
            raise GenerateFailed(f"--pipeline {folder} lacks {component}/, which its model_index.json names "
                                 f"({'.'.join(map(str, value))})")
    return folder, spec


def check_model_folder(path, option: str, model_type: Optional[str] = None) -> Path:
    """A transformers model folder: config.json (of the given model_type)."""
    folder = _folder(path, option)
    config = folder / "config.json"
    if not config.exists():
        raise GenerateFailed(f"{option} {folder} holds no config.json: not a transformers model folder "
                             f"(one made by model.save_pretrained)")
    got = _json_file(config, option, folder).get("model_type")
    if model_type and got != model_type:
        raise GenerateFailed(f"{option} {folder} holds a {got!r} model, not {model_type!r}")
    return folder


def family(pipeline_class: str) -> str:
    return "sd3" if "StableDiffusion3" in pipeline_class else "sd"


def default_resolution(folder: Path, spec: dict) -> int:
    """The pipeline's own default side (what diffusers uses without height/width): the denoiser's
    sample_size times the VAE's downsampling, read from the config files."""
    denoiser = "transformer" if (folder / "transformer" / "config.json").exists() else "unet"
    try:
        sample = json.loads((folder / denoiser / "config.json").read_text())["sample_size"]
        blocks = json.loads((folder / "vae" / "config.json").read_text())["block_out_channels"]
        side = int(sample if isinstance(sample, int) else sample[0]) * 2 ** (len(blocks) - 1)
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        raise GenerateFailed(f"--pipeline {folder}: cannot read its default resolution from {denoiser}/config.json and "
                             f"vae/config.json: give --resolution") from None
    return side


def check_request(name: str, dataset: str, pipeline, *, protocol: str = "captions", per_class=None,
                  images_per_caption=5, steps=None, guidance=None, resolution=None, clip=None,
                  filter_fraction=None, caption_model=None, seed=0, batch_size=8) -> Request:
    """Every option and folder, checked before anything is loaded; the defaults of Tab. 7 filled in."""
    from engine.generators.open_set import check_set_name
    from engine.generators.prompts import PROTOCOLS
    from engine.spec import check_dataset
    check_set_name(name)
    dataset = check_dataset(dataset)
    if protocol not in PROTOCOLS:
        raise GenerateFailed(f"--protocol {protocol!r}; valid: {', '.join(PROTOCOLS)}")
    if per_class is None:
        raise GenerateFailed("--per-class K is needed: images to generate per class (the paper: 1,300)")
    per_class = _number(per_class, "per_class")
    images_per_caption = _number(images_per_caption, "images_per_caption") if protocol == "captions" else None
    seed, batch_size = _number(seed, "seed"), _number(batch_size, "batch_size")
    if filter_fraction is not None:
        if isinstance(filter_fraction, bool) or not isinstance(filter_fraction, (int, float)) \
                or not 0 <= filter_fraction < 1:
            raise GenerateFailed(f"--filter-fraction {filter_fraction!r} must be at least 0 and below 1 "
                                 f"(the paper drops 0.2)")
        if filter_fraction > 0 and clip is None:
            raise GenerateFailed("--filter-fraction needs --clip DIR: the filter ranks images by CLIP's "
                                 "zero-shot confidence")
    if caption_model is not None and protocol != "captions":
        raise GenerateFailed("--caption-model applies to --protocol captions only")
    folder, spec = check_pipeline_folder(pipeline)
    clip = check_model_folder(clip, "--clip", "clip") if clip is not None else None
    caption_model = check_model_folder(caption_model, "--caption-model") if caption_model is not None else None
    kind = family(spec["_class_name"])
    steps = _number(DEFAULT_STEPS[kind] if steps is None else steps, "steps")
    guidance = _number(TAB7_GUIDANCE[kind] if guidance is None else guidance, "guidance", float)
    resolution = _number(default_resolution(folder, spec) if resolution is None else resolution, "resolution")
    if resolution % 8:
        raise GenerateFailed(f"--resolution {resolution} must be a multiple of 8 (the VAE's latents)")
    fraction = float(filter_fraction if filter_fraction is not None else (0.2 if clip is not None else 0.0))
    return Request(name, dataset, folder.resolve(), protocol, per_class, images_per_caption, steps, guidance,
                   resolution, clip.resolve() if clip else None, fraction,
                   caption_model.resolve() if caption_model else None, seed, batch_size, spec["_class_name"])


def folder_sha256(folder: Path, option: str) -> str:
    """Every file of a model folder (hidden ones aside), by relative path and content: a changed
    weight, config or tokenizer file is another model. Symlinks are followed (a Hugging Face cache
    snapshot links each file to a blob), each real folder once."""
    from engine.data.dataset import check_regular
    files, seen = [], set()
    for top, dirs, names in os.walk(folder, followlinks=True):
        real = os.path.realpath(top)
        if real in seen:  # a link back up the tree
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(top) / n for n in names if not n.startswith(".")]
    if not files:
        raise GenerateFailed(f"{option} {folder} holds no files")
    h = hashlib.sha256()
    for path in sorted(files, key=lambda p: p.relative_to(folder).as_posix()):
        check_regular(path, GenerateFailed)
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as err:
            raise GenerateFailed(f"{option} {folder}: cannot read {path.relative_to(folder)} ({err.strerror})") from None
        h.update(f"{path.relative_to(folder).as_posix()}\0{digest.hexdigest()}\n".encode())
    return h.hexdigest()
