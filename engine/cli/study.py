"""`engine run` and `engine study`: train grids of classifiers (and closed-set generators)."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, UserError, app, console, err_console, guarded, interrupted, to_json
from engine.catalog.classifiers import CLASSIFIERS
from engine.catalog.datasets import DATASETS, DEFAULT_DATASET, FORMS, default_classifier, stored_name
from engine.catalog.generators import GENERATORS
from engine.catalog.vocab import AUGMENTATIONS, BASES, CLOSED, DEFAULT_QUALITY, SYNTHETIC_BASE, TASKS, TRADITIONAL, ZERO_SHOT
from engine.spec import DEFAULTS, MAX_SEEDS, RECIPE_FIELDS, SpecError, validate


D = DEFAULTS
# The options that describe a study grid, shared by `engine run` and `engine queue add`; their
# defaults are StudySpec's, and engine.spec.validate() is the one place that checks them.
DatasetOpt = Annotated[str, typer.Option("--dataset", help=f"{', '.join(FORMS)}.")]
NBaseOpt = Annotated[int, typer.Option("--n-base", help="Size of the real base set.")]
AugmentationOpt = Annotated[str, typer.Option("--augmentation", help=" or ".join(AUGMENTATIONS) + ".")]
AddedOpt = Annotated[str, typer.Option("--added", help="Images to add, e.g. 0,N,2N,3N (N = n_base) or 0,50,100.")]
ClassifierOpt = Annotated[Optional[str], typer.Option(
    "--classifier", help=f"{', '.join(CLASSIFIERS)} (default: the dataset's: "
                         + ", ".join(f"{d.default_classifier} for {d.form}" for d in DATASETS.values()) + ").")]
SeedsOpt = Annotated[int, typer.Option("--seeds", help=f"Seeds per point (0..S-1), at most {MAX_SEEDS}.")]
SubsetSeedOpt = Annotated[int, typer.Option("--subset-seed", help="Seed that picks the base set and the real additions.")]
RecipeOpt = Annotated[Optional[list[str]], typer.Option(
    "--recipe", help=f"Override a recipe field key=value (repeatable): {', '.join(RECIPE_FIELDS)}.")]
DataRootOpt = Annotated[Optional[str], typer.Option(
    "--data-root", help="Where the dataset lies (cifar10 root, MedMNIST .npz), as the machine that trains sees it.")]
SizeOpt = Annotated[Optional[int], typer.Option("--size", help="Resize medmnist/folder images to this size (e.g. 32).")]
GeneratorKindOpt = Annotated[str, typer.Option(
    "--generator", help="Closed-set generator: edm (pixel space, 32x32 and below) or dit (VAE + DiT, e.g. 224x224); "
                        "with --augmentation open, the NAME of a set from `engine synthetic import`.")]
PresetOpt = Annotated[Optional[str], typer.Option(
    "--generator-preset", help="; ".join(f"{g.name}: {', '.join(g.presets)}" for g in GENERATORS.values())
                              + " (default: the first).")]
GeneratorOpt = Annotated[Optional[list[str]], typer.Option(
    "--generator-option", help="Generator option key=value, repeatable. " + "; ".join(
        f"{g.name}: {', '.join(g.options)}" for g in GENERATORS.values()) + ".")]
ThreadsOpt = Annotated[Optional[int], typer.Option(
    "--threads", min=1, max=1024,
    help="CPU threads for torch (default: this process's share of the usable cores among the host's busy workers).")]
DeviceOpt = Annotated[str, typer.Option(help="auto, cpu or cuda:K.")]
TraditionalOpt = Annotated[Optional[str], typer.Option(
    "--traditional", help=f"Traditional augmentation of the classifier's training images: "
                          f"{', '.join(TRADITIONAL)} (default: the dataset's: "
                          + ", ".join(f"{d.default_traditional} for {d.form}" for d in DATASETS.values()) + ").")]

BaseOpt = Annotated[str, typer.Option(
    "--base", help=f"{' or '.join(BASES)}: with {SYNTHETIC_BASE}, the base is n_base images of the synthetic set "
                   "--generator NAME and real images are what --added adds (the paper's appendix G.1, Tab. 20).")]
TaskOpt = Annotated[str, typer.Option(
    "--task", help=f"{' or '.join(TASKS)}: {ZERO_SHOT} trains on real images of the first half of the classes and "
                   "synthetic ones (--augmentation open) of the second, tested on the second (appendix G.2, Tab. 21).")]
TextEncoderOpt = Annotated[Optional[str], typer.Option(
    "--text-encoder", help=f"With --task {ZERO_SHOT}: a local BERT folder (transformers; frozen, never downloaded).")]


# (name, option, default) of every study-grid option, in --help order. `grid_command` gives them to a
# command, so `engine run` and `engine queue add` cannot drift apart.
GRID_OPTIONS = [("dataset", DatasetOpt, D.dataset), ("n_base", NBaseOpt, D.n_base),
                ("augmentation", AugmentationOpt, D.augmentation), ("added", AddedOpt, D.added),
                ("classifier", ClassifierOpt, D.classifier), ("seeds", SeedsOpt, D.seeds),
                ("subset_seed", SubsetSeedOpt, D.subset_seed), ("recipe", RecipeOpt, None),
                ("data_root", DataRootOpt, D.data_root), ("size", SizeOpt, D.size),
                ("generator", GeneratorKindOpt, D.generator), ("generator_preset", PresetOpt, D.generator_preset),
                ("generator_option", GeneratorOpt, None), ("traditional", TraditionalOpt, D.traditional),
                ("base", BaseOpt, D.base), ("task", TaskOpt, D.task), ("text_encoder", TextEncoderOpt, D.text_encoder)]


def grid_fields(dataset, n_base, augmentation, added, classifier, seeds, subset_seed, recipe, data_root, size,
                generator, generator_preset, generator_option, traditional, base=D.base, task=D.task,
                text_encoder=D.text_encoder) -> dict:
    """The raw fields of a study grid as typed on the command line, for engine.spec.validate()."""
    return {"dataset": dataset, "classifier": classifier, "n_base": n_base, "augmentation": augmentation,
            "added": added, "seeds": seeds, "subset_seed": subset_seed, "data_root": data_root, "size": size,
            "generator": generator, "generator_preset": generator_preset, "recipe": list(recipe or []),
            "generator_options": list(generator_option or []), "traditional": traditional, "base": base,
            "task": task, "text_encoder": text_encoder}


def grid_command(fn):
    """Give a command every study-grid option ahead of its own ones, and call it with them gathered
    into one raw `fields` dict (its first parameter). Typer reads options from the signature, so the
    wrapper publishes the combined signature with evaluated annotations (this module's are strings)."""
    import functools
    import inspect
    import typing
    hints = typing.get_type_hints(fn, include_extras=True)
    own = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints.get(p.name, p.annotation))
           for p in list(inspect.signature(fn).parameters.values())[1:]]
    grid = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=default)
            for name, option, default in GRID_OPTIONS]

    @functools.wraps(fn)
    def command(**kwargs):
        fields = grid_fields(**{name: kwargs.pop(name) for name, _, _ in GRID_OPTIONS})
        return fn(fields, **kwargs)
    command.__signature__ = inspect.Signature(grid + own)
    command.__annotations__ = {p.name: p.annotation for p in grid + own}
    return command


