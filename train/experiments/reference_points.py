"""The comparison's training-free reference points on the gold-against-KL axes: best-of-n and the tempered MLE.

Both are computed on the base's MLE generator pi after the runs (:func:`reference_points`), once
per comparison folder (cached in ``reference_points.json`` with the settings they were made with).

**Best-of-n** (:mod:`seqgan_env.best_of_n`): for each reward of the comparison that scores a
whole sequence (:func:`sequence_scorers`: a learned D's P(real), the Bayes-optimal D* of the
oracle against pi, the oracle's log-likelihood, the controls), keep the highest-scoring of
``n`` draws of pi, for every ``n`` of ``config.best_of_n``. Rather than keep the best of each
group of a finite pool (``pool / n`` survivors: 16 at n = 1,024 of 16,384), every quantity is
the exact expectation under the best-of-n distribution *of the pool's empirical distribution*
(:func:`~seqgan_env.best_of_n.best_of_n_probabilities`): the average over every way of
grouping the pool, from all of it. That distribution's KL to the pool is the sampled KL
estimate (biased low when ``n`` nears the pool size; never above the bound ``log n - (n-1)/n``,
which is shown beside it). Under it:

* NLL-oracle: ``E_n[-log p_oracle(y)] / E_n[tokens]`` per token;
* entropy per token: ``(E_n[-log pi(y)] - KL) / E_n[tokens]``, as ``H(P_n) = E_n[-log pi] - KL(P_n || pi)``;
* proxy: ``E_n[score]`` (P(real) for the Ds, D*'s P(real) ``sigmoid(log ratio)`` for D*);
* reverse KL to the oracle per token: ``(E_n[log P_n] - E_n[log p_oracle]) / E_n[tokens]`` with
  ``E_n[log P_n] = E_n[log pi] + KL``, i.e. NLL-oracle minus the entropy above, exactly;
* forward KL: **not available** (NaN), for the reason NLL-test is not (below);
* NLL-test: **not available** (NaN). Best-of-n has no model of its own to score the test set
  with: its likelihood of a test sequence is pi's times ``n F(s)^(n-1)`` at the sequence's score
  ``s``, which hangs on the upper tail of the score distribution a finite pool cannot estimate.

The ``random`` control draws a fresh score per sequence: its choice is independent of the
sequence, so its best-of-n *is* pi and its KL is exactly 0 (the sampled estimate, which assumes
a score that is a function of the sequence, would wrongly show the bound); the ``constant``
control's scores all tie, and the first draw is kept: pi again, KL 0 by the same formula.

**Tempered MLE**: pi sampled at each temperature of ``config.kl_temperatures``, its
NLL-oracle, entropy, reverse KL to the oracle per token and KL per sequence to the untempered pi
(all on the same samples, :mod:`seqgan_env.divergence`), NLL-test and forward KL per token of the
tempered model on the held-out set. Per seed, as the runs are, so that a run can be compared with it at the same KL.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seqgan_env.best_of_n import best_of_n_kl, best_of_n_probabilities, kl_bound
from seqgan_env.checkpoint import load_model
from seqgan_env.divergence import kl_from_log_probs, per_token_divergence, score_sequences, sequence_log_probs
from seqgan_env.models import Generator, Oracle
from train.experiments.base import base_models
from train.experiments.config import CompareConfig
from train.experiments.rewards import get_comparison_reward
from train.experiments.runs import write_json

CACHE_FILE = "reference_points.json"
METRICS_VERSION = 2
"""What the points hold (2: the divergences to the oracle too): a cache with fewer is redone."""
OPTIMAL = "optimal"
"""The best-of-n row name of D* (oracle against the MLE generator), computed whatever the rewards,
when no reward of the comparison is D*'s (whose name it then takes)."""
OPTIMAL_KINDS = ("optimal", "optimal-terminal")
"""Env reward kinds whose whole-sequence score is D*'s."""


@dataclass(frozen=True)
class PoolScores:
    """What the scorers read of a pool of samples of pi: computed once per seed."""

    sequences: torch.Tensor
    """``(N, L)`` samples of pi."""
    log_pi: torch.Tensor
    """``(N,)`` float64 ``log pi(y)``."""
    log_oracle: torch.Tensor
    """``(N,)`` float64 ``log p_oracle(y)``."""
    tokens: torch.Tensor
    """``(N,)`` float64 tokens of each sequence."""


@dataclass(frozen=True)
class SequenceScorer:
    """A whole-sequence score of one reward, for best-of-n."""

    label: str
    """What the tables call it."""
    rank: Callable[[PoolScores, torch.Generator], torch.Tensor]
    """The score best-of-n maximises, ``(N,)`` (any order-preserving form: D*'s log ratio, not its
    P(real), which saturates at 1 in float32 and would make ties)."""
    proxy: Callable[[torch.Tensor], torch.Tensor] = lambda scores: scores
    """The proxy reward reported from the ranking score (D*: its P(real))."""
    independent: bool = False
    """The score does not depend on the sequence (the random control): best-of-n is pi, KL 0."""
    ceiling: bool = False
    """The score is the gold itself (the oracle's likelihood): a ceiling, not a competitor."""


