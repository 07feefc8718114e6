"""Which real images a run trains on: a stratified base set and nested real additions."""
from __future__ import annotations

import hashlib

import numpy as np

from engine.messages import InputError


class SubsetError(InputError):
    pass


def stratified_counts(labels: np.ndarray, n: int) -> np.ndarray:
    """Images per class for a subset of n that keeps the class proportions (largest remainder)."""
    counts = np.bincount(labels)
    exact = counts * (n / counts.sum())
    take = np.floor(exact).astype(int)
    short = n - take.sum()
    order = np.argsort(-(exact - take), kind="stable")
    take[order[:short]] += 1
    return np.minimum(take, counts)


def base_indices(labels: np.ndarray, n_base: int, seed: int) -> np.ndarray:
    """A stratified random base set of n_base training indices, chosen by `seed`."""
    labels = np.asarray(labels)
    if not 0 < n_base <= len(labels):
        raise SubsetError(f"n_base {n_base} must be between 1 and the train split's {len(labels)} images")
    rng = np.random.default_rng([seed, 0xBA5E])
    take = stratified_counts(labels, n_base)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in enumerate(take) if k]
    return np.sort(np.concatenate(chosen))


def addition_order(labels: np.ndarray, base: np.ndarray, seed: int) -> np.ndarray:
    """Every non-base index in the order real additions take them.

    Nested by construction: adding n images takes the first n, so a larger addition contains a
    smaller one. Each class's images are spread evenly along the order (the i-th of a class's
    k images sits near position i/k), so every prefix keeps the class proportions.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng([seed, 0xADD])
    pool = np.setdiff1d(np.arange(len(labels)), base)
    keys = np.empty(len(pool))
    for c in np.unique(labels[pool]):
        members = np.flatnonzero(labels[pool] == c)
        rng.shuffle(members)
        keys[members] = (np.arange(len(members)) + rng.random(len(members))) / len(members)
    return pool[np.argsort(keys, kind="stable")]


def real_additions(labels: np.ndarray, base: np.ndarray, n_added: int, seed: int) -> np.ndarray:
    order = addition_order(labels, base, seed)
    if n_added > len(order):
        raise SubsetError(f"{n_added} real images to add, but only {len(order)} are outside the base of "
                          f"{len(base)} (train split {len(labels)})")
    return order[:n_added]


def indices_hash(indices: np.ndarray) -> str:
    """Identity of an exact set of training indices (order-free)."""
    return hashlib.sha256(np.sort(np.asarray(indices, np.int64)).tobytes()).hexdigest()[:16]
