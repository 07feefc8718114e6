"""One self-contained HTML file of fitted settings: per setting the verdicts of the questions asked
(grade, interval, its measured coverage), the equivalence contours, Eq. 1 against the tuples, the
paper check, the quality of the synthetic sets used, and the provenance of every number.

It opens offline: Plotly's JS is inlined once, no element refers to anything outside the file, and
no title uses LaTeX (which would make plotly.js fetch MathJax). The same store and arguments give
the same bytes except the one line that says when it was generated (GENERATED_CLASS): chart ids are
numbered, not random, and every list is in a fixed order. `engine report --html` writes it; a
page can call build_report itself."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from html import escape

import pandas as pd
import plotly.io as pio

from engine.analysis.labels import feature_label, format_interval
from engine.analysis.surface import DEFAULT_EPS, FitError
from engine.messages import InputError
from engine.report import figures, provenance, published

GENERATED_CLASS = "generated"
QUESTION = re.compile(r"\s*(\d[\d,_]*)\s*:\s*(\d[\d,_]*)\s*")
PAPER_CHECK_N_BOOT = 200  # as `engine paper-check` and the Paper check page: the same numbers
CHART_CONFIG = {"displaylogo": False, "responsive": True}

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;max-width:1280px;padding:0 24px 48px;
color:#1d2430;line-height:1.45}
h1{margin-top:28px}h2{border-top:2px solid #d8dde6;padding-top:18px;margin-top:40px}h3{margin-top:26px}
table{border-collapse:collapse;margin:10px 0;font-size:14px}th,td{border:1px solid #d8dde6;padding:4px 8px;
text-align:left;vertical-align:top}th{background:#f1f4f8}td.num{text-align:right;white-space:nowrap}
.generated,.note{color:#5a6578;font-size:14px}.grade{font-weight:700;padding:1px 7px;border-radius:4px}
.grade-A,.grade-B{background:#d9f2df}.grade-C{background:#fff1cc}.grade-D{background:#e8ecf2}
.chart{margin:12px 0 20px}code{background:#f1f4f8;padding:0 3px}details{margin:8px 0}
.warn{color:#8a5a00}
"""


class ReportError(InputError):
    """A report asked for that cannot be made as asked (a bad question, no setting): one line, exit 2."""


def parse_question(text: str) -> tuple[int, int]:
    """"n_base:N" (how many synthetic images equal N more real ones at this base), e.g. 5000:5000."""
    m = QUESTION.fullmatch(str(text))
    if not m:
        raise ReportError(f"--question {text!r} is not n_base:N, e.g. 5000:5000 (how many synthetic images "
                          f"equal N more real ones at n_base)")
    n_base, amount = (int(g.replace(",", "").replace("_", "")) for g in m.groups())
    if n_base <= 0:
        raise ReportError(f"--question {text!r}: n_base must be positive")
    return n_base, amount


def select_pairs(db, datasets=None, classifiers=None) -> list[tuple[str, str]]:
    """The store's (dataset, classifier) pairs, of these datasets and classifiers when given; each
    name asked for is checked against the store."""
    from store import runs as store_runs
    pairs = store_runs.summary(db)["pairs"]
    for kind, asked, index in (("dataset", datasets, 0), ("classifier", classifiers, 1)):
        known = sorted({p[index] for p in pairs})
        for name in asked or ():
            if name not in known:
                raise ReportError(f"unknown {kind} {name!r}; valid: {', '.join(known) or '(none in store)'}")
    return [p for p in pairs if (not datasets or p[0] in datasets) and (not classifiers or p[1] in classifiers)]


def select_settings(db, datasets=None, classifiers=None) -> list[tuple]:
    """Every setting (engine.analysis.select.settings) of the pairs select_pairs gives, reading one
    pair's runs at a time."""
    from engine.analysis.select import settings
    from store import runs as store_runs
    out = []
    for dataset, classifier in select_pairs(db, datasets, classifiers):
        out += settings(store_runs.query_runs(db, dataset=dataset, classifier=classifier))
    if not out:
        raise ReportError("no setting with synthetic runs matches: an equivalence needs closed- or open-set runs "
                          "beside real ones")
    return out