def load_discriminator(base: Path, entry: Any, generator: Generator, device: str) -> Any:
    """The base's D of a reward, as its runs load it: through ``base.load_reward_discriminator``
    where the base module has it (a density-ratio D is rebuilt around the MLE generator), else
    as a saved model."""
    from train.experiments import base as base_module

    loader = getattr(base_module, "load_reward_discriminator", None)
    if loader is not None:
        return loader(base, entry, generator, device)
    return load_model(base / entry.discriminator_file, entry.checkpoint_kind, device=device).eval()


def _discriminator_rank(model: Any) -> Callable[[PoolScores, torch.Generator], torch.Tensor]:
    return lambda pool, _rng: model.score(pool.sequences.to(model_device(model))).double().cpu()


def model_device(model: Any) -> torch.device:
    return next(model.parameters()).device


def sequence_scorers(base: Path, config: CompareConfig, generator: Generator | None = None,
                     device: str = "cpu") -> tuple[dict[str, SequenceScorer], list[str]]:
    """The whole-sequence scorers of ``config``'s rewards and baselines (by reward name), D* always,
    and a note for each reward left out (one that scores no whole sequence). ``generator``: the
    base's MLE generator (the reference of a density-ratio D), read from ``base`` if not given."""
    scorers: dict[str, SequenceScorer] = {}
    skipped = []
    # D*'s row takes the name of the comparison's D* reward, where it has one, so its runs and its
    # best-of-n share a panel.
    optimal = next((name for name in (*config.rewards, *config.baselines)
                    if get_comparison_reward(name).env_reward in OPTIMAL_KINDS), OPTIMAL)
    for name in (*config.rewards, *config.baselines):
        entry = get_comparison_reward(name)
        if entry.discriminator_file is not None:
            if generator is None:
                generator = base_models(base, device)[0].eval()
            model = load_discriminator(base, entry, generator, device)
            scorers[name] = SequenceScorer(f"{name}: its D's P(real)", _discriminator_rank(model))
        elif entry.env_reward in OPTIMAL_KINDS:
            continue  # D*, added below under its own name
        elif entry.env_reward == "oracle":
            scorers[name] = SequenceScorer("oracle log-likelihood (the gold itself)",
                                           lambda pool, _rng: pool.log_oracle.clone(), ceiling=True)
        elif entry.env_reward == "constant":
            scorers[name] = SequenceScorer("constant control", lambda pool, _rng: torch.ones_like(pool.log_pi))
        elif entry.env_reward == "random":
            scorers[name] = SequenceScorer(
                "random control", lambda pool, rng: torch.rand(pool.log_pi.shape[0], generator=rng).double(),
                independent=True)
        else:
            skipped.append(f"{name}: its reward ({entry.env_reward}) scores no whole sequence")
    scorers[optimal] = SequenceScorer("D* (oracle vs the MLE generator): P(real)",
                                      lambda pool, _rng: pool.log_oracle - pool.log_pi, proxy=torch.sigmoid)
    return scorers, skipped


def best_of_n_point(pool: PoolScores, scores: torch.Tensor, n: int, proxy: torch.Tensor,
                    independent: bool = False) -> dict[str, float]:
    """NLL-oracle, entropy, proxy and both KLs of best-of-``n`` over the pool's empirical distribution."""
    weights = torch.full_like(scores, 1.0 / scores.shape[0]) if independent else best_of_n_probabilities(scores, n)
    weights = weights.to(pool.log_pi.device)
    kl = 0.0 if independent else best_of_n_kl(scores, n)
    tokens = float((weights * pool.tokens).sum())
    nll_oracle = float(-(weights * pool.log_oracle).sum()) / tokens
    entropy = (float(-(weights * pool.log_pi).sum()) - kl) / tokens
    return {"n": n, "kl_bound": kl_bound(n), "kl": kl, "nll_oracle": nll_oracle, "entropy": entropy,
            "reverse_kl": nll_oracle - entropy, "forward_kl": math.nan,
            "proxy": float((weights * proxy.to(weights.device)).sum()), "nll_test": math.nan}


def pool_scores(generator: Generator, oracle: Oracle, samples: int, rng: torch.Generator) -> PoolScores:
    """Draw ``samples`` sequences of ``generator`` and their log-likelihoods under it and the oracle."""
    sequences = generator.sample(samples, rng)
    log_pi, tokens = sequence_log_probs(generator, sequences)
    log_oracle, _ = sequence_log_probs(oracle, sequences.to(oracle.device))
    return PoolScores(sequences, log_pi.cpu(), log_oracle.cpu(), tokens.cpu())


