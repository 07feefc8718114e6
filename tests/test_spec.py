"""Spec validation: every rule on both sides of its limit, and the normalised result."""
import json

import pytest

from engine.spec import SpecError, parse_added
from engine.spec import preview as _preview
from engine.spec import validate as _validate


def validate(raw):
    out = _validate(raw)
    return out.to_dict() if hasattr(out, "to_dict") else dict(out)


def preview(raw):
    return _preview(_validate(raw))


def ok(**fields):
    return validate({"dataset": "digits", "n_base": 50, **fields})


def refused(match, **fields):
    with pytest.raises(SpecError, match=match):
        _validate({"dataset": "digits", "n_base": 50, **fields})


# ------------------------------------------------------------------------------- parse_added

@pytest.mark.parametrize("text, expected", [
    ("0,N,2N,3N", [0, 100, 200, 300]), ("0, 20 ,40", [0, 20, 40]), ("n,1.5N", [100, 150]),
    ("3N,0,3N,,", [0, 300]), ("0.25N", [25]), ("7", [7]),
])
def test_parse_added_reads_counts_and_multiples_of_n(text, expected):
    assert parse_added(text, 100) == expected


@pytest.mark.parametrize("text, match", [
    ("0,N,x", "'x'"), ("-5", "'-5'"), ("2M", "'2M'"), ("N2", "'N2'"), ("1e3", "'1e3'"),
    ("", "empty"), (" , ,", "empty"),
])
def test_parse_added_refuses_anything_else_naming_it(text, match):
    with pytest.raises(SpecError, match=match):
        parse_added(text, 100)


# ------------------------------------------------------------------------------ validate

def test_defaults_and_normalised_form():
    spec = ok()
    assert spec["dataset"] == "digits" and spec["classifier"] == "smallcnn"
    assert spec["augmentation"] == "real" and spec["generator_preset"] == "tiny"
    assert list(spec["added"]) == [0, 50, 100, 150]
    assert spec["seeds"] == 3 and spec["subset_seed"] == 0 and spec["n_base"] == 50
    assert spec["recipe"] == {} and spec["generator_options"] == {}
    assert spec["data_root"] is None and spec["size"] is None
    assert validate({"dataset": "cifar10", "n_base": 500})["classifier"] == "resnet110"
    # A JSON text is read the same as the mapping it encodes.
    assert validate(json.dumps({"dataset": "digits", "n_base": 50})) == spec


def test_amounts_as_a_list_are_sorted_and_unique():
    assert list(ok(added=[100, 0, 50, 50])["added"]) == [0, 50, 100]
    assert list(ok(added=["20", 10])["added"]) == [10, 20]
    refused("added", added=[])
    refused("added", added=[0, -1])
    refused("added", added=[0, "ten"])


@pytest.mark.parametrize("raw, match", [
    ("{not json", "not valid JSON"), ("[1, 2]", "JSON object"), (json.dumps([1]), "JSON object"),
])
def test_text_that_is_not_a_json_object_is_refused(raw, match):
    with pytest.raises(SpecError, match=match):
        _validate(raw)


@pytest.mark.parametrize("field, value, match", [
    ("dataset", "imagenet", "unknown dataset 'imagenet'"),
    ("dataset", "medmnist:", "medmnist"),
    ("dataset", "folder:", "folder:"),
    ("classifier", "resnet18", "unknown classifier 'resnet18'"),
    ("augmentation", "open", "augmentation 'open'"),
    ("generator_preset", "huge", "unknown generator preset 'huge'"),
    ("colour", "red", "unknown spec field 'colour'"),
])
def test_unknown_names_are_refused_naming_the_value(field, value, match):
    refused(match, **{field: value})


@pytest.mark.parametrize("value", [0, -3, "abc", True, None, 1.5, "2.5"])
def test_n_base_must_be_a_positive_whole_number(value):
    with pytest.raises(SpecError, match="n_base"):
        _validate({"dataset": "digits", "n_base": value})


