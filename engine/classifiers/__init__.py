"""Classifiers: networks and the training loop (their recipes are the catalog's: engine.catalog.recipes)."""
