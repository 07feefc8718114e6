"""Results that leave the dashboard: a self-contained HTML report of fitted settings (html.py), the
paper's data figures regenerated from the store (paper_figures.py), their Plotly builders
(figures.py), static export (export.py) and what a reader needs to trace a number back (provenance.py).

Torch-free like engine.analysis: the dashboard can build a report with the same code the CLI runs."""
