"""The cost model (issue 27): a log-linear fit of measured seconds on images processed, with a prediction
interval from its residual spread, bench figures where the store has none, and the cost of an answer."""
import json
import math

import numpy as np
import pytest

from engine.analysis.cost import BENCH_BASIS, CostModel, device_class, estimate_job_hours, fit_times, spec_estimate
from engine.analysis.pricing import answer_cost, generator_of
from engine.cli.common import to_json
from engine.spec import validate
from store import runs as store_runs
from tests.cost_store import SECONDS_PER_IMAGE, timed_digits_store


def test_fit_recovers_a_known_slope_and_its_interval_covers_new_runs():
    rng = np.random.default_rng(0)
    covered, n = 0, 400
    for _ in range(n):
        work = np.exp(rng.uniform(np.log(1e3), np.log(1e6), 12))
        secs = 3e-3 * work ** 0.8 * np.exp(rng.normal(0, 0.2, work.size))
        f = fit_times(work, secs)
        new = 5e4
        value, lo, hi = f.predict(new)
        covered += lo <= 3e-3 * new ** 0.8 * math.exp(rng.normal(0, 0.2)) <= hi
    assert not f.slope_fixed and f.b == pytest.approx(0.8, abs=0.15) and f.dof == 10
    assert 0.92 <= covered / n <= 0.98   # a 95 % prediction interval, measured


def test_too_few_distinct_amounts_hold_the_slope_at_one_and_one_run_gives_no_interval():
    f = fit_times([100, 100, 100], [1.0, 1.2, 0.9])
    assert f.slope_fixed and f.b == 1 and f.dof == 2
    value, lo, hi = f.predict(200)
    assert value == pytest.approx(2 * (1.0 * 1.2 * 0.9) ** (1 / 3)) and lo < value < hi
    one = fit_times([100], [1.0])
    assert one.predict(300) == (pytest.approx(3.0), None, None)
    # a slope the runs cannot pin down (here negative) is not extrapolated: held at 1
    assert fit_times([1e3, 1e4, 1e5], [5.0, 2.0, 1.0]).slope_fixed


def test_devices_pool_cpus_and_keep_gpus_apart():
    assert device_class("cpu (x86_64)") == device_class("cpu") == device_class(None) == "cpu"
    assert device_class("NVIDIA H200") == "NVIDIA H200"


def test_an_empty_store_falls_back_to_the_bench_figures_and_says_so(tmp_path):
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    est = estimate_job_hours(validate({"seeds": 1}), db)
    # SmallCNN at 4,441 images processed a second: 4 runs of 200 x min(64, n_train) images
    assert est["hours"] == pytest.approx((200 * 50 + 3 * 200 * 64) / 4441 / 3600)
    assert est["source"] == "bench" and est["lo"] is None and BENCH_BASIS in est["text"]
    gpu = spec_estimate(validate({}), CostModel.from_store(db), "cuda:0")
    assert gpu["total"].hours is None and "no measured run and no bench figure" in gpu["total"].text()


def test_fitted_to_the_stores_runs_and_a_held_out_run_within_its_interval(tmp_path):
    db = tmp_path / "s.duckdb"
    timed_digits_store(db)
    model = CostModel.from_store(db)
    f = model.classifier_fit("SmallCNN", 8, "cpu")
    assert f.source == "store" and f.n == 63 and f.b == pytest.approx(1.0, abs=0.05)
    value, lo, hi = f.predict(12_800)
    assert value == pytest.approx(SECONDS_PER_IMAGE * 12_800, rel=0.05) and lo < value < hi < 1.3 * value
    est = estimate_job_hours(validate({"augmentation": "closed", "n_base": 50, "seeds": 1}), db)
    assert est["source"] == "store" and est["generator_hours"] == pytest.approx(31.5 / 3600, rel=0.05)
    assert "fitted to 63 measured times on cpu (x86_64)" in est["text"]
    assert model.classifier_fit("SmallCNN", 8, "gpu") is None and model.resolve("auto") == "cpu"


def test_generator_names_map_to_kinds_and_presets():
    assert generator_of("EDM-tiny") == ("edm", "tiny", "")
    assert generator_of("DiT-XL/2") == ("dit", "XL/2", "")
    assert generator_of("EDM")[:2] == ("edm", "cifar") and "the paper's EDM" in generator_of("EDM")[2]
    assert generator_of("CIFAKE") is None and generator_of(None) is None


