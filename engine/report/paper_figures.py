"""The paper's data figures regenerated from the store: Fig. 2's contours, the accuracy curves of Figs.
5, 6, 8 and 10, Fig. 7's IR(n_base) and the fits of Eq. 2-6, 8 and 9, each with the published values
overlaid where the paper gives them.

A figure is named by the paper's number and found by the appendix tables whose runs it plots (so
the catalog stays the one place a dataset's name is written): Fig. 6 plots the runs of Tables
9-11, whichever (dataset, classifier) those are. The store's runs of that pair are drawn (every
source it holds, never averaged across sources); the published means are drawn over them from the
shipped files. A figure whose runs the store lacks is skipped with its reason."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.analysis.surface import DEFAULT_EPS, FitError
from engine.catalog.vocab import PAPER
from engine.report import figures, published

# Figure -> the appendix tables whose runs it plots.
ACCURACY_FIGURES = {5: (12, 13), 6: (9, 10, 11), 8: (14, 15, 16), 10: (17, 18, 19)}
IR_FIGURE, IR_TABLES = 7, (9, 10, 11)
# Sec. 4.3.3 states one value of Fig. 7: "the improvement ratio continuing to rise, reaching 2.80"
# (the published means give 2.797 at the largest base, n_base 50,000).
IR_TEXT = (2.80, "Sec. 4.3.3")
# Fig. 2's three panels: (panel, the equation of its setting, the base it shows), as its caption and
# Sec. 4.2, 4.3.1, 4.3.2 name them.
CONTOUR_PANELS = (("a", 2, 6000), ("b", 3, 5000), ("c", 5, 26000))
EQUATION_FIGURES = (2, 3, 4, 5, 6, 8, 9)
# The captions as the paper prints them, less the dataset (written from the runs).
CAPTIONS = {5: "Accuracy curves: synthetic data augmentation scale", 6: "Accuracy curves w.r.t. the augmentation scale",
            8: "Accuracy curves w.r.t. the augmentation scale", 10: "Accuracy curves"}


@dataclass
class PaperFigure:
    name: str                     # file stem, by the paper's number: fig02a, fig06, eq3
    label: str                    # "Fig. 2(a)", "Eq. 3"
    title: str
    overlay: str                  # the published values drawn over the store's
    figure: object = None         # a plotly Figure, or None when skipped
    skipped: str | None = None

    def manifest(self, fmt: str) -> dict:
        return {"name": self.name, "label": self.label, "title": self.title, "overlay": self.overlay,
                "file": f"{self.name}.{fmt}" if self.figure is not None else None, "skipped": self.skipped}


def _source_label(source: str, traditional: str, several_traditional: bool) -> str:
    return f"{source} runs" + (f", {traditional}" if several_traditional and traditional else "")


def accuracy_curves(db, dataset: str, classifier: str) -> pd.DataFrame:
    """The store's point means of one pair, one set of curves per source (store.runs.point_means)."""
    from store import runs as store_runs
    frames = []
    for source in store_runs.distinct_values("source", db, dataset=dataset, classifier=classifier):
        f = store_runs.point_means(db, dataset=dataset, classifier=classifier, source=source)
        frames.append(f.assign(source=source))
    if not frames:
        return pd.DataFrame(columns=["n_base", "augmentation", "generator", "traditional", "added", "acc", "sd",
                                     "seeds", "label"])
    curves = pd.concat(frames, ignore_index=True)
    several = curves.traditional.nunique() > 1
    sources = curves.source.nunique() > 1 or set(curves.source) != {PAPER}
    curves["label"] = [_source_label(s, t, several) if sources or several else ""
                       for s, t in zip(curves.source, curves.traditional)]
    return curves


def _accuracy_figure(db, number: int) -> PaperFigure:
    tables = ACCURACY_FIGURES[number]
    dataset, classifier = published.pair_of_tables(tables)
    runs = published.published_runs()
    pub = runs[runs.table.isin(list(tables))].drop_duplicates(["n_base", "augmentation", "generator", "added"])
    title = f"Fig. {number}: {CAPTIONS[number]}: {dataset} · {classifier}"
    fig = PaperFigure(f"fig{number:02d}", f"Fig. {number}", title,
                      f"published means of Tab. {', '.join(map(str, tables))} (crosses)")
    curves = accuracy_curves(db, dataset, classifier)
    if curves.empty:
        fig.skipped = f"the store has no runs of {dataset} · {classifier} (`engine store init` loads the paper's)"
        return fig
    fig.figure = figures.accuracy_figure(curves, pub, title)
    return fig


