"""The catalog as Markdown tables: docs/catalog.md holds them (tests/catalog/test_catalog.py checks that the
page matches the catalog), and `python -m engine.catalog` prints them after a new entry."""
from __future__ import annotations

from engine.catalog import classifiers, datasets, generators, vocab


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def markdown() -> str:
    c = _table(["--classifier", "stored as", "input size", "recipe", "built from"],
               [[f"`{e.name}`", e.stored_name, f"{e.input_size}x{e.input_size}", e.recipe.__name__,
                 f"timm `{e.timm}`" if e.timm else f"`{e.network}`"] for e in classifiers.CLASSIFIERS.values()])
    d = _table(["--dataset", "stored as", "default root", "n_total (tau)", "default classifier",
                "traditional augmentation", "what"],
               [[f"`{k.form}`", k.stored_name or "from the argument", f"`{k.default_root}`" if k.default_root else "",
                 f"{k.n_total:,}" if k.n_total else "its train split", k.default_classifier, k.default_traditional,
                 k.about] for k in datasets.DATASETS.values()])
    m = _table(["medmnist flag", "stored as", "n_total (tau)", "classes"],
               [[f"`{flag}`", info["stored_name"], f"{info['n_total']:,}", ", ".join(info["classes"])]
                for flag, info in datasets.MEDMNIST.items()])
    g = _table(["--generator", "stored as", "presets (first: default)", "--generator-option", "what"],
               [[f"`{k.key}`", f"{k.name}-<preset>", ", ".join(k.presets), ", ".join(k.options), k.about]
                for k in generators.GENERATORS.values()])
    v = _table(["vocabulary", "names"], [["augmentations", ", ".join(vocab.AUGMENTATIONS)],
                                          ["traditional augmentations", ", ".join(vocab.TRADITIONAL)],
                                          ["sources", ", ".join(vocab.SOURCES)],
                                          ["quality levels", ", ".join(vocab.QUALITY_LEVELS)]])
    return f"## Classifiers\n\n{c}\n\n## Datasets\n\n{d}\n\nMedMNIST sets the paper measured:\n\n{m}\n\n## Closed-set generators\n\n{g}\n\n## Vocabulary\n\n{v}\n"
