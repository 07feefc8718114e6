"""The catalog: torch-free registries, one entry per thing, read by everything else.

A classifier, a dataset or a generator kind is one entry here; spec validation, the CLI's help and
choices, the store's checks and defaults, the dashboard's pickers and the docs' tables all read these
entries (docs/contributing.md says how to add one). Nothing here imports torch, numpy or the store.
"""
