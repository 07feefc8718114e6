"""Fréchet distance, FID and Inception Score with pytorch-fid's Inception (the paper's tool, [37]).

The Inception weights are never downloaded: pytorch-fid's constructor fetches them from GitHub,
so it is built here with its loader replaced by one that reads a local file, or not at all.
pytorch-fid's own Fréchet helper calls scipy's sqrtm(..., disp=False), which SciPy 1.18 removed;
the distance below uses symmetric eigendecompositions instead (real, no complex round-off).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
OFFICIAL_SHA256_PREFIX = "6726825d"  # torch hub names a file by the start of its SHA-256


class InceptionWeightsMissing(FileNotFoundError):
    """The FID Inception weights are not on this machine; the message says where to put them."""


def _sqrt_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2): the Fréchet (2-Wasserstein)
    distance between N(mu1, S1) and N(mu2, S2). tr sqrt(S1 S2) equals the trace of the symmetric
    form's square root, whose eigenvalues are real and non-negative."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (len(mu1), len(mu1)):
        raise ValueError(f"Fréchet distance of mismatched shapes {mu1.shape}, {s1.shape} vs {mu2.shape}, {s2.shape}")
    r1 = _sqrt_psd(s1)
    middle = np.linalg.eigvalsh((r1 @ s2 @ r1 + (r1 @ s2 @ r1).T) / 2)
    tr_covmean = np.sqrt(np.clip(middle, 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean, 0.0))


def stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.asarray(features, np.float64)
    return f.mean(axis=0), np.cov(f, rowvar=False)


def feature_fd(a: np.ndarray, b: np.ndarray) -> float:
    return frechet_distance(*stats(a), *stats(b))


def normal_interval(value: float, draws, floor: float | None = 0.0) -> tuple[float, float]:
    """estimate ± 1.96 bootstrap sd. FD (and any spread estimate) is biased at small n, and
    resampling with replacement adds duplicates that shift every draw the same way, so percentile
    intervals can miss the estimate altogether; the bootstrap sd still measures the sampling
    spread. The bias itself is shown by scoring real images at the same n (the `_real` rows)."""
    sd = float(np.std(draws, ddof=1))
    lo, hi = value - 1.96 * sd, value + 1.96 * sd
    return (max(lo, floor) if floor is not None else lo), hi


def fd_with_interval(a: np.ndarray, b: np.ndarray, n_boot: int = 100, seed: int = 0) -> tuple[float, float, float]:
    """FD and a 95 % normal bootstrap interval (both sets resampled with replacement)."""
    value = feature_fd(a, b)
    rng = np.random.default_rng(seed)
    draws = [feature_fd(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))])
             for _ in range(n_boot)]
    return (value, *normal_interval(value, draws))


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) per split: (mean, sd) over splits, as IS is usually reported."""
    probs = np.asarray(probs, np.float64)
    splits = max(1, min(splits, len(probs)))
    scores = []
    for part in np.array_split(probs, splits):
        py = part.mean(axis=0, keepdims=True)
        kl = (part * (np.log(np.clip(part, 1e-12, None)) - np.log(np.clip(py, 1e-12, None)))).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))


# ----------------------------------------------------------------------------- Inception weights
def hub_checkpoints() -> Path:
    import torch.hub
    return Path(torch.hub.get_dir()) / "checkpoints"


def find_weights(explicit: str | os.PathLike | None = None) -> Path:
    """The local Inception weights file, or InceptionWeightsMissing saying where to put it."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise InceptionWeightsMissing(f"--inception-weights {path} is not a file")
        return path
    path = hub_checkpoints() / WEIGHTS_FILE
    if not path.is_file():
        raise InceptionWeightsMissing(
            f"FID/IS skipped: no {WEIGHTS_FILE} in {path.parent} (put the file pytorch-fid downloads from "
            f"github.com/mseitzer/pytorch-fid/releases/tag/fid_weights there, set TORCH_HOME, or pass "
            f"--inception-weights PATH)")
    return path


def sha256_of(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


class FIDInception:
    """pytorch-fid's InceptionV3 (pool features, 2048-d) and its 1008-way logits for IS."""

    def __init__(self, weights: Path, device):
        import torch
        from pytorch_fid import inception as pf
        state = torch.load(weights, map_location="cpu", weights_only=True)
        original = pf.load_state_dict_from_url
        # The only way pytorch-fid builds its FID network is through this loader: point it at
        # the local file so that nothing can be downloaded.
        pf.load_state_dict_from_url = lambda *args, **kwargs: state
        try:
            self.net = pf.InceptionV3([pf.InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=True,
                                      normalize_input=True, use_fid_inception=True).to(device).eval()
        finally:
            pf.load_state_dict_from_url = original
        self.fc = torch.nn.Linear(2048, state["fc.weight"].shape[0]).to(device)
        self.fc.load_state_dict({"weight": state["fc.weight"], "bias": state["fc.bias"]})
        self.device = device

    def __call__(self, images_u8: np.ndarray, batch: int = 100) -> tuple[np.ndarray, np.ndarray]:
        """(pool features, softmax over the 1008 logits) of uint8 NHWC images (grey is repeated)."""
        import torch
        feats, probs = [], []
        with torch.no_grad():
            for i in range(0, len(images_u8), batch):
                x = torch.from_numpy(images_u8[i:i + batch]).to(self.device).permute(0, 3, 1, 2).float() / 255
                if x.shape[1] == 1:
                    x = x.repeat(1, 3, 1, 1)
                f = self.net(x)[0].flatten(1)
                feats.append(f.double().cpu().numpy())
                # TF Inception's 1008 outputs include unused classes; IS uses the softmax over all.
                probs.append(torch.softmax(self.fc(f), dim=1).double().cpu().numpy())
        return np.concatenate(feats), np.concatenate(probs)


def write_random_weights(path: Path, seed: int = 0) -> None:
    """A weights file for pytorch-fid's FID Inception holding random values: for tests and cost
    measurements on machines without the real file. Its SHA-256 never matches the official one,
    so any FID computed with it is flagged as not comparable."""
    import torch
    from pytorch_fid import inception as pf
    real_loader, real_load = pf.load_state_dict_from_url, torch.nn.Module.load_state_dict
    pf.load_state_dict_from_url = lambda *a, **k: None
    torch.nn.Module.load_state_dict = lambda self, sd, *a, **k: None  # build the structure only
    try:
        net = pf.fid_inception_v3()
    finally:
        torch.nn.Module.load_state_dict, pf.load_state_dict_from_url = real_load, real_loader
    gen = torch.Generator().manual_seed(seed)
    state = {k: v if not v.is_floating_point() else
             torch.ones_like(v) if k.endswith("running_var") else torch.randn(v.shape, generator=gen) * 0.05
             for k, v in net.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
