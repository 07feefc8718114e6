"""The closed-set rule: a generator sees its base set and nothing else."""
from __future__ import annotations

import numpy as np


class ClosedSetViolation(AssertionError):
    """The generator asked for a training image outside its base set."""


class ClosedSetView:
    """The train split as the generator may see it: the base images and nothing else."""

    def __init__(self, train_x: np.ndarray, train_y: np.ndarray, base_indices: np.ndarray):
        self._x, self._y = train_x, train_y
        self.base_indices = np.sort(np.asarray(base_indices, np.int64))
        self._allowed = set(self.base_indices.tolist())

    def load(self, indices) -> tuple[np.ndarray, np.ndarray]:
        indices = np.asarray(indices, np.int64)
        outside = [int(i) for i in indices if int(i) not in self._allowed]
        if outside:
            raise ClosedSetViolation(f"closed-set violation: index {outside[0]} is not in the base set "
                                     f"of {len(self.base_indices)} images")
        return self._x[indices], self._y[indices]

    def load_base(self) -> tuple[np.ndarray, np.ndarray]:
        return self.load(self.base_indices)
