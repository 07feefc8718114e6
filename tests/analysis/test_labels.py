"""One wording of features and intervals for the CLI, the dashboard and Surface.formula."""
import ast
import inspect

import numpy as np

from engine.analysis import labels
from engine.analysis.labels import FEATURE_LABELS, feature_label, format_interval
from engine.analysis.surface import FEATURES, design_matrix, fit_surface


def test_every_feature_has_the_label_the_formula_writes():
    assert set(FEATURE_LABELS) == set(FEATURES)
    n_real = np.array([100, 200, 300, 400, 100, 100, 100, 100])
    n_syn = np.array([0, 0, 0, 0, 100, 200, 400, 800])
    for f in FEATURES:
        acc = design_matrix(n_real, n_syn, (f,), 1e-3) @ np.array([2.0, 50.0])
        assert fit_surface(100, n_real, n_syn, acc, (f,)).formula() == f"Acc = +2·{feature_label(f)} +50"
    assert feature_label("log_n_real") == "log(n_real+eps)"
    assert feature_label("log_n_total") == "log(n_real+n_syn+eps)"
    assert feature_label("something_else") == "something_else"


def test_format_interval_writes_both_bounds_in_the_format_given():
    assert format_interval((1234.4, 98765.6), "{:,.0f}") == "[1,234, 98,766]"
    assert format_interval([0.06334, 1.1849], "{:.3g}") == "[0.0633, 1.18]"
    assert format_interval((0.0633412, 14.71), "{:.4g}") == "[0.06334, 14.71]"
    assert format_interval((float("-inf"), float("inf")), "{:.3g}") == "[-inf, inf]"
    for missing in (None, (), []):
        assert format_interval(missing, "{:.3g}") == "n/a"


def test_labels_import_nothing_heavy():
    # The dashboard imports this module: it must stay free of torch, statsmodels and the like.
    tree = ast.parse(inspect.getsource(labels))
    imported = {a.name if isinstance(n, ast.Import) else n.module
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom)) for a in n.names}
    # (mutmut's copy of the module imports its own trampoline: not a dependency of the module.)
    assert {m for m in imported if not m.startswith("mutmut.")} <= {"__future__"}
