"""The reference lines of the exact-regret task: what the regret reaches without black-box RL.

The regret of a generator G on the exact-regret task is its reverse KL to the oracle per token
(:mod:`seqgan_env.rewards.log_ratio`, docs/regret.md). Black-box RL estimates the gradient of
that objective from sampled sequences and their rewards; these lines say what the same budget
of sampled sequences buys by other means, so an algorithm's curve has something to be read
against:

* **exact per-state gradient** (:func:`exact_gradient_line`), the limit an RL gradient
  estimates: on prefixes sampled from G, descend ``sum_t KL(G(. | y_<t) || p_oracle(. | y_<t))``
  over the whole vocabulary (the teacher's full distribution at every visited state, as
  on-policy distillation reads it; Agarwal et al. 2024). Not black-box: it reads every
  probability of the oracle.
* **MLE on fresh oracle sequences** (:func:`fresh_mle_line`): the same number of sequences,
  drawn from the oracle instead of from G, fitted by maximum likelihood (what the data alone
  buys at that budget).
* **cooled MLE** (:func:`cooled_points`): G at other temperatures, no training.
* **best-of-n by the log ratio** (:func:`best_of_n_points_by_log_ratio`): of ``n`` samples of G
  keep the one D*'s logit ranks highest; its reverse KL is computed exactly over a pool.

Each point holds ``sequences`` (sampled so far), ``reverse_kl`` and ``forward_kl`` per token
with standard errors, NLL-oracle and entropy; a trained line's also ``wall_time``, the seconds since
it started (its evaluations included, as a comparison run's are), and ``train_time``, those spent in
its updates alone (what the regret report's time axis reads, as it reads a run's).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from seqgan_env.best_of_n import best_of_n_probabilities
from seqgan_env.divergence import ScoredSequences, per_token_divergence, score_sequences, sequence_log_probs
from seqgan_env.models import Generator, Oracle
from seqgan_env.precision import adam
from train.losses import token_cross_entropy


@dataclass
class RegretLineConfig:
    """The budget and the optimiser of a trained reference line."""

    sequences: int = 10_000
    """Sequences sampled in all (from G for the exact gradient, from the oracle for MLE)."""
    batch_size: int = 64
    """Sequences per update."""
    lr: float = 0.01
    """Adam's learning rate (MLE's of the paper, and what the exact gradient was measured with)."""
    evaluations: int = 5
    """Evaluations along the budget, plus one at the start."""
    eval_samples: int = 3_000
    """Samples of G behind each reverse KL."""
    seed: int = 0
    """Seed of the draws and the evaluations."""

    def check(self) -> None:
        if self.sequences < self.batch_size or self.batch_size < 1:
            raise ValueError(f"sequences ({self.sequences}) must be at least batch_size ({self.batch_size}) >= 1")
        if not self.lr > 0 or self.evaluations < 1 or self.eval_samples < 2:
            raise ValueError("lr must be > 0, evaluations >= 1 and eval_samples >= 2")


def regret_point(generator: Generator, oracle: Oracle, test: torch.Tensor | ScoredSequences, samples: int, seed: int,
                 temperature: float = 1.0) -> dict[str, float]:
    """Reverse KL (the regret per token) on fresh samples of G at ``temperature``, forward KL on ``test``
    (held-out oracle sequences, or those already scored by the oracle: :func:`score_sequences`, once per
    line), NLL-oracle and entropy: one pass of each model over each set."""
    rng = torch.Generator().manual_seed(10_007 + seed)
    test = _scored(oracle, test)
    drawn = generator.sample(samples, rng, temperature=temperature)
    own, tokens = sequence_log_probs(generator, drawn, temperature)
    theirs, _ = sequence_log_probs(oracle, drawn)
    test_own, _ = sequence_log_probs(generator, test.sequences, temperature)
    reverse = per_token_divergence(own, theirs, tokens)
    forward = per_token_divergence(test.log_probs, test_own, test.tokens)
    return {"reverse_kl": reverse.value, "reverse_kl_stderr": reverse.stderr, "forward_kl": forward.value,
            "forward_kl_stderr": forward.stderr, "nll_oracle": float(-theirs.sum() / tokens.sum()),
            "entropy": float(-own.sum() / tokens.sum())}


def _scored(oracle: Oracle, test: torch.Tensor | ScoredSequences) -> ScoredSequences:
    return test if isinstance(test, ScoredSequences) else score_sequences(oracle, test)


def _evaluation_steps(config: RegretLineConfig) -> set[int]:
    updates = config.sequences // config.batch_size
    return {round(updates * (i + 1) / config.evaluations) for i in range(config.evaluations)}


def exact_gradient_line(generator: Generator, oracle: Oracle, test: torch.Tensor | ScoredSequences,
                        config: RegretLineConfig) -> list[dict[str, Any]]:
    """Train a copy of G by the exact per-state gradient of the reverse KL; its curve of regret points."""
    oracle = oracle.eval()

    def loss(policy: Generator, rng: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            prefixes = policy.sample(config.batch_size, rng)  # the states G visits
            teacher = torch.log_softmax(oracle(prefixes).float(), dim=-1)
        own = torch.log_softmax(policy(prefixes).float(), dim=-1)
        # sum over the states of each sequence of KL(G(.|y_<t) || p_oracle(.|y_<t)), whole vocabulary
        return (own.exp() * (own - teacher)).sum(dim=-1).sum(dim=1).mean()

    return _trained_line(generator, oracle, test, config, loss, config.seed)


def fresh_mle_line(generator: Generator, oracle: Oracle, test: torch.Tensor | ScoredSequences,
                   config: RegretLineConfig) -> list[dict[str, Any]]:
    """Continue G's MLE on fresh oracle sequences, ``config.sequences`` of them; its curve of regret points."""

    def loss(model: Generator, rng: torch.Generator) -> torch.Tensor:
        with torch.no_grad():
            batch = oracle.sample(config.batch_size, rng)
        logits = model(batch)
        return token_cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.reshape(-1))

    return _trained_line(generator, oracle, test, config, loss, config.seed + 1)


