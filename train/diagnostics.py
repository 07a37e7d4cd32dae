"""Judge a discriminator file against a generator on sequences it never trained on (``seqgan evaluate``).

:func:`evaluate_discriminator` loads a saved discriminator (the paper's CNN, a
PrefixDiscriminator, or a learned density ratio, ``seqgan train --d-schedule density-ratio``'s,
then read against the generator judged; or ``"optimal"``, the Bayes-optimal D* of the oracle
against the generator) and reports :func:`train.adversarial.discriminator_diagnostics`: held-out accuracy,
ROC-AUC, Brier score, mean P(real) of each class and, with an oracle, the rank correlation of
D's logit with the true log ratio.
"""

from __future__ import annotations

from pathlib import Path

import torch

from seqgan_env.checkpoint import CheckpointError, load_checkpoint, load_model, model_from_payload
from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.rewards.density_ratio import DENSITY_RATIO_KIND, OptimalDiscriminator, load_density_ratio
from train.adversarial import discriminator_diagnostics


def evaluate_discriminator(discriminator: str | Path | torch.nn.Module, generator: str | Path | Generator,
                           oracle: Oracle | None = None, held_out: torch.Tensor | None = None,
                           count: int = 2_000, seed: int = 0) -> dict[str, float]:
    """Held-out metrics of ``discriminator`` against fresh samples of ``generator``.

    Args:
        discriminator: a saved discriminator's path (a run folder: its ``discriminator.pt``), a
            model, or ``"optimal"`` (D* of ``oracle`` against ``generator``: the ceiling). A
            density-ratio file's reference is ``generator``.
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
        discriminator = _load_discriminator(Path(discriminator), generator)
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


def _load_discriminator(path: Path, generator: Generator) -> torch.nn.Module:
    """A discriminator file (a folder: its ``discriminator.pt``); a density ratio reads ``generator``."""
    if path.is_dir():
        path = path / "discriminator.pt"
    payload = load_checkpoint(path)
    if payload.get("kind") == DENSITY_RATIO_KIND:
        config = payload.get("config") or {}
        if (config.get("vocab_size"), config.get("seq_len")) != (generator.vocab_size, generator.seq_len):
            raise ValueError(f"{str(path)!r}: the discriminator reads vocab {config.get('vocab_size')} x length "
                             f"{config.get('seq_len')}, the generator writes vocab {generator.vocab_size} x "
                             f"length {generator.seq_len}")
        return load_density_ratio(payload, generator)
    loaded = model_from_payload(payload, str(path))
    if not isinstance(loaded, (Discriminator, PrefixDiscriminator)):
        raise CheckpointError(f"{str(path)!r} holds a {type(loaded).__name__}, not a discriminator")
    return loaded