def test_n_base_and_real_additions_fit_the_known_train_split():
    # digits has 800 training images.
    assert ok(n_base=800, added="0")["n_base"] == 800
    refused("n_base 801", n_base=801, added="0")
    assert list(ok(n_base=200, added="0,600")["added"]) == [0, 600]
    refused("added 601 real images", n_base=200, added="0,601")
    # Synthetic additions are not drawn from the train split.
    assert list(ok(n_base=200, augmentation="closed", added="0,601")["added"]) == [0, 601]


def test_points_and_seeds_have_limits_on_both_sides():
    assert len(ok(n_base=1, added=list(range(50)))["added"]) == 50
    refused("51 amounts", n_base=1, added=list(range(51)), augmentation="closed")
    assert ok(seeds=1)["seeds"] == 1 and ok(seeds=10)["seeds"] == 10 and ok(seeds="4")["seeds"] == 4
    refused("seeds", seeds=0)
    refused("seeds", seeds=11)
    refused("seeds", seeds="three")
    assert ok(subset_seed=0)["subset_seed"] == 0 and ok(subset_seed=12)["subset_seed"] == 12
    refused("subset_seed", subset_seed=-1)


def test_recipe_and_generator_options_are_key_value_pairs_with_known_keys():
    assert ok(recipe="lr=0.1, epochs=3")["recipe"] == {"lr": "0.1", "epochs": "3"}
    assert ok(recipe="lr=0.1\nepochs=3")["recipe"] == {"lr": "0.1", "epochs": "3"}
    assert ok(recipe={"lr": 0.1})["recipe"] == {"lr": "0.1"}
    assert ok(recipe="")["recipe"] == {}
    refused("'nonsense'", recipe="nonsense=1")
    refused("key=value", recipe="lr")
    refused("key=value", recipe=5)
    closed = ok(augmentation="closed", generator_options="lr=0.001")
    assert closed["generator_options"] == {"lr": "0.001"}
    refused("'bogus'", augmentation="closed", generator_options="bogus=1")


def test_preview_counts_trainings():
    assert preview({"dataset": "digits", "n_base": 50, "added": "0,N,2N", "seeds": 2}) == {
        "classifier_trainings": 6, "generator_trainings": 0, "points": 3, "seeds": 2}
    closed = preview({"dataset": "digits", "n_base": 50, "added": "0,N", "augmentation": "closed"})
    assert closed["generator_trainings"] == 1 and closed["classifier_trainings"] == 6
    base_only = preview({"dataset": "digits", "n_base": 50, "added": "0", "augmentation": "closed"})
    assert base_only["generator_trainings"] == 0 and base_only["points"] == 1


def test_messages_start_with_the_field_they_name():
    for field, value in [("n_base", 0), ("seeds", 0), ("subset_seed", -1)]:
        with pytest.raises(SpecError, match=rf"^{field} = {value} must be"):
            _validate({"dataset": "digits", "n_base": 50, **{field: value}})
    refused(r"^added = 'ten' is not a whole number", added=[0, "ten"])
    refused(r"^recipe", recipe="lr")
    refused(r"'bogus'", recipe="bogus=a=b")  # the key is what comes before the first '='


def test_dataset_defaults_to_digits_and_forms_are_recognised():
    assert validate({"n_base": 50})["dataset"] == "digits"
    assert validate({"dataset": "folder:x", "n_base": 5, "augmentation": "closed"})["dataset"] == "folder:x"
    assert validate({"dataset": "medmnist:bloodmnist", "n_base": 100})["dataset"] == "medmnist:bloodmnist"
    assert parse_added("0,,N", 100) == [0, 100]


def test_size_and_data_root_are_kept(tmp_path):
    spec = validate({"dataset": "medmnist:bloodmnist", "n_base": 100, "size": 8, "data_root": str(tmp_path)})
    assert spec["size"] == 8 and spec["data_root"] == str(tmp_path)
    assert validate({"dataset": "medmnist:bloodmnist", "n_base": 100, "size": ""})["size"] is None
    with pytest.raises(SpecError, match=r"^size = 1 must be"):
        _validate({"dataset": "medmnist:bloodmnist", "n_base": 100, "size": 1})


