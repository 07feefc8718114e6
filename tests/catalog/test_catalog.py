"""The catalog is the one place each name lives: every classifier, dataset, augmentation and traditional
augmentation name is written in exactly one product module, and everything else reads the entries."""
import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

from engine.catalog import classifiers, datasets, generators, vocab

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [p for folder in ("engine", "store", "app") for p in sorted((ROOT / folder).rglob("*.py"))]


def names() -> dict[str, Path]:
    """Each name and the catalog module that owns it."""
    owned = {}
    for c in classifiers.CLASSIFIERS.values():
        owned[c.name] = owned[c.stored_name] = ROOT / "engine/catalog/classifiers.py"
    for d in datasets.DATASETS.values():
        if d.family is None:
            owned[d.form] = ROOT / "engine/catalog/datasets.py"
        if d.stored_name:
            owned[d.stored_name] = ROOT / "engine/catalog/datasets.py"
    for flag, info in datasets.MEDMNIST.items():
        owned[flag] = owned[info["stored_name"]] = ROOT / "engine/catalog/datasets.py"
    for name in (*vocab.AUGMENTATIONS, *vocab.TRADITIONAL):
        owned[name] = ROOT / "engine/catalog/vocab.py"
    return owned


def string_literals(path: Path) -> list[str]:
    """The text of every string literal in a module (comments are not code; f-strings' text parts count)."""
    out = []
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    for tok in tokens:
        if tok.type == tokenize.STRING:
            out.append(tok.string)
        elif tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
            out.append(tok.string)
    return out


def spelled(name: str, literals: list[str]) -> bool:
    """A literal that is the name, or holds it quoted (SQL inside Python, a quoted example)."""
    quoted = re.compile(r"""(?<![\w+/-])['"]""" + re.escape(name) + r"""['"](?![\w+/-])""")
    for text in literals:
        try:
            value = ast.literal_eval(text) if not text.lstrip("rbuRBU").startswith(("f", "F")) else None
        except (ValueError, SyntaxError):
            value = None
        if value == name or (isinstance(value, str) and quoted.search(value)) or (value is None and quoted.search(text)):
            return True
    return False


# A recipe field named like the augmentation it switches (Recipe.flip): its module spells the field's name.
FIELD_NAMES = {"flip": ROOT / "engine/catalog/recipes.py"}


def test_every_name_is_written_in_exactly_one_product_module():
    literals = {p: string_literals(p) for p in PRODUCT}
    problems = []
    for name, owner in names().items():
        where = [p for p, lits in literals.items() if spelled(name, lits) and p != FIELD_NAMES.get(name)]
        if where != [owner]:
            problems.append(f"{name!r}: {', '.join(str(p.relative_to(ROOT)) for p in where) or 'nowhere'}")
    assert not problems, "names written outside their catalog module:\n" + "\n".join(problems)


def test_entries_agree_with_themselves():
    """Input sizes are stated once (the recipe takes the entry's), defaults point at real entries, and
    every generator kind's first preset validates with no options."""
    for c in classifiers.CLASSIFIERS.values():
        assert bool(c.timm) != bool(c.network), c.name
        for d in datasets.DATASETS.values():
            recipe = c.default_recipe(d.stored_name or "x", 100, 100, 1000)
            assert recipe.input_size == c.input_size
    for d in datasets.DATASETS.values():
        assert d.default_classifier in classifiers.CLASSIFIERS
        assert d.default_traditional in vocab.TRADITIONAL
        module, _, function = d.loader.partition(":")
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), d.loader
    for g in generators.GENERATORS.values():
        g.check(g.presets[0], {})


@pytest.mark.parametrize("name", ["no-such-classifier-ever", "", "RESNET110 "])
def test_unknown_classifiers_are_named_in_one_line(name):
    from engine.messages import InputError
    with pytest.raises(InputError, match="unknown classifier"):
        classifiers.classifier(name)


def test_docs_catalog_page_is_the_catalog():
    """docs/catalog.md is generated from the entries (`python -m engine.catalog`): it cannot drift from them."""
    from engine.catalog.tables import markdown
    page = (ROOT / "docs/catalog.md").read_text()
    start = page.index("-->\n", page.index("<!-- catalog:")) + 4
    assert page[start:page.index("<!-- /catalog -->")] == markdown()
