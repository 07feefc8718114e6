"""Penultimate features of classifiers, and the reference classifier whose features FD, diversity
and the second t-SNE use: the paper's family (SmallCNN on digits), trained once on the full real
train split and cached beside the store, so its features work offline everywhere."""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import torch

from engine.data.loaders import Dataset
from engine.classifiers.networks import create_classifier
from engine.quality.fid import sha256_of
from engine.catalog import classifiers as classifier_catalog
from engine.catalog import datasets as dataset_catalog
from engine.catalog.defaults import default_recipe
from engine.classifiers.train import Recipe, resize_to, to_unit, train_classifier

# A reference classifier that trains in seconds (digits' processes 0.8 M image-pixels: 200 steps of 64
# 8x8 images) is trained whenever it is needed; a larger one (CIFAR-10's: hours) only when asked for.
CHEAP_TRAINING_PIXELS = 1_000_000


def classifier_for(ds: Dataset) -> str:
    """The reference classifier of a dataset: its catalog default, or, for images larger than that one
    takes, the first catalog classifier made for images at least that large (ResNet-50 at 224)."""
    kind = dataset_catalog.kind_of_stored(ds.name)
    name = kind.default_classifier if kind else dataset_catalog.default_classifier(ds.name)
    if classifier_catalog.CLASSIFIERS[name].input_size >= ds.size or ds.size <= 64:
        return name
    return next((c.name for c in classifier_catalog.CLASSIFIERS.values() if c.input_size >= ds.size), name)


def domain_classifier_for(ds: Dataset) -> str:
    """The real-vs-synthetic domain classifier: the catalog classifier made for the smallest images at
    least as large as these, up to 32x32 (the small CNN on 8x8 digits, ResNet-110 from 28 px up; larger
    images are seen at 32x32, or as patches)."""
    size = min(ds.size, 32)
    fitting = [c for c in classifier_catalog.CLASSIFIERS.values() if c.input_size >= size]
    return min(fitting, key=lambda c: c.input_size).name


def cheap_to_train(ds: Dataset) -> bool:
    """Whether the reference classifier trains in seconds (see CHEAP_TRAINING_PIXELS)."""
    classifier = classifier_for(ds)
    recipe = default_recipe(classifier, ds.name, len(ds.train_y), len(ds.train_y), ds.n_total)
    return recipe.total_steps(len(ds.train_y)) * recipe.batch_size * recipe.input_size ** 2 <= CHEAP_TRAINING_PIXELS


def last_linear(model: torch.nn.Module) -> torch.nn.Module:
    if hasattr(model, "get_classifier"):  # timm models
        return model.get_classifier()
    return model.fc


@torch.no_grad()
def penultimate(model: torch.nn.Module, images_u8: np.ndarray, input_size: int, device, batch: int = 500) -> np.ndarray:
    """The input of the classifier's last linear layer for uint8 NHWC images."""
    captured = []
    hook = last_linear(model).register_forward_hook(lambda m, inp, out: captured.append(inp[0].float().cpu()))
    model.eval()
    try:
        for i in range(0, len(images_u8), batch):
            x = torch.from_numpy(images_u8[i:i + batch]).permute(0, 3, 1, 2).to(device)
            model(resize_to(to_unit(x), input_size))
    finally:
        hook.remove()
    return torch.cat(captured).numpy().astype(np.float64) if captured else np.empty((0, 0))


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


class ReferenceClassifier:
    """Trained on the full train split (seed 0, default recipe), stored as safetensors + a JSON record."""

    @staticmethod
    def plan(ds: Dataset, folder: Path) -> tuple[str, Recipe, str, Path]:
        """(classifier, recipe, data hash, weights path) of the dataset's reference classifier."""
        classifier = classifier_for(ds)
        recipe = default_recipe(classifier, ds.name, len(ds.train_y), len(ds.train_y), ds.n_total)
        data_hash = hashlib.sha256(ds.train_x.tobytes() + ds.train_y.tobytes()).hexdigest()[:12]
        ident = json.dumps({"dataset": ds.name, "classifier": classifier, "recipe": recipe.to_dict(),
                            "data": data_hash, "seed": 0}, sort_keys=True)
        key = hashlib.sha256(ident.encode()).hexdigest()[:12]
        return classifier, recipe, data_hash, folder / f"{_slug(ds.name)}-{classifier}-{key}.safetensors"

    @classmethod
    def is_cached(cls, ds: Dataset, folder: Path) -> bool:
        path = cls.plan(ds, folder)[3]
        return path.exists() and path.with_suffix(".json").exists()

    def __init__(self, ds: Dataset, folder: Path, device):
        from safetensors.torch import load_file, save_file
        self.classifier, self.recipe, data_hash, self.path = self.plan(ds, folder)
        folder.mkdir(parents=True, exist_ok=True)
        record_path = self.path.with_suffix(".json")
        self.model = create_classifier(self.classifier, ds.num_classes, ds.channels)
        if self.path.exists() and record_path.exists():
            self.model.load_state_dict(load_file(str(self.path)))
            self.record = json.loads(record_path.read_text())
        else:
            def t(a):
                return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous().to(device) if a.ndim == 4 \
                    else torch.from_numpy(a).to(device)
            result = train_classifier(self.classifier, t(ds.train_x), t(ds.train_y), t(ds.test_x), t(ds.test_y),
                                      ds.num_classes, self.recipe, 0, device)
            self.model = result.model
            tmp = self.path.with_suffix(".tmp")
            save_file({k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}, str(tmp))
            tmp.replace(self.path)
            self.record = {"dataset": ds.name, "classifier": self.classifier, "recipe": self.recipe.to_dict(),
                           "train_images": int(len(ds.train_y)), "test_top1": result.top1,
                           "train_seconds": result.train_seconds, "data_hash": data_hash, "seed": 0}
            record_path.write_text(json.dumps(self.record, indent=2))
        self.model = self.model.to(device).eval()
        self.sha256 = sha256_of(self.path)
        self.device = device
        self.name = f"reference {self.classifier} ({ds.name} train split, test top-1 {self.record['test_top1']:.1f} %)"

    def features(self, images_u8: np.ndarray) -> np.ndarray:
        return penultimate(self.model, images_u8, self.recipe.input_size, self.device)
