"""Datasets: one entry per form a user types, with its stored name, where its files lie by default,
n_total (tau = 10 / n_total), defaults, loader and the paper's Eq. 12 grid where the paper has one.

Forms: a fixed name (`digits`, `cifar10`, `imagenet100`, `imagenet10`) or a family with an argument
(`medmnist:<flag>`, `folder:<path>`). Adding a dataset is one entry here (its loader is a function
`(argument, data_root, size, download, *, form) -> engine.data.dataset.Dataset` in engine/data/), and
its test.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from engine.catalog.classifiers import RESNET50, RESNET110, SMALLCNN
from engine.catalog.vocab import CROP, DEFAULT_TRADITIONAL
from engine.messages import InputError

# The paper's grids of Eq. 12 (appendix A): n_base -> ratios r = n_real_added / n_base.
_R123 = (1, 2, 3)
_IMAGENET_RATIOS = (0.2, 0.4, 0.6, 0.8, 1, 2, 3, 4)


@dataclass(frozen=True)
class DatasetKind:
    form: str                          # as typed: "cifar10", or a family "medmnist:<flag>"
    stored_name: str | None            # the name runs are stored under; None: the argument decides
    loader: str                        # "module:function(argument, data_root, size, download, *, form)"
    default_classifier: str
    default_traditional: str = DEFAULT_TRADITIONAL
    default_root: str | None = None    # relative to the machine that trains; "{arg}" is the argument
    root_is_file: bool = False         # the root names a file (a MedMNIST .npz), not a folder
    takes_root: bool = True            # digits and folder: datasets name no data root
    takes_size: bool = True            # a --size resize applies
    size_from_classifier: bool = False  # without --size, decode at the classifier's input size (once, cached)
    n_total: int | None = None         # the paper's n_total (tau); None: the loaded train split's size
    train_size: int | None = None      # the train split's size, when known without loading it
    paper_grid: dict = field(default_factory=dict)
    recipe_overrides: dict = field(default_factory=dict)   # classifier -> recipe fields for this dataset
    needs_any: tuple = ()              # the root holds at least one of these folders ...
    needs_all: tuple = ()              # ... and all of these (checked before queueing, without loading)
    about: str = ""

    @property
    def family(self) -> str | None:
        return self.form.split(":", 1)[0] if ":" in self.form else None


DATASETS = {d.form: d for d in (
    DatasetKind("digits", "digits", "engine.data.loaders:load_digits_dataset", SMALLCNN,
                # A flipped 2 or 7 is not a digit: digits crops only.
                default_traditional=CROP, takes_root=False, takes_size=False, train_size=800,
                about="scikit-learn's bundled 8x8 digits, 800 train / 997 test (built in)"),
    DatasetKind("cifar10", "CIFAR-10", "engine.data.loaders:load_cifar10", RESNET110,
                default_root="data/cifar10", takes_size=False, n_total=50_000, train_size=50_000,
                needs_any=("cifar-10-batches-bin", "cifar-10-batches-py"),
                paper_grid={500: _R123, 5000: _R123, 25000: _R123},
                about="CIFAR-10's binary or official Python version in a folder"),
    DatasetKind("imagenet100", "ImageNet-100", "engine.data.imagenet:load_subset", RESNET50,
                # The real train split holds 126,689 images; the paper rounds it to 130,000 (100 x 1,300).
                default_root="data/imagenet", n_total=130_000, needs_all=("train", "val"), size_from_classifier=True,
                paper_grid={6500: _IMAGENET_RATIOS, 26000: _IMAGENET_RATIOS},
                about="the paper's 100 ImageNet classes, from an ImageNet folder (train/, val/)"),
    DatasetKind("imagenet10", "ImageNet-10", "engine.data.imagenet:load_subset", RESNET50,
                # "10 classes ... each class contains 1,300 images" (appendix E).
                default_root="data/imagenet", n_total=13_000, needs_all=("train", "val"), size_from_classifier=True,
                about="the paper's 10 ImageNet classes (appendix E), from an ImageNet folder"),
    DatasetKind("medmnist:<flag>", None, "engine.data.loaders:load_medmnist", RESNET110,
                default_root="data/medmnist/{arg}.npz", root_is_file=True,
                about="a MedMNIST .npz (train/val/test images and labels), e.g. medmnist:bloodmnist"),
    DatasetKind("folder:<path>", None, "engine.data.loaders:load_folder", RESNET110, takes_root=False,
                about="your images as PATH/train/<class>/* and PATH/test/<class>/*"),
)}

MEDMNIST_FAMILY, FOLDER_FAMILY = "medmnist", "folder"   # the forms with an argument, by their prefix

# MedMNIST sets the paper used, by flag: their stored name, the paper's n_total (it rounds
# BloodMNIST's 11,959 training images to 12,000), class names and grid.
MEDMNIST_FLAG = re.compile(r"[a-z0-9]+mnist")
MEDMNIST = {
    "bloodmnist": dict(stored_name="BloodMNIST", n_total=12_000, train_size=11_959,
                       classes=("basophil", "eosinophil", "erythroblast", "immature granulocytes", "lymphocyte",
                                "monocyte", "neutrophil", "platelet"),
                       paper_grid={1200: _R123, 6000: _R123}, recipe_overrides={RESNET110: {"lr": 0.01}}),
}
FORMS = tuple(DATASETS)
DEFAULT_DATASET = "digits"   # the built-in one: runs anywhere, nothing to download


class UnknownDataset(InputError):
    pass


def split(name: str) -> tuple[DatasetKind, str | None]:
    """The entry a CLI name belongs to and its argument (the flag, the path), or UnknownDataset."""
    if name in DATASETS and DATASETS[name].family is None:
        return DATASETS[name], None
    family, _, arg = name.partition(":")
    for kind in DATASETS.values():
        if kind.family == family and _:
            if not arg.strip():
                break
            if family == MEDMNIST_FAMILY and not MEDMNIST_FLAG.fullmatch(arg):
                raise UnknownDataset(f"medmnist flag {arg!r} should look like 'bloodmnist' (lower case, ends in mnist)")
            return kind, arg
    raise UnknownDataset(f"unknown dataset {name!r}; valid: {', '.join(FORMS)}")


def _medmnist(flag: str) -> dict:
    return MEDMNIST.get(flag, {})


def medmnist_stored_name(flag: str) -> str:
    """bloodmnist -> BloodMNIST: the name a MedMNIST set's runs are stored under."""
    return _medmnist(flag).get("stored_name") or flag.lower()[:-5].capitalize() + "MNIST"