def model_with_rates() -> CostModel:
    """EDM-tiny training at 1,000 images/s and sampling at 0.01 s an image, no interval (bench-like)."""
    from engine.analysis.cost import bench_fit
    return CostModel({}, {("edm", "tiny", "cpu"): bench_fit(1e-3)}, {("edm", "tiny", "cpu"): bench_fit(0.01)})


def test_the_cost_of_an_answer_carries_the_verdicts_interval():
    v = {"value": 8400.0, "lo": 1800.0, "hi": 11500.0}
    c = answer_cost(v, "syn_for_real", 5000, 5000, "EDM-tiny", model_with_rates(), gpu_cost=3.6, label_cost=0.1)
    assert c["real"] == {"images": 5000.0, "images_ci": None, "label_cost": 500.0, "label_cost_ci": None}
    s = c["synthetic"]
    # 60,000 training images at 1,000/s = 60 s; 8,400 images at 0.01 s = 84 s (18 s and 115 s at the ends)
    assert s["generator_hours"] == pytest.approx(60 / 3600) and s["sampling_hours"] == pytest.approx(84 / 3600)
    assert s["sampling_hours_ci"] == pytest.approx([18 / 3600, 115 / 3600])
    assert s["gpu_cost"] == pytest.approx(3.6 * 144 / 3600) and s["gpu_cost_ci"] == pytest.approx([0.078, 0.175])
    assert c["cheaper"] == "synthetic" and c["break_even_label_cost"] == pytest.approx(0.144 / 5000)
    # The answer (synthetic images) rounded as the verdict rounds it; its hours and dollars from the exact values.
    assert c["text"].startswith("labelling 5,000 images at $0.10: $500; generating the equivalent 8,400 "
                                "[1,800-12,000]: 0.04 [0.022-0.049] h on a CPU, $0.14 [$0.08-$0.18]")
    assert json.loads(to_json(c)) == json.loads(json.dumps(c))


def test_the_question_is_echoed_as_asked_and_the_answer_rounded_as_the_verdict_rounds_it():
    from engine.analysis.wording import fmt_interval
    model = model_with_rates()
    c = answer_cost({"value": 2207.0, "lo": 1519.0, "hi": 3388.0}, "syn_for_real", 4321, 5000, "EDM-tiny", model)
    assert c["text"].startswith(f"labelling 4,321 images; generating the equivalent 2,200 [{fmt_interval(1519, 3388)}]")
    assert fmt_interval(1519, 3388) == "1,500-3,400"
    inverse = answer_cost({"value": 2207.0, "lo": 1519.0, "hi": 3388.0}, "real_for_syn", 4321, 5000, "EDM-tiny", model)
    assert inverse["text"].startswith("labelling 2,200 [1,500-3,400] images; generating the equivalent 4,321:")


def test_an_open_verdict_gives_bounds_and_no_prices_no_verdict():
    model = model_with_rates()
    open_above = answer_cost({"value": None, "lo": 1800.0, "hi": None}, "syn_for_real", 5000, 5000, "EDM-tiny",
                             model, gpu_cost=3.6, label_cost=1e-6)
    assert open_above["synthetic"]["gpu_cost"] is None and open_above["synthetic"]["gpu_cost_ci"][1] is None
    assert open_above["cheaper"] == "real"   # at least $0.078 of GPU against $0.005 of labels
    assert "at least 1,800" in open_above["text"]
    inverse = answer_cost({"value": 3000.0, "lo": 2000.0, "hi": 4000.0}, "real_for_syn", 6000, 5000, "EDM-tiny", model,
                          gpu_cost=1.0, label_cost=0.1)
    assert inverse["real"]["label_cost_ci"] == pytest.approx([200.0, 400.0]) and inverse["synthetic"]["images"] == 6000
    assert inverse["break_even_label_cost_ci"][0] < inverse["break_even_label_cost"] < \
        inverse["break_even_label_cost_ci"][1]
    priceless = answer_cost({"value": 3000.0, "lo": 2000.0, "hi": 4000.0}, "syn_for_real", 500, 500, "EDM-tiny", model)
    assert priceless["cheaper"] is None and priceless["synthetic"]["gpu_cost"] is None and "$" not in priceless["text"]
    nothing = answer_cost({"value": None, "lo": None, "hi": None}, "syn_for_real", 500, 500, "EDM-tiny", model, 1.0, 0.1)
    assert nothing["text"] == "no cost comparison: the verdict gives no number or bound"
    imported = answer_cost({"value": 3000.0, "lo": 2000.0, "hi": 4000.0}, "syn_for_real", 500, 500, "CIFAKE", model,
                           1.0, 0.1)
    assert imported["synthetic"]["gpu_hours"] is None and "not a generator this engine trains" in imported["basis"]