def best_of_n_points(generator: Generator, oracle: Oracle, scorers: dict[str, SequenceScorer],
                     ns: tuple[int, ...], samples: int, seed: int) -> list[dict[str, Any]]:
    """One point per scorer and ``n`` on one pool of ``samples`` draws (seed ``seed``)."""
    rng = torch.Generator().manual_seed(7919 + seed)
    pool = pool_scores(generator, oracle, samples, rng)
    points = []
    for name, scorer in scorers.items():
        with torch.inference_mode():
            scores = scorer.rank(pool, rng).reshape(-1).double().cpu()
        proxy = scorer.proxy(scores)
        for n in ns:
            points.append({"reward": name, "label": scorer.label, "seed": seed, "ceiling": scorer.ceiling,
                           **best_of_n_point(pool, scores, n, proxy, scorer.independent)})
    return points


def tempered_points(generator: Generator, oracle: Oracle, test: torch.Tensor, temperatures: Sequence[float],
                    samples: int, seed: int, kl: bool = True) -> list[dict[str, float]]:
    """NLL-oracle and NLL-test of the generator at each temperature, on one sampling seed, and (``kl``)
    its entropy, KL to the untempered generator and divergences to the oracle per token
    (``reverse_kl`` on the same samples, ``forward_kl`` on ``test``), each with its standard error."""
    points = []
    test_scores = score_sequences(oracle, test) if kl else None  # the same for every temperature
    for temperature in temperatures:
        drawn = generator.sample(samples, torch.Generator().manual_seed(seed), temperature=temperature)
        gold, tokens = sequence_log_probs(oracle, drawn)
        log_test, test_tokens = sequence_log_probs(generator, test, temperature)
        point = {"temperature": temperature, "seed": seed,
                 "nll_oracle": float(-gold.sum() / tokens.sum().clamp(min=1.0)),
                 "nll_test": float(-log_test.sum() / test_tokens.sum().clamp(min=1.0))}
        if kl:
            own, _ = sequence_log_probs(generator, drawn, temperature)
            untempered, _ = sequence_log_probs(generator, drawn)
            estimate = kl_from_log_probs(own, untempered, tokens)
            reverse = per_token_divergence(own, gold, tokens)
            forward = per_token_divergence(test_scores.log_probs, log_test, test_tokens)
            point.update(entropy=estimate.entropy, kl=estimate.kl, kl_stderr=estimate.kl_stderr,
                         reverse_kl=reverse.value, reverse_kl_stderr=reverse.stderr,
                         forward_kl=forward.value, forward_kl_stderr=forward.stderr)
        points.append(point)
    return points


def reference_settings(config: CompareConfig) -> dict[str, Any]:
    """The settings the reference points depend on (a cache made with others is redone)."""
    return {"best_of_n": list(config.best_of_n), "best_of_n_samples": config.best_of_n_samples,
            "kl_temperatures": list(config.kl_temperatures), "eval_samples": config.eval_samples,
            "seeds": list(config.seeds), "rewards": list(config.rewards), "baselines": list(config.baselines),
            "metrics": METRICS_VERSION}


def reference_points(root: Path, config: CompareConfig, oracle: Oracle, device: str = "cpu") -> dict[str, Any]:
    """Best-of-n and tempered-MLE points of the base in ``root/base``, per seed (cached in ``root``).

    Returns ``{"best_of_n": [...], "tempered": [...], "notes": [...]}``, one dict per point and seed.
    """
    cache = root / CACHE_FILE
    settings = reference_settings(config)
    if cache.exists():
        held = json.loads(cache.read_text())
        if held.get("settings") == settings:
            return held
    generator, _, test, _ = base_models(root / "base", device)
    generator.eval()
    scorers, notes = sequence_scorers(root / "base", config, generator, device)
    out: dict[str, Any] = {"settings": settings, "best_of_n": [], "tempered": [], "notes": notes}
    for seed in config.seeds:
        if config.best_of_n:
            out["best_of_n"] += best_of_n_points(generator, oracle, scorers, config.best_of_n,
                                                 config.best_of_n_samples, seed)
        out["tempered"] += tempered_points(generator, oracle, test, config.kl_temperatures, config.eval_samples, seed)
    write_json(cache, _finite_or_none(out))
    return out


def _finite_or_none(data: Any) -> Any:
    """NaN as JSON ``null`` (strict JSON has no NaN); read back by :func:`as_float`."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite_or_none(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_finite_or_none(v) for v in data]
    return data


def as_float(value: Any) -> float:
    """A JSON number or ``null`` (NaN) as a float."""
    return math.nan if value is None else float(value)