QualityOpt = Annotated[str, typer.Option(
    "--quality", help="Quality of the synthetic set after closed-set runs: cheap (FD, diversity, memorisation: "
                      "seconds), full (adds FID/IS, domain classifier, t-SNE) or off.")]


@app.command()
@guarded
@grid_command
def run(fields: dict,
        download: Annotated[bool, typer.Option(help="Let torchvision download CIFAR-10 (needs internet).")] = False,
        device: DeviceOpt = "auto",
        compile_: Annotated[bool, typer.Option("--compile", help="torch.compile the classifier.")] = False,
        force: Annotated[bool, typer.Option(help="Rerun points already stored.")] = False,
        threads: ThreadsOpt = None,
        quality: QualityOpt = DEFAULT_QUALITY,
        db: Db = None):
    """Train classifiers for a grid of points x seeds and store one row per run."""
    summary, spec, ds = run_grid_cli(fields, db, device, force, compile_, download, threads, quality)
    console.print(f"{summary['written']} runs written, {summary['skipped']} already stored "
                  f"({ds.name}, n_base {spec.n_base}, {spec.augmentation}, traditional {spec.traditional})")


def use_threads(requested: int | None, device: str) -> int:
    """Size torch's thread pools before any training: this process's share of the host."""
    import socket
    from engine.device import threads as thread_policy
    from engine.device.runtime import resolve_device
    from store import jobs
    try:
        busy = jobs.busy_workers(socket.gethostname(), 120.0)
    except Exception:  # no store yet, or a store busy past the retry window: assume no other trainer
        busy = 0
    return thread_policy.apply(thread_policy.choose(requested, resolve_device(device).type, busy + 1))


