"""Held-out diagnostics of a discriminator: what it tells apart on sequences it never trained on.

A discriminator's accuracy on its own training positives measures memory: the paper's CNN,
after the ``cpu`` preset, calls 94.7% of its 10,000 training sequences real and 24.5% of
held-out oracle sequences. What its reward can tell the generator is measured on *held-out*
real sequences (fresh oracle samples, or the held-out split of a text corpus) against fresh
samples of the current generator, equally many of each:

* ``accuracy``: share classified right at P(real) = 0.5;
* ``auc``: ROC-AUC, the probability that a real sequence scores above a generated one (ties
  count one half): the Mann-Whitney U statistic over the two sets' sizes, from average ranks;
* ``brier``: mean squared error of P(real) against the labels (calibration and sharpness;
  0.25 for a constant 0.5);
* ``mean_p_real`` and ``mean_p_fake``: mean P(real) of each set;
* ``log_ratio_spearman`` (when the oracle is known): Spearman's rank correlation between D's
  logit and the true log ratio ``log p_oracle(x) - log p_G(x)``, the logit of the
  Bayes-optimal discriminator (:class:`~seqgan_env.rewards.density_ratio.OptimalDiscriminator`): 1 for a D
  that orders sequences as D* does.
"""

from __future__ import annotations

import torch

from seqgan_env.models.discriminator import Discriminator
from seqgan_env.models.lstm import TokenLSTM
from seqgan_env.models.oracle import Oracle
from seqgan_env.models.prefix_discriminator import PrefixDiscriminator
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator, OptimalDiscriminator


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 1..n of a 1-D tensor, tied values sharing their mean rank, float64."""
    values = values.detach().double().flatten().cpu()
    order = torch.argsort(values)
    sorted_values = values[order]
    # Runs of equal values: each gets the mean of the ranks it spans.
    starts = torch.ones_like(sorted_values, dtype=torch.bool)
    starts[1:] = sorted_values[1:] != sorted_values[:-1]
    run = torch.cumsum(starts.long(), 0) - 1
    positions = torch.arange(1, values.numel() + 1, dtype=torch.float64)
    run_sum = torch.zeros(int(run[-1]) + 1 if values.numel() else 0, dtype=torch.float64).index_add_(0, run, positions)
    run_count = torch.bincount(run).double()
    ranks = torch.empty_like(values)
    ranks[order] = (run_sum / run_count)[run]
    return ranks


def roc_auc(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> float:
    """P(score of a real row > score of a generated row) + half the ties' probability."""
    n_real, n_fake = real_scores.numel(), fake_scores.numel()
    if not n_real or not n_fake:
        raise ValueError(f"ROC-AUC needs rows of both classes, got {n_real} real and {n_fake} generated")
    ranks = average_ranks(torch.cat([real_scores.flatten().cpu(), fake_scores.flatten().cpu()]))
    u_statistic = float(ranks[:n_real].sum()) - n_real * (n_real + 1) / 2
    return u_statistic / (n_real * n_fake)


def spearman(x: torch.Tensor, y: torch.Tensor) -> float:
    """Spearman's rank correlation (Pearson's of the average ranks); NaN if either is constant."""
    if x.numel() != y.numel() or x.numel() < 2:
        raise ValueError(f"Spearman's correlation needs two series of equal length >= 2, got {x.numel()} and {y.numel()}")
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denominator = float(torch.sqrt((rx * rx).sum() * (ry * ry).sum()))
    return float((rx * ry).sum()) / denominator if denominator > 0 else float("nan")


@torch.inference_mode()
def discriminator_logits(discriminator: torch.nn.Module, tokens: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """D's logit of P(real) for each whole sequence, ``(B,)`` float32 on the CPU, dropout off.

    The logit, not P(real): a confident D's probabilities round to exactly 0 or 1 in float32,
    which would tie sequences that its logits still order."""
    if isinstance(discriminator, DensityRatioDiscriminator):
        return discriminator.log_ratio(tokens).float().cpu()
    if not isinstance(discriminator, (Discriminator, PrefixDiscriminator)):
        raise TypeError(f"expected a seqgan_env discriminator, got {type(discriminator).__name__}")
    was_training = discriminator.training
    discriminator.eval()
    out = []
    try:
        for start in range(0, tokens.shape[0], batch_size):
            chunk = tokens[start : start + batch_size].to(discriminator.device)
            logits = discriminator(chunk).float()
            if isinstance(discriminator, PrefixDiscriminator):  # the whole sequence: its last token's prefix
                last = ((chunk != discriminator.pad_token).sum(dim=1) - 1).clamp(min=0)
                out.append(logits.gather(1, last.unsqueeze(1)).squeeze(1).cpu())
            else:
                out.append((logits[:, 1] - logits[:, 0]).cpu())
    finally:
        discriminator.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def held_out_metrics(discriminator: torch.nn.Module, real: torch.Tensor, fake: torch.Tensor,
                     oracle: Oracle | None = None, generator: TokenLSTM | None = None) -> dict[str, float]:
    """Accuracy, ROC-AUC, Brier score and mean P(real) of ``discriminator`` on held-out ``real``
    sequences against ``fake`` ones (see the module docstring); with ``oracle`` and the
    ``generator`` that wrote ``fake``, also ``log_ratio_spearman``.

    ``real`` must be sequences D never trained on: fresh oracle samples, or a held-out split.
    """
    if not real.shape[0] or not fake.shape[0]:
        raise ValueError(f"held-out metrics need real and generated sequences, got {real.shape[0]} and {fake.shape[0]}")
    real_logits = discriminator_logits(discriminator, real)
    fake_logits = discriminator_logits(discriminator, fake)
    real_p, fake_p = torch.sigmoid(real_logits.double()), torch.sigmoid(fake_logits.double())
    count = real_p.numel() + fake_p.numel()
    out = {
        "accuracy": (int((real_logits > 0).sum()) + int((fake_logits <= 0).sum())) / count,
        "auc": roc_auc(real_logits, fake_logits),
        "brier": (float(((1.0 - real_p) ** 2).sum()) + float((fake_p**2).sum())) / count,
        "mean_p_real": float(real_p.mean()),
        "mean_p_fake": float(fake_p.mean()),
    }
    if oracle is not None and generator is not None:
        tokens = torch.cat([real.to(generator.device), fake.to(generator.device)])
        with torch.no_grad():
            truth = OptimalDiscriminator(oracle, generator).log_ratio(tokens).cpu()
        out["log_ratio_spearman"] = spearman(torch.cat([real_logits, fake_logits]), truth)
    return out


def held_out_real(count: int, rng: torch.Generator, oracle: Oracle | None = None,
                  held_out: torch.Tensor | None = None) -> torch.Tensor:
    """``count`` real sequences no discriminator trained on: fresh oracle samples when there is an
    oracle, else ``count`` rows of the ``held_out`` split drawn without replacement (all of them
    if it has fewer)."""
    if oracle is not None:
        return oracle.sample(count, rng)
    if held_out is None or not held_out.shape[0]:
        raise ValueError("held-out real sequences need an oracle or a non-empty held-out split")
    if held_out.shape[0] <= count:
        return held_out
    return held_out[torch.randperm(held_out.shape[0], generator=rng)[:count]]