def _trained_line(generator: Generator, oracle: Oracle, test: torch.Tensor | ScoredSequences,
                  config: RegretLineConfig, loss: Callable[[Generator, torch.Generator], torch.Tensor],
                  draw_seed: int) -> list[dict[str, Any]]:
    """Train a copy of G by Adam on ``loss(model, rng)`` for ``config.sequences`` sequences (gradients
    clipped at 5.0, the paper's MLE clip), evaluating it along the way; its curve of regret points."""
    config.check()
    model = copy.deepcopy(generator)
    test = _scored(oracle, test)  # the oracle's side of every forward KL, scored once
    optimizer = adam(model.parameters(), config.lr)
    rng = torch.Generator().manual_seed(draw_seed)
    started, training = time.perf_counter(), 0.0

    def point(sequences: int) -> dict[str, Any]:
        evaluated = {"sequences": sequences, **regret_point(model.eval(), oracle, test, config.eval_samples, config.seed),
                     "wall_time": time.perf_counter() - started, "train_time": training}
        model.train()
        return evaluated

    curve = [point(0)]
    evaluate_at = _evaluation_steps(config)
    for update in range(1, config.sequences // config.batch_size + 1):
        update_started = time.perf_counter()
        value = loss(model, rng)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
        training += time.perf_counter() - update_started
        if update in evaluate_at:
            curve.append(point(update * config.batch_size))
    return curve


def cooled_points(generator: Generator, oracle: Oracle, test: torch.Tensor | ScoredSequences, temperatures: Sequence[float],
                  samples: int, seed: int = 0) -> list[dict[str, Any]]:
    """G at each temperature: the regret the MLE generator has merely cooled (or warmed)."""
    test = _scored(oracle, test)
    return [{"temperature": float(t), **regret_point(generator, oracle, test, samples, seed, float(t))}
            for t in temperatures]


def best_of_n_points_by_log_ratio(generator: Generator, oracle: Oracle, ns: Sequence[int], samples: int,
                                  seed: int = 0) -> list[dict[str, Any]]:
    """Best-of-n of G ranked by D*'s logit ``log p_oracle - log G``: its reverse KL per token over a pool
    of ``samples`` draws (exact for the pool's empirical distribution; sequences sampled: ``n`` per output)."""
    rng = torch.Generator().manual_seed(7_919 + seed)
    drawn = generator.sample(samples, rng)
    log_pi, tokens = sequence_log_probs(generator, drawn)
    log_oracle, _ = sequence_log_probs(oracle, drawn)
    scores = log_oracle - log_pi
    points = []
    for n in ns:
        chosen = best_of_n_probabilities(scores, n)  # P_n of each pool member; pi's is 1 / samples
        kept = chosen > 0
        # log P_n(y) = log pi(y) + log(P_n / (1 / samples)) for the pool's empirical pi
        log_best = log_pi[kept] + (chosen[kept] * samples).log()
        per_token = float((chosen[kept] * tokens[kept]).sum())
        points.append({"n": int(n), "sequences": int(n),
                       "reverse_kl": float((chosen[kept] * (log_best - log_oracle[kept])).sum()) / per_token,
                       "nll_oracle": float(-(chosen * log_oracle).sum()) / per_token})
    return points


def gain(curve: list[dict[str, Any]]) -> float:
    """How much a curve lowered the regret from its start (nats per token; > 0 is better)."""
    return float(curve[0]["reverse_kl"] - curve[-1]["reverse_kl"])


__all__ = ["RegretLineConfig", "best_of_n_points_by_log_ratio", "cooled_points", "exact_gradient_line",
           "fresh_mle_line", "gain", "regret_point"]
