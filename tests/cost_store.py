"""A small store of seeded digits runs with known timings, for the cost, advice and page tests: accuracies
from a known truth (engine.analysis.studies) with seed noise, each run timed as `seconds_per_image` x the
images its recipe processes (x a known scatter), and one EDM-tiny training with its sampling rate."""
import numpy as np

from engine.analysis.studies import Curves, noisy_runs, runs_frame
from engine.catalog.vocab import CLOSED
from store import artifacts
from store import runs as store_runs

DIGITS_BASES = (20, 50, 100)
TRUTH = Curves("digits-like", 800,
               {b: ((b, 2 * b, 3 * b), (b, 2 * b, 4 * b)) for b in DIGITS_BASES},
               {None: ("power", 99.0, 6.0, 0.5)}, {None: ("saturating", 2.0, 1.5)})
SECONDS_PER_IMAGE = 2e-4     # 12,800 images a digits run (200 iterations x 64): 2.56 s


def timed_digits_store(db, seed: int = 0, scatter: float = 0.05) -> None:
    store_runs.init_store(db)
    rng = np.random.default_rng(seed)
    runs = noisy_runs(TRUTH, runs_frame(TRUTH, 3), 0.6, rng)
    rows = []
    for r in runs.itertuples():
        n_train = r.n_base + r.n_real_added + r.n_syn_added
        work = 200 * min(64, n_train)
        closed = r.augmentation == CLOSED
        rows.append(dict(run_id=f"d{r.Index}", run_key=f"d{r.Index}", source="engine", dataset="digits",
                         classifier="SmallCNN", augmentation=r.augmentation, generator="EDM-tiny" if closed else None,
                         generator_id=f"g{r.n_base}" if closed else None,
                         synthetic_set_id=f"s{r.n_base}" if closed else None,
                         n_base=int(r.n_base), n_real_added=int(r.n_real_added), n_syn_added=int(r.n_syn_added),
                         seed=int(r.seed), top1=float(r.top1), n_total=800, device="cpu (x86_64)",
                         wall_time_s=SECONDS_PER_IMAGE * work * float(np.exp(rng.normal(0, scatter))),
                         config={"steps": 200, "recipe": {"batch_size": 64, "input_size": 8}}))
    store_runs.insert_runs(rows, db)
    for b in DIGITS_BASES:
        artifacts.upsert_generator(dict(generator_id=f"g{b}", dataset="digits", n_base=b, indices_hash="h",
                                        preset="tiny", seed=0, train_images=60_000, checkpoint="x",
                                        train_time_s=30.0 * (1 + 0.05 * (b % 3)),
                                        config={"kind": "edm", "name": "EDM-tiny"}), db)
        artifacts.upsert_synthetic_set(dict(synthetic_set_id=f"s{b}", generator_id=f"g{b}", n_images=4 * b,
                                            per_class=4 * b // 10, seed=0, path="x", sampling_s_per_image=0.006), db)
