"""The memorisation check, with the evidence: the synthetic images closest to a base image, each
beside that base image, so that a copy can be seen rather than inferred from a ratio."""
from __future__ import annotations

import numpy as np
import torch


def closest_pairs(syn_u8: np.ndarray, base_u8: np.ndarray, k: int = 8) -> dict:
    """The k synthetic images nearest (L2 on [0,1] pixels) to any base image, with that base image."""
    def flat(a):
        return torch.from_numpy(a.reshape(len(a), -1)).float() / 255.0
    d = torch.cdist(flat(syn_u8), flat(base_u8))
    nearest, which = d.min(dim=1)
    order = torch.argsort(nearest)[:k]
    return {"syn_index": order.numpy(), "base_position": which[order].numpy(), "distance": nearest[order].numpy()}
