"""The store: a DuckDB file of runs, generators, synthetic sets and jobs."""
