"""`engine report` (every setting's fit, printed or as one self-contained HTML file) and `engine figures`
(the paper's data figures regenerated from the store, as PNG, SVG or PDF).

The analysis, the store and Plotly are imported by the commands that use them, so that `engine --help`
does not pay for them. Files are written whole or not at all: into a temporary name beside the
target, then renamed."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.analysis.options import DEFAULT_EPS
from engine.cli.analysis import NBootOpt, SourceOpt, _fmt_ci, check_options, print_analysis
from engine.cli.common import Db, UserError, app, console, err_console, guarded

FIGURE_FORMATS = ("png", "svg", "pdf")


def _setting_label(dataset, classifier, augmentation, generator, traditional) -> str:
    return f"{dataset} · {classifier} · {augmentation}" + (f" ({generator})" if generator else "") \
        + (f" · {traditional}" if traditional else "")


def _out_file(path: Path) -> Path:
    """The report's path, checked before anything is fitted: its folder exists and it is no folder."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--html {str(path)!r} is a folder; give a file name, e.g. {str(path / 'report.html')!r}")
    if not path.parent.resolve().is_dir():
        raise UserError(f"--html {str(path)!r}: folder {str(path.parent)!r} does not exist")
    return path


def write_whole(path: Path, text: str) -> None:
    """`text` at `path`, or nothing there: written to a temporary file beside it, then renamed."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent.resolve())
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def print_report(db, pairs, eps: float, n_boot: int, source: str | None) -> None:
    """Each setting's fit as `engine fit` prints it, then one table, a row a setting; exit 1 when no
    setting has an Eq. 1 fit."""
    from engine.analysis.select import settings
    from store import runs as store_runs
    summary = Table(title="Eq. 1 for every setting")
    for name in ("setting (traditional augmentation)", "source", "c1 [CI]", "c2 [CI]", "tuples", "dropped"):
        summary.add_column(name, overflow="fold")  # a long name wraps; it is never cut short
    answered = 0
    # One (dataset, classifier) at a time: a setting's fit reads only its own runs, and a store of a
    # million runs is never held in memory at once (all of them: 1.9 GB).
    for dataset, classifier in pairs:
        runs = store_runs.query_runs(db, dataset=dataset, classifier=classifier)
        for setting in settings(runs):
            a = _fit_one(runs, setting, eps, n_boot, source, summary)
            if a is not None:
                answered += a.c1 is not None
    console.print(summary)
    if not answered:
        err_console.print("error: no setting in the store gives an Eq. 1 fit", highlight=False)
        raise typer.Exit(1)


def _fit_one(runs, setting, eps, n_boot, source, summary):
    """One setting's fit printed and its row added to `summary`; None when it cannot be fitted."""
    from engine.analysis.fit import analyse
    from engine.analysis.surface import FitError
    try:
        a = analyse(runs, *setting, eps=eps, n_boot=n_boot, source=source)
    except FitError as err:
        summary.add_row(_setting_label(*setting[:4], setting[4] if len(setting) > 4 else None),
                        source or "", str(err), "", "", "")
        return None
    print_analysis(a)
    c1 = f"{a.c1:.3g} {_fmt_ci(a.c1_ci, '{:.3g}')}" if a.c1 else "—"
    c2 = f"{a.c2:.3g} {_fmt_ci(a.c2_ci, '{:.3g}')}" if a.c2 else (
        "not identified" if a.unidentified else "no equivalence")
    summary.add_row(_setting_label(a.dataset, a.classifier, a.augmentation, a.generator, a.traditional),
                    a.source, c1, c2, str(len(a.tuples)), str(len(a.dropped)))
    return a


