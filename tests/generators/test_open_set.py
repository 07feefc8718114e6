"""`engine synthetic import`: malformed folders and .npz files are one line each and leave the store
as it was; a re-import is a no-op; open-set specs are checked against the imported set."""
import hashlib
import io
import json
import os
import shutil

import duckdb
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from engine.cli import app
from engine.data.loaders import load_digits_dataset
from engine.generators.open_set import match_classes, stream_order, ImportFailed
from engine.spec import SpecError, check_open_amount, check_open_set, max_balanced, validate
from store import jobs
from store import synthetic as store_synthetic
from tests.processes import fresh_store

runner = CliRunner()
DIGITS = load_digits_dataset()


def write_folder(root, per_class=5, size=12, colour=True, classes=range(10)):
    """Digits as a user's synthetic folder: colour PNGs at another size, so conversion and resizing run."""
    for c in classes:
        (root / str(c)).mkdir(parents=True, exist_ok=True)
        for k, i in enumerate(np.flatnonzero(DIGITS.train_y == c)[:per_class]):
            im = Image.fromarray(DIGITS.train_x[i, ..., 0]).resize((size, size))
            (im.convert("RGB") if colour else im).save(root / str(c) / f"img_{k}.png")
    return root


def cli(*args):
    res = runner.invoke(app, ["synthetic", *map(str, args)])
    return res.exit_code, " ".join(res.output.split()), res.output


def snapshot(db):
    """Everything an import could touch: the sets' rows, the runs, the jobs and the artifact files."""
    with duckdb.connect(str(db), read_only=True) as con:
        sets = con.execute("SELECT * FROM synthetic_sets ORDER BY synthetic_set_id").fetchall()
        counts = [con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("runs", "jobs")]
    art = db.parent / "artifacts"
    files = sorted((str(p.relative_to(art)), hashlib.sha256(p.read_bytes()).hexdigest())
                   for p in art.rglob("*") if p.is_file()) if art.exists() else []
    return sets, counts, files


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("synthetic")
    db = fresh_store(tmp)
    code, out, _ = cli("import", "good", "--dataset", "digits", "--from", write_folder(tmp / "good"), "--db", db)
    assert code == 0 and "imported 50 images as good for digits (8x8x1" in out, out
    return db, tmp


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def png_bytes(arr, mode=None):
    buf = io.BytesIO()
    Image.fromarray(arr, mode).save(buf, "PNG") if mode else Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes():
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def folder_case(edit):
    def make(tmp):
        root = write_folder(tmp / "src")
        edit(root)
        return root
    return make


def npz_case(**arrays):
    def make(tmp):
        path = tmp / "set.npz"
        np.savez(path, **arrays)
        return path
    return make


def huge_header_npz(tmp):
    """An .npz of a few hundred bytes whose images header declares a terabyte array."""
    import io
    import zipfile
    path = tmp / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        for name, shape, data in (("images", (10**12, 8, 8), b"\0" * 64), ("labels", (20,), Y.astype("<i8").tobytes())):
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(header, {"descr": "|u1" if name == "images" else "<i8",
                                                          "fortran_order": False, "shape": shape})
            archive.writestr(f"{name}.npy", header.getvalue() + data)
    return path


def fifo_in_class_folder(root):
    os.mkfifo(root / "3" / "waiting.png")


def raw_file(name, data):
    def make(tmp):
        (tmp / name).write_bytes(data)
        return tmp / name
    return make


X = np.stack([DIGITS.train_x[np.flatnonzero(DIGITS.train_y == c)[0], ..., 0] for c in range(10)] * 2)
Y = np.tile(np.arange(10), 2)