def _ir_figure(db) -> PaperFigure:
    from engine.analysis.ir import improvement_ratio
    from store import runs as store_runs
    dataset, classifier = published.pair_of_tables(IR_TABLES)
    title = f"Fig. 7: IR(n_base), Eq. 7: {dataset} · {classifier}"
    fig = PaperFigure("fig07", "Fig. 7", title, f"IR of the published means of Tab. {', '.join(map(str, IR_TABLES))} "
                      f"(crosses) and the value {IR_TEXT[1]} states")
    ir = improvement_ratio(store_runs.improvement_rows(db, dataset=dataset, classifier=classifier), dataset, classifier)
    if ir.empty:
        fig.skipped = f"the store has no closed- and open-set runs at 1:1 beside a base-only run for {dataset} · {classifier}"
        return fig
    pub = improvement_ratio(published.published_runs(), dataset, classifier, n_boot=0)
    fig.figure = figures.ir_figure(ir, pub, title, IR_TEXT)
    return fig


def _analysis(db, eq: dict, runs_of: dict, n_boot: int, eps: float, seed: int):
    """The store's fit of a published equation's setting (its default source and traditional augmentation)."""
    from engine.analysis.fit import analyse
    from store import runs as store_runs
    key = (eq["dataset"], eq["classifier"])
    if key not in runs_of:
        runs_of.clear()  # one pair in memory at a time
        runs_of[key] = store_runs.query_runs(db, dataset=key[0], classifier=key[1])
    return analyse(runs_of[key], eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"], eps=eps,
                   n_boot=n_boot, seed=seed)


def _contour_figures(db, runs_of, n_boot, eps, seed) -> list[PaperFigure]:
    out = []
    for panel, number, n_base in CONTOUR_PANELS:
        eq = published.equation(number)
        title = (f"Fig. 2({panel}): {figures.setting_title(eq['dataset'], eq['classifier'], eq['augmentation'], eq['generator'])}"
                 f", n_base {n_base:,}")
        fig = PaperFigure(f"fig02{panel}", f"Fig. 2({panel})", title,
                          f"published runs at n_base {n_base:,} (crosses) and the pairs published Eq. {number} calls "
                          f"equivalent (dashed)")
        try:
            a = _analysis(db, eq, runs_of, n_boot, eps, seed)
        except FitError as err:
            fig.skipped = str(err)
            out.append(fig)
            continue
        base = a.bases.get(n_base)
        if base is None or base.surface is None:
            fig.skipped = base.error if base is not None else f"no {eq['augmentation']}-set runs at n_base {n_base:,}"
        else:
            pts = published.setting_points(eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"], n_base)
            fig.title = title + f" (fitted on {a.source} runs)"
            fig.figure = figures.contour_figure(a, n_base, published=eq, published_points=pts, title=fig.title)
        out.append(fig)
    return out


def _equation_figures(db, runs_of, n_boot, eps, seed) -> list[PaperFigure]:
    out = []
    for number in EQUATION_FIGURES:
        eq = published.equation(number)
        setting = figures.setting_title(eq["dataset"], eq["classifier"], eq["augmentation"], eq["generator"])
        fig = PaperFigure(f"eq{number}", f"Eq. {number}", f"Eq. {number}: {setting}",
                          f"published Eq. {number}: c1 {eq['published_c1']:g}, c2 {eq['published_c2']:g} (dashed)")
        try:
            a = _analysis(db, eq, runs_of, n_boot, eps, seed)
        except FitError as err:
            fig.skipped = str(err)
            out.append(fig)
            continue
        if not a.tuples:
            fig.skipped = a.eq1_error or "no equivalence tuples"
        else:
            ours = f"c1 {a.c1:.3g}, c2 {a.c2:.3g}" if a.c1 is not None else "no Eq. 1 fit"
            fig.title = (f"Eq. {number}: {setting}: refitted on {a.source} runs ({ours}); dashed: published "
                         f"(c1 {eq['published_c1']:g}, c2 {eq['published_c2']:g})")
            fig.figure = figures.eq1_figure(a, published=eq, title=fig.title)
        out.append(fig)
    return out


def paper_figures(db=None, *, n_boot: int = 200, eps: float = DEFAULT_EPS, seed: int = 0) -> list[PaperFigure]:
    """Every figure, in the paper's order: Fig. 2(a-c), 5, 6, 7, 8, 10, then the equations' fits."""
    runs_of: dict = {}
    out = _contour_figures(db, runs_of, n_boot, eps, seed)
    out += [_accuracy_figure(db, n) for n in (5, 6)] + [_ir_figure(db)] + [_accuracy_figure(db, n) for n in (8, 10)]
    return out + _equation_figures(db, runs_of, n_boot, eps, seed)
