"""`engine synthetic`: import a folder or .npz of synthetic images as an open-set generator, list
every synthetic set, remove an imported one."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, app, console, guarded, to_json
from engine.catalog.datasets import FORMS as DATASET_FORMS
from engine.catalog.vocab import CLOSED

synthetic_app = typer.Typer(help="Synthetic image sets: import your own (open set), list, remove.",
                            no_args_is_help=True)
app.add_typer(synthetic_app, name="synthetic")


@synthetic_app.command("import")
@guarded
def synthetic_import(name: Annotated[str, typer.Argument(help="The set's name: runs are stored under it as their generator.")],
                     dataset: Annotated[str, typer.Option("--dataset", help=f"{', '.join(DATASET_FORMS)}.")],
                     source: Annotated[Path, typer.Option("--from", help="A folder of class folders (PNG, JPEG, "
                                                          "WebP...) or an .npz with images and labels.")],
                     data_root: Annotated[Optional[str], typer.Option(
                         "--data-root", help="Where the dataset lies (cifar10 root, MedMNIST .npz).")] = None,
                     size: Annotated[Optional[int], typer.Option(
                         "--size", help="The dataset's --size (medmnist, folder): the images are resized to it.")] = None,
                     as_json: Annotated[bool, typer.Option("--json")] = False,
                     db: Db = None):
    """Check every image and class, resize to the dataset's resolution and store the set; a
    re-import of the same images is a no-op, and a failed import stores nothing."""
    from engine.generators.open_set import import_set
    state, row = import_set(name, dataset, source, db, data_root, size)
    if as_json:
        print(to_json({"state": state, **{k: row[k] for k in ("synthetic_set_id", "name", "dataset_name",
                                                             "n_images", "class_counts", "content_hash")}}))
        return
    counts = ", ".join(f"{c} {n}" for c, n in row["class_counts"].items())
    if state == "present":
        console.print(f"{name}: these images are already imported ({row['synthetic_set_id']}); nothing changed")
    else:
        console.print(f"imported {row['n_images']:,} images as {name} for {row['dataset_name']} "
                      f"({row['image_size']}x{row['image_size']}x{row['channels']}; {counts}) -> {row['synthetic_set_id']}")


@synthetic_app.command("list")
@guarded
def synthetic_list(as_json: Annotated[bool, typer.Option("--json")] = False, db: Db = None):
    """Every synthetic set, closed (sampled by the engine) and open (imported), with its counts."""
    import pandas as pd
    from store import synthetic as store_synthetic
    frame = store_synthetic.list_sets(db)
    if as_json:
        def value(k, v):
            if k == "class_counts" and isinstance(v, str):
                return json.loads(v)
            if not isinstance(v, (list, dict)) and pd.isna(v):
                return None
            return v.isoformat() if isinstance(v, pd.Timestamp) else v
        print(to_json([{k: value(k, v) for k, v in r.items()} for r in frame.astype(object).to_dict("records")]))
        return
    table = Table("kind", "name", "dataset", "n_base", "images", "per class", "runs", title=f"{len(frame)} synthetic sets")
    table.add_column("set id", overflow="fold")
    table.add_column("source", overflow="fold")
    for r in frame.itertuples():
        if isinstance(r.class_counts, str):
            counts = list(json.loads(r.class_counts).values())
            per_class = str(counts[0]) if len(set(counts)) == 1 else f"{min(counts)}-{max(counts)}"
        else:
            per_class = "" if pd.isna(r.per_class) else str(int(r.per_class))
        table.add_row(r.kind or CLOSED, r.name or "", r.dataset or "", "" if pd.isna(r.n_base) else str(int(r.n_base)),
                      f"{int(r.n_images):,}", per_class, str(int(r.runs)), r.synthetic_set_id,
                      r.source_path if isinstance(r.source_path, str) else "")
    console.print(table)


@synthetic_app.command("remove")
@guarded
def synthetic_remove(name: Annotated[str, typer.Argument(help="An imported set's name.")],
                     force: Annotated[bool, typer.Option(help="Remove it even though runs use it (they stay).")] = False,
                     db: Db = None):
    """Remove an imported set and its images file; refused while runs use it unless --force."""
    from engine.generators.open_set import remove_set
    row, n_runs = remove_set(name, db, force)
    console.print(f"removed synthetic set {name} ({row['synthetic_set_id']})"
                  + (f"; its {n_runs} runs stay in the store" if n_runs else ""))