MALFORMED = [
    ("a folder the dataset has no class for", folder_case(lambda r: shutil.copytree(r / "3", r / "eleven")),
     "class folder 'eleven' is not a class of digits"),
    ("a dataset class without a folder", folder_case(lambda r: shutil.rmtree(r / "7")),
     "digits class '7' has no folder"),
    ("an empty class folder", folder_case(lambda r: [p.unlink() for p in (r / "3").iterdir()]),
     "holds no images"),
    ("bytes that are no image", folder_case(lambda r: (r / "2" / "junk.png").write_bytes(b"not an image")),
     "cannot read image"),
    ("a truncated PNG", folder_case(lambda r: (r / "4" / "cut.png").write_bytes(truncated(png_bytes(X[4])))),
     "cannot read image"),
    ("a truncated JPEG", folder_case(lambda r: (r / "5" / "cut.jpg").write_bytes(truncated(jpeg_bytes()))),
     "cannot read image"),
    ("a 16-bit image", folder_case(lambda r: Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(r / "1" / "deep.png")),
     "16-bit or float"),
    ("a float TIFF", folder_case(lambda r: Image.fromarray(np.ones((8, 8), np.float32)).save(r / "1" / "f.tif")),
     "16-bit or float"),
    ("an empty folder", lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "holds no class folders"),
    ("a file that is not an image", folder_case(lambda r: (r / "6" / "notes.txt").write_text("hello")),
     "is not an image file"),
    ("an image outside the class folders", folder_case(lambda r: (r / "loose.png").write_bytes(png_bytes(X[0]))),
     "lies outside a class folder"),
    ("a folder inside a class folder", folder_case(lambda r: (r / "8" / "more").mkdir()), "is a folder"),
    ("two folders naming one class", folder_case(lambda r: shutil.copytree(r / "1", r / "01")),
     "both name digits class '1'"),
    ("a path that does not exist", lambda tmp: tmp / "nowhere", "no such file or folder"),
    ("a file that is neither folder nor .npz", raw_file("set.txt", b"images"), "must be a folder of class folders"),
    ("an .npz without labels", npz_case(images=X), "lacks labels"),
    ("float images", npz_case(images=X.astype(np.float32), labels=Y), "images are float32, expected uint8"),
    ("a label outside the classes", npz_case(images=X, labels=np.where(np.arange(20) == 3, 10, Y)),
     "label 10 (image 3) is not a class index of digits"),
    ("fewer labels than images", npz_case(images=X, labels=Y[:-1]), "20 images but labels of shape (19,)"),
    ("pickled object arrays", npz_case(images=np.array([X[0], "x"], dtype=object), labels=Y),
     "holds Python objects"),
    ("an .npz that is no archive", raw_file("bad.npz", b"PK\x03\x04 not really a zip"), "is not a readable .npz"),
    ("two-channel images", npz_case(images=np.zeros((20, 8, 8, 2), np.uint8), labels=Y), "with C 1, 3 or 4"),
    ("a class with no images", npz_case(images=X[Y != 9], labels=Y[Y != 9]), "digits class '9' has no images"),
    ("an unknown class name", npz_case(images=X[:3], labels=np.array(["0", "1", "cat"])),
     "label 'cat' is not a class of digits"),
    ("an .npz declaring a terabyte array", huge_header_npz, "declares shape (1000000000000, 8, 8)"),
    ("a FIFO named like an image", folder_case(fifo_in_class_folder), "is not a regular file"),
    ("a FIFO named like an .npz", lambda tmp: (os.mkfifo(tmp / "p.npz"), tmp / "p.npz")[1], "is not a regular file"),
    ("a single .npy array", lambda tmp: (np.save(tmp / "x.npy", X), (tmp / "x.npy").rename(tmp / "x.npz"))[1],
     "holds a single array"),
]


