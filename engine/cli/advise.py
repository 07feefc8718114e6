"""`engine advise`: the next runs to buy, ranked by how much each is expected to narrow the verdict per
GPU-hour (engine.analysis.advise), torch-free."""
from __future__ import annotations

from typing import Annotated, Optional

import typer
from rich.table import Table

from engine.cli.common import Db, UserError, app, console, guarded, to_json


def advice_for(db, dataset: str, classifier: str, augmentation: str, generator: str | None, n_base: int | None,
               n_real_added: float | None, sims: int = 4, n_boot: int = 50, seed: int = 0, top: int | None = None,
               device: str = "auto") -> dict:
    """The advice for one setting and question, as `engine advise --json` prints it."""
    from engine.analysis.advise import AdviceError, setting_advice
    from engine.analysis.cost import CostModel
    from engine.cli.analysis import select_setting, setting_runs
    from store.jobs import folder_forms
    runs = setting_runs(db, dataset, classifier)
    generator = select_setting(runs, dataset, classifier, augmentation, generator)
    try:
        return setting_advice(runs, CostModel.from_store(db), dataset, classifier, augmentation, generator, n_base,
                              n_real_added, sims=sims, n_boot=n_boot, seed=seed, top=top, device=device,
                              dataset_form=folder_forms(db).get(dataset))
    except AdviceError as err:
        raise UserError(str(err)) from None


@app.command()
@guarded
def advise(dataset: Annotated[str, typer.Option(help="Dataset as stored, e.g. digits or CIFAR-10.")],
           classifier: Annotated[str, typer.Option(help="Classifier as stored, e.g. SmallCNN.")],
           augmentation: Annotated[str, typer.Option(help="closed or open.")],
           n_base: Annotated[Optional[int], typer.Option(help="Base of the question [default: the middle measured one].")]
           = None,
           n_real_added: Annotated[Optional[float], typer.Option(
               help="The question's N: how many synthetic images equal N more real ones [default: n_base].")] = None,
           generator: Annotated[Optional[str], typer.Option(help="Generator, if several.")] = None,
           sims: Annotated[int, typer.Option(help="Simulated outcomes per candidate (1-50).")] = 4,
           n_boot: Annotated[int, typer.Option(help="Bootstrap draws of each refit (0-1,000).")] = 50,
           seed: Annotated[int, typer.Option(help="Seed of the simulation.")] = 0,
           top: Annotated[int, typer.Option(help="Rows to print (0: all).")] = 10,
           as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
           db: Db = None):
    """Candidate runs ranked by the expected shrink of the verdict's interval per GPU-hour."""
    if not 1 <= sims <= 50:
        raise UserError(f"--sims {sims} must be between 1 and 50")
    if not 0 <= n_boot <= 1000:
        raise UserError(f"--n-boot {n_boot} must be between 0 and 1,000")
    if top < 0:
        raise UserError(f"--top {top} must be 0 (all) or more")
    if n_real_added is not None and not (n_real_added > 0 and n_real_added < float("inf")):
        raise UserError(f"--n-real-added {n_real_added:g} must be a positive number")
    out = advice_for(db, dataset, classifier, augmentation, generator, n_base, n_real_added, sims, n_boot, seed,
                     top or None)
    if as_json:
        print(to_json(out))
        return
    q = out["question"]
    console.print(f"question: {q['amount']:,.0f} more real images at n_base {q['n_base']:,}; verdict now (grade "
                  f"{out['verdict']['grade']}): interval width {out['width_now']:,.0f} images", highlight=False)
    table = Table("rank", "run", "n_base", "added", "seeds", "hours", "width now", "expected", "shrink / hour",
                  title=f"Next runs, by expected shrink of the verdict's interval per hour on {out['device']} "
                        f"({out['sims']} simulated outcomes each, seed noise sd {out['noise_sd']:.2f} points)"
                  if out.get("noise_sd") is not None else "Next runs")
    for k, r in enumerate(out["candidates"], 1):
        what = r["kind"] + (f" ({r['point']} point)" if r.get("point") else "")
        table.add_row(str(k), what, f"{r['n_base']:,}", f"{r['n_added']:,}", str(r["seeds"]),
                      "unknown" if r["gpu_hours"] is None else f"{r['gpu_hours']:.3g}", f"{r['width_now']:,.0f}",
                      f"{r['width_expected']:,.0f}", "—" if r["shrink_per_gpu_hour"] is None
                      else f"{r['shrink_per_gpu_hour']:,.1f}")
    console.print(table)
    for why in dict.fromkeys(out["left_out"]):
        console.print(f"  left out: {why}", highlight=False)
