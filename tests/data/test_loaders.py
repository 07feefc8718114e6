"""Datasets read from small files written in the real on-disk formats; subsets; classifiers."""
import pickle

import numpy as np
import pytest
from PIL import Image

from engine.data.loaders import DatasetError, load_dataset, load_digits_dataset
from engine.data.subsets import (SubsetError, addition_order, base_indices, indices_hash, real_additions,
                            stratified_counts)


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_cifar(root, n_per_batch=20, n_test=30):
    """A miniature of CIFAR-10's binary version: records of one label byte and 3,072 pixel bytes."""
    folder = root / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)

    def batch(n, name):
        data = rng.integers(0, 256, (n, 3 * 32 * 32), dtype=np.uint8)
        labels = rng.integers(0, 10, n).astype(np.uint8)
        np.concatenate([labels[:, None], data], axis=1).tofile(folder / name)
        return data, list(labels)
    first = batch(n_per_batch, "data_batch_1.bin")
    for i in range(2, 6):
        batch(n_per_batch, f"data_batch_{i}.bin")
    batch(n_test, "test_batch.bin")
    (folder / "batches.meta.txt").write_text("\n".join(CIFAR_CLASSES) + "\n\n")
    return first


def test_cifar10_reads_the_binary_batches(tmp_path):
    data, labels = write_cifar(tmp_path)
    ds = load_dataset("cifar10", str(tmp_path))
    assert ds.name == "CIFAR-10" and ds.train_x.shape == (100, 32, 32, 3) and ds.test_x.shape == (30, 32, 32, 3)
    assert ds.classes[0] == "airplane" and ds.num_classes == 10 and ds.channels == 3
    # CIFAR's rows are channel-major: pixel (0, 0) of image 0 is data[0, [0, 1024, 2048]].
    np.testing.assert_array_equal(ds.train_x[0, 0, 0], data[0, [0, 1024, 2048]])
    np.testing.assert_array_equal(ds.train_x[0, 5, 7], data[0, [5 * 32 + 7, 1024 + 5 * 32 + 7, 2048 + 5 * 32 + 7]])
    assert list(ds.train_y[:20]) == labels
    assert ds.n_total == 100  # a miniature is its own n_total