@pytest.mark.parametrize("what, make, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_import_is_one_line_and_stores_nothing(store, tmp_path, what, make, message):
    db, _ = store
    before = snapshot(db)
    code, out, raw = cli("import", "other", "--dataset", "digits", "--from", make(tmp_path), "--db", db)
    assert code == 2 and message in out and raw.count("error:") == 1, out
    assert "Traceback" not in raw
    assert snapshot(db) == before


@pytest.mark.parametrize("args, message", [
    (["import", "has space", "--dataset", "digits"], "set name 'has space'"),
    (["import", "edm", "--dataset", "digits"], "set name 'edm'"),
    (["import", "other", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["import", "other", "--dataset", "digits", "--size", "16"], "size 16 does not apply to digits"),
])
def test_bad_names_and_datasets_are_one_line(store, args, message):
    db, tmp = store
    before = snapshot(db)
    code, out, raw = cli(*args, "--from", tmp / "good", "--db", db)
    assert code == 2 and message in out and raw.count("error:") == 1, out
    assert snapshot(db) == before


def test_reimport_is_a_no_op_and_names_are_unique(store, tmp_path):
    db, tmp = store
    before = snapshot(db)
    # The same images in another order, written as an .npz instead of a folder: the same content.
    row = store_synthetic.open_set("good", db)
    with np.load(row["path"]) as npz:
        images, labels = npz["images"][::-1], npz["labels"][::-1]
    np.savez(tmp_path / "same.npz", images=images, labels=labels)
    for source in (tmp / "good", tmp_path / "same.npz"):
        code, out, _ = cli("import", "good", "--dataset", "digits", "--from", source, "--db", db)
        assert code == 0 and "already imported" in out and "nothing changed" in out, out
    assert snapshot(db) == before
    code, out, _ = cli("import", "copy", "--dataset", "digits", "--from", tmp / "good", "--db", db)
    assert code == 2 and "already imported as 'good'" in out
    code, out, _ = cli("import", "good", "--dataset", "digits", "--from", write_folder(tmp_path / "more", 6), "--db", db)
    assert code == 2 and "'good' already holds other images" in out
    assert snapshot(db) == before


def test_import_list_and_remove(store, tmp_path):
    db, _ = store
    src = write_folder(tmp_path / "grey", per_class=3, size=8, colour=False)
    code, out, _ = cli("import", "grey-set", "--dataset", "digits", "--from", src, "--db", db)
    assert code == 0 and "imported 30 images as grey-set" in out
    row = store_synthetic.open_set("grey-set", db)
    assert row["kind"] == "open" and row["class_counts"] == {str(c): 3 for c in range(10)}
    assert row["source_path"] == str(src.resolve()) and row["imported_at"] is not None
    with np.load(row["path"]) as npz:  # 8x8 grey PNGs of digits import pixel for pixel
        first = npz["images"][:10]
        assert list(npz["labels"][:10]) == list(range(10))
    originals = {DIGITS.train_x[i].tobytes() for c in range(10) for i in np.flatnonzero(DIGITS.train_y == c)[:3]}
    assert all(img.tobytes() in originals for img in first)
    code, out, raw = cli("list", "--json", "--db", db)
    listed = {r["name"]: r for r in json.loads(raw)}
    assert listed["grey-set"]["kind"] == "open" and listed["grey-set"]["n_images"] == 30 and listed["good"]["runs"] == 0
    code, out, _ = cli("remove", "grey-set", "--db", db)
    assert code == 0 and "removed synthetic set grey-set" in out
    assert store_synthetic.open_set("grey-set", db) is None and not (db.parent / row["path"]).exists()
    code, out, _ = cli("remove", "grey-set", "--db", db)
    assert code == 2 and "no imported synthetic set named 'grey-set'" in out


def test_remove_is_refused_while_a_queued_or_running_job_needs_the_set(tmp_path):
    """A queued job would fail later, and a running one that has stored no run yet would lose its images:
    without --force the removal is refused, naming the job, and the store and files stay as they were."""
    db = fresh_store(tmp_path)
    src = write_folder(tmp_path / "needed", per_class=4, size=8, colour=False)
    assert cli("import", "needed", "--dataset", "digits", "--from", src, "--db", db)[0] == 0
    spec = {"dataset": "digits", "classifier": "smallcnn", "n_base": 20, "augmentation": "open",
            "generator": "needed", "added": [0, 20], "seeds": 1}
    queued = jobs.submit(spec, db)
    before = snapshot(db)
    code, out, _ = cli("remove", "needed", "--db", db)
    assert code == 2 and f"1 job(s) need synthetic set 'needed': {queued} (queued)" in out
    assert snapshot(db) == before
    assert jobs.claim("w", db)["job_id"] == queued  # now running, with no run stored yet
    code, out, _ = cli("remove", "needed", "--db", db)
    assert code == 2 and f"{queued} (running)" in out and snapshot(db) == before
    code, out, _ = cli("remove", "needed", "--force", "--db", db)
    assert code == 0 and store_synthetic.open_set("needed", db) is None


def test_class_names_match_loosely_or_by_index():
    classes = ["French bulldog", "brown_bear", "Egyptian-cat"]
    got = match_classes(["french_bulldog", "BROWN BEAR", "2"], classes, "ImageNet-10", "class folder")
    assert got == {"french_bulldog": 0, "BROWN BEAR": 1, "2": 2}
    with pytest.raises(ImportFailed, match="'egyptian cat' and '2' both name"):
        match_classes(["egyptian cat", "2"], classes, "ImageNet-10", "class folder")
    with pytest.raises(ImportFailed, match="'3' is not a class"):
        match_classes(["3"], classes, "ImageNet-10", "class folder")


def test_stored_order_is_class_balanced_and_nested():
    labels = np.repeat([0, 1, 2], [4, 2, 3])   # grouped by class, as an import sorts them
    order = stream_order(labels, 3)
    assert sorted(order) == list(range(9))
    drawn = labels[order]
    assert max_balanced([4, 2, 3]) == 7      # class 1 runs out after two rounds and one more draw
    assert list(drawn[:7]) == [0, 1, 2, 0, 1, 2, 0]
    for n in range(1, 8):  # every prefix is balanced to within one image
        counts = np.bincount(drawn[:n], minlength=3)
        assert counts.max() - counts.min() <= 1
    check_open_amount("s", {"a": 4, "b": 2, "c": 3}, 7)
    with pytest.raises(SpecError, match="takes 3 of class 'b', which it holds only 2"):
        check_open_amount("s", {"a": 4, "b": 2, "c": 3}, 8)


@pytest.mark.parametrize("fields, message", [
    ({}, "augmentation 'open' needs --generator NAME"),
    ({"generator": "edm"}, "augmentation 'open' needs --generator NAME"),
    ({"generator": "a b"}, "synthetic set name 'a b'"),
    ({"generator": "good", "generator_preset": "tiny"}, "applies only to closed-set runs"),
    ({"generator": "good", "generator_options": "seed=1"}, "applies only to closed-set runs"),
])
def test_open_specs_are_validated(fields, message):
    with pytest.raises(SpecError, match=message):
        validate({"n_base": 20, "augmentation": "open", **fields})


def test_open_specs_are_checked_against_the_store(store):
    db, _ = store
    spec = validate({"n_base": 20, "augmentation": "open", "generator": "good", "added": "0,N,2N"})
    assert spec.generator == "good" and spec.generator_preset is None
    assert check_open_set(spec, db)["n_images"] == 50
    with pytest.raises(SpecError, match="no imported synthetic set named 'nope'"):
        check_open_set(validate({"n_base": 20, "augmentation": "open", "generator": "nope"}), db)
    with pytest.raises(SpecError, match="takes 6 of class '0', which it holds only 5"):
        check_open_set(validate({"n_base": 20, "augmentation": "open", "generator": "good", "added": "0,3N"}), db)
    with pytest.raises(SpecError, match="was imported for digits, not CIFAR-10"):
        check_open_set(validate({"dataset": "cifar10", "n_base": 20, "augmentation": "open", "generator": "good"}), db)
    before = snapshot(db)
    res = runner.invoke(app, ["queue", "add", "--db", str(db), "--n-base", "20", "--augmentation", "open",
                              "--generator", "good", "--added", "0,3N"])
    assert res.exit_code == 2 and "which it holds only 5" in " ".join(res.output.split())
    assert jobs.list_jobs(db).empty and snapshot(db) == before
    res = runner.invoke(app, ["queue", "add", "--db", str(db), "--n-base", "20", "--augmentation", "open",
                              "--generator", "good", "--added", "0,N,2N", "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["spec"]["generator"] == "good"


def test_migration_marks_existing_sets_closed(tmp_path):
    """A store from before imports: its sampled sets become kind 'closed' and list with their generator."""
    from store.db import SCHEMA_VERSION, connect, migrate
    db = tmp_path / "old.duckdb"
    with connect(db) as con:
        migrate(con, target=8)
        con.execute("INSERT INTO generators (generator_id, dataset, n_base, indices_hash, preset, seed, train_images, "
                    "checkpoint, config) VALUES ('edm-1', 'digits', 20, 'h', 'tiny', 0, 100, 'x', "
                    "'{\"name\": \"EDM-tiny\"}')")
        con.execute("INSERT INTO synthetic_sets (synthetic_set_id, generator_id, n_images, per_class, seed, path) "
                    "VALUES ('edm-1-s0', 'edm-1', 40, 4, 0, 'p.npz')")
        migrate(con)
        assert con.execute("SELECT max(version) FROM schema_version").fetchall()[0][0] == SCHEMA_VERSION
    listed = store_synthetic.list_sets(db)
    assert listed[["kind", "name", "dataset", "n_base", "n_images"]].values.tolist() == [
        ["closed", "EDM-tiny", "digits", 20, 40]]
