"""Adding a classifier is one catalog entry: `engine run`, `engine queue add`, the Queue page and the docs'
table pick up an entry added at run time, with nothing else changed (a timm ResNet-18 here)."""
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from engine.catalog import classifiers
from engine.catalog.tables import markdown
from engine.cli import app
from store import runs as store_runs

ROOT = Path(__file__).resolve().parents[2]
ENTRY = classifiers.Classifier("test-resnet18", "Test-ResNet-18", 32, classifiers.cifar_recipe, timm="resnet18")


@pytest.fixture
def catalog_with_entry(monkeypatch):
    monkeypatch.setitem(classifiers.CLASSIFIERS, ENTRY.name, ENTRY)
    return ENTRY


def test_queue_add_and_the_docs_table_take_a_new_entry(catalog_with_entry, tmp_path):
    db = tmp_path / "s.duckdb"
    res = CliRunner().invoke(app, ["queue", "add", "--db", str(db), "--classifier", ENTRY.name, "--n-base", "20",
                                   "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["spec"]["classifier"] == ENTRY.name
    assert f"| `{ENTRY.name}` | {ENTRY.stored_name} | 32x32 | cifar_recipe | timm `resnet18` |" in markdown()


def test_the_queue_page_offers_a_new_entry(catalog_with_entry, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest
    db = tmp_path / "s.duckdb"
    store_runs.init_store(db)
    monkeypatch.setenv("EQUIV_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app" / "main.py"), default_timeout=60)
    at.switch_page("views/queue.py")
    at.run()
    assert ENTRY.name in at.selectbox(key="queue_classifier").options
    at.selectbox(key="queue_classifier").set_value(ENTRY.name).run()
    assert not at.exception and not at.error
    assert any(f"· {ENTRY.name} ·" in i.value for i in at.info)


@pytest.mark.slow
def test_engine_run_trains_and_stores_a_new_entry(catalog_with_entry, tmp_path):
    db = tmp_path / "s.duckdb"
    res = CliRunner().invoke(app, ["run", "--db", str(db), "--classifier", ENTRY.name, "--n-base", "20",
                                   "--added", "0", "--seeds", "1", "--recipe", "iterations=2",
                                   "--recipe", "batch_size=8", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    rows = store_runs.query_runs(db, source="engine")
    assert list(rows.classifier) == [ENTRY.stored_name]
    assert json.loads(rows.config.iloc[0])["recipe"]["input_size"] == 32
