"""imagenet100 / imagenet10 (issue 13): the paper's subsets read from an ImageNet folder in its real
layout (train/ and val/ of wnid folders), restricted to the shipped class lists, decoded once into a
uint8 cache that later loads without decoding, and a bad image is one line with nothing half-written."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from engine.data import imagenet
from engine.data.loaders import DatasetError, load_dataset
from engine.spec import SpecError, data_paths, validate

TIMM_INFO = Path(__import__("timm").__file__).parent / "data" / "_info"
TEN = [w for w, _ in imagenet.class_list("imagenet10")]
OUTSIDE = "n01440764"   # tench: in ImageNet-1k, in neither list


def write_imagenet(root: Path, wnids, n_train=3, n_val=1, extra=True) -> Path:
    """A small ImageNet folder as extracted: train/<wnid>/<wnid>_k.JPEG, val/<wnid>/... of varied sizes."""
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for c, wnid in enumerate(list(wnids) + ([OUTSIDE] if extra else [])):
            folder = root / split / wnid
            folder.mkdir(parents=True)
            for k in range(n):
                w, h = int(rng.integers(20, 48)), int(rng.integers(20, 48))
                img = np.full((h, w, 3), (c * 23) % 256, np.uint8) + rng.integers(0, 20, (h, w, 3), dtype=np.uint8)
                mode = "L" if k == 1 else "RGB"   # ImageNet has grey JPEGs too
                Image.fromarray(img[..., 0] if mode == "L" else img, mode).save(folder / f"{wnid}_{k}.JPEG",
                                                                                 quality=90)
    return root


@pytest.fixture
def ten_root(tmp_path):
    return write_imagenet(tmp_path / "imagenet", TEN)


def cache_files(root: Path) -> list[Path]:
    return sorted(p for p in (root / imagenet.CACHE_DIR).rglob("*") if p.is_file())


def test_class_lists_are_imagenet_classes():
    synsets = set((TIMM_INFO / "imagenet_synsets.txt").read_text().split())
    lemma = dict(line.split("\t", 1) for line in (TIMM_INFO / "imagenet_synset_to_lemma.txt").read_text().splitlines())
    hundred = [w for w, _ in imagenet.class_list("imagenet100")]
    assert len(hundred) == len(set(hundred)) == 100 and set(hundred) <= synsets
    assert hundred[:3] == ["n02869837", "n01749939", "n02488291"]   # CMC's file order
    # Appendix E's ten names, each the name (pig: one of the names) of exactly one ImageNet-1k class.
    paper = ["French bulldog", "coyote", "Egyptian cat", "lion", "brown bear", "fly", "bee", "hare", "zebra", "pig"]
    for name, wnid in zip(paper, TEN):
        matches = [w for w in synsets if name in [n.strip() for n in lemma[w].split(",")]]
        assert matches == [wnid], name
    for name in ("imagenet100", "imagenet10"):
        firsts = [n.split(",")[0] for _, n in imagenet.class_list(name)]
        assert len(set(firsts)) == len(firsts)


def test_loads_only_the_listed_classes_at_the_asked_size(ten_root):
    ds = load_dataset("imagenet10", str(ten_root), 16)
    assert ds.name == "ImageNet-10" and ds.num_classes == 10
    assert ds.train_x.shape == (30, 16, 16, 3) and ds.train_x.dtype == np.uint8
    assert ds.test_x.shape == (10, 16, 16, 3)
    assert sorted(np.bincount(ds.train_y)) == [3] * 10 and sorted(np.bincount(ds.test_y)) == [1] * 10
    # Labels follow wnid order; the tench folder beside them is never read.
    assert ds.classes[0] == "French bulldog" and ds.classes[-1] == "hog"   # n02108915 ... n02395406
    assert ds.n_total == 30   # a small folder: its own count, not the paper's 13,000
    assert "root" in ds.details and all("cache" not in k for k in ds.details)


def test_second_load_reuses_the_cache_without_decoding(ten_root, monkeypatch):
    first = load_dataset("imagenet10", str(ten_root), 16)
    files = cache_files(ten_root)
    stamps = {p: p.stat().st_mtime_ns for p in files}

    def no_decode(*_):
        raise AssertionError("decoded an image although the cache is current")
    monkeypatch.setattr(imagenet, "_decode", no_decode)
    again = load_dataset("imagenet10", str(ten_root), 16)
    assert np.array_equal(np.asarray(first.train_x), np.asarray(again.train_x))
    assert {p: p.stat().st_mtime_ns for p in cache_files(ten_root)} == stamps
    assert isinstance(again.train_x, np.memmap)
    # Another size is another cache; a new image rebuilds this one.
    monkeypatch.undo()
    assert load_dataset("imagenet10", str(ten_root), 8).train_x.shape[1] == 8
    Image.new("RGB", (30, 30)).save(ten_root / "train" / TEN[0] / "added.JPEG")
    assert len(load_dataset("imagenet10", str(ten_root), 16).train_x) == 31


def test_a_corrupt_jpeg_is_one_line_and_leaves_no_cache(ten_root):
    bad = ten_root / "train" / TEN[4] / f"{TEN[4]}_2.JPEG"
    bad.write_bytes(bad.read_bytes()[:200])   # truncated
    with pytest.raises(DatasetError) as err:
        load_dataset("imagenet10", str(ten_root), 16)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)
    assert cache_files(ten_root) == []
    assert not [p for p in (ten_root / imagenet.CACHE_DIR).iterdir() if p.name.endswith(".part")]


def test_layout_errors_name_what_is_wrong(tmp_path, ten_root):
    with pytest.raises(DatasetError, match="no ImageNet folder"):
        load_dataset("imagenet10", str(tmp_path / "nowhere"), 16)
    missing = TEN[3]
    for f in (ten_root / "val" / missing).iterdir():
        f.rename(ten_root / "val" / f.name)   # one class left flat, as the official val/ is
    (ten_root / "val" / missing).rmdir()
    with pytest.raises(DatasetError, match=f"no class folder '{missing}'.*flat val/"):
        load_dataset("imagenet10", str(ten_root), 16)


def test_spec_knows_the_subsets(tmp_path):
    spec = validate({"dataset": "imagenet100", "n_base": 6500, "added": "0"})
    assert spec.classifier == "resnet50" and spec.size == 224 and spec.traditional == "crop+flip"
    assert data_paths(spec) == [Path("data/imagenet")]
    small = validate({"dataset": "imagenet10", "classifier": "resnet110", "data_root": str(tmp_path), "added": "0"})
    assert small.size == 32 and data_paths(small) == [tmp_path]
    with pytest.raises(SpecError, match="must be a folder"):
        validate({"dataset": "imagenet10", "data_root": __file__})


@pytest.mark.slow  # trains a classifier
def test_an_engine_run_on_imagenet10_is_stored_as_imagenet10(ten_root, tmp_path):
    from engine.execution.local import Runtime, run_grid
    from store import runs as store_runs
    db = tmp_path / "s.duckdb"
    summary, spec, ds = run_grid({"dataset": "imagenet10", "data_root": str(ten_root), "size": 16,
                                  "classifier": "smallcnn", "n_base": 20, "added": "0,10", "seeds": 1,
                                  "recipe": ["iterations=3"]}, db, runtime=Runtime(device="cpu"))
    rows = store_runs.query_runs(db)
    assert summary["written"] == 2 and set(rows.dataset) == {"ImageNet-10"}
    assert set(rows.traditional) == {"crop+flip"} and set(rows.n_total) == {30}
