"""Torch-free: a rough estimate of how long a queued job takes, from the store's own measured runs.

Deliberately simple: one median rate (seconds per training image) of the engine runs of the same
stored classifier, on the same dataset when there are any, scaled by each planned run's training
set; plus the median measured training time of the same kind of generator. It matches neither
device nor recipe, so it is a rough estimate, and says how many runs it rests on. Its interface,
estimate_job_hours(spec, db) -> dict, is what a fitted cost model with intervals will keep.
"""
from __future__ import annotations

from engine.catalog.classifiers import CLASSIFIERS
from engine.catalog.datasets import stored_name
from engine.catalog.generators import DEFAULT_GENERATOR, GENERATORS
from engine.catalog.vocab import CLOSED, ENGINE
from engine.spec import StudySpec
from store.db import column_names, connect, has_table


def _fmt_hours(hours: float) -> str:
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def estimate_job_hours(spec: StudySpec, db) -> dict:
    """The job's estimated hours on one worker, with what the estimate rests on.

    Returns {"hours": float or None (unknown), "classifier_hours", "generator_hours" (None: unknown
    or not needed), "n_runs": measured runs used, "n_generators": measured generator trainings used,
    "basis": which runs, "devices": the devices those runs ran on, "text": one line for people}.
    Base runs already stored are counted as if they were trained again, and a generator as if it
    were not trained yet: the estimate errs long. Sampling synthetic images is not counted.
    """
    classifier = CLASSIFIERS[spec.classifier].stored_name if spec.classifier in CLASSIFIERS else spec.classifier
    dataset = stored_name(spec.dataset)
    train_images = sum(spec.n_base + a for a in spec.added) * spec.seeds
    needs_generator = spec.augmentation == CLOSED and any(a > 0 for a in spec.added)
    out = {"hours": None, "classifier_hours": None, "generator_hours": None, "n_runs": 0, "n_generators": 0,
           "basis": None, "devices": []}
    with connect(db, read_only=True) as con:
        rates = []
        if has_table(con, "runs") and "wall_time_s" in column_names(con, "runs"):
            # Same dataset first (0), then the classifier's runs on any dataset (1).
            rates = con.execute(
                "SELECT CASE WHEN dataset = ? THEN 0 ELSE 1 END AS tier, "
                "median(wall_time_s / (n_base + n_real_added + n_syn_added)), count(*), "
                "list(DISTINCT device ORDER BY device) FILTER (WHERE device IS NOT NULL) "
                "FROM runs WHERE source = ? AND classifier = ? AND wall_time_s > 0 "
                "GROUP BY tier ORDER BY tier", [dataset, ENGINE, classifier]).fetchall()
        gens = []
        if needs_generator and has_table(con, "generators"):
            # Rows written before the kind was recorded are EDM's: DiT came later.
            gens = con.execute(
                "SELECT CASE WHEN dataset = ? THEN 0 ELSE 1 END AS tier, median(train_time_s), count(*) "
                "FROM generators WHERE train_time_s > 0 AND preset = ? "
                "AND coalesce(json_extract_string(config, '$.kind'), ?) = ? GROUP BY tier ORDER BY tier",
                [dataset, spec.generator_preset, DEFAULT_GENERATOR, spec.generator]).fetchall()
    if not rates:
        out["text"] = f"unknown: no measured runs of this classifier ({classifier})"
        return out
    tier, rate, n, devices = rates[0]
    out.update(n_runs=int(n), devices=list(devices or []),
               basis=f"{classifier} on {dataset}" if tier == 0 else f"{classifier} on other datasets",
               classifier_hours=rate * train_images / 3600)
    hours = out["classifier_hours"]
    gen_name = (GENERATORS[spec.generator].stored_name(spec.generator_preset) if spec.generator in GENERATORS
                else spec.generator)
    if needs_generator:
        if gens:
            out["generator_hours"], out["n_generators"] = gens[0][1] / 3600, int(gens[0][2])
            hours += out["generator_hours"]
        else:
            hours = None
    devices = f" ({', '.join(out['devices'])})" if out["devices"] else ""
    rests_on = f"a rough estimate from {n} measured engine run{'s' if n != 1 else ''} of {out['basis']}{devices}"
    if hours is None:
        out["text"] = (f"classifier training about {_fmt_hours(out['classifier_hours'])} ({rests_on}); generator "
                       f"training unknown: no measured training of {gen_name}")
        return out
    out["hours"] = hours
    gen = (f", of which {_fmt_hours(out['generator_hours'])} training the generator (from "
           f"{out['n_generators']} measured {gen_name} training{'s' if out['n_generators'] != 1 else ''})"
           if needs_generator else "")
    out["text"] = f"about {_fmt_hours(hours)}{gen}: {rests_on}"
    return out
