"""REINFORCE with the generator as the policy: the paper's generator update.

For a batch of episodes with per-step rewards ``Q_t`` (the Monte Carlo estimates of the
expected final P(real)), the loss is (Yu et al., 2017, eq. 7-8)::

    loss = -1/B * sum_b sum_t log G(y_t | y_<t) * (Q_t - baseline_t)

minimised with Adam (lr 0.01) and gradient-norm clipping at 5.0 on batches of 64 sequences.
The rollout policy is a delayed copy of G, ``theta_r <- beta * theta_r + (1 - beta) * theta_G``
after each update (``beta = 0.8``, the paper's choice). The original code never wired that
update into its rollout graph, so its rollouts used the current G: ``beta = 0`` does that.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.base import Agent, EpisodeBatch, PrefixTracker, policy_kl
from agents.kl_penalty import kl_regularised_rewards
from seqgan_env.checkpoint import FORMAT, atomic_save, load_checkpoint, model_from_payload, model_payload
from seqgan_env.models import Generator
from seqgan_env.precision import adam
from seqgan_env.sampling import sample_categorical

BASELINES = ("none", "mean", "value")


@dataclass
class ReinforceConfig:
    """Hyperparameters of the REINFORCE generator update (defaults: the paper's)."""

    lr: float = 0.01
    """Adam learning rate of G."""
    grad_clip: float = 5.0
    """Gradient-norm clipping threshold."""
    rollout_beta: float = 0.8
    """Delay of the rollout copy: 0 uses the current G (as the original code did)."""
    baseline: str = "none"
    """Variance reduction: ``none`` (paper), ``mean`` (batch mean reward of each step), ``value`` (learned)."""
    entropy_coef: float = 0.0
    """Weight of the mean per-step policy entropy bonus."""
    value_lr: float = 0.01
    """Adam learning rate of the learned baseline (``baseline="value"``)."""
    reward_to_go: bool | None = None
    """Weight each token by the sum of the rewards from its step to the episode's end. ``None``
    (default): as the env's reward declares (:attr:`seqgan_env.rewards.RewardModel.per_token`,
    carried by :attr:`agents.base.EpisodeBatch.per_token`): on for per-token rewards such as
    the oracle's log-likelihood, off for the paper's Monte Carlo reward, whose every step
    already estimates the episode's final outcome. ``True``/``False`` force it."""

    discount: float = 1.0
    """gamma of the reward-to-go, when tokens are weighted by it: 1 (default) is the undiscounted
    objective. Below 1 trades bias for variance; 0 weights each token by its own step's reward,
    which for a per-token reward such as the exact-regret task's is an unbiased sample of the
    per-state gradient (each state's own term, without what the token does to later states)."""

    kl_beta: float = 0.0
    """beta of the KL-regularised reward: ``- beta * log G(y_t | y_<t)`` is added to each step's
    reward (:func:`agents.kl_penalty.kl_regularised_rewards`); the reference's
    ``+ beta * log pi_ref`` comes from the env's wrapper
    (:func:`seqgan_env.rewards.reference_penalty.with_reference_penalty`). 0: the paper's update."""

    def __post_init__(self) -> None:
        if not self.kl_beta >= 0.0:  # also rejects NaN
            raise ValueError(f"kl_beta must be >= 0, got {self.kl_beta}")
        if not 0.0 <= self.discount <= 1.0:  # also rejects NaN
            raise ValueError(f"discount must be in [0, 1], got {self.discount}")
        if self.baseline not in BASELINES:
            raise ValueError(f"baseline must be one of {BASELINES}, got {self.baseline!r}")
        if not 0.0 <= self.rollout_beta <= 1.0:
            raise ValueError(f"rollout_beta must be in [0, 1], got {self.rollout_beta}")


class ReinforceAgent(Agent):
    """The paper's policy-gradient generator.

    Args:
        generator: the policy G (usually MLE-pretrained); trained in place.
        config: hyperparameters.
        seed: seed of the agent's action sampling.
    """

    def __init__(self, generator: Generator, config: ReinforceConfig | None = None, seed: int = 0) -> None:
        self.config = config or ReinforceConfig()
        self.generator = generator
        self.optimizer = adam(generator.parameters(), self.config.lr)
        self._rollout = copy.deepcopy(generator).requires_grad_(False) if self.config.rollout_beta > 0 else None
        self.value_head: nn.Linear | None = None
        self.value_optimizer: torch.optim.Optimizer | None = None
        if self.config.baseline == "value":
            self.value_head = nn.Linear(generator.hidden_dim, 1).to(generator.device)
            self.value_optimizer = torch.optim.Adam(self.value_head.parameters(), lr=self.config.value_lr)
        self.rng = torch.Generator(device=generator.device).manual_seed(seed)
        self._tracker = PrefixTracker(generator, pad_token=generator.vocab_size)
        self.updates = 0

    @property
    def rollout_policy(self) -> Generator:
        return self._rollout if self._rollout is not None else self.generator

    def uses_reward_to_go(self, batch: EpisodeBatch) -> bool:
        """Whether this update weights tokens by the reward-to-go: the config's choice, else the reward's declaration."""
        if self.config.reward_to_go is not None:
            return self.config.reward_to_go
        return bool(batch.per_token)

    def act(self, observations: np.ndarray) -> np.ndarray:
        logits = self._tracker.logits(observations)
        return sample_categorical(logits, self.rng).cpu().numpy()

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        gen = self.generator
        device = gen.device
        sequences = torch.as_tensor(batch.sequences, device=device)
        rewards = torch.as_tensor(batch.returns(self.config.discount) if self.uses_reward_to_go(batch) else batch.rewards,
                                  device=device, dtype=torch.float32)
        mask = torch.as_tensor(batch.mask, device=device, dtype=torch.float32)
        gen.train()
        hidden = gen.hidden_states(sequences)
        log_probs_all = torch.log_softmax(gen.output(hidden), dim=-1)
        taken = log_probs_all.gather(-1, sequences.clamp(max=gen.vocab_size - 1).unsqueeze(-1)).squeeze(-1)
        if self.config.kl_beta:
            rewards = torch.as_tensor(self._kl_regularised(batch, taken.detach()), device=device, dtype=torch.float32)
        stats: dict[str, float] = {}
        if self.config.baseline == "mean":
            baseline = (rewards * mask).sum(0) / mask.sum(0).clamp(min=1)
            advantage = rewards - baseline.unsqueeze(0)
        elif self.config.baseline == "value":
            assert self.value_head is not None and self.value_optimizer is not None
            values = self.value_head(hidden.detach()).squeeze(-1)
            value_loss = (((values - rewards) ** 2) * mask).sum() / mask.sum()
            self.value_optimizer.zero_grad(set_to_none=True)
            value_loss.backward()
            self.value_optimizer.step()
            advantage = rewards - values.detach()
            stats["value_loss"] = value_loss.item()
        else:
            advantage = rewards
        loss = -(taken * advantage * mask).sum() / sequences.shape[0]
        entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
        mean_entropy = (entropy * mask).sum() / mask.sum()
        if self.config.entropy_coef:
            loss = loss - self.config.entropy_coef * mean_entropy
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(gen.parameters(), self.config.grad_clip)
        self.optimizer.step()
        gen.eval()
        with torch.no_grad():  # how far this update moved the policy, on the states it learned from
            kl = policy_kl(log_probs_all.detach(), torch.log_softmax(gen.output(gen.hidden_states(sequences)), -1),
                           mask)
        self._update_rollout()
        self.updates += 1
        stats.update(pg_loss=loss.item(), entropy=mean_entropy.item(), grad_norm=float(grad_norm), kl=kl,
                     mean_reward=float((rewards * mask).sum() / mask.sum()), env_steps=float(mask.sum()))
        return stats

    def _kl_regularised(self, batch: EpisodeBatch, taken: torch.Tensor) -> np.ndarray:
        """``(B, L)`` weights of the tokens with the policy's KL term in each step's reward:
        reward-to-go of the penalised rewards, or ``Q_t`` plus the penalties still to come
        (see :mod:`agents.kl_penalty`)."""
        reward_to_go = self.uses_reward_to_go(batch)
        log_probs = np.where(batch.mask, taken.double().cpu().numpy(), 0.0)
        starts = np.zeros(batch.rewards.shape, dtype=bool)
        starts[:, 0] = True
        terms = batch.reference_terms.T if batch.reference_terms is not None else None
        penalised = kl_regularised_rewards(batch.rewards.T, log_probs.T, self.config.kl_beta, starts.T, terms,
                                           additive=reward_to_go).T
        if not reward_to_go:
            return penalised * batch.mask
        return dataclasses.replace(batch, rewards=penalised).returns(self.config.discount)

    @torch.no_grad()
    def _update_rollout(self) -> None:
        if self._rollout is None:
            return
        beta = self.config.rollout_beta
        for mine, theirs in zip(self._rollout.parameters(), self.generator.parameters()):
            mine.mul_(beta).add_(theirs.detach(), alpha=1.0 - beta)

    # -- persistence ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT, "kind": "reinforce-agent", "config": asdict(self.config),
            "generator": model_payload(self.generator, "generator"),
            "rollout": model_payload(self._rollout, "generator") if self._rollout is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "value_head": self.value_head.state_dict() if self.value_head is not None else None,
            "value_optimizer": self.value_optimizer.state_dict() if self.value_optimizer is not None else None,
            "rng": self.rng.get_state(), "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(model_from_payload(state["generator"]).state_dict())
        if self._rollout is not None and state.get("rollout") is not None:
            self._rollout.load_state_dict(model_from_payload(state["rollout"]).state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        if self.value_head is not None and state.get("value_head") is not None:
            self.value_head.load_state_dict(state["value_head"])
            self.value_optimizer.load_state_dict(state["value_optimizer"])
        self.rng.set_state(state["rng"])
        self.updates = int(state["updates"])

    def save(self, path: str | Path) -> None:
        atomic_save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> ReinforceAgent:
        state = load_checkpoint(path, "reinforce-agent")
        agent = cls(model_from_payload(state["generator"], str(path)), ReinforceConfig(**state["config"]))
        agent.load_state_dict(state)
        return agent
