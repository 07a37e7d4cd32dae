"""Training: MLE and discriminator pretraining, the adversarial loop, the ``seqgan`` command."""
