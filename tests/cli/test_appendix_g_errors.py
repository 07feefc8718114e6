"""Appendix G's options refused in one line, exit 2, with nothing stored; and the main protocol's run keys
as they were before these options existed (pinned from the engine before them)."""
import pytest
from typer.testing import CliRunner

from engine.cli import app
from engine.data.loaders import load_digits_dataset
from engine.execution.plan import plan
from engine.spec import SpecError, validate, zero_shot_split
from store import runs as store_runs
from tests.processes import fresh_store

runner = CliRunner()


@pytest.fixture
def store(tmp_path):
    return fresh_store(tmp_path)


def cases(tmp_path):
    return [
        (["--task", "zero-shot", "--text-encoder", str(tmp_path / "nope"), "--added", "0"],
         f"error: --text-encoder {tmp_path / 'nope'}: no such folder"),
        (["--task", "zero-shot", "--text-encoder", str(tmp_path), "--added", "0"],
         f"error: --text-encoder {tmp_path} holds no config.json"),
        (["--task", "zero-shot", "--added", "0"], "error: --task zero-shot needs --text-encoder DIR"),
        (["--base", "synthetic"], "error: --base synthetic needs --generator NAME"),
        (["--base", "synthetic", "--generator", "nothere"], "error: no imported synthetic set named 'nothere'"),
        (["--task", "few-shot"], "error: unknown task 'few-shot'; valid: supervised, zero-shot"),
        (["--base", "fake"], "error: --base 'fake'; valid: real, synthetic"),
        (["--text-encoder", str(tmp_path)], "applies only to --task zero-shot"),
        (["--base", "synthetic", "--generator", "s", "--augmentation", "open"],
         "error: with --base synthetic the images added are real ones: drop --augmentation open"),
        (["--base", "synthetic", "--generator", "s", "--task", "zero-shot", "--text-encoder", str(tmp_path)],
         "does not combine with --task zero-shot"),
        (["--task", "zero-shot", "--text-encoder", str(tmp_path), "--augmentation", "closed"],
         "a closed-set generator never saw them"),
        (["--task", "zero-shot", "--text-encoder", str(tmp_path), "--added", "0,N"],
         "keeps the real images fixed"),
    ]


@pytest.mark.parametrize("k", range(12))
def test_bad_appendix_g_options_are_one_line_exit_2_nothing_stored(store, tmp_path, k):
    args, message = cases(tmp_path)[k]
    before = len(store_runs.query_runs(store, base=None, task=None))
    res = runner.invoke(app, ["run", "--dataset", "digits", "--n-base", "20", "--seeds", "1", *args,
                              "--db", str(store)])
    assert res.exit_code == 2, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in " ".join(res.output.split()), res.output
    assert len(store_runs.query_runs(store, base=None, task=None)) == before


def test_a_zero_shot_base_larger_than_the_seen_classes_is_refused(tmp_path, store):
    from tests.classifiers.test_zero_shot import build_tiny_bert
    bert = build_tiny_bert(tmp_path / "bert")
    res = runner.invoke(app, ["run", "--dataset", "digits", "--n-base", "500", "--added", "0", "--task", "zero-shot",
                              "--text-encoder", str(bert), "--db", str(store)])
    assert res.exit_code == 2 and "more than the 401 training images of digits's 5 seen classes" in \
        " ".join(res.output.split()), res.output


def test_the_split_is_the_first_half_seen():
    assert zero_shot_split(list("abcdefghij")) == (list("abcde"), list("fghij"))
    assert zero_shot_split(list("abc")) == (["a"], ["b", "c"])


def test_main_protocol_run_keys_are_the_ones_they_were():
    """Keys of a default open-set digits grid as the engine computed them before --base and --task."""
    spec = validate({"dataset": "digits", "n_base": 20, "added": "0,N", "seeds": 2, "augmentation": "open",
                     "generator": "noisy"})
    assert (spec.base, spec.task, spec.text_encoder) == ("real", "supervised", None)
    keys = [p.key for p in plan(spec, load_digits_dataset(), "open-0123456789abcdef")]
    assert keys == ["engine:db3f4aa70f5a11bbead6c0dbf7d63626", "engine:64621dabfdc9c7863f2d3610378c0e8a",
                    "engine:574504c4a4e264d367d0e889439f7932", "engine:3cd27a3b465ff8c9de53456b880ef39d"]


def test_a_synthetic_base_grid_is_keyed_apart_and_by_its_set():
    ds = load_digits_dataset()
    spec = validate({"dataset": "digits", "n_base": 20, "added": "0,N", "seeds": 1, "base": "synthetic",
                     "generator": "noisy"})
    planned = plan(spec, ds, "open-aaaa")
    assert [(p.augmentation, p.n_real_added, p.n_syn_added) for p in planned] == [("real", 0, 0), ("real", 20, 0)]
    assert all(p.config["generator_id"] == "open-aaaa" and p.config["base"] == "synthetic" for p in planned)
    other = plan(spec, ds, "open-bbbb")
    assert not {p.key for p in planned} & {p.key for p in other}
    main = plan(validate({"dataset": "digits", "n_base": 20, "added": "0,N", "seeds": 1}), ds)
    assert not {p.key for p in planned} & {p.key for p in main}


@pytest.mark.parametrize("fields, message", [
    ({"base": "synthetic", "generator": "edm"}, "--base synthetic needs --generator NAME"),
    ({"base": "synthetic", "generator": "s", "generator_preset": "x"}, "applies only to closed-set runs"),
    ({"task": "zero-shot", "text_encoder": "  "}, "needs --text-encoder DIR"),
    ({"task": 3}, "task = 3 must be text"),
    ({"base": "synthetic", "generator": "s", "added": "0,900"}, "added 900 real images, but digits's train split "
                                                                "holds 800"),
])
def test_specs_of_appendix_g_are_validated(fields, message):
    with pytest.raises(SpecError, match=message):
        validate({"dataset": "digits", "n_base": 20, **fields})
