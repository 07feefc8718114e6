"""`engine fit`, `equiv`: the equivalence analysis of one setting, and its verdict (torch-free);
`engine report` (engine/cli/report.py) prints every setting with print_analysis.

The analysis (pandas, SciPy, statsmodels: over a second to import) and the store are imported by
the commands that run them, so that `engine --help` and the other groups do not pay for them."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from engine.analysis.options import ALL_SOURCES, CRITERIA, DEFAULT_EPS, FEATURES, MAX_N_BOOT, PAPER_FEATURES, SOURCE_ORDER
from engine.catalog.vocab import SYNTHETIC
from engine.cli.common import Db, UserError, app, check_choice, console, err_console, guarded, to_json

if TYPE_CHECKING:
    from engine.analysis.fit import Analysis

SourceOpt = Annotated[Optional[str], typer.Option(
    help=f"Runs to fit: {', '.join(SOURCE_ORDER)} or {ALL_SOURCES} (pooled) "
         f"[default: engine if the setting has engine runs, else import, else paper].")]
NBootOpt = Annotated[int, typer.Option(help=f"Bootstrap draws for intervals (0: none; at most {MAX_N_BOOT:,}).")]


def parse_features(text: str | None):
    if not text or text == "paper":
        return PAPER_FEATURES
    if text.startswith("best:"):
        criterion = text.split(":", 1)[1]
        if criterion not in CRITERIA:
            raise UserError(f"unknown criterion {criterion!r}; valid: {', '.join(CRITERIA)}")
        return text
    names = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in names if f not in FEATURES]
    if bad or not names:
        raise UserError(f"unknown feature {bad[0] if bad else text!r}; valid: {', '.join(FEATURES)}, "
                        f"or best:<{'|'.join(CRITERIA)}>")
    return names


def load_runs(db):
    from store import runs as store_runs
    return store_runs.query_runs(db)


def setting_runs(db, dataset, classifier):
    """Only the runs of one dataset and classifier, checked against what the store holds."""
    from store import runs as store_runs
    check_choice("dataset", dataset, store_runs.distinct_values("dataset", db))
    runs = store_runs.query_runs(db, dataset=dataset, classifier=classifier)
    if runs.empty:
        check_choice("classifier", classifier, store_runs.query_runs(db, dataset=dataset).classifier.unique())
    return runs


def select_setting(runs, dataset, classifier, augmentation, generator):
    check_choice("augmentation", augmentation, SYNTHETIC)
    sel = runs[(runs.dataset == dataset) & (runs.classifier == classifier) & (runs.augmentation == augmentation)]
    gens = sel.generator.dropna().unique()
    if generator is None:
        if len(gens) > 1:
            raise UserError(f"{dataset} / {classifier} has several {augmentation}-set generators; "
                            f"choose one with --generator: {', '.join(sorted(gens))}")
        generator = gens[0] if len(gens) else None
    else:
        check_choice("generator", generator, gens)
    return generator


def check_options(eps: float, n_boot: int, source: str | None) -> None:
    if not (eps > 0 and math.isfinite(eps)):
        raise UserError(f"--eps {eps} must be a positive number")
    if not 0 <= n_boot <= MAX_N_BOOT:
        raise UserError(f"--n-boot {n_boot} must be between 0 and {MAX_N_BOOT:,}")
    if source is not None:
        check_choice("source", source, [*SOURCE_ORDER, ALL_SOURCES])


def run_analysis(db, dataset, classifier, augmentation, generator, eps, features, n_boot, seed,
                 source=None, traditional=None) -> Analysis:
    from engine.analysis.fit import analyse
    check_options(eps, n_boot, source)
    runs = setting_runs(db, dataset, classifier)
    generator = select_setting(runs, dataset, classifier, augmentation, generator)
    return analyse(runs, dataset, classifier, augmentation, generator, traditional,
                   features=parse_features(features), eps=eps, n_boot=n_boot, seed=seed, source=source)


def _fmt_ci(ci, fmt="{:.4g}"):  # c1, c2 by default in the CLI
    from engine.analysis.labels import format_interval
    return format_interval(ci, fmt)


def print_analysis(a: Analysis) -> None:
    title = f"{a.dataset} · {a.classifier} · {a.augmentation}" + (f" ({a.generator})" if a.generator else "") \
        + (f" · traditional {a.traditional}" if a.traditional else "")
    console.rule(title)
    console.print(f"source: {a.source} runs" + (" (pooled: a run without a seed is one observation, never a seed)"
                                                 if a.source == ALL_SOURCES else "")
                  + f"; Eq. 12 grid: {a.grid_rule}", highlight=False)
    for b, f in sorted(a.bases.items()):
        if f.surface is not None:
            s = f.surface
            console.print(f"n_base {b:>6}: {s.formula()}  (R² {s.stats['r2']:.3f}, LOO RMSE "
                          f"{s.stats['loo_rmse']:.2f}, {s.n_points} points)", highlight=False)
        elif f.error:
            console.print(f"[yellow]{f.error}[/]", highlight=False)
    table = Table("n_base", "n_real_added", "n_syn_added", "syn/real", "note", title="Equivalence tuples (Eq. 12)")
    for t in a.tuples:
        table.add_row(f"{t['n_base']:,}", f"{t['n_real_added']:,.0f}", f"{t['n_syn_added']:,.0f}",
                      f"{t['n_syn_added'] / t['n_real_added']:.2f}", "; ".join(t["extrapolation"]))
    console.print(table)
    for d in a.dropped:
        console.print(f"  dropped n_base {d['n_base']:,}, r {d['ratio']:g}: {d['reason']}", highlight=False)
        if d.get("bound"):
            console.print(f"    {d['n_real_added']:,.0f} more real images are worth {d['bound']}", highlight=False)
    if a.c1 is not None:
        from engine.analysis.verdict import parameter_labels
        lab = parameter_labels(a)
        console.print(f"Eq. 1: n_syn/n_base = c1^(tau·n_base)·(c2^(n_real/n_base) − 1), tau = {a.tau:.3g}")
        console.print(f"  c1 = {a.c1:.4g} {_fmt_ci(a.c1_ci)}, {lab['c1']};   c2 = {a.c2:.4g} {_fmt_ci(a.c2_ci)}, "
                      f"{lab['c2']};"
                      f"   RMSE {a.eq1_rmse:.3g} (bootstrap: {a.draws.method if a.draws else 'no draws'}, "
                      f"{a.draws.n_ok if a.draws else 0}/{a.draws.n_boot if a.draws else 0} draws)", highlight=False)
    else:
        console.print(f"[yellow]{a.eq1_error}[/]", highlight=False)
        if a.unidentified:
            console.print(f"  (the solver stopped at c1 = {a.unidentified['c1']:.3g}, c2 = {a.unidentified['c2']:.6g}: "
                          f"not an estimate)", highlight=False)
    for w in a.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


# -------------------------------------------------------------------------------- fit

@app.command()
@guarded
def fit(dataset: Annotated[str, typer.Option(help="Dataset as stored, e.g. CIFAR-10.")],
        classifier: Annotated[str, typer.Option(help="Classifier as stored, e.g. ResNet-110.")],
        augmentation: Annotated[str, typer.Option(help="closed or open.")],
        generator: Annotated[Optional[str], typer.Option(help="Generator, if several.")] = None,
        eps: Annotated[float, typer.Option(help="eps of the log terms.")] = DEFAULT_EPS,
        features: Annotated[Optional[str], typer.Option(
            help="Comma-separated subset of n_real,n_syn,log_n_real,log_n_syn,log_n_total, or best:<criterion>.")] = None,
        n_boot: NBootOpt = 200,
        seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
        source: SourceOpt = None,
        traditional: Annotated[Optional[str], typer.Option(
            help="Traditional augmentation of the runs to fit (crop+flip, crop, flip, none) [default: the one "
                 "with the most synthetic runs; runs of different ones are never pooled].")] = None,
        sensitivity: Annotated[bool, typer.Option(
            "--sensitivity", help="Refit over the choices the paper leaves open (eps, features, Eq. 13's loss, the "
                                  "base-only run, tuples without a root, Table 9's reading).")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        db: Db = None):
    """Fit surfaces, equivalence tuples and Eq. 1 (c1, c2) for one setting; exit 1 without an Eq. 1 fit."""
    from engine.analysis.verdict import parameter_labels
    a = run_analysis(db, dataset, classifier, augmentation, generator, eps, features, n_boot, seed, source,
                     traditional)
    rows = sensitivity_rows(db, a) if sensitivity else None
    if as_json:
        print(to_json({**a.to_dict(), "labels": {f"{k}_ci": v for k, v in parameter_labels(a).items()},
                       **({"sensitivity": rows} if rows is not None else {})}))
    else:
        print_analysis(a)
        if rows is not None:
            print_sensitivity(rows)
    if a.c1 is None:
        if not as_json:
            err_console.print(f"error: {a.eq1_error}", highlight=False)
        raise typer.Exit(1)


@app.command()
@guarded
def equiv(dataset: Annotated[str, typer.Option()],
          classifier: Annotated[str, typer.Option()],
          augmentation: Annotated[str, typer.Option()],
          n_base: Annotated[int, typer.Option(help="Size of the real base set.")],
          n_real_added: Annotated[Optional[float], typer.Option(help="How many synthetic images equal this many more real ones?")] = None,
          n_syn_added: Annotated[Optional[float], typer.Option(help="How many real images are this many synthetic ones worth?")] = None,
          generator: Annotated[Optional[str], typer.Option()] = None,
          eps: Annotated[float, typer.Option()] = DEFAULT_EPS,
          features: Annotated[Optional[str], typer.Option()] = None,
          n_boot: NBootOpt = 200,
          seed: Annotated[int, typer.Option()] = 0,
          source: SourceOpt = None,
          gpu_cost: Annotated[Optional[float], typer.Option(
              "--gpu-cost", help="Price of one GPU-hour (or device-hour), for the cost of the synthetic side.")] = None,
          label_cost: Annotated[Optional[float], typer.Option(
              "--label-cost", help="Price of labelling one real image, for the cost of the real side.")] = None,
          as_json: Annotated[bool, typer.Option("--json")] = False,
          db: Db = None):
    """Answer "how many synthetic images equal N more real ones" (or the inverse); exit 1 without an answer."""
    for name, price in (("--gpu-cost", gpu_cost), ("--label-cost", label_cost)):
        if price is not None and not (math.isfinite(price) and price >= 0):
            raise UserError(f"{name} {price:g} must be a finite, non-negative price")
    if (n_real_added is None) == (n_syn_added is None):
        raise UserError("give exactly one of --n-real-added or --n-syn-added")
    if n_base <= 0:
        raise UserError(f"--n-base {n_base} must be positive")
    flag = "--n-real-added" if n_real_added is not None else "--n-syn-added"
    amount = n_real_added if n_real_added is not None else n_syn_added
    if not (math.isfinite(amount) and amount >= 0):
        raise UserError(f"{flag} {amount:g} must be a finite, non-negative number")
    a = run_analysis(db, dataset, classifier, augmentation, generator, eps, features, n_boot, seed, source)
    if a.n_total and n_base > a.n_total:  # a base larger than the whole training set is no question to answer
        raise UserError(f"--n-base {n_base:,} is larger than {a.dataset}'s whole training set of {a.n_total:,} "
                        f"images (n_total)")
    from engine.analysis.verdict import explain, interval_labels
    direction = "syn_for_real" if n_real_added is not None else "real_for_syn"
    ans = a.syn_for_real(n_base, amount) if n_real_added is not None else a.real_for_syn(n_base, amount)
    exp = explain(a, n_base, amount, direction)
    labels = interval_labels(a, exp)
    ans.update({"dataset": a.dataset, "classifier": a.classifier, "augmentation": a.augmentation,
                "generator": a.generator, "source": a.source, "c1": a.c1, "c2": a.c2, "tau": a.tau,
                "c1_ci": a.c1_ci, "c2_ci": a.c2_ci, "level": a.level, "verdict": exp["verdict"],
                "methods": exp["answers"], "labels": {f"{k}_ci": v for k, v in labels.items()}})
    v = exp["verdict"]
    from engine.analysis.cost import CostModel
    from engine.analysis.pricing import answer_cost
    ans["cost"] = answer_cost(v, direction, amount, n_base, a.generator, CostModel.from_store(db), gpu_cost, label_cost)
    answered = v["value"] is not None or v["lo"] is not None or v["hi"] is not None or a.has_answer(ans)
    if as_json:
        print(to_json(ans))
        if not answered:
            raise typer.Exit(1)
        return
    unit = "synthetic images" if n_real_added is not None else "real images"
    console.print(f"[bold]verdict (grade {v['grade']}):[/] {v['text']}", highlight=False, soft_wrap=True)
    console.print(f"cost: {ans['cost']['text']} ({ans['cost']['basis']})", highlight=False, soft_wrap=True)
    console.print(f"the other answers (source: {a.source} runs):", highlight=False)
    if ans.get("bound"):
        console.print(f"  at this base: {ans['bound']['text']}", highlight=False)
    if ans.get("eq1") is not None:
        console.print(f"  Eq. 1 (c1 {a.c1:.4g}, c2 {a.c2:.4g}): {ans['eq1']:,.0f} {unit}, interval "
                      f"{_fmt_ci(ans.get('eq1_ci'), '{:,.0f}')}, {labels['eq1']}", highlight=False, soft_wrap=True)
    else:
        console.print(f"  Eq. 1: {ans.get('eq1_error')}", highlight=False, soft_wrap=True)
    if ans.get("surface") is not None:
        console.print(f"  this base's surface: {ans['surface']:,.0f} {unit}, interval "
                      f"{_fmt_ci(ans.get('surface_ci'), '{:,.0f}')}, {labels['surface']}", highlight=False,
                      soft_wrap=True)
    else:
        console.print(f"  this base's surface: {ans.get('surface_error')}", highlight=False, soft_wrap=True)
    for w in ans["warnings"]:
        console.print(f"  [yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    if not answered:
        err_console.print("error: no answer: " + v["text"], highlight=False)
        raise typer.Exit(1)


def sensitivity_rows(db, a: Analysis) -> list[dict]:
    """engine.analysis.sensitivity over the setting's runs (and both readings of Table 9 for the paper's)."""
    from engine.analysis.paper import paper_runs
    from engine.analysis.sensitivity import sensitivity
    from engine.catalog.vocab import PAPER
    from store.runs import TAB9_READINGS
    runs = setting_runs(db, a.dataset, a.classifier)
    tab9 = {r: paper_runs(r) for r in TAB9_READINGS} if a.source == PAPER else None
    return sensitivity(runs, a.dataset, a.classifier, a.augmentation, a.generator, source=a.source,
                       traditional=a.traditional, tab9_runs=tab9)


def print_sensitivity(rows: list[dict]) -> None:
    q = next((r["question"] for r in rows if r.get("question")), None)
    table = Table("choice", "value", "c1", "c2", "Eq. 1 answer" + (f" (N = {q['n_real_added']:,.0f} at n_base "
                                                                     f"{q['n_base']:,})" if q else ""), "note",
                  title="Sensitivity to the choices the paper leaves open (ours marked *)")
    for r in rows:
        table.add_row(r["choice"], f"{r['value']}{' *' if r['default'] else ''}",
                      f"{r['c1']:.3g}" if r["c1"] is not None else "—", f"{r['c2']:.3g}" if r["c2"] is not None else "—",
                      f"{r['answer']:,.0f}" if r.get("answer") is not None else "—", r.get("error") or "")
    console.print(table)