@dataclass
class Section:
    """One setting's part of the report: its fit (or why there is none) and what it used."""
    setting: tuple
    analysis: object = None
    error: str | None = None
    runs: pd.DataFrame | None = None
    verdicts: list = field(default_factory=list)  # (n_base, N, explain() output)


def _table(header, rows, num=()) -> str:
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    cell = lambda i, c: f'<td class="num">{c}</td>' if i in num else f"<td>{c}</td>"  # noqa: E731
    body = "".join("<tr>" + "".join(cell(i, c) for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _e(value) -> str:
    return escape("" if value is None else str(value))


class _Charts:
    """Numbered chart divs: the same report gives the same ids (Plotly's own are random)."""

    def __init__(self):
        self.count = 0

    def __call__(self, fig) -> str:
        self.count += 1
        div = pio.to_html(fig, include_plotlyjs=False, full_html=False, div_id=f"chart-{self.count}",
                          config=CHART_CONFIG, default_width="100%", default_height=f"{fig.layout.height or 480}px")
        return f'<div class="chart">{div}</div>'


def _fit(section: Section, runs: pd.DataFrame, questions, eps, n_boot, source, seed) -> None:
    from engine.analysis.fit import analyse
    from engine.analysis.bracket import estimate_noise
    from engine.analysis.select import fit_runs
    from engine.analysis.verdict import bases_data, explain
    s = section.setting
    try:
        a = section.analysis = analyse(runs, *s, eps=eps, n_boot=n_boot, source=source, seed=seed)
        section.runs = fit_runs(runs, *s[:4], a.traditional, a.source)
    except FitError as err:
        section.error = str(err)
        return
    asked = questions or [(t["n_base"], t["n_base"]) for t in a.tuples if t["ratio"] == 1.0] or \
        [(b, b) for b, f in sorted(a.bases.items()) if f.surface is not None]
    bases = bases_data(a)
    noise = estimate_noise(list(bases.values()))
    for n_base, amount in sorted(dict.fromkeys(asked)):
        section.verdicts.append((n_base, amount, explain(a, n_base, amount, "syn_for_real", bases=bases, noise=noise)))


def _fmt(x, fmt="{:,.0f}") -> str:
    return "—" if x is None else fmt.format(x)


def _method_text(ans: dict, label: str) -> str:
    """What one method (Eq. 1, this base's surface) answered, as the verdict weighed it."""
    if ans.get("kind") == "value" and ans.get("value") is not None:
        if ans.get("interval"):
            return f"{ans['value']:,.0f} {format_interval((ans['lo'], ans['hi']), '{:,.0f}')}, {label}"
        return f"{ans['value']:,.0f}, no interval"
    if ans.get("kind") == "more_than" and ans.get("lo") is not None:
        return f"more than {ans['lo']:,.0f}"
    return ans.get("note") or "no answer"


def _verdicts_html(sec: Section) -> str:
    from engine.analysis.verdict import interval_labels
    a, rows = sec.analysis, []
    for n_base, amount, exp in sec.verdicts:
        v, ans, labels = exp["verdict"], exp["answers"], interval_labels(a, exp)
        interval = format_interval((v["lo"], v["hi"]), "{:,.0f}") if v["lo"] is not None else "n/a"
        rows.append([_e(f"{amount:,} more real images at n_base {n_base:,}"),
                     f'<span class="grade grade-{v["grade"]}">{v["grade"]}</span>', _e(_fmt(v["value"])),
                     _e(interval), _e(v["text"]), _e(_method_text(ans.get("eq1", {}), labels["eq1"])),
                     _e(_method_text(ans.get("surface", {}), labels["surface"]))])
    return _table(["question", "grade", "synthetic images", "interval", "verdict", "Eq. 1 says",
                   "this base's surface says"], rows, num=(2, 3))


def _paper_check_html(row: dict | None) -> str:
    if row is None:
        return '<p class="note">Not one of the seven settings the paper fitted an equation to.</p>'
    ours = lambda k: f"{row[k]:.3g} {format_interval(row[k + '_ci'], '{:.3g}')}" if row[k] is not None else "—"  # noqa: E731
    inside = {True: "yes", False: "no", None: "n/a"}[row["inside"]]
    out = [f"<p>Eq. {row['equation']} as printed: c1 = {row['published_c1']:g}, c2 = {row['published_c2']:g}. "
           f"Refitted from the paper's own published runs (shipped with the product, Table 9 read as its total "
           f"says; the same numbers as <code>engine paper-check</code>):</p>",
           _table(["our c1", "our c2", "published inside our intervals", "real points on the wrong side",
                   "ours on the wrong side", "tuples kept / dropped"],
                  [[_e(ours("c1") + f" ({row['labels']['c1_ci']})"), _e(ours("c2") + f" ({row['labels']['c2_ci']})"),
                    inside, _e(f"{row['wrong_side']} of {row['real_points']} ({row['wrong_side_beyond_noise']} beyond "
                                f"noise)"), _e(row["refit_wrong_side"]), _e(f"{row['tuples']} / {row['dropped']}")]])]
    if row["worst_wrong_side"]:
        out.append("<p>The measured real points it puts furthest on the wrong side of the measured synthetic runs:</p><ul>"
                   + "".join(f"<li>{_e(w)}</li>" for w in row["worst_wrong_side"]) + "</ul>")
    out.append(f'<p class="note">{_e(row["note"])}</p>')
    return "".join(out)


def _quality_html(sec: Section, quality: pd.DataFrame, tables: dict) -> str:
    a = sec.analysis
    ids = sorted(set(sec.runs.synthetic_set_id.dropna())) if "synthetic_set_id" in sec.runs else []
    out = []
    mine = quality[quality.synthetic_set_id.isin(ids)] if len(quality) and ids else quality.iloc[0:0]
    if len(mine):
        rows = [[_e(r.synthetic_set_id), _e(r.metric), _e(f"{r.value:.4g}"),
                 _e(format_interval((r.ci_low, r.ci_high), "{:.4g}") if pd.notna(r.ci_low) else "n/a"),
                 _e(r.extractor), _e(r.n_real), _e(r.n_syn)] for r in mine.itertuples()]
        out.append(_table(["synthetic set", "metric", "value", "interval", "extractor", "real images",
                           "synthetic images"], rows, num=(2, 5, 6)))
    elif ids:
        out.append(f"<p class=\"note\">{len(ids)} synthetic set(s) used ({_e(', '.join(ids))}); no quality metric "
                   f"stored for them (<code>engine quality</code> computes them).</p>")
    else:
        out.append('<p class="note">The runs fitted name no synthetic set of this store (published means).</p>')
    pub = published.published_quality(tables, a.dataset, a.augmentation, a.generator)
    if len(pub):
        rows = [[_e(f"Tab. {r.table}"), _e(r.unit), _e(f"{r.value:g}"), _e(f"{r.n_syn:,}" if pd.notna(r.n_syn) else ""),
                 _e(r.note)] for r in pub.itertuples()]
        out.append("<p>The paper's own figures for this kind of synthetic data:</p>"
                   + _table(["published in", "metric", "value", "synthetic images scored", "reading"], rows, num=(2, 3)))
    return "".join(out)


def _features_text(features) -> str:
    if len(features) == 2 and isinstance(features[1], dict):  # "best:<criterion>", chosen per base
        return f"{features[0]} (per base: " + "; ".join(f"{b}: {' + '.join(v)}" for b, v in features[1].items()) + ")"
    return " + ".join(feature_label(f) for f in features)


def _section_html(i: int, sec: Section, charts: _Charts, check_rows: dict, quality, tables) -> str:
    s = sec.setting
    title = figures.setting_title(*s[:4], s[4] if len(s) > 4 else None)
    out = [f'<h2 id="setting-{i}">{i}. {_e(title)}</h2>']
    if sec.error:
        return "".join(out) + f'<p class="warn">No fit: {_e(sec.error)}</p>'
    a = sec.analysis
    eq = published.equation_for(a.dataset, a.classifier, a.augmentation, a.generator, a.traditional)
    out.append(f'<p>Fitted on {_e(a.source)} runs ({len(sec.runs)} runs'
               + (f", traditional augmentation {_e(a.traditional)}" if a.traditional else "")
               + f"); Eq. 12 grid: {_e(a.grid_rule)}; tau = {a.tau:.3g} (10 / n_total, n_total {a.n_total:,}); "
               f"surface features {_e(_features_text(a.features))}, "
               f"eps {a.eps:g}.</p>")
    out.append("<h3>Verdicts</h3>" + _verdicts_html(sec))
    out.append("<h3>Eq. 1</h3>")
    if a.c1 is not None:
        from engine.analysis.verdict import parameter_labels
        lab = parameter_labels(a)
        out.append(f"<p>n_syn_added / n_base = c1^(tau·n_base)·(c2^(n_real_added / n_base) − 1) with c1 = "
                   f"{a.c1:.4g} {_e(format_interval(a.c1_ci, '{:.4g}'))} ({_e(lab['c1'])}), c2 = {a.c2:.4g} "
                   f"{_e(format_interval(a.c2_ci, '{:.4g}'))} ({_e(lab['c2'])}); RMSE {a.eq1_rmse:.3g}; "
                   f"{len(a.tuples)} tuples kept, {len(a.dropped)} dropped.</p>")
    else:
        out.append(f'<p class="warn">{_e(a.eq1_error)}</p>')
    if a.tuples or a.c1 is not None:
        stars = [(n, amt, exp["verdict"]) for n, amt, exp in sec.verdicts]
        out.append(charts(figures.eq1_figure(a, published=eq, questions=stars)))
    for d in a.dropped:
        out.append(f'<p class="note">dropped n_base {d["n_base"]:,}, ratio {d["ratio"]:g}: {_e(d["reason"])}</p>')
    for w in a.warnings:
        out.append(f'<p class="warn">warning: {_e(w)}</p>')
    out.append("<h3>Equivalence contours</h3>")
    for b, f in sorted(a.bases.items()):
        if f.surface is None:
            out.append(f'<p class="note">n_base {b:,}: no surface ({_e(f.error)})</p>')
            continue
        pts = published.setting_points(a.dataset, a.classifier, a.augmentation, a.generator, b) if eq else None
        out.append(charts(figures.contour_figure(a, b, published=eq, published_points=pts)))
        out.append(f'<p class="note">n_base {b:,}: {_e(f.surface.formula())} (R² {f.surface.stats["r2"]:.3f}, '
                   f'leave-one-out RMSE {f.surface.stats["loo_rmse"]:.2f} points, {f.surface.n_points} points)</p>')
    out.append("<h3>Paper check</h3>" + _paper_check_html(check_rows.get(eq["equation"]) if eq else None))
    out.append("<h3>Quality of the synthetic sets used</h3>" + _quality_html(sec, quality, tables))
    keys = provenance.run_keys(sec.runs)
    out.append(f"<h3>Runs used</h3><p>{len(keys)} runs, sha256 of their defining fields "
               f"<code>{provenance.runs_checksum(sec.runs)}</code>.</p><details><summary>run keys</summary><ul>"
               + "".join(f"<li><code>{_e(k)}</code></li>" for k in keys) + "</ul></details>")
    return "".join(out)


def _summary_html(sections) -> str:
    rows = []
    for i, sec in enumerate(sections, start=1):
        s, a = sec.setting, sec.analysis
        link = f'<a href="#setting-{i}">{_e(figures.setting_title(*s[:4], s[4] if len(s) > 4 else None))}</a>'
        if a is None:
            rows.append([link, "", "", "", "", _e(sec.error)])
            continue
        c1 = f"{a.c1:.3g} {format_interval(a.c1_ci, '{:.3g}')}" if a.c1 is not None else "—"
        c2 = f"{a.c2:.3g} {format_interval(a.c2_ci, '{:.3g}')}" if a.c2 is not None else (
            "not identified" if a.unidentified else "no equivalence")
        grades = " ".join(f'<span class="grade grade-{e["verdict"]["grade"]}">{e["verdict"]["grade"]}</span>'
                          for _, _, e in sec.verdicts)
        rows.append([link, _e(a.source), _e(c1), _e(c2), _e(f"{len(a.tuples)} / {len(a.dropped)}"), grades])
    return _table(["setting", "source", "c1 [interval]", "c2 [interval]", "tuples kept / dropped", "verdict grades"], rows)


def _provenance_html(db, sections, args: dict) -> str:
    from store.db import db_path
    used = [s.runs for s in sections if s.runs is not None]
    all_runs = pd.concat(used, ignore_index=True).drop_duplicates("run_id") if used else pd.DataFrame()
    versions = provenance.package_versions()
    rows = [["project commit", f"<code>{_e(provenance.git_commit())}</code>"],
            ["store", f"<code>{_e(db_path(db).resolve())}</code>"],
            ["runs used", _e(f"{len(all_runs):,}")],
            ["sha256 of the runs used", f"<code>{provenance.runs_checksum(all_runs) if len(all_runs) else 'n/a'}</code>"],
            ["packages", _e(", ".join(f"{k} {v}" for k, v in versions.items()))],
            ["arguments", _e(", ".join(f"{k} = {v}" for k, v in args.items()))]]
    return ('<h2 id="provenance">Provenance</h2>' + _table(["", ""], rows)
            + '<p class="note">The checksum hashes each run\'s key, source, setting, sizes, seed, top-1 and n_total, '
              'one line a run in key order; the run keys of each setting are listed in its section.</p>')


def build_report(db=None, settings=None, questions=None, *, eps: float = DEFAULT_EPS, n_boot: int = 200,
                 source: str | None = None, seed: int = 0, generated: datetime | None = None) -> str:
    """The report as one HTML string. `settings`: setting tuples (engine.analysis.select.settings;
    default every setting of the store); `questions`: (n_base, n_real_added) pairs asked of every
    setting (default: N = n_base at each base with a tuple at 1:1, else each base with a surface);
    `generated`: the time on the report's one timestamp line (default now, UTC)."""
    from engine.analysis.paper import paper_check
    from store import paper_tables, quality as store_quality
    from store import runs as store_runs
    from store.db import StoreError
    settings = select_settings(db) if settings is None else list(settings)
    questions = [tuple(map(int, q)) for q in questions] if questions else None
    sections, runs_of = [], {}
    for s in settings:
        if s[:2] not in runs_of:  # one (dataset, classifier) in memory at a time, as the plain report reads
            runs_of = {s[:2]: store_runs.query_runs(db, dataset=s[0], classifier=s[1])}
        sec = Section(setting=tuple(s))
        _fit(sec, runs_of[s[:2]], questions, eps, n_boot, source, seed)
        sections.append(sec)
    needs_check = any(s.analysis is not None and published.equation_for(
        s.analysis.dataset, s.analysis.classifier, s.analysis.augmentation, s.analysis.generator,
        s.analysis.traditional) for s in sections)
    check_rows = {r["equation"]: r for r in paper_check(n_boot=PAPER_CHECK_N_BOOT)} if needs_check else {}
    quality = store_quality.query_quality(db)
    tables = {}
    for t in published.QUALITY_TABLES:
        try:
            tables[t] = paper_tables.paper_table(t, db)
        except StoreError:  # a store made before the published tables shipped: nothing to set beside ours
            tables[t] = pd.DataFrame()
    charts = _Charts()
    body = [_section_html(i, sec, charts, check_rows, quality, tables) for i, sec in enumerate(sections, start=1)]
    args = {"eps": f"{eps:g}", "n_boot": n_boot, "bootstrap seed": seed, "source": source or "default",
            "questions": ", ".join(f"{b}:{n}" for b, n in questions) if questions else "default (N = n_base)"}
    when = (generated or datetime.now(timezone.utc)).astimezone(timezone.utc).isoformat(timespec="seconds")
    from plotly.offline import get_plotlyjs
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Equivalence report</title>", f"<style>{STYLE}</style>",
        f'<script type="text/javascript">{get_plotlyjs()}</script>', "</head>", "<body>",
        "<h1>How many synthetic images equal N more real ones?</h1>",
        f'<p class="{GENERATED_CLASS}">Generated {when} (UTC)</p>',
        "<p>Equivalence of closed-set generative and real data augmentation (Wang, Zhang et al., arXiv 2508.09550), "
        "fitted from the store. Grades: A bracketed by measured runs at the base, the target a measured run; B "
        "interpolated between measured runs; C extrapolated past the measured runs or across bases; D no number "
        "the runs support. Each interval is named by the coverage our simulations measured for it.</p>",
        "<h2>Settings</h2>", _summary_html(sections), *body, _provenance_html(db, sections, args),
        "</body>", "</html>", ""])
