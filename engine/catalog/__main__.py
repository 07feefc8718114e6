"""`python -m engine.catalog`: the catalog's tables, as docs/catalog.md shows them."""
from engine.catalog.tables import markdown

print(markdown(), end="")