@app.command()
@guarded
def report(eps: Annotated[float, typer.Option(help="eps of the log terms.")] = DEFAULT_EPS,
           n_boot: NBootOpt = 200,
           source: SourceOpt = None,
           html: Annotated[Optional[Path], typer.Option(
               "--html", help="Write one self-contained HTML file (opens offline) instead of printing.")] = None,
           dataset: Annotated[Optional[list[str]], typer.Option(
               help="Only this dataset (repeatable) [default: every dataset].")] = None,
           classifier: Annotated[Optional[list[str]], typer.Option(
               help="Only this classifier (repeatable) [default: every classifier].")] = None,
           question: Annotated[Optional[list[str]], typer.Option(
               help="With --html: n_base:N, how many synthetic images equal N more real ones at n_base "
                    "(repeatable) [default: N = n_base at each base of a setting].")] = None,
           seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
           db: Db = None):
    """Print every setting's fitted equivalence (exit 1 when none has one), or write one HTML report.

    With --html: one self-contained file (opens offline) with, per setting, the verdicts of the questions,
    the contours, Eq. 1 against the tuples, the paper check, quality metrics and provenance."""
    from engine.report.html import parse_question, select_pairs
    check_options(eps, n_boot, source)
    if question and html is None:
        raise UserError("--question is answered in the HTML report: add --html OUT")
    questions = [parse_question(q) for q in question or ()]
    out = _out_file(html) if html is not None else None
    if out is None:
        print_report(db, select_pairs(db, dataset, classifier), eps, n_boot, source)
        return
    from engine.report.html import build_report, select_settings
    settings = select_settings(db, dataset, classifier)
    text = build_report(db, settings, questions, eps=eps, n_boot=n_boot, source=source, seed=seed)
    write_whole(out, text)
    console.print(f"wrote {out} ({len(settings)} settings, {len(text) / 1e6:.1f} MB; opens offline)", highlight=False)


@app.command()
@guarded
def figures(out: Annotated[Path, typer.Option("--out", help="Folder to write the figures into (created).")],
            fmt: Annotated[str, typer.Option("--format", help=f"{' | '.join(FIGURE_FORMATS)}")] = "png",
            n_boot: NBootOpt = 200,
            eps: Annotated[float, typer.Option(help="eps of the log terms.")] = DEFAULT_EPS,
            seed: Annotated[int, typer.Option(help="Bootstrap seed.")] = 0,
            db: Db = None):
    """The paper's data figures regenerated from the store, published values overlaid, named by number.

    Fig. 2(a-c) contours, Figs. 5/6/8/10 accuracy curves, Fig. 7 IR and the fits of Eq. 2-9, through
    kaleido and a local Chromium; figures.json lists each file, what is overlaid, and any skipped."""
    from engine.report.export import check_export, write_images
    from engine.report.paper_figures import paper_figures
    if fmt not in FIGURE_FORMATS:
        raise UserError(f"--format {fmt!r}: choose from {', '.join(FIGURE_FORMATS)}")
    check_options(eps, n_boot, None)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} is a file, not a folder")
    check_export()  # before the fits: a missing browser is said at once
    made = paper_figures(db, n_boot=n_boot, eps=eps, seed=seed)
    drawn = [f for f in made if f.figure is not None]
    if not drawn:
        raise UserError("no figure could be drawn: the store holds none of the paper's settings "
                        "(`engine store init` loads the published runs)")
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".figures-", dir=out))
    try:
        write_images([f.figure for f in drawn], [staging / f"{f.name}.{fmt}" for f in drawn], fmt)
        (staging / "figures.json").write_text(json.dumps([f.manifest(fmt) for f in made], indent=1) + "\n")
        for f in sorted(staging.iterdir()):
            os.replace(f, out / f.name)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out.iterdir()):  # a failed export leaves no folder it made
            out.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    for f in made:
        console.print(f"{f.label:<10} {f'{f.name}.{fmt}' if f.figure is not None else 'skipped: ' + f.skipped}"
                      + (f"  (overlaid: {f.overlay})" if f.figure is not None else ""), highlight=False, soft_wrap=True)
    console.print(f"wrote {len(drawn)} of {len(made)} figures and figures.json to {out}", highlight=False)
