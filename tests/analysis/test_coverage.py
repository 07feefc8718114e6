"""A small, seeded version of bench/bench_coverage.py: the 95 % intervals must keep covering."""
import pytest

pytestmark = pytest.mark.slow  # simulated studies: seconds each

from engine.analysis.simulate import TRUTHS, coverage

NOISE_SD = 0.24  # pooled seed-to-seed sd of engine runs (docs/method.md, "Coverage")
KEYS = ("c1", "c2", "answer", "surface_answer")


@pytest.fixture(scope="module")
def near_15():
    return coverage(TRUTHS["c2_near_1.5"], studies=30, noise_sd=NOISE_SD, n_boot=100, seed=1)


@pytest.fixture(scope="module")
def cifar():
    return coverage(TRUTHS["cifar10_closed"], studies=30, noise_sd=NOISE_SD, n_boot=100, seed=2)


@pytest.mark.parametrize("key", ("c1", "c2", "answer"))
def test_intervals_cover_the_true_values_where_the_surface_can_follow_them(near_15, key):
    assert near_15["fitted"] == 30
    assert near_15[key]["coverage"] >= 0.85, near_15[key]


@pytest.mark.parametrize("key", KEYS)
def test_intervals_cover_what_the_method_estimates_from_noise_free_runs(cifar, key):
    assert cifar[key]["target_coverage"] >= 0.85, cifar[key]



def test_known_gap_the_surface_misses_the_truth_below_the_first_synthetic_point(near_15):
    # The truth's answer (3,000 synthetic images at n_base 5,000) lies below the smallest measured
    # synthetic amount (5,000), where log(n_syn + eps) bends the paper's surface away from it:
    # docs/method.md reports this gap; if it closes, the docs must change with it.
    assert near_15["surface_answer"]["median_rel_bias"] < -0.1
