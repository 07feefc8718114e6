"""Execution: planning runs, running them here, the queue worker, the Ray cluster, storing artifacts."""
