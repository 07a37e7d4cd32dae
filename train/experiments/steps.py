"""One generator update of any registered algorithm, as a run of the comparison drives it.

:func:`generator_step` builds, from an algorithm's entry (:data:`train.algorithms.ALGORITHMS`),
the function that makes one update (and reports its stats, the tokens it generated and the
rewards' within-batch spread), the generator the evaluations measure and what to close
afterwards. One builder per family (``reinforce``: any :class:`agents.Agent`; ``sb3``; ``rllib``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import torch

import seqgan_env
from agents.base import Agent, collect_episodes
from seqgan_env.models import Generator, TokenLSTM
from seqgan_env.rewards.reference_penalty import with_reference_penalty
from train.adversarial import sb3_step
from train.algorithms import Algorithm, sb3_kl_callback


def reward_spread(rewards: Any, mask: Any = None) -> float:
    """Spread of the rewards within a batch: at each step, the standard deviation over the batch's
    episodes (those still running), averaged over the steps. ``rewards``: ``(batch, steps)``.

    A reward that saturates (every sequence scored alike) has spread 0 whatever its mean: its
    gradient then carries no information about which sequences are better.
    """
    values = torch.as_tensor(rewards, dtype=torch.float64)
    weights = torch.ones_like(values) if mask is None else torch.as_tensor(mask, dtype=torch.float64)
    count = weights.sum(0)
    steps = count > 0
    mean = (values * weights).sum(0) / count.clamp(min=1)
    variance = (((values - mean) ** 2) * weights).sum(0) / count.clamp(min=1)
    return float(variance[steps].sqrt().mean()) if bool(steps.any()) else 0.0


def proxy_reward(rewards: Any, mask: Any, per_token: bool) -> float:
    """The batch's mean score by its reward, one number per sequence on the reward's own scale
    (D's P(real) for a discriminator's): the mean step reward where each step's reward estimates
    the sequence's score (Monte Carlo, dense, the controls: ``per_token`` False), the mean
    return where the steps' rewards add up to it (the terminal reward, the oracle's log-likelihood)."""
    values = torch.as_tensor(rewards, dtype=torch.float64) * torch.as_tensor(mask, dtype=torch.float64)
    if per_token:
        return float(values.sum(1).mean())
    return float(values.sum() / torch.as_tensor(mask, dtype=torch.float64).sum())


class Closer:
    """What a generator step leaves to clean up, and how to hand its env a retrained D."""

    def __init__(self, envs: Any = None, algorithm: Any = None) -> None:
        self.envs, self.algorithm = envs, algorithm

    def set_discriminator(self, discriminator: Any) -> None:
        seqgan_env.set_discriminator(self.envs, discriminator)

    def __call__(self) -> None:
        if self.envs is not None:
            self.envs.close()
        if self.algorithm is not None:
            self.algorithm.stop()


@dataclass
class GeneratorStep:
    """A built update: ``update(episode_seed) -> stats``, the generator the evaluations measure,
    what to close, and whether the agent retrains D itself (RLlib's PPO does, in its callback)."""

    update: Callable[[int], dict[str, float]]
    generator: Generator
    close: Closer
    retrains_d: bool = False


@dataclass
class StepInputs:
    """What a run gives the builder: the base generator, the env's arguments, the batch size, the
    algorithm's hyperparameters, the seed and the adversarial setting's D-step (``None``: D fixed)."""

    generator: Generator
    env_kwargs: dict[str, Any]
    batch_size: int
    hparams: dict[str, Any]
    seed: int
    retrain_d: Callable[[Generator], dict[str, float]] | None
    reference: Generator | None = None
    """pi_ref of the KL-regularised reward (``hparams["kl_beta"] > 0``): a frozen copy of the base generator."""

    @property
    def kl_beta(self) -> float:
        return float(self.hparams.get("kl_beta", 0.0))

    def make_envs(self) -> Any:
        """The run's vector env, wrapped in the reference's half of the KL penalty when ``kl_beta > 0``."""
        envs = gym.make_vec("SeqGAN-v0", num_envs=self.batch_size, **self.env_kwargs)
        if not self.kl_beta:
            return envs
        if self.reference is None:
            raise ValueError("kl_beta > 0 needs the reference generator (StepInputs.reference)")
        return with_reference_penalty(envs, self.reference, self.kl_beta)


def generator_step(algorithm: Algorithm, inputs: StepInputs) -> GeneratorStep:
    """The update of ``algorithm`` with ``inputs``."""
    return _BUILDERS[algorithm.family](algorithm, inputs)


def _rllib_step(algorithm: Algorithm, inputs: StepInputs) -> GeneratorStep:
    from agents.rllib import env_steps, make_ppo, mean_step_reward

    hparams = {**inputs.hparams, "kl_beta": inputs.kl_beta}
    model = make_ppo(inputs.env_kwargs, inputs.generator, num_envs=inputs.batch_size, seed=inputs.seed,
                     discriminator=inputs.env_kwargs["discriminator"] if inputs.retrain_d else None,
                     retrain=inputs.retrain_d, reference=inputs.reference, **hparams)

    def iteration(episode_seed: int) -> dict[str, float]:
        result = model.train()  # RLlib reports no per-step rewards: no reward_std
        return {"tokens": env_steps(result), "mean_reward": mean_step_reward(result)}

    return GeneratorStep(iteration, inputs.generator, Closer(algorithm=model), retrains_d=True)


def _sb3_step(algorithm: Algorithm, inputs: StepInputs) -> GeneratorStep:
    envs = inputs.make_envs()
    generator = inputs.generator
    model = algorithm.make_agent(envs, generator=generator, seed=inputs.seed, device=generator.device,
                                 **inputs.hparams)
    update, rollout = sb3_step(model, generator, sb3_kl_callback(inputs.kl_beta)), model.n_envs * model.n_steps

    def sb3_update(episode_seed: int) -> dict[str, float]:
        stats = update(episode_seed)
        # SB3's buffer holds the rollout's rewards as (steps, envs).
        return {**stats, "tokens": rollout, "reward_std": reward_spread(model.rollout_buffer.rewards.T)}

    return GeneratorStep(sb3_update, generator, Closer(envs))


def _agent_step(algorithm: Algorithm, inputs: StepInputs) -> GeneratorStep:
    envs = inputs.make_envs()
    agent = algorithm.make_agent(inputs.generator, envs, inputs.seed, **inputs.hparams)
    if not isinstance(agent, Agent):
        raise TypeError(f"agent {algorithm.name!r} built a {type(agent).__name__}, not an agents.Agent")
    if not isinstance(getattr(agent, "generator", None), TokenLSTM):
        raise TypeError(f"agent {algorithm.name!r} has no `generator` (a TokenLSTM policy): a comparison measures "
                        "NLL-oracle and NLL-test of the generator each agent trains")
    if agent.rollout_policy is not None and seqgan_env.reward_wrapper(envs).reward_model.uses_rollout_policy:
        seqgan_env.set_rollout_policy(envs, agent.rollout_policy)

    per_token = seqgan_env.reward_wrapper(envs).reward_model.per_token

    def episodes(episode_seed: int) -> dict[str, float]:
        batch = collect_episodes(envs, agent, seed=episode_seed)
        stats = agent.learn(batch)
        # The proxy of the curves at equal KL: a terminal reward's score, not its value per step.
        stats["mean_reward"] = proxy_reward(batch.rewards, batch.mask, per_token)
        return {**stats, "tokens": int(batch.mask.sum()), "reward_std": reward_spread(batch.rewards, batch.mask)}

    return GeneratorStep(episodes, agent.generator, Closer(envs))


_BUILDERS: dict[str, Callable[[Algorithm, StepInputs], GeneratorStep]] = {
    "reinforce": _agent_step, "sb3": _sb3_step, "rllib": _rllib_step}
