"""t-SNE of real and synthetic features (Fig. 1a: domain classifier; Fig. 1b: reference classifier),
as coordinates to store and plot."""
from __future__ import annotations

import numpy as np

from engine.catalog.vocab import REAL

MAX_PER_DOMAIN = 500  # t-SNE is quadratic-ish; a few hundred points per domain show the picture


def embed(real: np.ndarray, syn: np.ndarray, real_y: np.ndarray, syn_y: np.ndarray, seed: int = 0) -> dict:
    """{"x", "y", "domain" ("real"/"synthetic"), "class"} lists for at most MAX_PER_DOMAIN points a side."""
    from sklearn.manifold import TSNE
    rng = np.random.default_rng(seed)
    r = rng.permutation(len(real))[:MAX_PER_DOMAIN]
    s = rng.permutation(len(syn))[:MAX_PER_DOMAIN]
    feats = np.concatenate([real[r], syn[s]])
    # Features on very different scales would let a few dimensions decide the neighbours.
    feats = (feats - feats.mean(axis=0)) / (feats.std(axis=0) + 1e-8)
    perplexity = float(min(30, max(2, (len(feats) - 1) // 3)))
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
    return {"x": xy[:, 0].round(3).tolist(), "y": xy[:, 1].round(3).tolist(),
            "domain": [REAL] * len(r) + ["synthetic"] * len(s),
            "class": [int(v) for v in np.concatenate([real_y[r], syn_y[s]])],
            "perplexity": perplexity}
