"""RLOO: REINFORCE with the leave-one-out baseline over k samples per group.

For ``k`` sequences ``y_1 .. y_k`` of one group with sequence rewards ``R_i``, each sample's
baseline is the mean reward of the other ``k - 1`` (Kool, van Hoof and Welling 2019, "Buy
4 REINFORCE samples, get a baseline for free!"; Ahmadian et al. 2024, "Back to Basics")::

    A_i  = R_i - 1/(k-1) * sum_{j != i} R_j   =  k/(k-1) * (R_i - mean_j R_j)
    loss = -1/B * sum_i A_i * log pi(y_i)

The baseline of a sample does not depend on that sample, so the gradient stays an unbiased
estimate of the gradient of the expected reward, and a reward that is the same for every
sample of a group gives exactly zero gradient.

``kl_beta`` = beta is the policy's own half of the KL-regularised reward: each sequence's
reward becomes ``R_i - beta * log pi(y_i)`` (detached), whose score-function gradient is the
gradient of ``beta`` times pi's entropy. With the env wrapped in
:func:`seqgan_env.rewards.reference_penalty.with_reference_penalty` (which adds
``beta * log pi_ref`` to every step) and ``sequence_reward="sum"``, the agent maximises
``E[R] - beta * KL(pi || pi_ref)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from agents.base import EpisodeBatch, policy_kl
from agents.sequence_level import (
    SEQUENCE_REWARDS,
    SequenceLevelAgent,
    check_env_groups,
    check_group_size,
    masked_entropy,
    token_log_probs,
)
from seqgan_env.models import Generator


@dataclass
class RlooConfig:
    """Hyperparameters of RLOO (learning rate and clipping as the paper's REINFORCE)."""

    lr: float = 0.01
    """Adam learning rate of the generator."""
    grad_clip: float = 5.0
    """Gradient-norm clipping threshold."""
    group_size: int = 4
    """k: samples per group (consecutive rows of a batch); the batch size must be a multiple. With
    prompts, the rows of a group must share a prompt: the env's ``group_size`` a multiple of k."""
    kl_beta: float = 0.0
    """beta of the policy's term ``-beta * log pi(y)`` added to each sequence's reward (0: none)."""
    sequence_reward: str = "sum"
    """``sum`` of the episode's step rewards (needed with the reference-penalty wrapper), or
    ``terminal``: the last step's reward alone."""

    def __post_init__(self) -> None:
        check_group_size(self.group_size)
        if self.sequence_reward not in SEQUENCE_REWARDS:
            raise ValueError(f"sequence_reward must be one of {SEQUENCE_REWARDS}, got {self.sequence_reward!r}")
        if not self.kl_beta >= 0.0:
            raise ValueError(f"kl_beta must be >= 0, got {self.kl_beta}")


def leave_one_out_advantages(rewards: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
    """``R_i`` minus the mean of the other rewards of its group, for ``(B,)`` rewards in groups
    of ``group_size`` consecutive rows (``None``: one group, the whole batch)."""
    group_size = rewards.shape[0] if group_size is None else group_size
    check_group_size(group_size, rewards.shape[0])
    groups = rewards.view(-1, group_size)
    others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)
    return (groups - others).reshape(-1)


class RlooAgent(SequenceLevelAgent):
    """REINFORCE with the leave-one-out baseline; the generator is the policy, trained in place.

    Args:
        generator: the policy (usually MLE-pretrained).
        config: hyperparameters.
        seed: seed of the agent's action sampling.
    """

    KIND = "rloo-agent"
    CONFIG = RlooConfig

    def loss(self, batch: EpisodeBatch) -> tuple[torch.Tensor, dict[str, float]]:
        """The RLOO loss of a batch (with gradients) and its statistics; no update."""
        sequences, mask, rewards = self.batch_tensors(batch)
        taken, log_probs_all = token_log_probs(self.generator, sequences)
        sequence_log_probs = (taken * mask).sum(dim=1)
        if self.config.kl_beta:
            rewards = rewards - self.config.kl_beta * sequence_log_probs.detach()
        advantages = leave_one_out_advantages(rewards, self.config.group_size)
        loss = -(advantages * sequence_log_probs).mean()
        stats = {"pg_loss": loss.item(), "sequence_reward": float(rewards.mean()),
                 "entropy": masked_entropy(log_probs_all.detach(), mask)}
        self._last = (sequences, log_probs_all.detach(), mask)
        return loss, stats

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        gen = self.generator
        gen.train()
        loss, stats = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(gen.parameters(), self.config.grad_clip)
        self.optimizer.step()
        gen.eval()
        sequences, old, mask = self._last
        with torch.no_grad():  # how far this update moved the policy, on the states it learned from
            kl = policy_kl(old, torch.log_softmax(gen(sequences), -1), mask)
        self.updates += 1
        return {**stats, "grad_norm": float(grad_norm), "kl": kl, "env_steps": float(mask.sum()),
                "mean_reward": float((batch.rewards * batch.mask).sum() / batch.mask.sum())}


def make_rloo(generator: Generator, envs: Any, seed: int, **hparams: Any) -> RlooAgent:
    """``seqgan compare --algos agents.rloo:make_rloo``: RLOO on ``envs``'s rows (groups of
    ``group_size`` consecutive envs, each within one of the env's prompt groups when it has prompts)."""
    config = RlooConfig(**hparams)
    check_env_groups(config.group_size, envs)
    return RlooAgent(generator, config, seed)


__all__ = ["RlooAgent", "RlooConfig", "leave_one_out_advantages", "make_rloo"]