def say_training_length(spec) -> None:
    """Echo how long each run trains when the user overrides it: iterations= on an epoch-based recipe (or
    epochs= on an iteration-based one) replaces the recipe's length, never sits beside it unused."""
    given = [k for k in ("iterations", "epochs") if k in spec.recipe]
    if not given:
        return
    from engine.catalog.defaults import default_recipe
    base = default_recipe(spec.classifier, spec.dataset, spec.n_base, spec.n_base, spec.n_base, spec.traditional)
    final = base.with_overrides(spec.recipe)
    replaced = "epochs" if base.epochs > 0 and final.epochs == 0 else "iterations" if base.epochs == 0 < final.epochs \
        else None
    err_console.print(f"training length: {final.length()} per run"
                      + (f" (--recipe {given[0]} replaces the recipe's {replaced})" if replaced else ""), highlight=False)


def run_grid_cli(fields, db, device="auto", force=False, compile_=False, download=False, threads=None,
                 quality=DEFAULT_QUALITY):
    """engine.execution.local.run_grid with the CLI's error handling: one line for bad input, 130 on Ctrl-C."""
    from engine.execution.local import Runtime, run_grid
    try:
        spec = validate(fields)  # before anything is loaded, trained or stored
        say_training_length(spec)
        runtime = Runtime(device=device, compile=compile_, force=force, download=download, quality=quality)
        use_threads(threads, device)
        return run_grid(spec, db, err_console, runtime)
    except KeyboardInterrupt:
        err_console.print("interrupted: every finished run is stored; the run in progress was discarded")
        raise interrupted()


