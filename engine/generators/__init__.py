"""Closed-set generators: trained on the base set only, sampled into synthetic sets."""
