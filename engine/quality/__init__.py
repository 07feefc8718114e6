"""Quality of synthetic sets: FID/IS, reference-classifier FD, domain classifier, diversity, t-SNE."""
