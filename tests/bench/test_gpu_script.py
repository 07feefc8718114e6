"""bench/gpu.py: the prepared GPU run works before a GPU is ever lent (its --smoke run on the CPU),
records every measurement with numbers or an error, and survives a failing or hanging one."""
import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
gpu = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu)

# The figure each kind of measurement exists for; it must be a positive number.
FIGURES = {"edm_train": "images_per_s", "edm_sample": "s_per_image", "classifier_train": "images_per_s",
           "closed_set_point": "wall_s", "vae_train": "images_per_s", "dit_train": "images_per_s",
           "dit_sample": "s_per_image"}


def args_for(tmp_path, **overrides):
    values = dict(out=tmp_path / "gpu.json", smoke=True, device="cpu", budget_s=600.0, min_slot_s=1.0,
                  compile_backend="aot_eager", only=None)
    return argparse.Namespace(**{**values, **overrides})


def positive(x) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


@pytest.mark.slow
def test_smoke_run_records_every_planned_measurement_with_its_figures(tmp_path):
    out = tmp_path / "smoke.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "bench/gpu.py", "--smoke", "--budget-s", "900", "--out", str(out)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["smoke"] and report["environment"]["device"].startswith("cpu")
    assert [m["name"] for m in report["measurements"]] == [m["name"] for m in gpu.plan(True, "aot_eager")]
    for m in report["measurements"]:
        if m["status"] == "ok":
            assert positive(m["result"][FIGURES[m["kind"]]]), m
            assert positive(m["peak_memory"]["process_rss_mib"]), m
        else:
            # Nothing fails on a working checkout; skips are by design or for modules not there yet.
            assert m["status"] == "skipped", m
            assert m["error"].startswith("--smoke") or m["error"].endswith("is not in this checkout"), m
    by_name = {m["name"]: m for m in report["measurements"]}
    for name in ("edm_train/cifar/eager", "edm_sample/cifar/b4/eager", "classifier_train/vit-b32/b1",
                 "edm_train/small/compiled", "edm_sample/small/b2/compiled", "closed_set_point"):
        assert by_name[name]["status"] == "ok", by_name[name]
    assert by_name["edm_train/small/compiled"]["params"]["backend"] == "aot_eager"
    point = by_name["closed_set_point"]["result"]
    assert point["n_syn_added"] == point["n_base"] == 20 and 0 <= point["top1"] <= 100
    assert point["generator"] == "EDM-tiny" and positive(point["generator_train_s"])
    assert by_name["edm_sample/small/b2/eager"]["result"]["network_evaluations"] == 3  # 2 Heun steps


@pytest.mark.slow
def test_a_failing_and_a_hanging_measurement_do_not_stop_the_others(tmp_path, monkeypatch):
    small = {"classifier": "smallcnn", "data_size": 8, "batch": 2, "warmup_steps": 1, "min_steps": 1,
             "target_s": 0.01}
    plan = [
        {"name": "bad", "kind": "classifier_train", "limit_s": 120, "params": {**small, "classifier": "nope"}},
        # Never reaches its target (2 M steps, the recipe's cap): killed at its limit, with its worker.
        {"name": "hang", "kind": "classifier_train", "limit_s": 3, "params": {**small, "min_steps": 2_000_000}},
        {"name": "fine", "kind": "classifier_train", "limit_s": 120, "params": small},
    ]
    monkeypatch.setattr(gpu, "plan", lambda smoke, backend: plan)
    report = gpu.run(args_for(tmp_path))
    bad, hang, fine = report["measurements"]
    assert bad["status"] == "error" and "classifier 'nope'" in bad["error"]
    assert hang["status"] == "error" and hang["error"].startswith("timed out after 3 s")
    assert fine["status"] == "ok" and positive(fine["result"]["images_per_s"])
    assert json.loads((tmp_path / "gpu.json").read_text()) == json.loads(json.dumps(report, default=str))


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without a GPU")
def test_the_full_sizes_refuse_a_machine_without_a_gpu(tmp_path):
    with pytest.raises(SystemExit, match="no CUDA GPU here"):
        gpu.run(args_for(tmp_path, smoke=False, device="auto", only="closed_set_point"))


def test_a_spent_budget_skips_with_a_reason_and_only_selects_by_prefix(tmp_path):
    report = gpu.run(args_for(tmp_path, budget_s=0.0, only="edm_sample/small,closed_set_point"))
    names = [m["name"] for m in report["measurements"]]
    assert names == ["edm_sample/small/b2/eager", "edm_sample/small/b4/eager", "closed_set_point",
                     "edm_sample/small/b2/compiled", "edm_sample/small/b4/compiled"]
    assert report["environment"] is None  # no worker was started
    for m in report["measurements"]:
        assert m["status"] == "skipped" and m["error"], m
    assert "budget" in report["measurements"][0]["error"]
    with pytest.raises(SystemExit, match="matches no measurement"):
        gpu.run(args_for(tmp_path, only="edm_tarin"))


def test_the_gpu_plan_has_every_figure_the_issue_asks_for():
    names = {m["name"] for m in gpu.plan(False, "inductor")}
    for preset in ("small", "cifar"):
        for variant in ("eager", "compiled"):
            assert f"edm_train/{preset}/{variant}" in names
            assert {f"edm_sample/{preset}/b256/{variant}", f"edm_sample/{preset}/b1024/{variant}"} <= names
    assert {"classifier_train/resnet110/b128", "classifier_train/resnet110/b512", "classifier_train/resnet50/b192",
            "classifier_train/vit-b32/b192", "closed_set_point"} <= names
    samples = [m for m in gpu.plan(False, "inductor") if m["kind"] == "edm_sample"]
    assert {m["params"]["num_steps"] for m in samples} == {18}
