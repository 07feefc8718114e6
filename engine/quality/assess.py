"""Compute and store the quality metrics of one synthetic set, whatever generator made it.

Metrics (names as stored in the quality table):
  fd, fd_real         FD in the reference classifier's features: synthetic vs the real test split,
                      and, as the ruler, an equal number of real train images vs the same test split
  diversity, diversity_real   per-class feature spread of the set and of an equal-sized real set
  memorisation        nearest-base-image distance ratio (closed-set generators), with image pairs
  fid, is             pytorch-fid's Inception, when its weights are on this machine
  domain, domain_patch   the real-vs-synthetic classifier's held-out accuracy (Sec. 3, App. F)
  tsne_domain, tsne_reference   t-SNE coordinates (Fig. 1a, 1b)
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from engine.data.loaders import Dataset, load_dataset
from engine.catalog.datasets import cli_name
from engine.catalog.vocab import OPEN
from engine.messages import InputError
from engine.quality import fid as fidlib
from engine.quality.diversity import balanced_sample, diversity_with_interval
from store import artifacts
from store import quality as store_quality

CHEAP = ("fd", "diversity", "memorisation")
FULL = CHEAP + ("fid", "domain", "tsne")
METRICS = FULL


class QualityError(InputError):
    """A set or option the quality metrics cannot work with; the message names it."""


def parse_metrics(text: str) -> tuple[str, ...]:
    if text in ("cheap", "full", "all"):
        return CHEAP if text == "cheap" else FULL
    chosen = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in chosen if m not in METRICS]
    if bad or not chosen:
        raise QualityError(f"unknown metric {bad[0] if bad else text!r}; valid: {', '.join(METRICS)}, cheap, full")
    return chosen


def dataset_spec(stored_name: str) -> str:
    """The CLI name that loads a stored dataset name (the catalog's; a folder's path is not stored)."""
    name = cli_name(stored_name)
    if name is None:
        raise QualityError(f"cannot tell how to load dataset {stored_name!r}: pass --dataset (and --data-root)")
    return name


def load_set(row: dict) -> tuple[np.ndarray, np.ndarray]:
    path = Path(row["path"])
    if not path.is_file():
        raise QualityError(f"synthetic set {row['synthetic_set_id']}: its images file {path} is missing")
    with np.load(path, allow_pickle=False) as npz:
        return npz["images"], npz["labels"].astype(np.int64)


def _row(metric, value, lo=None, hi=None, extractor=None, sha=None, n_real=None, n_syn=None, config=None,
         detail=None, seconds=None) -> dict:
    return {"metric": metric, "value": None if value is None else float(value),
            "ci_low": None if lo is None else float(lo), "ci_high": None if hi is None else float(hi),
            "extractor": extractor, "extractor_sha256": sha, "n_real": n_real, "n_syn": n_syn,
            "config": config, "detail": detail, "seconds": seconds}


def quality_dir(db, set_id: str) -> Path:
    return artifacts.artifacts_dir(db) / "quality" / set_id


def reference_dir(db) -> Path:
    return artifacts.artifacts_dir(db) / "quality" / "reference"


def real_inception_stats(ds: Dataset, net: fidlib.FIDInception, sha: str, db) -> tuple[np.ndarray, np.ndarray]:
    """Inception statistics of the real train split, computed once per (dataset, split, resolution, weights)."""
    import re
    cache = artifacts.artifacts_dir(db) / "quality" / "inception-stats"
    cache.mkdir(parents=True, exist_ok=True)
    path = cache / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', ds.name)}-train-{ds.size}px-{sha[:12]}.npz"
    if path.exists():
        with np.load(path) as npz:
            return npz["mu"], npz["sigma"]
    feats, _ = net(ds.train_x)
    mu, sigma = fidlib.stats(feats)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, mu=mu, sigma=sigma, n=len(feats))
    tmp.replace(path)
    return mu, sigma


def assess(set_row: dict, metrics=CHEAP, db=None, device=None, ds: Dataset | None = None,
           inception_weights=None, log=print, seed: int = 0) -> list[dict]:
    """Compute the asked metrics of one stored set, store them, return the rows. Skipped metrics
    (no weights, not a closed-set generator) are reported through `log`, never stored as values."""
    import torch
    from engine.quality.features import ReferenceClassifier
    device = device or torch.device("cpu")
    set_id = set_row["synthetic_set_id"]
    if ds is None:
        ds = load_dataset(dataset_spec(set_row["dataset"]))
    syn_x, syn_y = load_set(set_row)
    if syn_x.shape[1:] != ds.train_x.shape[1:]:
        raise QualityError(f"synthetic set {set_id} holds {syn_x.shape[1:]} images but {ds.name} has "
                           f"{ds.train_x.shape[1:]}: load the dataset at the set's size (--size)")
    rows: list[dict] = []
    rng_seed = seed
    ref = None
    if {"fd", "diversity", "tsne"} & set(metrics):
        ref = ReferenceClassifier(ds, reference_dir(db), device)
        ref_cfg = {"reference": ref.record, "seed": seed}
    if "fd" in metrics:
        start = time.perf_counter()
        n = min(len(syn_x), len(ds.test_x))
        s_idx = balanced_sample(syn_y, -(-n // ds.num_classes), rng_seed)[:n]
        syn_f, test_f = ref.features(syn_x[s_idx]), ref.features(ds.test_x)
        t_idx = np.random.default_rng(rng_seed).permutation(len(test_f))[:n]
        value, lo, hi = fidlib.fd_with_interval(syn_f, test_f[t_idx], seed=rng_seed)
        rows.append(_row("fd", value, lo, hi, ref.name, ref.sha256, n, len(s_idx), ref_cfg,
                         {"real_side": "test split", "interval": "95% normal bootstrap (± 1.96 sd), 100 draws"},
                         time.perf_counter() - start))
        # The ruler: real images scored the same way (train split, which the reference saw).
        start = time.perf_counter()
        r_idx = balanced_sample(ds.train_y, -(-n // ds.num_classes), rng_seed)[:n]
        value, lo, hi = fidlib.fd_with_interval(ref.features(ds.train_x[r_idx]), test_f[t_idx], seed=rng_seed)
        rows.append(_row("fd_real", value, lo, hi, ref.name, ref.sha256, n, 0, ref_cfg,
                         {"real_side": "test split", "compared": f"{len(r_idx)} real train-split images "
                          "(seen by the reference classifier)"}, time.perf_counter() - start))
    if "diversity" in metrics:
        start = time.perf_counter()
        counts = min(np.bincount(syn_y, minlength=ds.num_classes).min(),
                     np.bincount(ds.test_y, minlength=ds.num_classes).min())
        s_idx, t_idx = balanced_sample(syn_y, counts, rng_seed), balanced_sample(ds.test_y, counts, rng_seed)
        d_syn = diversity_with_interval(ref.features(syn_x[s_idx]), syn_y[s_idx], seed=rng_seed)
        d_real = diversity_with_interval(ref.features(ds.test_x[t_idx]), ds.test_y[t_idx], seed=rng_seed)
        secs = time.perf_counter() - start
        detail = {"per_class": int(counts), "interval": "95% normal bootstrap (± 1.96 sd) within classes, 200 draws"}
        rows.append(_row("diversity", *d_syn, ref.name, ref.sha256, len(t_idx), len(s_idx), ref_cfg, detail, secs))
        rows.append(_row("diversity_real", *d_real, ref.name, ref.sha256, len(t_idx), 0, ref_cfg,
                         dict(detail, real_side="test split"), secs))
    if "memorisation" in metrics:
        rows += _memorisation(set_row, ds, syn_x, syn_y, db, log)
    if "fid" in metrics:
        rows += _fid(ds, syn_x, device, db, inception_weights, log)
    if "domain" in metrics or "tsne" in metrics:
        rows += _domain_and_tsne(ds, syn_x, syn_y, metrics, ref, device, seed, log)
    for row in rows:  # a set extended later (more images sampled) makes these rows stale
        row["config"] = dict(row["config"] or {}, set_images=int(len(syn_x)))
    store_quality.write_metrics(set_id, rows, db)
    return rows


MAIN_ROW = {"fd": "fd", "diversity": "diversity", "memorisation": "memorisation", "fid": "fid",
            "domain": "domain", "tsne": "tsne_reference"}


def stale_metrics(set_row: dict, metrics, db=None) -> tuple[str, ...]:
    """The metrics with no stored row for the set at its current size."""
    import json
    stored = store_quality.query_quality(db, set_row["synthetic_set_id"])
    sizes = {r.metric: json.loads(r.config).get("set_images") if isinstance(r.config, str) else None
             for r in stored.itertuples()}
    return tuple(m for m in metrics if sizes.get(MAIN_ROW[m]) != int(set_row["n_images"]))


def after_run(synthetic_set_id: str, level: str, db=None, ds: Dataset | None = None, device=None, log=print) -> list[dict]:
    """The hook `engine run` calls once a synthetic set is prepared: the cheap metrics (seconds),
    or all of them with level "full"; metrics already stored for the set at its size are kept."""
    if level == "off":
        return []
    rows = store_quality.resolve_sets(synthetic_set_id, db)
    if rows.empty:
        return []
    set_row = rows.iloc[0].to_dict()
    todo = stale_metrics(set_row, FULL if level == "full" else CHEAP, db)
    if set_row.get("kind") == OPEN:  # an imported set has no base set to have memorised
        todo = tuple(m for m in todo if m != "memorisation")
    if ds is None:
        ds = load_dataset(dataset_spec(set_row["dataset"]))
    from engine.quality.features import ReferenceClassifier, cheap_to_train
    if level == "cheap" and not cheap_to_train(ds) and not ReferenceClassifier.is_cached(ds, reference_dir(db)):
        # Training the reference classifier costs seconds on digits, hours on CIFAR-10: never implicitly.
        skipped = [m for m in todo if m in ("fd", "diversity")]
        todo = tuple(m for m in todo if m not in skipped)
        if skipped:
            log(f"{', '.join(skipped)} skipped: {ds.name}'s reference classifier is not trained yet "
                f"(`engine quality {synthetic_set_id} --metrics fd,diversity` trains it once)")
    if not todo:
        return []
    log(f"quality of {synthetic_set_id}: {', '.join(todo)}")
    return assess(set_row, todo, db, device, ds, log=log)


def _memorisation(set_row, ds, syn_x, syn_y, db, log) -> list[dict]:
    from engine.generators.closed_set import memorisation
    from engine.quality.memorisation import closest_pairs
    from engine.data.subsets import base_indices, indices_hash
    gen_id, n_base = set_row.get("generator_id"), set_row.get("n_base")
    seed = store_quality.subset_seed_of(gen_id, db) if gen_id else None
    if set_row.get("kind") == OPEN:
        log(f"memorisation skipped for {set_row['synthetic_set_id']}: an imported (open-set) set has no base set")
        return []
    if n_base is None or seed is None:
        log(f"memorisation skipped for {set_row['synthetic_set_id']}: no base set is recorded for its generator")
        return []
    base = base_indices(ds.train_y, int(n_base), seed)
    if indices_hash(base) != set_row.get("indices_hash", indices_hash(base)):
        log(f"memorisation skipped: the recorded base set of {gen_id} does not match {ds.name} as loaded here")
        return []
    start = time.perf_counter()
    heldout = np.setdiff1d(np.arange(len(ds.train_y)), base)
    reference = ds.train_x[heldout] if len(heldout) else ds.test_x
    pick = np.random.default_rng(0).choice(len(reference), size=min(1000, len(reference)), replace=False)
    mem = memorisation(syn_x[:1000], ds.train_x[base], reference[pick])
    pairs = closest_pairs(syn_x[:1000], ds.train_x[base])
    folder = quality_dir(db, set_row["synthetic_set_id"])
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "memorisation_pairs.npz"
    np.savez(path, synthetic=syn_x[pairs["syn_index"]], synthetic_labels=syn_y[pairs["syn_index"]],
             base=ds.train_x[base[pairs["base_position"]]], base_labels=ds.train_y[base[pairs["base_position"]]],
             base_train_index=base[pairs["base_position"]], distance=pairs["distance"])
    return [_row("memorisation", mem["ratio"], None, None, "L2 on [0,1] pixels", None, mem["n_heldout"],
                 mem["n_samples"], {"subset_seed": seed}, dict(mem, pairs=str(path)), time.perf_counter() - start)]


def _fid(ds, syn_x, device, db, weights, log) -> list[dict]:
    try:
        path = fidlib.find_weights(weights)
    except fidlib.InceptionWeightsMissing as err:
        log(str(err))
        return []
    start = time.perf_counter()
    sha = fidlib.sha256_of(path)
    net = fidlib.FIDInception(path, device)
    mu_r, sigma_r = real_inception_stats(ds, net, sha, db)
    feats, probs = net(syn_x)
    value = fidlib.frechet_distance(*fidlib.stats(feats), mu_r, sigma_r)
    is_mean, is_sd = fidlib.inception_score(probs)
    secs = time.perf_counter() - start
    official = sha.startswith(fidlib.OFFICIAL_SHA256_PREFIX)
    if not official:
        log(f"warning: {path} is not pytorch-fid's official weights file (SHA-256 {sha[:8]}…): FID/IS are not "
            f"comparable to published numbers")
    extractor = f"pytorch-fid InceptionV3 pool3 ({path.name})"
    detail = {"weights": str(path), "official_weights": official, "real_side": "train split"}
    return [_row("fid", value, None, None, extractor, sha, len(ds.train_x), len(syn_x), None, detail, secs),
            _row("is", is_mean, is_mean - is_sd, is_mean + is_sd, extractor, sha, None, len(syn_x), None,
                 dict(detail, interval="mean ± sd over 10 splits"), secs)]


def _domain_and_tsne(ds, syn_x, syn_y, metrics, ref, device, seed, log) -> list[dict]:
    from engine.quality.domain import PATCH_MIN_SIZE, domain_features, train_domain_classifier
    from engine.quality.features import classifier_for, domain_classifier_for
    from engine.quality.tsne import embed
    rows = []
    classifier = domain_classifier_for(ds)
    modes = ["image"] + (["patch"] if ds.size >= PATCH_MIN_SIZE else [])
    for mode in modes:
        res = train_domain_classifier(ds.train_x, ds.train_y, syn_x, syn_y, classifier, ds.name, device,
                                      seed=seed, mode=mode)
        cfg = {"classifier": classifier, "mode": mode, "heldout_fraction": 0.3, "seed": seed,
               "real_side": "train split"}
        detail = {"interval": "exact binomial 95%", "n_heldout": res.n_heldout, "chance": 50.0}
        if "domain" in metrics:
            rows.append(_row("domain" if mode == "image" else "domain_patch", res.accuracy, res.ci_low,
                             res.ci_high, f"domain classifier {classifier}", None, res.n_train, res.n_train, cfg,
                             detail, res.seconds))
        if "tsne" in metrics and mode == "image":
            start = time.perf_counter()
            feats = domain_features(res, device)
            x, dom, cls = res.heldout
            coords = embed(feats[dom == 0], feats[dom == 1], cls[dom == 0], cls[dom == 1], seed)
            rows.append(_row("tsne_domain", None, extractor=f"domain classifier {classifier}", n_real=int((dom == 0).sum()),
                             n_syn=int((dom == 1).sum()), config=cfg, detail=coords,
                             seconds=time.perf_counter() - start))
    if "tsne" in metrics:
        start = time.perf_counter()
        n = min(len(syn_x), len(ds.test_x))
        coords = embed(ref.features(ds.test_x[:n]), ref.features(syn_x[:n]), ds.test_y[:n], syn_y[:n], seed)
        rows.append(_row("tsne_reference", None, extractor=ref.name, sha=ref.sha256, n_real=n, n_syn=n,
                         config={"reference": ref.record, "real_side": "test split", "classifier": classifier_for(ds)},
                         detail=coords, seconds=time.perf_counter() - start))
    return rows
