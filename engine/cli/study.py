"""`engine run` and `engine study`: train grids of classifiers (and closed-set generators)."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.analysis.fit import analyse
from engine.cli.analysis import load_runs, print_analysis
from engine.cli.common import Db, UserError, app, console, err_console, guarded


# The options that describe a study grid, shared by `engine run` and `engine queue add`.
DatasetOpt = Annotated[str, typer.Option("--dataset", help="digits, cifar10, medmnist:<flag> or folder:<path>.")]
NBaseOpt = Annotated[int, typer.Option("--n-base", help="Size of the real base set.")]
AugmentationOpt = Annotated[str, typer.Option("--augmentation", help="real or closed.")]
AddedOpt = Annotated[str, typer.Option("--added", help="Images to add, e.g. 0,N,2N,3N (N = n_base) or 0,50,100.")]
ClassifierOpt = Annotated[Optional[str], typer.Option(
    "--classifier", help="smallcnn, resnet110, resnet50 or vit-b32 (default: smallcnn for digits, else resnet110).")]
SeedsOpt = Annotated[int, typer.Option("--seeds", help="Seeds per point (0..S-1).")]
SubsetSeedOpt = Annotated[int, typer.Option("--subset-seed", help="Seed that picks the base set and the real additions.")]
RecipeOpt = Annotated[Optional[list[str]], typer.Option("--recipe", help="Override a recipe field: key=value (repeatable).")]
DataRootOpt = Annotated[Optional[str], typer.Option(
    "--data-root", help="Where the dataset lies (cifar10 root, MedMNIST .npz), as the machine that trains sees it.")]
SizeOpt = Annotated[Optional[int], typer.Option("--size", help="Resize images to this size (e.g. 32 for BloodMNIST 64).")]
PresetOpt = Annotated[str, typer.Option("--generator-preset", help="EDM preset for closed-set runs: tiny, small, cifar.")]
GeneratorOpt = Annotated[Optional[list[str]], typer.Option(
    "--generator-option", help="Generator option key=value (train_images, batch_size, lr, seed, sample_seed, "
                                "nproc: processes/GPUs for DDP training); repeatable.")]


@app.command()
@guarded
def run(dataset: DatasetOpt = "digits",
        n_base: NBaseOpt = 50,
        augmentation: AugmentationOpt = "real",
        added: AddedOpt = "0,N,2N,3N",
        classifier: ClassifierOpt = None,
        seeds: SeedsOpt = 3,
        subset_seed: SubsetSeedOpt = 0,
        recipe: RecipeOpt = None,
        data_root: DataRootOpt = None,
        size: SizeOpt = None,
        download: Annotated[bool, typer.Option(help="Let torchvision download CIFAR-10 (needs internet).")] = False,
        device: Annotated[str, typer.Option(help="auto, cpu or cuda:K.")] = "auto",
        compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the classifier.")] = False,
        force: Annotated[bool, typer.Option(help="Rerun points already stored.")] = False,
        generator_preset: PresetOpt = "tiny",
        generator_option: GeneratorOpt = None,
        db: Db = None):
    """Train classifiers for a grid of points x seeds and store one row per run."""
    fields = {"dataset": dataset, "classifier": classifier, "n_base": n_base, "augmentation": augmentation,
              "added": added, "seeds": seeds, "subset_seed": subset_seed, "data_root": data_root, "size": size,
              "generator_preset": generator_preset}
    summary, spec, ds = run_grid_cli(fields, recipe, generator_option, db, device, force, compile_, download)
    console.print(f"{summary['written']} runs written, {summary['skipped']} already stored "
                  f"({ds.name}, n_base {spec.n_base}, {spec.augmentation})")


def run_grid_cli(fields, recipe_items, generator_items, db, device="auto", force=False, compile_=False,
                 download=False):
    """engine.run.run_grid with the CLI's error handling: one line for bad input, 130 on Ctrl-C."""
    from engine.data import DatasetError
    from engine.generators.checkpoints import CheckpointError
    from engine.generators.guard import ClosedSetViolation
    from engine.run import SpecError, parse_options, run_grid
    from engine.subsets import SubsetError
    try:
        fields = dict(fields, recipe=parse_options(recipe_items, "--recipe"),
                      generator_options=parse_options(generator_items, "--generator-option"))
        return run_grid(fields, db, err_console, device, force, compile_, download)
    except (DatasetError, SpecError, SubsetError, CheckpointError, ClosedSetViolation) as err:
        raise UserError(str(err)) from None
    except KeyboardInterrupt:
        err_console.print("interrupted: every finished run is stored; the run in progress was discarded")
        raise typer.Exit(130)


