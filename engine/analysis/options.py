"""The analysis's options and their limits, in plain Python: `engine --help` and the commands that
only name them (the CLI's option help, its checks) need them without paying for numpy, pandas,
SciPy and statsmodels (tests/cli/test_startup.py). The modules that use them re-export them."""
from __future__ import annotations

# Candidate features H, named as in the paper's appendix.
FEATURES = ("n_real", "n_syn", "log_n_real", "log_n_syn", "log_n_total")
PAPER_FEATURES = ("log_n_real", "log_n_syn", "log_n_total")
DEFAULT_EPS = 1e-3
CRITERIA = ("r2", "adj_r2", "aic", "bic", "loo_rmse")

# Preferred source of a default fit (the user's own runs before the published means), and pooling.
from engine.catalog.vocab import ALL_SOURCES, SOURCE_ORDER  # noqa: E402,F401 (re-exported; plain Python)
# Bootstrap draws: each costs ~12 KB of working memory (2,000,000 drew 23 GB); 10,000 keeps a fit
# under ~120 MB and the Monte Carlo error of a 95 % percentile bound under 0.2 % of coverage.
MAX_N_BOOT = 10_000
