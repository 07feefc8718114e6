"""The engine: datasets, classifiers, generators, studies, and the `engine` CLI."""
