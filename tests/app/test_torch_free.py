"""The dashboard must start and draw every page without the training stack: a server for browsing
results should not need torch, diffusers, timm or scikit-learn (nor pay their import time)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "diffusers", "timm", "sklearn")
SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
pages = sorted(p.stem for p in __import__("pathlib").Path("app/views").glob("*.py"))
errors = {}
for page in pages:
    at = AppTest.from_file("app/main.py", default_timeout=120)
    at.switch_page(f"views/{page}.py")
    at.run()
    if at.exception:
        errors[page] = str(at.exception[0].message)
print(json.dumps({"pages": pages, "errors": errors,
                  "heavy": sorted(m for m in %r if m in sys.modules)}))
""" % (HEAVY,)


@pytest.mark.slow
def test_every_page_runs_without_importing_the_training_stack(paper_db):
    proc = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "EQUIV_DB": str(paper_db)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(out["pages"]) >= 7 and out["errors"] == {}
    assert out["heavy"] == [], f"the dashboard imported {out['heavy']}"
