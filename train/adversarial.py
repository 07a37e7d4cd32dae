"""The adversarial phase: g-steps with any agent, D retrained between them.

Each step: the agent plays one episode in each of the vector env's rows (the env pays the
Monte Carlo discriminator reward), learns from them, the env's rollout policy follows the
agent's, and D is retrained on fresh generator samples versus real data.

Every step's statistics include what RL users look for first: ``env_steps_per_s``
(generated tokens per second of the whole step), ``policy_kl`` (the policy's mean KL divergence
to its previous self over the states the update learned from) and ``policy_entropy`` (the
update's mean next-token entropy): an agent reports them as ``kl`` and ``entropy``, renamed here
so that an evaluation's ``kl`` (to the MLE generator) and ``entropy`` on the same row do not
overwrite them; ``mean_reward``
and, for REINFORCE, ``grad_norm`` (SB3 does not report it).
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

import seqgan_env
from agents.base import Agent, collect_episodes, policy_kl
from seqgan_env.checkpoint import load_model
from seqgan_env.diagnostics import held_out_metrics, held_out_real
from seqgan_env.divergence import (
    ScoredSequences,
    kl_from_log_probs,
    per_token_divergence,
    score_sequences,
    sequence_log_probs,
)
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.precision import adam
from seqgan_env.rewards import resolve_dtype
from train.pretrain import DiscriminatorSchedule, train_discriminator


@dataclass
class AdversarialConfig:
    """Schedule of the adversarial phase (defaults: the paper's)."""

    steps: int = 200
    """Generator updates (adversarial epochs in the paper's figure)."""
    batch_size: int = 64
    """Episodes (sequences) per generator update; the vector env's ``num_envs``."""
    num_rollouts: int = 16
    """Monte Carlo completions per step of the reward."""
    d_rounds: int = 5
    """Draws of fresh negatives after each generator update."""
    d_epochs: int = 3
    """Epochs over each draw."""
    d_negatives: int = 10_000
    """Generator samples per draw."""
    d_target_accuracy: float | None = None
    """Retrain D after a generator update only while its accuracy on ``d_negatives`` fresh
    samples and as many *held-out* real sequences (fresh oracle samples, or the held-out split
    for text; dropout off) is below this; ``None``: always (the paper). Keeps D from
    saturating, when a saturated D's reward stops carrying information."""
    eval_every: int = 10
    """Evaluate every this many generator updates."""
    eval_samples: int = 10_000
    """Samples for NLL-oracle (10,000 in the paper)."""


DIVERGENCE_SAMPLES = 2_000
"""The first this many of an evaluation's samples give G's entropy, ``reverse_kl`` and ``kl``."""


@torch.no_grad()
def evaluate(generator: Generator, oracle: Oracle | None, test_data: torch.Tensor | None,
             num_samples: int, rng: torch.Generator, return_samples: bool = False,
             reference: Generator | None = None, test_scores: ScoredSequences | None = None) -> Any:
    """NLL-oracle of G's samples, NLL-test of G on held-out real data, G's entropy, the divergences to
    the oracle ``reverse_kl`` and ``forward_kl`` (each with ``_stderr``) and, with a ``reference``
    (pi_ref: the MLE generator the run started from), ``kl`` and ``kl_stderr``.

    Entropy per token, ``reverse_kl`` = KL(G || oracle) per token (NLL-oracle minus entropy on the
    same samples) and KL(G || reference) per sequence (nats) are estimated on the same first
    :data:`DIVERGENCE_SAMPLES` of the evaluation's own samples, from the per-sequence
    log-probabilities of one teacher-forced pass of each model
    (:func:`seqgan_env.divergence.per_token_divergence`); NLL-oracle is over all of them.
    ``forward_kl`` = KL(oracle || G) per token on ``test_data`` (which must be held-out oracle
    samples): NLL-test minus the oracle's entropy on it; ``test_scores``, the oracle's scores of
    ``test_data`` (:func:`seqgan_env.divergence.score_sequences`), saves that pass when a caller
    evaluates against the same test set again. Without an oracle (text) neither divergence exists
    and neither key is set. With ``return_samples=True``, returns ``(metrics, samples)`` so
    callers can score the same samples further (BLEU).
    """
    out: dict[str, float] = {}
    samples = generator.sample(num_samples, rng)
    scored = samples[: min(num_samples, DIVERGENCE_SAMPLES)]
    own, tokens = sequence_log_probs(generator, scored)
    out["entropy"] = float(-own.sum() / tokens.sum().clamp(min=1.0))
    if oracle is not None:
        log_oracle, sample_tokens = sequence_log_probs(oracle, samples)
        out["nll_oracle"] = float(-log_oracle.sum() / sample_tokens.sum().clamp(min=1.0))
        if scored.shape[0] >= 2:
            divergence = per_token_divergence(own, log_oracle[: scored.shape[0]], tokens)
            out.update(reverse_kl=divergence.value, reverse_kl_stderr=divergence.stderr)
    if test_data is not None:
        log_test, test_tokens = sequence_log_probs(generator, test_data)
        out["nll_test"] = float(-log_test.sum() / test_tokens.sum().clamp(min=1.0))
        if oracle is not None and test_data.shape[0] >= 2:
            if test_scores is None:
                test_scores = score_sequences(oracle, test_data)
            elif test_scores.first or not (test_scores.sequences is test_data or (
                    test_scores.sequences.shape == test_data.shape
                    and torch.equal(test_scores.sequences.cpu(), test_data.cpu()))):
                raise ValueError(f"test_scores hold the oracle's scores of other sequences "
                                 f"({tuple(test_scores.sequences.shape)}) than test_data ({tuple(test_data.shape)})")
            divergence = per_token_divergence(test_scores.log_probs, log_test, test_tokens)
            out.update(forward_kl=divergence.value, forward_kl_stderr=divergence.stderr)
    if reference is not None and scored.shape[0] >= 2:
        theirs, _ = sequence_log_probs(reference, scored.to(reference.device))
        estimate = kl_from_log_probs(own, theirs, tokens)
        out.update(kl=estimate.kl, kl_stderr=estimate.kl_stderr)
    return (out, samples) if return_samples else out


def frozen_generator(path: str | Path, device: str | torch.device = "cpu") -> Generator:
    """The generator saved in ``path`` (e.g. a run's ``generator_mle.pt``), frozen, as a reference
    pi_ref. Building it draws initial weights from torch's global generator; those draws are
    undone, so loading a reference does not change a run's later random draws (nor its resume)."""
    with torch.random.fork_rng(devices=[]):
        reference = load_model(path, "generator", device=device)
    return reference.requires_grad_(False).eval()


HeldOutSource = Oracle | torch.Tensor
"""Where held-out real sequences come from: the oracle (fresh samples) or a held-out split
(text), never D's training data."""


def _held_out(source: HeldOutSource, count: int, rng: torch.Generator) -> torch.Tensor:
    if isinstance(source, Oracle):
        return held_out_real(count, rng, oracle=source)
    return held_out_real(count, rng, held_out=source)


def fresh_accuracy(discriminator: Discriminator, generator: Generator, held_out: HeldOutSource, count: int,
                   rng: torch.Generator) -> float:
    """D's held-out accuracy: on ``count`` fresh generator samples and ``count`` real sequences
    it never trained on (dropout off): fresh samples of the oracle when ``held_out`` is one,
    else rows of the held-out split ``held_out`` (all of it if it has fewer).

    Not D's training positives: on those D's accuracy measures memory (the paper's CNN after the
    ``cpu`` preset calls 94.7% of its training sequences real and 24.5% of held-out ones).
    Scored in the reward's compute type (``auto``), so the gate reuses the inference tables
    the env's reward already holds for this D instead of building float32 ones.
    """
    fake = generator.sample(count, rng)
    real = _held_out(held_out, count, rng).to(fake.device)
    dtype = resolve_dtype("auto", discriminator.device)
    correct = (discriminator.score(real, dtype) > 0.5).sum() + (discriminator.score(fake, dtype) <= 0.5).sum()
    return float(correct) / (real.shape[0] + fake.shape[0])


def discriminator_diagnostics(discriminator: torch.nn.Module, generator: Generator, held_out: HeldOutSource,
                              count: int, rng: torch.Generator) -> dict[str, float]:
    """:func:`~seqgan_env.diagnostics.held_out_metrics` of ``discriminator`` on ``count`` held-out real
    sequences (see :func:`fresh_accuracy`) against ``count`` fresh samples of ``generator``, keyed
    ``d_heldout_<metric>``: accuracy, auc, brier, mean_p_real, mean_p_fake, and, when
    ``held_out`` is the oracle, log_ratio_spearman (D's logit against the true log ratio)."""
    fake = generator.sample(count, rng)
    real = _held_out(held_out, count, rng)
    oracle = held_out if isinstance(held_out, Oracle) else None
    metrics = held_out_metrics(discriminator, real, fake, oracle=oracle, generator=generator if oracle else None)
    return {f"d_heldout_{name}": value for name, value in metrics.items()}


GeneratorStep = Callable[[int], dict[str, float]]
"""One generator update given a seed for its episodes; afterwards ``generator`` holds the policy."""


def reinforce_step(agent: Agent, envs: Any) -> GeneratorStep:
    """The paper's g-step: one episode per vector-env row, one agent update.

    The agent's statistics are returned as they are, with ``env_steps`` (the episodes'
    tokens) added when the agent does not report it.
    """

    def step(seed: int) -> dict[str, float]:
        batch = collect_episodes(envs, agent, seed=seed)
        return {"env_steps": float(batch.mask.sum()), **agent.learn(batch)}

    return step


def sb3_step(model: Any, generator: Generator, callback: Any = None) -> GeneratorStep:
    """One SB3 rollout (an episode per env) and its update; the actor is copied into ``generator``.
    ``callback`` (an SB3 callback, e.g. :class:`agents.sb3.KLPenaltyCallback`) runs in each ``learn()``.

    The env is reset with the step's seed first, as :func:`reinforce_step` does, so a step
    depends only on the seed, the models and the random states a checkpoint saves, not on
    where the env's own generators stood after the previous rollout.
    """
    from agents.sb3 import copy_actor_to_generator

    rollout = model.n_envs * model.n_steps

    def step(seed: int) -> dict[str, float]:
        model.env.seed(seed)
        model._last_obs = None  # makes learn() reset the env, with that seed
        previous = copy.deepcopy(model.policy)
        model.learn(total_timesteps=rollout, reset_num_timesteps=False, callback=callback)
        copy_actor_to_generator(model.policy, generator)
        stats = {"mean_reward": float(model.rollout_buffer.rewards.mean()), "env_steps": float(rollout),
                 "kl": sb3_policy_kl(previous, model.policy, model.rollout_buffer.observations)}
        logged = model.logger.name_to_value  # what SB3's train() recorded for this update
        if "train/entropy_loss" in logged:
            stats["entropy"] = -float(logged["train/entropy_loss"])
        for ours, theirs in (("pg_loss", "train/policy_gradient_loss"), ("value_loss", "train/value_loss")):
            if theirs in logged:
                stats[ours] = float(logged[theirs])
        return stats

    return step


@torch.no_grad()
def sb3_policy_kl(previous: Any, policy: Any, observations: Any) -> float:
    """Mean KL(previous || policy) of two SB3 policies' action distributions over ``observations``
    (e.g. the rollout the update learned from)."""
    obs = torch.as_tensor(observations, device=policy.device).reshape(-1, *policy.observation_space.shape)
    old = previous.get_distribution(obs).distribution.logits
    new = policy.get_distribution(obs).distribution.logits
    return policy_kl(torch.log_softmax(old, -1), torch.log_softmax(new, -1))


def _d_step(discriminator: Discriminator, generator: Generator, envs: Any, real_data: torch.Tensor,
            d_config: DiscriminatorSchedule, config: AdversarialConfig, held_out: HeldOutSource | None,
            rng: torch.Generator, d_optimizer: torch.optim.Optimizer) -> dict[str, float]:
    """D's part of an adversarial step: the gate on held-out accuracy, then D retrained and handed to the env."""
    stats: dict[str, float] = {}
    if config.d_target_accuracy is not None:
        stats["d_accuracy_fresh"] = fresh_accuracy(discriminator, generator, held_out, config.d_negatives, rng)
        if stats["d_accuracy_fresh"] >= config.d_target_accuracy:
            return {**stats, "d_trained": 0.0}
    oracle = held_out if isinstance(held_out, Oracle) else None
    trained = train_discriminator(discriminator, generator, real_data, d_config, rng, d_optimizer, oracle=oracle)
    # On its training positives: memory as much as discrimination, hence the name.
    stats.update(d_loss=trained["d_loss"], d_train_accuracy=trained["d_accuracy"], d_trained=1.0)
    seqgan_env.set_discriminator(envs, discriminator)
    return stats


def adversarial_train(
    g_step: GeneratorStep, generator: Generator, envs: Any, discriminator: Discriminator | None,
    real_data: torch.Tensor,
    config: AdversarialConfig, rng: torch.Generator, d_optimizer: torch.optim.Optimizer | None = None,
    start_step: int = 0, on_step: Callable[[int, dict[str, float]], None] | None = None, progress: bool = True,
    evaluator: Callable[[], dict[str, float]] | None = None, held_out: HeldOutSource | None = None,
    d_schedule: DiscriminatorSchedule | None = None,
) -> None:
    """Run adversarial steps ``start_step+1 .. config.steps``: a g-step, then D retrained.

    ``g_step`` is :func:`reinforce_step` or :func:`sb3_step` (or any agent's update);
    ``evaluator()`` (e.g. NLL-oracle, NLL-test: :func:`evaluate` bound to an oracle) runs every
    ``config.eval_every`` steps and at the end; ``on_step(step, stats)`` receives each step's
    statistics (with the evaluation's on evaluation steps), e.g. to log and checkpoint.
    ``held_out`` (the oracle, or the held-out split for text) gives the real sequences of the D
    gate (``config.d_target_accuracy``), which decides on held-out accuracy
    (``d_accuracy_fresh``); D's accuracy in its training epoch is logged as ``d_train_accuracy``.
    ``d_schedule`` (default: the paper's) gives D's model, objective, learning rate and whether
    each round draws fresh real sequences (then from the oracle ``held_out``); its rounds, epochs
    and negatives come from ``config``. ``discriminator=None``: the env's reward reads no learned D
    (the exact-regret task), and the steps are g-steps alone.
    """
    if config.d_target_accuracy is not None and held_out is None:
        raise ValueError("the D gate (d_target_accuracy) decides on held-out real sequences: pass held_out= "
                         "(the oracle, or the held-out split for text), not D's training data")
    d_config = dataclasses.replace(d_schedule or DiscriminatorSchedule(), rounds=config.d_rounds,
                                   epochs=config.d_epochs, num_negatives=config.d_negatives)
    if discriminator is not None:
        d_optimizer = d_optimizer or adam(discriminator.parameters(), d_config.lr)
        seqgan_env.set_discriminator(envs, discriminator)
    started = time.time()
    bar = tqdm(range(start_step + 1, config.steps + 1), desc="adversarial", disable=not progress, unit="step")
    for step in bar:
        step_started = time.time()
        stats = g_step(int(torch.randint(2**31 - 1, (1,), generator=rng)))
        for key in ("kl", "entropy"):  # the update's, named apart from the evaluation's on the same row
            if key in stats:
                stats[f"policy_{key}"] = stats.pop(key)
        if discriminator is not None:  # a reward without a learned D (the exact-regret task): g-steps alone
            stats.update(_d_step(discriminator, generator, envs, real_data, d_config, config, held_out, rng,
                                 d_optimizer))
        if "env_steps" in stats:  # CleanRL's SPS: generated tokens per second of the whole step, D included
            stats["env_steps_per_s"] = stats["env_steps"] / max(time.time() - step_started, 1e-9)
        if evaluator is not None and (step % config.eval_every == 0 or step == config.steps):
            stats.update(evaluator())
            shown = ("reverse_kl", "nll_oracle", "mean_reward")
            bar.set_postfix({k: f"{v:.3f}" for k, v in stats.items() if k in shown})
        stats["wall_time"] = time.time() - started
        if on_step is not None:
            on_step(step, stats)
