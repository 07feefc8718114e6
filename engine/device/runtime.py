"""Where and with what a run executes: the device, its name, and the versions of the code."""
from __future__ import annotations

import functools
import platform
from pathlib import Path

from engine.spec import SpecError


def resolve_device(name: str):
    import torch
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SpecError(f"unknown device {name!r}; use auto, cpu or cuda:K") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SpecError(f"device {name!r} asked for, but no CUDA GPU is available")
    return device


def device_name(device) -> str:
    import torch
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({platform.processor() or platform.machine()})"


@functools.lru_cache(maxsize=1)
def code_version() -> dict:
    """The code a run ran: the git commit and whether the tree had uncommitted changes, or, for an
    installed copy without its repository, the package version."""
    import importlib.metadata as md
    import subprocess
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip() != ""
        return {"git_commit": commit, "git_dirty": dirty}
    except (OSError, subprocess.SubprocessError):
        try:
            return {"package_version": md.version("equivalence")}
        except md.PackageNotFoundError:
            return {"package_version": None}


def versions() -> dict:
    import importlib.metadata as md
    out = {"python": platform.python_version(), "code": code_version()}
    for pkg in ("torch", "torchvision", "timm", "diffusers", "numpy", "equivalence"):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return out
