"""Best-of-n: the training-free reference point of reward optimisation.

Draw ``n`` sequences from the generator pi and keep the one a scorer (D's P(real), the
Bayes-optimal D*, a control: any callable from ``(N, L)`` sequences to ``(N,)`` scores) rates
highest. Its KL to pi is often quoted as ``log n - (n - 1)/n`` (Stiennon et al. 2020), which
is exact only when no two draws can tie and an upper bound otherwise (Beirami et al. 2024,
"Theoretical guarantees on the best-of-n alignment policy"): :func:`kl_bound`.

The best-of-n distribution is computable from pi's distribution of scores alone. With
``G(s) = P(score < s)`` and ``E(s) = P(score = s)`` under pi, the chosen sequence has score
``s`` with probability ``(G + E)^n - G^n``, and among the sequences of that score it is
distributed as pi is (the first maximiser of exchangeable draws is a uniform pick of them)::

    P_n(y) = pi(y) * ((G + E)^n - G^n) / E        at s = score(y)

so the likelihood ratio depends on the score only, and :func:`best_of_n_kl` is exact over
any discrete distribution of scores: over every sequence of a tiny model with their
probabilities (:func:`exact_best_of_n_kl`), or over a sample of pi with equal weights (the
sampled estimate: the KL of best-of-n from that empirical distribution, which approaches
the true KL as the sample grows and never exceeds the bound).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from seqgan_env.divergence import all_sequences, sequence_log_probs
from seqgan_env.models.lstm import TokenLSTM

Scorer = Callable[[torch.Tensor], torch.Tensor]
"""Sequences ``(N, L)`` -> scores ``(N,)``; higher is better."""


@dataclass(frozen=True)
class BestOfN:
    """``draws`` best-of-n sequences and what they were chosen from."""

    sequences: torch.Tensor
    """``(draws, L)``: the highest-scoring sequence of each group of ``n``."""
    scores: torch.Tensor
    """``(draws,)``: their scores."""
    pool_scores: torch.Tensor
    """``(draws * n,)``: the scores of every sample of pi drawn (group ``i`` is rows ``i*n .. i*n+n-1``)."""


def kl_bound(n: int) -> float:
    """``log n - (n - 1)/n``: best-of-n's KL to pi without ties, an upper bound with them."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    return math.log(n) - (n - 1) / n


def best_of_n(generator: TokenLSTM, scorer: Scorer, n: int, draws: int, rng: torch.Generator | None = None,
              temperature: float = 1.0, batch_size: int = 4096) -> BestOfN:
    """Sample ``draws * n`` sequences of ``generator`` and keep each group of ``n``'s best
    (the first of equal bests). ``scorer`` is called on ``batch_size`` rows at a time."""
    if n < 1 or draws < 1:
        raise ValueError(f"n and draws must be at least 1, got n={n}, draws={draws}")
    pool = generator.sample(draws * n, rng, temperature=temperature)
    with torch.inference_mode():
        scores = torch.cat([torch.as_tensor(scorer(pool[i : i + batch_size])).reshape(-1).float()
                            for i in range(0, pool.shape[0], batch_size)])
    if scores.shape[0] != pool.shape[0]:
        raise ValueError(f"the scorer returned {scores.shape[0]} scores for {pool.shape[0]} sequences")
    best = scores.view(draws, n).argmax(dim=1)
    rows = torch.arange(draws, device=pool.device) * n + best.to(pool.device)
    return BestOfN(pool[rows], scores[rows.to(scores.device)], scores)


def best_of_n_probabilities(scores: torch.Tensor, n: int, weights: torch.Tensor | None = None) -> torch.Tensor:
    """P_n of each of ``N`` atoms with ``scores`` and probabilities ``weights`` under pi (``None``:
    equal weights, an empirical sample), ``(N,)`` float64."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    scores = scores.detach().double().reshape(-1)
    weights = torch.full_like(scores, 1.0 / scores.shape[0]) if weights is None else weights.detach().double()
    if weights.shape != scores.shape or bool((weights < 0).any()):
        raise ValueError("weights must be non-negative, one per score")
    weights = weights / weights.sum()
    values, classes = torch.unique(scores, return_inverse=True)  # ascending
    equal = torch.zeros_like(values).index_add_(0, classes, weights)
    below = (equal.cumsum(0) - equal).clamp(min=0.0)
    chosen = ((below + equal).clamp(max=1.0) ** n - below**n).clamp(min=0.0)
    return weights * (chosen / equal.clamp(min=1e-300))[classes]


def best_of_n_kl(scores: torch.Tensor, n: int, weights: torch.Tensor | None = None) -> float:
    """KL(best-of-n || pi) over atoms with ``scores`` and pi-probabilities ``weights`` (``None``:
    the empirical distribution of a sample of pi: the sampled estimate)."""
    scores = scores.reshape(-1)
    base = torch.full((scores.shape[0],), 1.0 / scores.shape[0], dtype=torch.float64) if weights is None \
        else weights.detach().double() / weights.sum()
    chosen = best_of_n_probabilities(scores, n, weights)
    kept = chosen > 0
    return float((chosen[kept] * (chosen[kept].log() - base.to(chosen.device)[kept].log())).sum())


def exact_best_of_n_kl(generator: TokenLSTM, scorer: Scorer, n: int, temperature: float = 1.0) -> float:
    """KL(best-of-n || pi) by enumerating every sequence of a tiny ``generator``."""
    space = all_sequences(generator.vocab_size, generator.seq_len, generator.device)
    log_probs, _ = sequence_log_probs(generator, space, temperature)
    with torch.inference_mode():
        scores = torch.as_tensor(scorer(space)).reshape(-1)
    return best_of_n_kl(scores, n, log_probs.exp())


__all__ = ["BestOfN", "Scorer", "best_of_n", "best_of_n_kl", "best_of_n_probabilities", "exact_best_of_n_kl",
           "kl_bound"]
