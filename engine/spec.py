"""Torch-free: what a study is and what makes one valid."""
from __future__ import annotations

import re


class SpecError(ValueError):
    """A study specification that cannot run; the message names the bad value."""


def parse_added(text: str, n_base: int) -> list[int]:
    """'0,20,40' or '0,N,2N,3N' (N = n_base) into sorted unique image counts."""
    values = []
    for token in str(text).replace(" ", "").split(","):
        if not token:
            continue
        m = re.fullmatch(r"(\d+(?:\.\d+)?)?([Nn])|(\d+)", token)
        if not m:
            raise SpecError(f"--added value {token!r} is not a whole number or a multiple of N like 2N")
        value = int(m.group(3)) if m.group(3) else round(float(m.group(1) or 1) * n_base)
        values.append(value)
    if not values:
        raise SpecError("--added is empty: give amounts like 0,N,2N,3N")
    return sorted(set(values))