def test_train_size_is_read_from_a_medmnist_file_and_a_folder(tmp_path):
    import numpy as np
    npz = tmp_path / "bloodmnist.npz"
    splits = {"train": 120, "val": 10, "test": 10}
    np.savez(npz, **{f"{k}_{part}": np.zeros((n, 1) if part == "labels" else (n, 2, 2), np.uint8)
                     for k, n in splits.items() for part in ("images", "labels")})
    raw = {"dataset": "medmnist:bloodmnist", "data_root": str(npz)}
    assert validate({**raw, "n_base": 120, "added": "0"})["n_base"] == 120
    with pytest.raises(SpecError, match="121"):
        _validate({**raw, "n_base": 121, "added": "0"})
    with pytest.raises(SpecError, match="real images"):
        _validate({**raw, "n_base": 100, "added": "0,21"})
    for cls in ("a", "b"):
        (tmp_path / "imgs" / "train" / cls).mkdir(parents=True)
        for i in range(3):
            (tmp_path / "imgs" / "train" / cls / f"{i}.png").write_bytes(b"x")
    folder = {"dataset": f"folder:{tmp_path / 'imgs'}"}
    assert validate({**folder, "n_base": 6, "added": "0"})["n_base"] == 6
    with pytest.raises(SpecError, match="7"):
        _validate({**folder, "n_base": 7, "added": "0"})


def test_one_synthetic_image_needs_a_generator():
    assert preview({"dataset": "digits", "n_base": 50, "added": [0, 1], "augmentation": "closed"})[
        "generator_trainings"] == 1


def test_a_folder_path_may_hold_a_colon(tmp_path):
    root = tmp_path / "run:2" / "train" / "a"
    root.mkdir(parents=True)
    for i in range(4):
        (root / f"{i}.png").write_bytes(b"x")
    with pytest.raises(SpecError, match="5"):
        _validate({"dataset": f"folder:{tmp_path / 'run:2'}", "n_base": 5, "added": "0"})


def test_generator_option_messages_name_the_field():
    refused(r"^generator option 'bogus'", augmentation="closed", generator_options="bogus")


# ------------------------------------------- what the queue, the worker and the DiT trainer read (issue 19)

from pathlib import Path  # noqa: E402

from engine.spec import check_against_data, data_paths, summary  # noqa: E402


def dit(**options):
    return _validate({"dataset": "digits", "n_base": 50, "augmentation": "closed", "generator": "dit",
                      "generator_options": options})


def test_dit_options_on_both_sides_of_each_rule():
    assert dit(lr="1e-3", vae="F4", sampling_steps="1000", seed="3.0").generator_options["vae"] == "F4"
    assert dit(sampling_steps="1", lr="1", ema_decay="0", grad_checkpointing="TRUE").generator == "dit"
    for key, bad, message in [("vae", "f16", "vae='f16' must be one of tiny, f4, f8"),
                              ("lr", "2", "lr=2.0 must be between 1e-08 and 1"),
                              ("lr", "nan", "lr=nan must be between"),
                              ("sampling_steps", "0", "sampling_steps=0 must be between 1 and 1000"),
                              ("sampling_steps", "1001", "sampling_steps=1001 must be between"),
                              ("batch_size", "1.5", "batch_size='1.5' is not a valid int"),
                              ("bogus", "1", "unknown dit generator option 'bogus'")]:
        with pytest.raises(SpecError, match=message):
            dit(**{key: bad})


def test_data_paths_are_what_the_worker_reads():
    spec = lambda **f: _validate({"n_base": 50, **f})  # noqa: E731
    assert data_paths(spec(dataset="cifar10")) == [Path("data/cifar10")]
    assert data_paths(spec(dataset="cifar10", data_root="/d/c10")) == [Path("/d/c10")]
    assert data_paths(spec(dataset="medmnist:bloodmnist")) == [Path("data/medmnist/bloodmnist.npz")]
    assert data_paths(spec(dataset="medmnist:bloodmnist", data_root="/d/b.npz")) == [Path("/d/b.npz")]
    assert data_paths(spec(dataset="digits")) == []