@app.command("study")
@guarded
def study(dataset: Annotated[str, typer.Argument(help=f"{', '.join(FORMS)} (default: the built-in {DEFAULT_DATASET}).")]
          = DEFAULT_DATASET,
          bases: Annotated[Optional[str], typer.Option(
              help="Base sizes n_base [default: digits 20,50,100,200; else about 1 %, 10 % and 50 % of the train split].")]
          = None,
          seeds: Annotated[int, typer.Option(help="Seeds per point.")] = 3,
          classifier: ClassifierOpt = None,
          data_root: DataRootOpt = None,
          size: SizeOpt = None,
          recipe: RecipeOpt = None,
          generator: Annotated[Optional[str], typer.Option(
              "--generator", help="Closed-set generator kind: edm or dit [default: edm up to 32x32 images, else dit].")]
          = None,
          generator_preset: PresetOpt = None,
          generator_option: GeneratorOpt = None,
          device: DeviceOpt = "auto",
          force: Annotated[bool, typer.Option(help="Rerun points already stored.")] = False,
          threads: ThreadsOpt = None,
          quality: Annotated[Optional[str], typer.Option(
              "--quality", help="Quality of the synthetic sets after closed-set runs: cheap, full or off "
                                "[default: full; off with --traditional-baseline].")] = None,
          traditional_baseline: Annotated[bool, typer.Option(
              "--traditional-baseline", help="digits: run the paper's Tab. 6 comparison instead: no augmentation, "
              "flip, crop, crop+flip, and closed-set images at 1:1 without traditional augmentation.")] = False,
          plan_only: Annotated[bool, typer.Option("--plan", help="Print the plan and run nothing.")] = False,
          as_json: Annotated[bool, typer.Option("--json", help="With --plan: print the plan as one JSON object.")] = False,
          yes: Annotated[bool, typer.Option("--yes", help="Run the plan here (digits runs without it).")] = False,
          queue: Annotated[bool, typer.Option("--queue", help="Queue the plan's grids for `engine worker`s instead.")]
          = False,
          db: Db = None):
    """A whole study on DATASET: the plan (runs, generator trainings, hours, disk), then run here or queue. Resumable."""
    import time as _time
    from engine.execution.study_plan import PlanError
    if as_json and not plan_only:
        raise UserError("--json prints the plan only: add --plan")
    if plan_only and (yes or queue):
        raise UserError("--plan runs nothing: drop --yes/--queue, or drop --plan")
    if yes and queue:
        raise UserError("--yes runs here and --queue sends the grids to workers: choose one")
    if traditional_baseline and dataset != DEFAULT_DATASET:
        raise UserError(f"--traditional-baseline is the digits study's Tab. 6 comparison, not {dataset!r}'s")
    quality = quality or ("off" if traditional_baseline else "full")
    base_sizes = parse_bases(bases)
    if seeds < 1 or seeds > MAX_SEEDS:
        raise UserError(f"seeds = {seeds:,} must be between 1 and {MAX_SEEDS}")
    from engine.execution.local import Runtime
    try:
        Runtime(quality=quality)
        plan = make_plan(dataset, base_sizes, seeds, classifier, data_root, size, recipe, generator, generator_preset,
                         generator_option, traditional_baseline, device, db)
    except (SpecError, PlanError) as err:
        raise UserError(str(err)) from None
    if as_json:
        print(to_json(plan.as_dict()))
        return
    print_plan(plan)
    if plan_only:
        return
    if queue:
        queue_plan(plan, quality, db)
        return
    if not yes and dataset != DEFAULT_DATASET:
        err_console.print("nothing run: add --yes to run it here, or --queue to queue it for workers")
        return
    start = _time.perf_counter()
    run_keys = []
    for k, fields in enumerate(plan.grids, 1):
        err_console.rule(f"[{k}/{len(plan.grids)}] {dataset} n_base {fields['n_base']}: {fields['augmentation']} "
                         f"{fields['added']}" + (f", traditional {fields['traditional']}" if fields.get("traditional")
                                                 else ""))
        run_keys += run_grid_cli(fields, db, device, force, threads=threads, quality=quality)[0]["run_keys"]
    err_console.print(f"study grids done in {_time.perf_counter() - start:.0f} s")
    if traditional_baseline:
        print_tab6(db, run_keys)
    elif dataset == DEFAULT_DATASET:
        print_study_report(db)
    else:
        print_verdict(db, plan)


def parse_bases(bases: str | None) -> list[int] | None:
    if bases is None:
        return None
    try:
        base_sizes = [int(b) for b in bases.split(",") if b.strip()]
    except ValueError:
        raise UserError(f"--bases {bases!r} should be whole numbers like 20,50,100,200") from None
    if not base_sizes:
        raise UserError(f"--bases {bases!r} names no base size")
    return base_sizes


def this_device(device: str) -> str:
    """The cost model's name for the device a study runs on: "cpu" or "gpu"."""
    from engine.device.runtime import resolve_device
    return "cpu" if resolve_device(device).type == "cpu" else "gpu"