study_app = typer.Typer(help="Built-in end-to-end studies.", no_args_is_help=True)
app.add_typer(study_app, name="study")


@study_app.command("digits")
@guarded
def study_digits(bases: Annotated[str, typer.Option(help="Base sizes n_base.")] = "20,50,100,200",
                 seeds: Annotated[int, typer.Option(help="Seeds per point.")] = 3,
                 recipe: Annotated[Optional[list[str]], typer.Option(help="Classifier recipe override key=value.")] = None,
                 generator_option: Annotated[Optional[list[str]], typer.Option(help="Generator option key=value.")] = None,
                 device: Annotated[str, typer.Option(help="auto, cpu or cuda:K.")] = "auto",
                 force: Annotated[bool, typer.Option(help="Rerun points already stored.")] = False,
                 db: Db = None):
    """Real and closed-set grids on digits (3 seeds), then the equivalence fit. Resumable."""
    import time as _time
    from engine.study import study_grids
    try:
        base_sizes = [int(b) for b in bases.split(",") if b.strip()]
    except ValueError:
        raise UserError(f"--bases {bases!r} should be whole numbers like 20,50,100,200") from None
    grids = study_grids(base_sizes)
    start = _time.perf_counter()
    for k, (n_base, aug, added) in enumerate(grids, 1):
        err_console.rule(f"[{k}/{len(grids)}] digits n_base {n_base}: {aug} {added}")
        run_grid_cli({"dataset": "digits", "classifier": "smallcnn", "n_base": n_base, "augmentation": aug,
                      "added": added, "seeds": seeds, "generator_preset": "tiny"}, recipe, generator_option, db,
                     device, force)
    err_console.print(f"study grids done in {_time.perf_counter() - start:.0f} s")
    print_study_report(db)


def print_study_report(db) -> None:
    from engine.study import gains_table
    from store.artifacts import list_generators
    runs = load_runs(db)
    gens = sorted(set(runs[(runs.dataset == "digits") & (runs.augmentation == "closed")].generator.dropna()))
    for gen in gens:
        a = analyse(runs, "digits", "SmallCNN", "closed", gen, n_boot=200)
        print_analysis(a)
        table = Table("n_base", "kind", "added", "base acc", "acc", "paired gain (mean ± sd)", "pairs",
                      title=f"Gains over the base run, paired by seed ({gen})")
        for r in gains_table(a):
            sd = f" ± {r['gain_sd']:.2f}" if r["gain_sd"] is not None else ""
            table.add_row(str(r["n_base"]), r["kind"], f"{r['added']} ({r['ratio']:g}N)", f"{r['acc_base']:.2f}",
                          f"{r['acc']:.2f}", f"{r['gain_mean']:+.2f}{sd}", str(r["n_pairs"]))
        console.print(table)
        noise = Table("n_base", "synthetic gain beats seed noise?", title="Seed-noise test (one-sided, over seeds)")
        for b, f in sorted(a.bases.items()):
            t = f.noise
            noise.add_row(str(b), (f"{'yes' if t['significant'] else 'no'} (mean {t['mean_gain']:+.2f} points, "
                                   f"p = {t['p_value']:.3f}, {t['seeds']} seeds)") if t.get("tested") else t.get("reason", ""))
        console.print(noise)
    g = list_generators(db)
    g = g[g.dataset == "digits"]
    if len(g):
        mem = Table("n_base", "preset", "train images", "train s", "samples→base (median L2)",
                    "held-out→base", "ratio", title="Memorisation check of each generator")
        for r in g.itertuples():
            m = json.loads(r.memorisation) if isinstance(r.memorisation, str) else None
            mem.add_row(str(r.n_base), r.preset, f"{r.train_images:,}", f"{r.train_time_s:.0f}",
                        f"{m['syn_to_base_median']:.3f}" if m else "-", f"{m['heldout_to_base_median']:.3f}" if m else "-",
                        f"{m['ratio']:.2f}" if m else "-")
        console.print(mem)
