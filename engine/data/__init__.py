"""Data: the loaders (local files only), the Dataset they return, ImageNet subsets, base subsets."""