def make_plan(dataset, base_sizes, seeds, classifier, data_root, size, recipe, generator, preset, generator_option,
              traditional_baseline, device, db):
    """The digits study's built-in grids, or a plan from the dataset's size (engine.execution.study_plan)."""
    from engine.execution.study import DIGITS_BASES, study_grids, tab6_grids
    from engine.execution.study_plan import data_facts, finish_plan, plan_study
    where = this_device(device)
    if dataset != DEFAULT_DATASET:
        return plan_study(dataset, data_root=data_root, size=size, classifier=classifier, seeds=seeds,
                          bases=base_sizes, generator=generator, preset=preset, recipe=recipe or [],
                          generator_options=generator_option or [], device=where, db=db)
    if data_root or size:
        raise UserError(f"--data-root/--size do not apply to {DEFAULT_DATASET}: it is built in")
    base_sizes = base_sizes or list(DIGITS_BASES)
    kind = generator or D.generator
    layout = tab6_grids(base_sizes) if traditional_baseline else \
        [(n_base, aug, added, None) for n_base, aug, added in study_grids(base_sizes)]
    grids = [{"dataset": DEFAULT_DATASET, "classifier": classifier or default_classifier(DEFAULT_DATASET),
              "n_base": n_base, "augmentation": aug, "added": added, "seeds": seeds, "generator": kind,
              "generator_preset": preset or (GENERATORS[kind].presets[0] if kind in GENERATORS else None),
              "recipe": list(recipe or []), "generator_options": list(generator_option or []) if aug == CLOSED else [],
              "traditional": trad}
             for n_base, aug, added, trad in layout]
    return finish_plan(data_facts(DEFAULT_DATASET), base_sizes, grids, seeds, where, db)


def print_plan(plan) -> None:
    from engine.analysis.cost import fmt_hours
    from engine.execution.study_plan import fmt_bytes
    f = plan.facts
    console.print(f"[bold]Study plan for {f.form}[/] (stored as {f.stored}): {f.n_train:,} training images, "
                  f"{f.classes} classes, images {'x'.join(map(str, f.shape))} (read from {f.read_from})",
                  highlight=False, soft_wrap=True)
    table = Table("grid", "n_base", "augmentation", "added", "seeds", "runs", "est. hours [95 %]",
                  title=f"{len(plan.grids)} grids, generator {plan.generator} ({plan.preset})")
    for k, (g, est) in enumerate(zip(plan.grids, plan.grid_hours), 1):
        spec = plan.specs[k - 1]
        span = "unknown" if est.hours is None else fmt_hours(est.hours) + (
            f" [{fmt_hours(est.lo)}-{fmt_hours(est.hi)}]" if est.lo is not None and est.hi is not None else "")
        table.add_row(str(k), f"{g['n_base']:,}", g["augmentation"], g["added"], str(spec.seeds),
                      str(len(spec.added) * spec.seeds), span)
    console.print(table)
    h = plan.estimate["hours"]
    span = "unknown" if h["hours"] is None else fmt_hours(h["hours"]) + (
        f" [{fmt_hours(h['lo'])}-{fmt_hours(h['hi'])}]" if h["lo"] is not None and h["hi"] is not None else
        " (no interval)")
    console.print(f"{plan.runs} classifier runs, {plan.generator_trainings} generator trainings; estimated "
                  f"{span} of {plan.estimate['device']} time, which is the wall time here run one after another "
                  f"(stored runs and trained generators are skipped: it errs long); disk {fmt_bytes(plan.disk_bytes)} "
                  f"({plan.disk_note})", highlight=False, soft_wrap=True)
    gpu = plan.estimate.get("gpu_hours")
    if gpu is not None:
        console.print(f"GPU-hours: {fmt_hours(gpu['hours']) if gpu['hours'] is not None else 'unknown'} "
                      f"({gpu['basis'] or 'no GPU timing in this store'})", highlight=False, soft_wrap=True)
    console.print(f"basis: {h['basis']}", highlight=False, soft_wrap=True)


def queue_plan(plan, quality: str, db) -> None:
    """Each grid as one job; a grid already queued, running or done with the same spec is not queued twice."""
    from engine.cli.common import with_store
    from engine.spec import validate as check
    from store import jobs
    with_store(db)
    existing = jobs.list_jobs(db)
    have = {json.dumps(json.loads(s), sort_keys=True) for s, st in zip(existing.spec, existing.status)
            if st in ("queued", "running", "done")}
    queued = 0
    for fields in plan.grids:
        spec = check(fields).to_dict()
        if json.dumps(spec, sort_keys=True) in have:
            continue
        jobs.submit(spec, db, quality=quality)
        queued += 1
    console.print(f"queued {queued} job(s), {len(plan.grids) - queued} already queued or done; start workers with "
                  f"`engine worker --device cuda:0`, then `engine study {plan.facts.form} --yes` or `engine equiv` "
                  f"reads their runs")


