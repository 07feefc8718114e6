"""`engine runs`: list, export and import runs."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, UserError, app, console, guarded


runs_app = typer.Typer(help="List, export and import runs.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


def _filters(source, dataset, classifier, augmentation, generator, n_base):
    return {"source": source, "dataset": dataset, "classifier": classifier, "augmentation": augmentation,
            "generator": generator, "n_base": n_base}


@runs_app.command("list")
@guarded
def runs_list(source: Annotated[Optional[str], typer.Option()] = None,
              dataset: Annotated[Optional[str], typer.Option()] = None,
              classifier: Annotated[Optional[str], typer.Option()] = None,
              augmentation: Annotated[Optional[str], typer.Option()] = None,
              generator: Annotated[Optional[str], typer.Option()] = None,
              n_base: Annotated[Optional[int], typer.Option()] = None,
              limit: Annotated[int, typer.Option(help="Rows to show (0: all).")] = 0,
              db: Db = None):
    """Runs in the store, filtered."""
    import pandas as pd
    from store import runs as store_runs
    if limit < 0:
        raise UserError(f"--limit {limit} must be >= 0")
    filters = _filters(source, dataset, classifier, augmentation, generator, n_base)
    total = store_runs.summary(db, **filters)["matching"]
    shown = store_runs.page_of_runs(db, limit=limit or total, **filters)
    table = Table("source", "dataset", "classifier", "aug", "generator", "n_base", "real+", "syn+", "seed",
                  "top1", "top5", title=f"{total} runs" + (f" (first {len(shown)} shown)" if len(shown) < total else ""))
    for r in shown.itertuples():
        table.add_row(r.source, r.dataset, r.classifier, r.augmentation, "" if pd.isna(r.generator) else r.generator,
                      f"{r.n_base:,}", f"{r.n_real_added:,}", f"{r.n_syn_added:,}",
                      "" if pd.isna(r.seed) else str(r.seed), f"{r.top1:.2f}",
                      "" if pd.isna(r.top5) else f"{r.top5:.2f}")
    console.print(table)


@runs_app.command("export")
@guarded
def runs_export(file: Annotated[Path, typer.Argument(help="Output .csv or .parquet.")],
                source: Annotated[Optional[str], typer.Option()] = None,
                dataset: Annotated[Optional[str], typer.Option()] = None,
                classifier: Annotated[Optional[str], typer.Option()] = None,
                augmentation: Annotated[Optional[str], typer.Option()] = None,
                generator: Annotated[Optional[str], typer.Option()] = None,
                n_base: Annotated[Optional[int], typer.Option()] = None,
                db: Db = None):
    """Write the (filtered) runs to CSV or Parquet (streamed by DuckDB)."""
    from store import exchange as store_exchange
    if file.suffix.lower() not in (".csv", ".parquet"):
        raise UserError(f"unknown export format {file.suffix or file.name!r}: use .csv or .parquet")
    n = store_exchange.export_runs(file, db, **_filters(source, dataset, classifier, augmentation, generator, n_base))
    console.print(f"{n} runs written to {file}")


@runs_app.command("import")
@guarded
def runs_import(file: Annotated[Path, typer.Argument(help="A .csv or .parquet with the runs columns.")],
                accuracy_scale: Annotated[Optional[str], typer.Option(
                    "--accuracy-scale", help="percent (93.1) or fraction (0.931, stored x 100); needed when every "
                                             "accuracy in the file lies in [0, 1].")] = None,
                db: Db = None):
    """Add runs made elsewhere (source `import`); the whole file is checked before anything is written."""
    from store import exchange as store_exchange
    added, present = store_exchange.import_runs(file, db, accuracy_scale)
    console.print(f"{added} runs imported from {file} ({present} already present)")
