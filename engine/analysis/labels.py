"""How the analysis writes its features and intervals for people, one wording for the CLI, the
dashboard and Surface.formula. Plain Python: the dashboard imports it (no torch, no statsmodels)."""
from __future__ import annotations

# The candidate features H as the surface's formula writes them (eps inside every log term).
FEATURE_LABELS = {"n_real": "n_real", "n_syn": "n_syn", "log_n_real": "log(n_real+eps)",
                  "log_n_syn": "log(n_syn+eps)", "log_n_total": "log(n_real+n_syn+eps)"}


def feature_label(feature: str) -> str:
    """A feature as a formula term; a name outside H is shown as it is."""
    return FEATURE_LABELS.get(feature, feature)


def format_interval(ci, fmt: str) -> str:
    """`[lo, hi]` with each bound in `fmt` (e.g. "{:,.0f}" for images, "{:.3g}" for c1, c2); `[lo, no upper bound)`
    where the upper side is open (bootstrap draws without an answer); "n/a" where there is no interval."""
    if not ci:
        return "n/a"
    return f"[{fmt.format(ci[0])}, {fmt.format(ci[1]) if ci[1] is not None else 'no upper bound'}" + (")" if ci[1] is None else "]")