def stored_name(name: str) -> str | None:
    """The name a dataset's runs are stored under, from its CLI name, without loading it (a folder's is
    `folder:<its last path component>`)."""
    kind, arg = split(name)
    if kind.stored_name is not None:
        return kind.stored_name
    if kind.family == MEDMNIST_FAMILY:
        return medmnist_stored_name(arg)
    return folder_stored_name(arg) if arg else None


def folder_stored_name(path) -> str:
    """A folder dataset is stored under its folder's own name (its location may differ per machine)."""
    return f"{FOLDER_FAMILY}:{Path(path).resolve().name}"


def cli_name(stored: str) -> str | None:
    """The CLI name that loads a stored dataset name (None for a folder: its path is not stored)."""
    for kind in DATASETS.values():
        if kind.stored_name == stored:
            return kind.form
    for flag, info in MEDMNIST.items():
        if info["stored_name"] == stored:
            return f"{MEDMNIST_FAMILY}:{flag}"
    if stored.endswith("MNIST"):
        return f"{MEDMNIST_FAMILY}:{stored.lower()}"
    return None


def kind_of_stored(stored: str) -> DatasetKind | None:
    name = cli_name(stored)
    if name is not None:
        return split(name)[0]
    folder = next(k for k in DATASETS.values() if k.family == FOLDER_FAMILY)
    return folder if stored.startswith(FOLDER_FAMILY + ":") else None


def _info(name_or_stored: str) -> tuple[DatasetKind | None, dict]:
    try:
        kind, arg = split(name_or_stored)
    except UnknownDataset:
        name = cli_name(name_or_stored)
        if name is None:
            return kind_of_stored(name_or_stored), {}
        kind, arg = split(name)
    return kind, (_medmnist(arg) if kind.family == MEDMNIST_FAMILY else {})


def default_classifier(name: str) -> str:
    kind, _ = _info(name)
    return (kind or kind_of_stored(FOLDER_FAMILY + ":")).default_classifier


def default_traditional(name: str) -> str:
    """The traditional augmentation a dataset trains with unless asked otherwise (CLI or stored name)."""
    kind, _ = _info(name)
    return kind.default_traditional if kind else DEFAULT_TRADITIONAL


def paper_n_total(stored: str) -> int | None:
    """The paper's n_total of a dataset it used (tau = 10 / n_total), by stored name; None otherwise."""
    kind, extra = _info(stored)
    return extra.get("n_total") or (kind.n_total if kind else None)


def paper_grid(stored: str) -> dict:
    kind, extra = _info(stored)
    return dict(extra.get("paper_grid") or (kind.paper_grid if kind else {}))


def known_train_size(name: str) -> int | None:
    kind, extra = _info(name)
    return extra.get("train_size") or (kind.train_size if kind else None)


def recipe_overrides(stored: str, classifier: str) -> dict:
    kind, extra = _info(stored)
    found = extra.get("recipe_overrides") or (kind.recipe_overrides if kind else {})
    return dict(found.get(classifier, {}))


def medmnist_classes(flag: str) -> tuple | None:
    return _medmnist(flag).get("classes")


def default_root(name: str) -> str | None:
    kind, arg = split(name)
    return kind.default_root.format(arg=arg) if kind.default_root else None


def paper_datasets() -> dict[str, int]:
    """Stored name -> the paper's n_total, for every dataset the paper measured."""
    out = {k.stored_name: k.n_total for k in DATASETS.values() if k.stored_name and k.n_total}
    out.update({v["stored_name"]: v["n_total"] for v in MEDMNIST.values()})
    return out
