"""What one base gives the fit: its measured points and seeds, its surface (or why there is none), its
synthetic gains paired by seed and their noise test, its Eq. 12 ratios and its surface's bootstrap draws."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.analysis.surface import Surface


@dataclass
class BaseFit:
    n_base: int
    points: pd.DataFrame              # one row per measured point: means, sd, seeds
    seed_matrix: np.ndarray | None    # points x seeds accuracies (NaN where missing)
    surface: Surface | None = None
    error: str | None = None
    gains: pd.DataFrame | None = None  # synthetic gains paired by seed
    noise: dict = field(default_factory=dict)
    ratios: list = field(default_factory=list)
    boot_betas: np.ndarray | None = None

    @property
    def max_real_ratio(self) -> float:
        return float(self.points.n_real_added.max()) / self.n_base

    @property
    def max_syn_ratio(self) -> float:
        return float(self.points.n_syn_added.max()) / self.n_base