def test_check_against_data_on_both_sides():
    spec = _validate({"dataset": "digits", "n_base": 50, "augmentation": "real", "added": "0,N,2N"})
    check_against_data(spec, "toy", 150)            # base 50 + 100 real added: exactly the split
    with pytest.raises(SpecError, match="added 100 real images, but only 99 lie outside a base of 50 in toy"):
        check_against_data(spec, "toy", 149)
    check_against_data(spec.__class__(**{**spec.__dict__, "augmentation": "closed"}), "toy", 50)
    with pytest.raises(SpecError, match="n_base 50 must be between 1 and toy's 49 training images"):
        check_against_data(spec, "toy", 49)


def test_summary_is_one_line_per_job():
    closed = _validate({"dataset": "digits", "n_base": 50, "augmentation": "closed", "generator": "dit"})
    assert summary(closed) == "digits · smallcnn · n_base 50 · closed (DiT-tiny) +0,50,100,150 × 3 seeds"
    d = closed.to_dict()
    assert summary(d) == summary(closed)
    assert summary({**d, "generator": None, "generator_preset": "small"}).endswith("closed (EDM-small) +0,50,100,150 × 3 seeds")
    assert summary({**d, "generator": "other"}).endswith("closed (other-tiny) +0,50,100,150 × 3 seeds")
    assert summary({**d, "augmentation": "real", "added": "0,N", "seeds": 2}) == (
        "digits · smallcnn · n_base 50 · real +0,N × 2 seeds")


def test_spec_forms_a_queue_or_a_form_may_send():
    assert ok(n_base=50.0)["n_base"] == 50                       # a whole float from JSON
    assert ok(augmentation="closed", generator="dit", generator_options=["lr=1e-3", "vae=f8"])[
        "generator_options"] == {"lr": "1e-3", "vae": "f8"}
    refused("medmnist flag 'bloodmnist:x'", dataset="medmnist:bloodmnist:x")
    refused("generator = 3 must be text", generator=3)
    # The synthetic amount's limit is for synthetic images only; real ones are limited by the data.
    refused("2,000,000", augmentation="closed", added="0,2000001")
    folder = validate({"dataset": "folder:/data/x", "n_base": 50, "augmentation": "real", "added": "0,2000001"})
    assert folder["added"] == [0, 2_000_001]


def test_recipe_overrides_are_checked_for_every_classifier():
    for classifier in ("resnet50", "vit-b32", "resnet110", "smallcnn"):
        assert ok(classifier=classifier, recipe={"lr": "0.05"})["recipe"] == {"lr": "0.05"}
        refused("lr", classifier=classifier, recipe={"lr": "fast"})


def test_text_fields_name_themselves_and_empty_means_default():
    from engine.spec import DEFAULTS, StudySpec
    assert ok()["augmentation"] == DEFAULTS.augmentation == "real"
    assert ok(classifier="")["classifier"] == "smallcnn" and ok(augmentation="")["augmentation"] == "real"
    refused("unknown dataset ''", dataset="")
    for name in ("classifier", "augmentation", "generator_preset"):
        refused(f"^{name} = 3 must be text$", **{name: 3})
    refused("does not apply: digits is built in", data_root="/tmp")
    refused("size 64 does not apply to digits", size=64)
    assert StudySpec().to_dict()["added"] == "0,N,2N,3N"  # unvalidated text stays text
    with pytest.raises(SpecError, match="lr=2.0 must be between"):
        dit(vae="f4", lr="2")   # a word option first: the options after it are checked too
    assert data_paths(_validate({"dataset": "folder:/data/mine", "n_base": 5})) == [Path("/data/mine")]


def test_added_as_a_list_is_checked_against_its_own_limit():
    folder = {"dataset": "folder:/data/x", "n_base": 50, "augmentation": "real"}
    assert validate({**folder, "added": [0, 2_000_001, 0]})["added"] == [0, 2_000_001]
    with pytest.raises(SpecError, match="added = 1,000,000,001 must be between 0 and 1,000,000,000"):
        _validate({**folder, "added": [0, 1_000_000_001]})
