"""The store's schema as forward migrations: index i holds the statements that take it from version i to
i + 1. Never edit a released step's meaning; append a new one. The vocabulary in the checks and defaults
is the catalog's (engine.catalog), spelled into the SQL from its constants, so that the names live once.
"""
from __future__ import annotations

from engine.catalog.datasets import DATASETS
from engine.catalog.vocab import (AUGMENTATIONS, CLOSED, CROP, CROP_FLIP, DEFAULT_TRADITIONAL, FLIP,
                                  NO_TRADITIONAL, PAPER, REAL_BASE, SOURCES, SUPERVISED)


def sql_list(values) -> str:
    """A constant tuple of the catalog's names as an SQL list: code's own words, never a user's value."""
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values)


def default_traditional_sql(column: str = "dataset") -> str:
    """SQL for the traditional augmentation a dataset trains with by default (its catalog entry's)."""
    others = [(k.stored_name, k.default_traditional) for k in DATASETS.values()
              if k.stored_name and k.default_traditional != DEFAULT_TRADITIONAL]
    whens = " ".join(f"WHEN {column} = '{name}' THEN '{trad}'" for name, trad in others)
    return f"CASE {whens} ELSE '{DEFAULT_TRADITIONAL}' END" if whens else f"'{DEFAULT_TRADITIONAL}'"


# The runs columns from `source` to `note` with their checks: step 1 created them, step 12
# recreates them unchanged (only the key columns' indexes go).
_RUN_FIELDS = f"""source VARCHAR NOT NULL CHECK (source IN ({sql_list(SOURCES)})),
            dataset VARCHAR NOT NULL,
            classifier VARCHAR NOT NULL,
            augmentation VARCHAR NOT NULL CHECK (augmentation IN ({sql_list(AUGMENTATIONS)})),
            generator VARCHAR,
            n_base INTEGER NOT NULL CHECK (n_base > 0),
            n_real_added INTEGER NOT NULL CHECK (n_real_added >= 0),
            n_syn_added INTEGER NOT NULL CHECK (n_syn_added >= 0),
            seed INTEGER,
            top1 DOUBLE NOT NULL,
            top5 DOUBLE,
            n_total INTEGER,
            config JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
            note VARCHAR"""

