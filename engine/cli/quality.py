"""`engine quality SET`: compute, store and print the quality of synthetic sets.

pandas and the store are imported where they are used, so that `engine --help` does not pay for them."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, UserError, app, console, err_console, guarded, to_json

if TYPE_CHECKING:
    import pandas as pd


def _ci(r) -> str:
    import pandas as pd
    if r is None or pd.isna(r.get("value")):
        return "-"
    text = f"{r['value']:.2f}"
    if not pd.isna(r.get("ci_low")) and not pd.isna(r.get("ci_high")):
        text += f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
    return text


TABLE_ROWS = [("fd", "FD, reference classifier (syn vs real test)"), ("fd_real", "FD of real train images (ruler)"),
              ("fid", "FID (pytorch-fid Inception)"), ("is", "IS (± sd over splits)"),
              ("domain", "domain classifier accuracy % (chance 50)"), ("domain_patch", "domain accuracy on patches %"),
              ("diversity", "diversity, synthetic"), ("diversity_real", "diversity, real (equal size)"),
              ("memorisation", "memorisation ratio (< 1: nearer base)")]


def quality_table(sets: pd.DataFrame, quality: pd.DataFrame, title: str = "Quality of each synthetic set") -> Table:
    """Metrics down, one column per set (n_base and size on top), each value with its 95 % interval."""
    import pandas as pd
    table = Table("metric [95% interval]", title=title)
    columns = []
    for s in sets.to_dict("records"):
        base = "" if pd.isna(s.get("n_base")) else f"n_base {int(s['n_base'])}, "
        table.add_column(f"{base}{int(s['n_images'])} syn\n{s['synthetic_set_id']}", overflow="fold")
        columns.append({r["metric"]: r for r in quality[quality.synthetic_set_id == s["synthetic_set_id"]]
                        .to_dict("records")})
    for metric, label in TABLE_ROWS:
        if any(metric in c for c in columns):
            table.add_row(label, *[_ci(c.get(metric)) for c in columns])
    return table


@app.command()
@guarded
def quality(set_: Annotated[str, typer.Argument(metavar="SET", help="A synthetic set id, generator id, generator name or imported set name.")],
            metrics: Annotated[str, typer.Option(help="Comma list of fd, diversity, memorisation, fid, domain, tsne; "
                                                      "or cheap (the first three) or full.")] = "full",
            json_: Annotated[bool, typer.Option("--json", help="Print the stored rows as JSON.")] = False,
            inception_weights: Annotated[Optional[Path], typer.Option(
                help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth [default: $TORCH_HOME/hub/checkpoints/].")] = None,
            dataset: Annotated[Optional[str], typer.Option(help="Dataset to load (default: the generator's).")] = None,
            data_root: Annotated[Optional[str], typer.Option(help="Where the dataset lies.")] = None,
            size: Annotated[Optional[int], typer.Option(help="Resize the real images to the set's size.")] = None,
            device: Annotated[str, typer.Option(help="auto, cpu or cuda:K.")] = "auto",
            db: Db = None):
    """Compute the quality metrics of one or more synthetic sets, store them, and print them."""
    import pandas as pd

    from engine.data.loaders import DatasetError, load_dataset
    from engine.quality.assess import QualityError, assess, dataset_spec, parse_metrics
    from engine.device.runtime import resolve_device
    from store import quality as store_quality
    try:
        chosen = parse_metrics(metrics)
        sets = store_quality.resolve_sets(set_, db)
        if sets.empty:
            known = store_quality.list_sets(db)
            hint = ", ".join(known.synthetic_set_id.tolist()[:5]) if len(known) else "none stored"
            raise UserError(f"no synthetic set, generator id or generator name {set_!r} (sets: {hint})")
        dev = resolve_device(device)
        loaded = {}
        for s in sets.to_dict("records"):
            if not dataset and pd.isna(s.get("dataset")):
                raise UserError(f"set {s['synthetic_set_id']} has no generator row: pass --dataset")
            spec = dataset or dataset_spec(s["dataset"])
            if spec not in loaded:
                loaded[spec] = load_dataset(spec, data_root, size)
            err_console.print(f"quality of {s['synthetic_set_id']}: {', '.join(chosen)}")
            assess(s, chosen, db, dev, loaded[spec], inception_weights,
                   log=lambda m: err_console.print(m, highlight=False, soft_wrap=True))
    except (QualityError, DatasetError) as err:
        raise UserError(str(err)) from None
    stored = pd.concat([store_quality.query_quality(db, sid) for sid in sets.synthetic_set_id])
    if json_:
        # t-SNE coordinates stay in the store (the Generators page plots them); the rest is printed.
        out = stored.drop(columns=["detail"]).assign(created_at=stored.created_at.astype(str))
        print(to_json(out.astype(object).where(out.notna(), None).to_dict("records")))
        return
    console.print(quality_table(sets, stored))
