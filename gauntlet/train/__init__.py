"""Training: inner loop, pseudo-gradients, outer step, model fingerprints."""
