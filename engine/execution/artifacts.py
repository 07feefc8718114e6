"""The one writer of generators and synthetic sets: their files under the store's artifacts folder and
their rows, for a local run and for the Ray cluster's dispatcher alike.

A closed-set SyntheticSource (engine.generators.closed_set) computes; this stores. Locally it computes
straight into the artifacts folder; on a cluster a node computes into its own folder and ships the files
and rows back, and the dispatcher writes them here with the same functions, so a generator trained on a
node has the same row (kind, name, loss curve, a DiT's VAE fields) as one trained by `engine run`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from store import artifacts as store_artifacts


def root(db) -> Path:
    return store_artifacts.artifacts_dir(db)


def read_files(folder: Path, relative_dirs: list[Path]) -> dict[str, bytes]:
    """Every file of the given folders (relative to `folder`) as bytes, to ship to the store's machine."""
    out = {}
    for rel in relative_dirs:
        base = folder / rel
        if base.is_dir():
            for f in sorted(base.rglob("*")):
                if f.is_file():
                    out[str(f.relative_to(folder))] = f.read_bytes()
    return out


def write_files(files: dict[str, bytes], db) -> None:
    """Files shipped from a node, written under the artifacts folder, each whole or not at all."""
    base = root(db).resolve()
    for rel, data in files.items():
        target = (base / rel).resolve()
        if not target.is_relative_to(base):  # a path from elsewhere never lands outside the artifacts folder
            raise ValueError(f"artifact path {rel!r} leaves the artifacts folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)


def record_generator(row: dict, db) -> dict:
    """Store a trained generator's row (its checkpoint given relative to the artifacts folder)."""
    stored = dict(row, checkpoint=str(root(db) / row["checkpoint"]))
    store_artifacts.upsert_generator(stored, db)
    return store_artifacts.get_generator(row["generator_id"], db)


def stored_generator(ids: dict, db) -> dict | None:
    """The generator's row when its weights are stored too (`ids`: SyntheticSource.ids())."""
    row = store_artifacts.get_generator(ids["generator_id"], db)
    return row if row is not None and (root(db) / "generators" / ids["generator_id"] / "ema.safetensors").exists() \
        else None


def stored_samples(ids: dict, db) -> tuple[np.ndarray, np.ndarray, dict | None]:
    """The set's images sampled so far (none when its row or file is missing), and its row."""
    have_x, have_y = np.empty((0, *ids["image_shape"]), np.uint8), np.empty(0, np.int64)
    row = store_artifacts.get_synthetic_set(ids["synthetic_set_id"], db)
    path = root(db) / "synthetic" / f"{ids['synthetic_set_id']}.npz"
    if row is not None and path.exists():
        with np.load(path, allow_pickle=False) as npz:
            have_x, have_y = npz["images"], npz["labels"]
    return have_x, have_y, row


def record_samples(ids: dict, images: np.ndarray, labels: np.ndarray, sampling_s: float | None, db) -> None:
    """The set's whole stream so far (earlier images unchanged, new ones appended), file then row."""
    path = root(db) / "synthetic" / f"{ids['synthetic_set_id']}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, images=images, labels=labels)
    os.replace(tmp, path)
    store_artifacts.upsert_synthetic_set({
        "synthetic_set_id": ids["synthetic_set_id"], "generator_id": ids["generator_id"], "n_images": int(len(images)),
        "per_class": int(len(images) // ids["num_classes"]), "seed": ids["sample_seed"], "path": str(path),
        "sampling_s_per_image": sampling_s}, db)


def record_memorisation(generator_id: str, result: dict, db) -> None:
    store_artifacts.set_memorisation(generator_id, result, db)


def run_fields(ids: dict, generator_row: dict, sampling_s: float | None) -> dict:
    """The generator fields of a set's runs: SyntheticSource.run_fields with the stored times filled in."""
    fields = dict(ids["run_fields"])
    fields["config"] = dict(fields["config"], generator_train_time_s=generator_row["train_time_s"],
                            sampling_s_per_image=sampling_s)
    return fields


def prepare_closed_set(source, n_images: int, db, device, on_train=None):
    """At least n_images class-balanced synthetic images of a closed-set source, training its generator
    and sampling only what is not stored yet: (uint8 NHWC, labels, the fields of its runs)."""
    ids = source.ids()
    gen_row = stored_generator(ids, db)
    if gen_row is None:
        gen_row = record_generator(source.train(device, on_train), db)
    have_x, have_y, set_row = stored_samples(ids, db)
    sampling_s = set_row["sampling_s_per_image"] if set_row else None
    if len(have_x) < n_images:
        new_x, new_y, sampling_s = source.sample(len(have_x), n_images, device)
        have_x, have_y = np.concatenate([have_x, new_x]), np.concatenate([have_y, new_y])
        record_samples(ids, have_x, have_y, sampling_s, db)
    if gen_row.get("memorisation") is None:
        record_memorisation(source.generator_id, source.memorisation_of(have_x), db)
        gen_row = store_artifacts.get_generator(source.generator_id, db)
    return have_x[:n_images], have_y[:n_images], run_fields(ids, gen_row, sampling_s)
