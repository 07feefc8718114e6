"""The diversity score of [5] (Sec. 4.3): per-class standard deviation in a feature space,
averaged over classes. Per class it is the mean over feature dimensions of the per-dimension
standard deviation (our reading of "the standard deviation within the feature space")."""
from __future__ import annotations

import numpy as np


def diversity(features: np.ndarray, labels: np.ndarray) -> float:
    scores = []
    for c in np.unique(labels):
        f = features[labels == c]
        if len(f) >= 2:
            scores.append(f.std(axis=0, ddof=1).mean())
    if not scores:
        raise ValueError("diversity needs at least one class with two images")
    return float(np.mean(scores))


def diversity_with_interval(features: np.ndarray, labels: np.ndarray, n_boot: int = 200,
                            seed: int = 0) -> tuple[float, float, float]:
    """The score and a 95 % normal bootstrap interval, resampling images within each class."""
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    draws = []
    for _ in range(n_boot):
        idx = np.concatenate([rng.choice(g, len(g)) for g in groups])
        draws.append(diversity(features[idx], labels[idx]))
    from engine.quality.fid import normal_interval
    value = diversity(features, labels)
    lo, hi = normal_interval(value, draws)
    return value, float(lo), float(hi)


def balanced_sample(labels: np.ndarray, per_class: int, seed: int = 0) -> np.ndarray:
    """Indices of up to per_class images of each class, so that two sets compare at equal size."""
    rng = np.random.default_rng(seed)
    out = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(out))
