"""Write a large, realistic runs file (and, with --store, a store built from it) for the benchmarks.

    python bench/make_large_store.py /tmp/equiv-bench                      # ~1.02 M runs
    python bench/make_large_store.py /tmp/equiv-bench --datasets 1 --classifiers 1   # ~10 k runs
    python bench/make_large_store.py /tmp/equiv-bench --store              # and a store to query

Settings are (dataset, classifier, generator): by default 20 datasets x 5 classifiers x 10
generators (6 closed-set, 4 open-set) = 1,000 synthetic settings. Every (dataset, classifier)
has real runs at 6 base sizes (1 %-50 % of n_total) x base-only and 4 real ratios, every setting
synthetic runs at 8 ratios; each point has --seeds seeds. Accuracy follows a power law in the
effective training-set size n_base + n_real + w * n_syn (w < 1, shrinking as the base grows:
synthetic images are worth fewer real ones on a large base, as the paper finds), plus seed noise
whose spread shrinks with the set size. The paper's datasets keep the paper's n_total.

It writes only into the folder given, never into the real store (EQUIV_DB or data/).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DATASETS = [("CIFAR-10", 50_000, 10), ("BloodMNIST", 12_000, 8), ("ImageNet-100", 130_000, 100),
            ("PathMNIST", 90_000, 9), ("DermaMNIST", 7_000, 7), ("OCTMNIST", 97_000, 4),
            ("PneumoniaMNIST", 4_700, 2), ("RetinaMNIST", 1_080, 5), ("BreastMNIST", 546, 2),
            ("TissueMNIST", 165_000, 8), ("OrganAMNIST", 34_000, 11), ("OrganCMNIST", 13_000, 11),
            ("OrganSMNIST", 14_000, 11), ("CIFAR-100", 50_000, 100), ("SVHN", 73_000, 10),
            ("STL-10", 5_000, 10), ("Flowers-102", 1_020, 102), ("Food-101", 75_750, 101),
            ("digits", 1_347, 10), ("folder:site-a", 20_000, 6)]
CLASSIFIERS = ["WRN-28-10", "ResNet-18", "ConvNeXt-T", "DenseNet-121", "MobileNetV3"]
GENERATORS = [("closed", "EDM"), ("closed", "EDM-small"), ("closed", "DiT-S/2"), ("closed", "DiT-B/2"),
              ("closed", "VAE"), ("closed", "EDM-tiny"), ("open", "SD-1.5"), ("open", "SDXL"),
              ("open", "SD-3"), ("open", "Imagen-3")]
BASE_FRACTIONS = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5]
REAL_RATIOS = [0, 0.5, 1, 2, 3]          # 0: the base-only run
SYN_RATIOS = [0.5, 1, 2, 3, 5, 8, 10, 15]
SCHEMA = pa.schema([("dataset", pa.string()), ("classifier", pa.string()), ("augmentation", pa.string()),
                    ("generator", pa.string()), ("n_base", pa.int64()), ("n_real_added", pa.int64()),
                    ("n_syn_added", pa.int64()), ("seed", pa.int64()), ("top1", pa.float64()),
                    ("top5", pa.float64()), ("n_total", pa.int64()), ("config", pa.string())])


def accuracy(rng, n_total, n_classes, skill, n_base, n_real, n_syn, worth):
    """Top-1 (%) from a power law in the effective set size, with seed noise."""
    n_eff = n_base + n_real + worth * n_syn
    chance = 100.0 / n_classes
    ceiling = 99.0 - 25.0 * skill
    frac = np.clip(n_eff / n_total, 1e-4, None)
    acc = ceiling - (ceiling - chance) * 0.55 * frac ** -0.35 / (1 + 0.55 * frac ** -0.35)
    noise = rng.normal(0.0, 0.25 + 2.5 / np.sqrt(n_eff / 50.0), size=np.shape(n_eff))
    return np.clip(acc + noise, 0.0, 100.0)


def pair_table(rng, dataset, n_total, n_classes, classifier, generators, seeds) -> pa.Table:
    skill = rng.uniform(0.0, 0.6)
    bases = sorted({max(20, int(round(f * n_total, -1 if f * n_total > 100 else 0))) for f in BASE_FRACTIONS})
    cols = {k: [] for k in ("augmentation", "generator", "n_base", "n_real_added", "n_syn_added")}

    def add(aug, gen, n_base, real, syn):
        for k, v in zip(cols, (aug, gen, n_base, real, syn)):
            cols[k].append(v)
    for b in bases:
        for r in REAL_RATIOS:
            add("real", None, b, int(r * b), 0)
        for aug, gen in generators:
            for r in SYN_RATIOS:
                add(aug, gen, b, 0, int(r * b))
    points = len(cols["n_base"])
    rep = {k: np.repeat(np.asarray(v, dtype=object if k in ("augmentation", "generator") else np.int64), seeds)
           for k, v in cols.items()}
    # How much a synthetic image is worth: closed-set generators trained on the base alone are
    # worth more on a small base than a large one; open-set ones are steadier but off-domain.
    gen_worth = {g: (rng.uniform(0.3, 0.8) if aug == "closed" else rng.uniform(0.1, 0.4)) for aug, g in generators}
    worth = np.array([0.0 if g is None else gen_worth[g] for g in rep["generator"]])
    worth *= np.exp(-3.0 * rep["n_base"] / n_total)
    top1 = accuracy(rng, n_total, n_classes, skill, rep["n_base"], rep["n_real_added"], rep["n_syn_added"], worth)
    n = points * seeds
    table = {
        "dataset": [dataset] * n, "classifier": [classifier] * n,
        "augmentation": rep["augmentation"].tolist(), "generator": rep["generator"].tolist(),
        "n_base": rep["n_base"], "n_real_added": rep["n_real_added"], "n_syn_added": rep["n_syn_added"],
        "seed": np.tile(np.arange(seeds), points), "top1": np.round(top1, 2),
        "top5": np.round(np.minimum(100.0, top1 + rng.uniform(5, 15)), 2) if n_classes >= 100 else [None] * n,
        "n_total": np.full(n, n_total), "config": [json.dumps({"study": "bench", "recipe": classifier})] * n,
    }
    return pa.table(table, schema=SCHEMA)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path, help="Folder to write into (created).")
    parser.add_argument("--datasets", type=int, default=20)
    parser.add_argument("--classifiers", type=int, default=5)
    parser.add_argument("--generators", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="Random seed of the generated accuracies.")
    parser.add_argument("--store", action="store_true", help="Also build a store: published runs + this file.")
    args = parser.parse_args()
    from store.db import db_path
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    datasets = DATASETS[:args.datasets]
    stem = f"runs_{args.datasets}x{args.classifiers}x{args.generators}x{args.seeds}"
    parquet = args.out / f"{stem}.parquet"
    start = time.perf_counter()
    writer, rows = pq.ParquetWriter(parquet, SCHEMA), 0
    for dataset, n_total, n_classes in datasets:
        for classifier in CLASSIFIERS[:args.classifiers]:
            table = pair_table(rng, dataset, n_total, n_classes, classifier, GENERATORS[:args.generators], args.seeds)
            writer.write_table(table)
            rows += table.num_rows
    writer.close()
    out = {"file": str(parquet), "rows": rows, "settings": len(datasets) * args.classifiers * args.generators,
           "write_s": round(time.perf_counter() - start, 2)}
    if args.store:
        from store import exchange as store_exchange
        from store import runs as store_runs
        store = args.out / f"{stem}.duckdb"
        if store.resolve() == db_path().resolve():
            sys.exit(f"refusing to write into the real store {store}")
        store.unlink(missing_ok=True)
        store_runs.init_store(store)
        start = time.perf_counter()
        added, present = store_exchange.import_runs(parquet, store)
        out.update(store=str(store), imported=added, already_present=present,
                   import_s=round(time.perf_counter() - start, 2))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
