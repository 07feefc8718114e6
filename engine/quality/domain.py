"""The real-vs-synthetic domain classifier of Sec. 3 and appendix F.

A classifier of the paper's family (ResNet-110; SmallCNN on 8x8 digits) learns to tell real from
synthetic on equal-sized sets; its accuracy on held-out images of both kinds, with an exact
binomial interval, says how far apart the two domains are (chance is 50 %). On large images
(224 inputs) it is also trained on random patches, the appendix's test of local statistics.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import binomtest

from engine.catalog.defaults import default_recipe
from engine.classifiers.train import train_classifier
from engine.quality.features import penultimate

PATCH_MIN_SIZE = 64  # images at least this large also get the patch test


@dataclass
class DomainResult:
    accuracy: float               # % of held-out images classified into their true domain
    ci_low: float
    ci_high: float
    n_train: int                  # per domain
    n_heldout: int                # both domains together
    classifier: str
    mode: str                     # "image" or "patch"
    seconds: float
    model: torch.nn.Module
    input_size: int
    heldout: tuple                # (images, domain labels 0 real / 1 synthetic, class labels)


def random_patches(images: np.ndarray, size: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = images.shape[1:3]
    ys, xs = rng.integers(0, h - size + 1, len(images)), rng.integers(0, w - size + 1, len(images))
    return np.stack([img[y:y + size, x:x + size] for img, y, x in zip(images, ys, xs)])


def train_domain_classifier(real: np.ndarray, real_y: np.ndarray, syn: np.ndarray, syn_y: np.ndarray,
                            classifier: str, dataset: str, device, heldout_fraction: float = 0.3,
                            seed: int = 0, mode: str = "image") -> DomainResult:
    """Real and synthetic uint8 NHWC images (the larger side is cut to the smaller's size)."""
    import time
    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = min(len(real), len(syn))
    if n < 10:
        raise ValueError(f"domain classifier needs at least 10 images per domain, got {n}")
    pick_r, pick_s = rng.permutation(len(real))[:n], rng.permutation(len(syn))[:n]
    real, real_y, syn, syn_y = real[pick_r], real_y[pick_r], syn[pick_s], syn_y[pick_s]
    if mode == "patch":
        size = real.shape[1] // 4
        real, syn = random_patches(real, size, seed), random_patches(syn, size, seed + 1)
    n_held = max(5, int(round(n * heldout_fraction)))
    x = np.concatenate([real, syn])
    domain = np.concatenate([np.zeros(n, np.int64), np.ones(n, np.int64)])
    classes = np.concatenate([real_y, syn_y]).astype(np.int64)
    held = np.concatenate([np.arange(n_held), n + np.arange(n_held)])
    train = np.setdiff1d(np.arange(2 * n), held)

    def t(a):
        return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).contiguous().to(device)
    recipe = default_recipe(classifier, dataset, len(train), len(train), len(train))
    if recipe.input_size > x.shape[1]:  # never upsample small images (MedMNIST's 28 px) to the network's size
        recipe = recipe.with_overrides({"input_size": str(x.shape[1])})
    result = train_classifier(classifier, t(x[train]), torch.from_numpy(domain[train]).to(device),
                              t(x[held]), torch.from_numpy(domain[held]).to(device), 2, recipe, seed, device)
    correct = int(round(result.top1 / 100 * len(held)))
    ci = binomtest(correct, len(held)).proportion_ci(0.95, method="exact")
    return DomainResult(100.0 * correct / len(held), 100 * ci.low, 100 * ci.high, len(train) // 2, len(held),
                        classifier, mode, time.perf_counter() - start, result.model, recipe.input_size,
                        (x[held], domain[held], classes[held]))


def domain_features(result: DomainResult, device) -> np.ndarray:
    """Penultimate features of the held-out images in the domain classifier (Fig. 1a)."""
    return penultimate(result.model, result.heldout[0], result.input_size, device)