def print_verdict(db, plan) -> None:
    """The fit of the study's closed-set setting and the verdict at its middle base for N = n_base."""
    from engine.analysis.fit import analyse
    from engine.analysis.verdict import explain
    from engine.cli.analysis import print_analysis, setting_runs
    classifier = CLASSIFIERS[plan.specs[0].classifier].stored_name
    runs = setting_runs(db, plan.facts.stored, classifier)
    gen = GENERATORS[plan.generator].stored_name(plan.preset)
    a = analyse(runs, plan.facts.stored, classifier, CLOSED, gen, n_boot=200)
    print_analysis(a)
    b = plan.bases[len(plan.bases) // 2]
    v = explain(a, b, b)["verdict"]
    console.print(f"[bold]verdict (grade {v['grade']}):[/] {v['text']}", highlight=False, soft_wrap=True)
    console.print(f"next: engine equiv --dataset '{plan.facts.stored}' --classifier '{classifier}' --augmentation "
                  f"closed --n-base {b} --n-real-added {b} --gpu-cost 2 --label-cost 0.1; engine advise --dataset "
                  f"'{plan.facts.stored}' --classifier '{classifier}' --augmentation closed", highlight=False,
                  soft_wrap=True)


def print_tab6(db, run_keys: list[str]) -> None:
    """The Tab. 6 comparison from exactly the runs its grids planned."""
    from engine.execution.study import tab6_rows
    from store import runs as store_runs
    runs = store_runs.query_runs(db, dataset=stored_name(DEFAULT_DATASET))
    runs = runs[runs.run_key.isin(run_keys)]
    table = Table("n_base", "traditional", "generative", "top-1 (mean ± sd)", "gain over none (paired)", "seeds",
                  title="Traditional vs generative augmentation on digits (the paper's Tab. 6)")
    for r in tab6_rows(runs):
        sd = f" ± {r['acc_sd']:.2f}" if r["acc_sd"] is not None else ""
        gain = "" if r["gain"] is None else f"{r['gain']:+.2f}" + (f" ± {r['gain_sd']:.2f}" if r["gain_sd"] is not None else "")
        table.add_row(str(r["n_base"]), r["traditional"], r["generative"], f"{r['acc']:.2f}{sd}", gain, str(r["seeds"]))
    console.print(table)


def print_study_report(db) -> None:
    from engine.analysis.fit import analyse
    from engine.cli.analysis import load_runs, print_analysis
    from engine.execution.study import gains_table
    from store.artifacts import list_generators
    runs = load_runs(db)
    dataset = stored_name(DEFAULT_DATASET)
    classifier = CLASSIFIERS[default_classifier(DEFAULT_DATASET)].stored_name
    gens = sorted(set(runs[(runs.dataset == dataset) & (runs.augmentation == CLOSED)].generator.dropna()))
    for gen in gens:
        a = analyse(runs, dataset, classifier, CLOSED, gen, n_boot=200)
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
    g = g[g.dataset == dataset]
    if len(g):
        mem = Table("n_base", "preset", "train images", "train s", "samples→base (median L2)",
                    "held-out→base", "ratio", title="Memorisation check of each generator")
        for r in g.itertuples():
            m = json.loads(r.memorisation) if isinstance(r.memorisation, str) else None
            mem.add_row(str(r.n_base), r.preset, f"{r.train_images:,}", f"{r.train_time_s:.0f}",
                        f"{m['syn_to_base_median']:.3f}" if m else "-", f"{m['heldout_to_base_median']:.3f}" if m else "-",
                        f"{m['ratio']:.2f}" if m else "-")
        console.print(mem)
    from engine.cli.quality import quality_table
    from store import quality as store_quality
    sets = store_quality.list_sets(db)
    sets = sets[sets.dataset == dataset] if len(sets) else sets
    if len(sets):
        console.print(quality_table(sets, store_quality.query_quality(db),
                                    "Quality of each digits synthetic set (engine quality SET --json for all rows)"))
