"""Judge a discriminator file against a generator on sequences it never trained on (``seqgan evaluate``).

:func:`evaluate_discriminator` loads a saved discriminator (the paper's CNN or a
PrefixDiscriminator; or ``"optimal"``, the Bayes-optimal D* of the oracle against the
generator) and reports :func:`train.adversarial.discriminator_diagnostics`: held-out accuracy,
ROC-AUC, Brier score, mean P(real) of each class and, with an oracle, the rank correlation of
D's logit with the true log ratio.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqgan_env.checkpoint import CheckpointError, load_model
from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.optimal import OptimalDiscriminator
from train.adversarial import discriminator_diagnostics


def evaluate_discriminator(discriminator: str | Path | torch.nn.Module, generator: str | Path | Generator,
                           oracle: Oracle | None = None, held_out: torch.Tensor | None = None,
                           count: int = 2_000, seed: int = 0) -> dict[str, float]:
    """Held-out metrics of ``discriminator`` against fresh samples of ``generator``.

    Args:
        discriminator: a saved discriminator's path, a model, or ``"optimal"`` (D* of ``oracle``
            against ``generator``: the ceiling).
        generator: a saved generator's path or a Generator.
        oracle: real sequences are its fresh samples (synthetic data).
        held_out: else rows of this held-out split (text): sequences D never trained on.
        count: real and generated sequences, each.
        seed: seed of the samples.

    Returns:
        ``d_heldout_accuracy``, ``d_heldout_auc``, ``d_heldout_brier``, ``d_heldout_mean_p_real``,
        ``d_heldout_mean_p_fake`` and, with an oracle, ``d_heldout_log_ratio_spearman``; ``count``.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    if oracle is None and held_out is None:
        raise ValueError("judging a discriminator needs real sequences it never trained on: an oracle "
                         "(fresh samples) or a held-out split")
    if isinstance(generator, (str, Path)):
        generator = load_model(generator, "generator")
    if isinstance(discriminator, str) and discriminator == "optimal":
        discriminator = OptimalDiscriminator(oracle, generator)
    elif isinstance(discriminator, (str, Path)):
        loaded = load_model(discriminator)
        if not isinstance(loaded, (Discriminator, PrefixDiscriminator)):
            raise CheckpointError(f"{str(discriminator)!r} holds a {type(loaded).__name__}, not a discriminator")
        discriminator = loaded
    if (discriminator.vocab_size, discriminator.seq_len) != (generator.vocab_size, generator.seq_len):
        raise ValueError(f"the discriminator reads vocab {discriminator.vocab_size} x length {discriminator.seq_len}, "
                         f"the generator writes vocab {generator.vocab_size} x length {generator.seq_len}")
    if oracle is not None and (oracle.vocab_size, oracle.seq_len) != (generator.vocab_size, generator.seq_len):
        raise ValueError(f"the oracle writes vocab {oracle.vocab_size} x length {oracle.seq_len}, the generator "
                         f"vocab {generator.vocab_size} x length {generator.seq_len}")
    source = oracle if oracle is not None else held_out
    metrics = discriminator_diagnostics(discriminator.eval(), generator, source, count,
                                        torch.Generator().manual_seed(seed))
    return {**metrics, "count": float(count)}
