"""The CLIP filter of the paper's open-set protocol (Sec. 4.3.2, after He et al. [16]): score each
generated image by CLIP's zero-shot confidence in the class it was generated for, and drop the
lowest `fraction` of them.

The score is the softmax, over the dataset's classes, of CLIP's image-text similarity with the
prompts "a photo of a {class}." (CLIP's own zero-shot prompt), taken at the class the image was
generated for. The paper says "exclude the bottom 20% of images based on CLIP zero-shot
classification confidence" without saying over what; the cut is made within each class (our
choice), so that every class keeps the same number of images and the stored stream stays
class-balanced.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

CLIP_TEMPLATE = "a photo of {a} {c}."
SCORE = "CLIP zero-shot softmax probability of the class the image was generated for"
SCOPE = "within each class"


def dropped_per_class(n: int, fraction: float) -> int:
    """How many of a class's n images the filter drops: never more than `fraction` of them (the
    epsilon keeps 0.29 x 100 at 29 despite floating point)."""
    return int(math.floor(fraction * n + 1e-9))


def keep_mask(labels: np.ndarray, scores: np.ndarray, fraction: float) -> np.ndarray:
    """True for the images kept: within each class the dropped_per_class lowest scores go, ties
    going by position (the earlier image first), so the choice is reproducible."""
    keep = np.ones(len(labels), bool)
    if fraction <= 0:
        return keep
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        order = members[np.lexsort((members, scores[members]))]
        keep[order[:dropped_per_class(len(members), fraction)]] = False
    return keep


def _features(out):
    # transformers 4 returns the projected features as a tensor, 5 as a model output's pooler_output.
    return out if hasattr(out, "norm") else out.pooler_output


class ClipScorer:
    """A local CLIP model (CLIPModel and CLIPProcessor, saved with save_pretrained) that scores images
    against the class prompts; the text side is encoded once."""

    def __init__(self, folder: Path, class_phrases: list[str], device, dtype):
        import torch
        from transformers import CLIPModel, CLIPProcessor

        from engine.generators.prompts import article
        self.device, self.dtype = device, dtype
        self.processor = CLIPProcessor.from_pretrained(str(folder), local_files_only=True)
        self.model = CLIPModel.from_pretrained(str(folder), local_files_only=True, torch_dtype=dtype).to(device).eval()
        self.prompts = [CLIP_TEMPLATE.format(a=article(c), c=c) for c in class_phrases]
        text = self.processor(text=self.prompts, return_tensors="pt", padding=True, truncation=True)
        with torch.no_grad():
            t = _features(self.model.get_text_features(**{k: v.to(device) for k, v in text.items()}))
        self.text = t / t.norm(dim=-1, keepdim=True)

    def __call__(self, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score of each image's own class, CLIP's top class) for uint8 (N, H, W, 3) images."""
        import torch
        inputs = self.processor(images=list(images), return_tensors="pt")
        with torch.no_grad():
            f = _features(self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.device, self.dtype)))
            f = f / f.norm(dim=-1, keepdim=True)
            logits = self.model.logit_scale.exp() * f @ self.text.T
            probs = logits.float().softmax(dim=-1).cpu().numpy().astype(np.float64)
        return probs[np.arange(len(labels)), labels], probs.argmax(axis=1).astype(np.int64)