# Forward migrations: index i holds the statements that take the schema from version i to i+1.
# Never edit a released step; append a new one.
MIGRATIONS: list[list[str]] = [
    [  # 1: runs, one row per trained classifier (per seed) or per published mean
        f"""CREATE TABLE runs (
            run_id VARCHAR PRIMARY KEY,
            run_key VARCHAR NOT NULL UNIQUE,
            {_RUN_FIELDS}
        )""",
    ],
    [  # 2: what an engine run needs to be traced to: its device, time, data and generator
        "ALTER TABLE runs ADD COLUMN wall_time_s DOUBLE",
        "ALTER TABLE runs ADD COLUMN device VARCHAR",
        "ALTER TABLE runs ADD COLUMN indices_hash VARCHAR",
        "ALTER TABLE runs ADD COLUMN generator_id VARCHAR",
        "ALTER TABLE runs ADD COLUMN synthetic_set_id VARCHAR",
        """CREATE TABLE generators (
            generator_id VARCHAR PRIMARY KEY,
            dataset VARCHAR NOT NULL,
            n_base INTEGER NOT NULL,
            indices_hash VARCHAR NOT NULL,
            preset VARCHAR NOT NULL,
            seed INTEGER NOT NULL,
            train_images BIGINT NOT NULL,
            checkpoint VARCHAR NOT NULL,
            train_time_s DOUBLE,
            final_loss DOUBLE,
            memorisation JSON,
            config JSON,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
        """CREATE TABLE synthetic_sets (
            synthetic_set_id VARCHAR PRIMARY KEY,
            generator_id VARCHAR NOT NULL,
            n_images INTEGER NOT NULL,
            per_class INTEGER NOT NULL,
            seed INTEGER NOT NULL,
            path VARCHAR NOT NULL,
            sampling_s_per_image DOUBLE,
            created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
        )""",
    ],
]
MIGRATIONS.append([  # 3: the job queue that workers take studies from
    """CREATE TABLE jobs (
        job_id VARCHAR PRIMARY KEY,
        spec JSON NOT NULL,
        status VARCHAR NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
        attempts INTEGER NOT NULL DEFAULT 0,
        max_attempts INTEGER NOT NULL DEFAULT 3,
        worker_id VARCHAR,
        heartbeat_at TIMESTAMP,
        error VARCHAR,
        created_at TIMESTAMP NOT NULL,
        started_at TIMESTAMP,
        finished_at TIMESTAMP,
        run_ids JSON
    )""",
])
MIGRATIONS.append([  # 4: cancelling running jobs, job time limits, progress, and the workers alive per host
    "ALTER TABLE jobs ADD COLUMN cancel_requested BOOLEAN DEFAULT false",
    "ALTER TABLE jobs ADD COLUMN max_hours DOUBLE",
    "ALTER TABLE jobs ADD COLUMN runs_planned INTEGER",
    "ALTER TABLE jobs ADD COLUMN runs_done INTEGER",
    """CREATE TABLE workers (
        worker_id VARCHAR PRIMARY KEY,
        host VARCHAR NOT NULL,
        pid INTEGER,
        device VARCHAR,
        threads INTEGER,
        started_at TIMESTAMP NOT NULL,
        seen_at TIMESTAMP NOT NULL
    )""",
])
MIGRATIONS.append([  # 5: stores made before Table 9's inconsistent row was read as its total says (20,000)
    "UPDATE runs SET n_real_added = 20000, note = 'paper Table 9, mean of 3 trials. Table 9 prints this row as "
    "15,000 added but gives its total as 45,000 and its ratio as 1:0.8, and Table 11 uses 20,000 for 1:0.8 at "
    "this base; it is read as 20,000 added (`engine paper-check --tab9 printed` and the Paper check page show "
    "the printed reading).' WHERE run_key = 'paper:table9:CIFAR-10:ResNet-110:real::25000:15000' "
    "AND n_real_added = 15000",
])
MIGRATIONS.append([  # 6: a change stamp per (dataset, classifier): readers cache per setting on it
    """CREATE TABLE run_changes (
        dataset VARCHAR NOT NULL,
        classifier VARCHAR NOT NULL,
        version BIGINT NOT NULL,
        changed_at TIMESTAMP NOT NULL,
        PRIMARY KEY (dataset, classifier)
    )""",
    "INSERT INTO run_changes SELECT dataset, classifier, 1, current_timestamp FROM runs GROUP BY dataset, classifier",
])
MIGRATIONS.append([  # 7: quality of each synthetic set, and each generator's loss at its checkpoints
    """CREATE TABLE quality (
        quality_id VARCHAR PRIMARY KEY,
        synthetic_set_id VARCHAR NOT NULL,
        metric VARCHAR NOT NULL,
        value DOUBLE,
        ci_low DOUBLE,
        ci_high DOUBLE,
        extractor VARCHAR,
        extractor_sha256 VARCHAR,
        n_real INTEGER,
        n_syn INTEGER,
        config JSON,
        detail JSON,
        seconds DOUBLE,
        created_at TIMESTAMP NOT NULL DEFAULT current_timestamp
    )""",
    "ALTER TABLE generators ADD COLUMN loss_curve JSON",
])
MIGRATIONS.append([  # 8: per-job progress reported by whoever runs the job (the cluster dispatcher)
    """CREATE TABLE job_progress (
        job_id VARCHAR PRIMARY KEY,
        planned INTEGER NOT NULL,
        done INTEGER NOT NULL,
        running JSON,
        updated_at TIMESTAMP NOT NULL
    )""",
])
MIGRATIONS.append([  # 9: how much quality measurement a job's worker runs after closed-set runs (NULL: the default)
    "ALTER TABLE jobs ADD COLUMN quality VARCHAR",
])
MIGRATIONS.append([  # 10: imported (open-set) synthetic sets beside the closed-set ones the engine samples
    # kind open: a user's images (engine synthetic import), named by the user; the content hash
    # makes a re-import a no-op; class_counts maps each dataset class to its images.
    f"ALTER TABLE synthetic_sets ADD COLUMN kind VARCHAR DEFAULT '{CLOSED}'",
    f"UPDATE synthetic_sets SET kind = '{CLOSED}' WHERE kind IS NULL",
    "ALTER TABLE synthetic_sets ADD COLUMN name VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN dataset_name VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN image_size INTEGER",
    "ALTER TABLE synthetic_sets ADD COLUMN channels INTEGER",
    "ALTER TABLE synthetic_sets ADD COLUMN content_hash VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN class_counts JSON",
    "ALTER TABLE synthetic_sets ADD COLUMN source_path VARCHAR",
    "ALTER TABLE synthetic_sets ADD COLUMN imported_at TIMESTAMP",
])
MIGRATIONS.append([  # 11: traditional augmentation (the paper's Tab. 6) of each run: part of a setting's identity
    "ALTER TABLE runs ADD COLUMN traditional VARCHAR",
    # Engine rows say it in their recipe (crop_pad 0 = no crop); the published runs all used random crop +
    # flip (the paper, appendices B and D); imports and anything else get their dataset's default
    # (engine.spec.DEFAULT_TRADITIONAL: digits crops only, a flipped digit being another digit).
    f"""UPDATE runs SET traditional = CASE
        WHEN source = 'engine' AND json_extract(config, '$.recipe.flip') IS NOT NULL THEN
            CASE WHEN CAST(json_extract(config, '$.recipe.crop_pad') AS INTEGER) > 0
                 THEN CASE WHEN CAST(json_extract(config, '$.recipe.flip') AS BOOLEAN) THEN '{CROP_FLIP}' ELSE '{CROP}' END
                 ELSE CASE WHEN CAST(json_extract(config, '$.recipe.flip') AS BOOLEAN) THEN '{FLIP}' ELSE '{NO_TRADITIONAL}' END END
        WHEN source = '{PAPER}' THEN '{CROP_FLIP}'
        ELSE {default_traditional_sql()} END""",
])
MIGRATIONS.append([  # 12: runs without ART indexes; imports write a million rows 4x faster (docs/store.md)
    # DuckDB cannot drop a PRIMARY KEY or UNIQUE constraint, so the table is rebuilt: the same columns,
    # checks and defaults, without the indexes on run_id and run_key (the writers keep run_key unique),
    # its rows sorted by setting so that a per-setting query reads only that setting's row groups.
    # run_id and run_key are random hex: stored uncompressed, a million of them are written in a third
    # of the time DuckDB's dictionary compression takes to find nothing to share (85 MB instead of 43).
    f"""CREATE TABLE runs_v12 (
        run_id VARCHAR NOT NULL USING COMPRESSION uncompressed,
        run_key VARCHAR NOT NULL USING COMPRESSION uncompressed,
        {_RUN_FIELDS},
        wall_time_s DOUBLE,
        device VARCHAR,
        indices_hash VARCHAR,
        generator_id VARCHAR,
        synthetic_set_id VARCHAR,
        traditional VARCHAR
    )""",
    # BY NAME: a column this list lacks fails here rather than being dropped.
    "INSERT INTO runs_v12 BY NAME SELECT * FROM runs "
    "ORDER BY dataset, classifier, augmentation, generator, n_base, n_real_added, n_syn_added, seed",
    "DROP TABLE runs",
    "ALTER TABLE runs_v12 RENAME TO runs",
])
MIGRATIONS.append([  # 13: the paper's Tables 2, 3, 6, 7, 8, 20 and 21, one printed value a row (docs/paper-tables.md)
    # Kept apart from runs: most rows are not classifier runs (FID, IS, sampling costs), and the runs
    # that are (Tab. 6, 20, 21) do not fit runs' n_base / added shape (Tab. 20's base is synthetic).
    # `table` is an SQL keyword, hence the quotes; the name matches paper_runs.csv's column.
    f"""CREATE TABLE paper_tables (
        row_key VARCHAR PRIMARY KEY,
        position INTEGER NOT NULL,
        "table" INTEGER NOT NULL,
        dataset VARCHAR NOT NULL,
        classifier VARCHAR,
        augmentation VARCHAR NOT NULL CHECK (augmentation IN ({sql_list(AUGMENTATIONS)})),
        generator VARCHAR,
        traditional VARCHAR,
        setting VARCHAR,
        metric VARCHAR NOT NULL,
        n_real INTEGER CHECK (n_real >= 0),
        n_syn INTEGER CHECK (n_syn >= 0),
        ratio VARCHAR,
        value DOUBLE NOT NULL,
        unit VARCHAR NOT NULL CHECK (unit <> ''),
        delta DOUBLE,
        note VARCHAR
    )""",
])
MIGRATIONS.append([  # 14: how a generated open-set set was made (engine synthetic generate): pipeline and CLIP
    # folder hashes, prompt protocol, sampling settings, filter; NULL for imported sets and closed-set ones.
    "ALTER TABLE synthetic_sets ADD COLUMN provenance JSON",
])
MIGRATIONS.append([  # 15: appendix G's protocols as part of a run's setting: a synthetic base (G.1) and
    # zero-shot classification (G.2). Every run stored so far had a real base and learned all classes;
    # DuckDB fills the existing rows with the default.
    f"ALTER TABLE runs ADD COLUMN base VARCHAR DEFAULT '{REAL_BASE}'",
    f"ALTER TABLE runs ADD COLUMN task VARCHAR DEFAULT '{SUPERVISED}'",
])
SCHEMA_VERSION = len(MIGRATIONS)
