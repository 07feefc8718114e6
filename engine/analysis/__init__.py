"""Torch-free science: surfaces, equivalence tuples, Eq. 1 and their intervals."""