class Payload:
    """Unpickling this runs a shell command: what a hostile file in a data folder would do."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        import os
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_python_version_is_never_unpickled_unless_official(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "pwned"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]:
        with open(folder / name, "wb") as f:
            pickle.dump(Payload(marker), f)
    with pytest.raises(DatasetError, match="not the official CIFAR-10 file .*refusing to unpickle"):
        load_dataset("cifar10", str(tmp_path))
    assert not marker.exists()


def test_cifar10_truncated_binary_batch(tmp_path):
    write_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-bin" / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="data_batch_3.bin is not a CIFAR-10 binary batch"):
        load_dataset("cifar10", str(tmp_path))


def test_cifar10_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="no cifar-10-batches-bin or cifar-10-batches-py"):
        load_dataset("cifar10", str(tmp_path))


def write_medmnist(path, size=28, channels=3, n=(60, 10, 20), keys=None):
    rng = np.random.default_rng(1)
    arrays = {}
    for split, k in zip(("train", "val", "test"), n):
        shape = (k, size, size, channels) if channels == 3 else (k, size, size)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = rng.integers(0, 8, (k, 1)).astype(np.uint8)
    if keys is not None:
        arrays = {k: v for k, v in arrays.items() if k in keys}
    np.savez(path, **arrays)
    return arrays


def test_medmnist_npz_with_resize(tmp_path):
    arrays = write_medmnist(tmp_path / "bloodmnist_64.npz", size=64)
    ds = load_dataset("medmnist:bloodmnist", str(tmp_path / "bloodmnist_64.npz"), size=32)
    assert ds.name == "BloodMNIST" and ds.train_x.shape == (60, 32, 32, 3) and ds.test_x.shape == (20, 32, 32, 3)
    assert ds.classes[0] == "basophil" and ds.n_total == 12_000  # the paper's n_total, shared tau
    np.testing.assert_array_equal(ds.train_y, arrays["train_labels"][:, 0])
    grey = write_medmnist(tmp_path / "pathmnist.npz", channels=1)
    ds = load_dataset("medmnist:pathmnist", str(tmp_path))
    assert ds.name == "PathMNIST" and ds.channels == 1 and ds.n_total == 60
    np.testing.assert_array_equal(ds.train_x[..., 0], grey["train_images"])


def test_medmnist_without_keys(tmp_path):
    write_medmnist(tmp_path / "bloodmnist.npz", keys={"train_images", "train_labels"})
    with pytest.raises(DatasetError, match="lacks key.*test_images"):
        load_dataset("medmnist:bloodmnist", str(tmp_path / "bloodmnist.npz"))


def write_folder(root, classes=("cat", "dog", "eel"), per_class=(4, 3), size=12, mode="RGB"):
    rng = np.random.default_rng(2)
    for split, k in zip(("train", "test"), per_class):
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(k):
                shape = (size, size, 3) if mode == "RGB" else (size, size)
                Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(root / split / cls / f"{i}.png")


def test_image_folder(tmp_path):
    write_folder(tmp_path / "mine")
    ds = load_dataset(f"folder:{tmp_path / 'mine'}")
    assert ds.classes == ["cat", "dog", "eel"] and ds.train_x.shape == (12, 12, 12, 3)
    assert ds.test_x.shape == (9, 12, 12, 3) and sorted(np.bincount(ds.train_y)) == [4, 4, 4]
    write_folder(tmp_path / "grey", mode="L")
    assert load_dataset(f"folder:{tmp_path / 'grey'}", size=8).train_x.shape == (12, 8, 8, 1)


def test_folder_with_one_class(tmp_path):
    write_folder(tmp_path / "one", classes=("only",))
    with pytest.raises(DatasetError, match="1 class folder"):
        load_dataset(f"folder:{tmp_path / 'one'}")


def test_unknown_dataset():
    with pytest.raises(DatasetError, match="unknown dataset 'mnist'; valid: digits, cifar10"):
        load_dataset("mnist")


def test_digits_split_is_fixed_and_stratified():
    a, b = load_digits_dataset(), load_digits_dataset()
    assert a.train_x.shape == (800, 8, 8, 1) and a.test_x.shape == (997, 8, 8, 1)
    np.testing.assert_array_equal(a.train_y, b.train_y)
    assert a.train_x.dtype == np.uint8 and a.train_x.max() == 255
    assert np.bincount(a.test_y).min() >= 95


def test_stratified_base_keeps_proportions():
    rng = np.random.default_rng(0)
    labels = rng.choice(8, size=3000, p=[0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05])
    full = np.bincount(labels) / len(labels)
    for n_base in (37, 200, 1200):
        base = base_indices(labels, n_base, seed=4)
        assert len(base) == len(set(base)) == n_base
        counts = np.bincount(labels[base], minlength=8)
        assert np.all(np.abs(counts - full * n_base) <= 1.0)
    assert list(stratified_counts(labels, 100)) == list(stratified_counts(labels, 100))
    assert not np.array_equal(base_indices(labels, 200, 0), base_indices(labels, 200, 1))


def test_additions_are_nested_and_outside_the_base():
    labels = np.repeat(np.arange(5), 100)
    base = base_indices(labels, 50, seed=0)
    small = real_additions(labels, base, 50, seed=0)
    large = real_additions(labels, base, 150, seed=0)
    assert not set(large) & set(base)
    np.testing.assert_array_equal(large[:50], small)
    # every prefix keeps the proportions within about one image per class
    for n in (10, 50, 150):
        counts = np.bincount(labels[addition_order(labels, base, 0)[:n]], minlength=5)
        assert counts.max() - counts.min() <= 2
    with pytest.raises(SubsetError, match="only 450 are outside"):
        real_additions(labels, base, 451, seed=0)
    with pytest.raises(SubsetError, match="n_base 501"):
        base_indices(labels, 501, seed=0)
    assert indices_hash(base) == indices_hash(base[::-1]) != indices_hash(small)


def test_resnet110_depth_and_parameters():
    import torch
    from engine.classifiers.networks import BasicBlock, create_classifier
    model = create_classifier("resnet110", 10, 3)
    blocks = [m for m in model.modules() if isinstance(m, BasicBlock)]
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(blocks) == 54 and len(convs) + 1 == 110  # 109 convolutions + the classifier
    n_params = sum(p.numel() for p in model.parameters())
    assert 1.7e6 < n_params < 1.75e6
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.slow
def test_timm_classifiers_build_offline():
    import torch
    from engine.classifiers.networks import create_classifier
    model = create_classifier("resnet50", 7, 1)
    assert model(torch.zeros(1, 1, 64, 64)).shape == (1, 7)
    vit = create_classifier("vit-b32", 5, 3)
    assert 85e6 < sum(p.numel() for p in vit.parameters()) < 90e6
