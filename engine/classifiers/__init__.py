"""Classifiers: networks, their training recipes (torch-free) and the training loop."""
