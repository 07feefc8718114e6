"""`python -m engine.catalog`: print the catalog's tables; `--write` puts them into docs/catalog.md (between
its markers) after an entry is added."""
import sys
from pathlib import Path

from engine.catalog.tables import markdown

if "--write" in sys.argv[1:]:
    page = Path(__file__).resolve().parents[2] / "docs" / "catalog.md"
    text = page.read_text()
    start = text.index("-->\n", text.index("<!-- catalog:")) + 4
    page.write_text(text[:start] + markdown() + text[text.index("<!-- /catalog -->"):])
    print(f"wrote {page}")
else:
    print(markdown(), end="")
