"""`engine synthetic`: import a folder or .npz of synthetic images as an open-set generator, or
generate one with a local text-to-image pipeline; list every synthetic set, remove an open-set one."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, app, console, guarded, to_json
from engine.catalog.datasets import FORMS as DATASET_FORMS
from engine.catalog.vocab import CLOSED
from engine.cli.study import ThreadsOpt

synthetic_app = typer.Typer(help="Synthetic image sets: import your own or generate one (open set), list, remove.",
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


@synthetic_app.command("generate")
@guarded
def synthetic_generate(
        name: Annotated[str, typer.Argument(help="The set's name: runs are stored under it as their generator.")],
        dataset: Annotated[str, typer.Option("--dataset", help=f"{', '.join(DATASET_FORMS)}: its classes are prompted.")],
        pipeline: Annotated[Path, typer.Option("--pipeline", help="A local diffusers text-to-image pipeline folder "
                                               "(SD 1.x, 2 or 3, saved with save_pretrained); never downloaded.")],
        per_class: Annotated[Optional[int], typer.Option("--per-class", help="Images to generate per class, "
                                                         "before the filter (the paper: 1,300).")] = None,
        protocol: Annotated[str, typer.Option(help="captions (Sec. 4.3.2: c / c,bg / c,rel -> caption) or simple "
                                              "(\"High-quality photo of a {class}.\", appendix G.1).")] = "captions",
        images_per_caption: Annotated[int, typer.Option(help="Images per caption (captions protocol; the paper: 5).")] = 5,
        caption_model: Annotated[Optional[Path], typer.Option(
            help="A local text-generation model folder that writes the captions (default: templates with the "
                 "bundled vocabularies).")] = None,
        steps: Annotated[Optional[int], typer.Option(help="Sampling steps (default: 28 for SD3, 50 otherwise).")] = None,
        guidance: Annotated[Optional[float], typer.Option(help="CFG scale (default: Tab. 7: 2.0 for SD3, 7.5 otherwise).")] = None,
        resolution: Annotated[Optional[int], typer.Option(help="Side of the generated images (default: the "
                                                          "pipeline's); then resized to the dataset's.")] = None,
        clip: Annotated[Optional[Path], typer.Option("--clip", help="A local CLIP model folder: score each image "
                                                     "by zero-shot confidence and drop the lowest.")] = None,
        filter_fraction: Annotated[Optional[float], typer.Option(
            help="Fraction dropped per class by CLIP score (default: 0.2 with --clip, as the paper).")] = None,
        seed: Annotated[int, typer.Option(help="Seeds every caption draw and image noise.")] = 0,
        batch_size: Annotated[int, typer.Option(help="Images per pipeline call.")] = 8,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda:K.")] = "auto",
        threads: ThreadsOpt = None,
        dtype: Annotated[str, typer.Option(help="auto (float16 on a GPU, float32 on a CPU), float32, float16, "
                                           "bfloat16.")] = "auto",
        keep_work: Annotated[bool, typer.Option(help="Keep the work folder (every image made, before the filter) "
                                                "once the set is stored.")] = False,
        data_root: Annotated[Optional[str], typer.Option("--data-root", help="Where the dataset lies.")] = None,
        size: Annotated[Optional[int], typer.Option("--size", help="The dataset's --size (medmnist, folder).")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
        db: Db = None):
    """Generate images of every class of DATASET with a local text-to-image pipeline, filter them with
    CLIP and store them as an open-set synthetic set. A killed run resumes where it stopped; nothing
    is stored until the whole set is made."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from engine.cli.common import err_console
    from engine.cli.study import use_threads
    from engine.generators.generate_checks import check_request
    from engine.generators.text_to_image import generate_set
    options = dict(protocol=protocol, per_class=per_class, images_per_caption=images_per_caption, steps=steps,
                   guidance=guidance, resolution=resolution, clip=clip, filter_fraction=filter_fraction,
                   caption_model=caption_model, seed=seed, batch_size=batch_size)
    check_request(name, dataset, pipeline, **options)  # a bad option is one line before torch is imported
    use_threads(threads, device)  # two processes each spinning a thread per core run several times slower
    columns = [TextColumn(f"generating {name}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn()]
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task("images", total=None)
        state, row = generate_set(
            name, dataset, pipeline, db=db, data_root=data_root, size=size, device=device, dtype=dtype,
            keep_work=keep_work, log=lambda m: bar.console.print(m, highlight=False, soft_wrap=True),
            progress=lambda done, total: bar.update(task, completed=done, total=total), **options)
    made = row.get("provenance") or {}
    if as_json:
        print(to_json({"state": state, **{k: row[k] for k in ("synthetic_set_id", "name", "dataset_name", "n_images",
                                                             "class_counts", "content_hash")},
                       "generated": made.get("generated"), "kept": made.get("kept")}))
        return
    if state == "present":
        console.print(f"{name}: this set is already generated ({row['synthetic_set_id']}); nothing changed")
        return
    flt = made.get("filter") or {}
    dropped = (f"; the CLIP filter dropped {flt['dropped']:,} ({flt['dropped_per_class']} per class)"
               if made.get("clip") else "; no CLIP filter (--clip DIR drops the lowest 20 %, as the paper does)")
    console.print(f"generated {made.get('generated', 0):,} images{dropped}; stored {row['n_images']:,} as {name} for "
                  f"{row['dataset_name']} ({row['image_size']}x{row['image_size']}x{row['channels']}) -> "
                  f"{row['synthetic_set_id']}")


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
def synthetic_remove(name: Annotated[str, typer.Argument(help="An imported or generated set's name.")],
                     force: Annotated[bool, typer.Option(help="Remove it even though runs use it (they stay).")] = False,
                     db: Db = None):
    """Remove an imported or generated set and its files; refused while runs use it unless --force."""
    from engine.generators.open_set import remove_set
    row, n_runs = remove_set(name, db, force)
    console.print(f"removed synthetic set {name} ({row['synthetic_set_id']})"
                  + (f"; its {n_runs} runs stay in the store" if n_runs else ""))
