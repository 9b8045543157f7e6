"""What every latent means: per-latent statistics, contexts, neighbours, logit lens and diagnosis from one pass
over an activation store (``dictlab features``)."""
