"""GRPO: group-normalised advantages, a clipped importance ratio, and a KL term to pi_ref.

Shao et al. 2024 ("DeepSeekMath", section 4.1) with outcome supervision: for the ``k``
sequences of a group with rewards ``R_i``, every token of sequence ``i`` gets the advantage::

    A_i = (R_i - mean(R)) / (std(R) + eps * max|R|)          (std with Bessel's correction)

The paper adds a fixed ``eps`` to the standard deviation; here it is relative to the group's
rewards (``max|R|``), because a fixed one sets the scale of the rewards that can be learned from:
D*'s P(real) of an MLE generator's samples is about 1e-25, and ``std + 1e-4`` would divide by 1e-4,
so the advantages would vanish. A group of equal rewards (``std = 0``) gets advantages 0, all of
them 0 included.

and the policy maximises, over a few inner epochs of minibatches of the same batch::

    1/|batch| sum_i 1/|y_i| sum_t [ min(rho_it A_i, clip(rho_it, 1 - e, 1 + e) A_i) - beta * k3_it ]

where ``rho_it = pi(y_it | y_i<t) / pi_old(y_it | y_i<t)`` (pi_old: the policy that sampled
the batch) and ``k3_it = pi_ref/pi - log(pi_ref/pi) - 1`` at the sampled token, the
non-negative, unbiased estimator of KL(pi || pi_ref) that the paper uses (Schulman 2020,
"Approximating KL divergence"). ``kl_coef`` = beta; pi_ref is a frozen copy of the generator
the agent starts from (the MLE generator), unless another is passed. GRPO keeps the KL in
its loss, so the env's reference-penalty wrapper is not used with it (that would count the
KL twice) unless ``kl_beta`` (the KL-regularised reward, as the other agents take it) is
used instead of ``kl_coef``.

Why not a library's loss: TorchRL 0.14.1 (``pip index versions torchrl``) has
``torchrl.objectives.llm.GRPOLoss``, but its actor must be an ``LLMWrapperBase`` (its
Transformers or vLLM wrappers) reading ``History``/``Tokens`` tensordicts, so using it would
mean rewriting the generator as an LLM wrapper; the loss itself is a dozen lines here.
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
    frozen_copy,
    masked_entropy,
    token_log_probs,
)
from seqgan_env.checkpoint import model_from_payload, model_payload
from seqgan_env.models import Generator


@dataclass
class GrpoConfig:
    """Hyperparameters of GRPO (``clip_eps`` and ``kl_coef`` as in DeepSeekMath)."""

    lr: float = 1e-3
    """Adam learning rate of the generator (lower than REINFORCE's: each batch makes several steps)."""
    grad_clip: float = 5.0
    """Gradient-norm clipping threshold."""
    group_size: int = 4
    """k: samples per group (consecutive rows of a batch); the batch size must be a multiple. With
    prompts, the rows of a group must share a prompt: the env's ``group_size`` a multiple of k."""
    clip_eps: float = 0.2
    """e: the importance ratio is clipped to [1 - e, 1 + e]."""
    epochs: int = 4
    """Inner epochs over each batch."""
    minibatch_size: int = 16
    """Sequences per gradient step within an epoch."""
    kl_coef: float = 0.04
    """beta of the k3 KL term to pi_ref in the loss (0: none)."""
    std_eps: float = 1e-4
    """Relative to the group's largest ``|R|``, added to its standard deviation before dividing (so
    the advantages do not depend on the rewards' scale; a group of equal rewards gets 0)."""
    sequence_reward: str = "sum"
    """``sum`` of the episode's step rewards, or ``terminal``: the last step's reward alone."""
    kl_beta: float = 0.0
    """beta of the KL-regularised *reward* (0: none): ``- beta * log pi(y)`` is added to each
    sequence's reward, the env's wrapper adding ``beta * log pi_ref`` (as :mod:`agents.rloo`).
    Another way to hold pi near pi_ref than ``kl_coef``'s loss term; use one of the two."""

    def __post_init__(self) -> None:
        check_group_size(self.group_size)
        if self.sequence_reward not in SEQUENCE_REWARDS:
            raise ValueError(f"sequence_reward must be one of {SEQUENCE_REWARDS}, got {self.sequence_reward!r}")
        for name in ("clip_eps", "std_eps", "lr"):
            if not getattr(self, name) > 0.0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("kl_coef", "kl_beta"):
            if not getattr(self, name) >= 0.0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.epochs < 1 or self.minibatch_size < 1:
            raise ValueError(f"epochs and minibatch_size must be >= 1, got {self.epochs} and {self.minibatch_size}")


def group_normalised_advantages(rewards: torch.Tensor, group_size: int | None = None,
                                eps: float = 1e-4) -> torch.Tensor:
    """``(R_i - group mean) / (group std + eps * group max|R|)`` for ``(B,)`` rewards in groups of
    ``group_size`` consecutive rows (``None``: one group, the whole batch); 0 for a group whose
    rewards are all equal. ``eps`` is relative, so scaling every reward by ``c > 0`` leaves the
    advantages as they are, at 1e-25 as at 1."""
    group_size = rewards.shape[0] if group_size is None else group_size
    check_group_size(group_size, rewards.shape[0])
    groups = rewards.view(-1, group_size)
    mean, std = groups.mean(dim=1, keepdim=True), groups.std(dim=1, keepdim=True)
    denominator = std + eps * groups.abs().amax(dim=1, keepdim=True)
    deviations = groups - mean
    # Equal rewards: std = 0 and every deviation is 0 (or float noise below the relative eps): 0, never 0/0.
    safe = torch.where(denominator > 0, denominator, torch.ones_like(denominator))
    return torch.where(denominator > 0, deviations / safe, torch.zeros_like(deviations)).reshape(-1)


def clipped_surrogate(ratio: torch.Tensor, advantages: torch.Tensor, clip_eps: float) -> torch.Tensor:
    """PPO's clipped objective (to maximise), elementwise: ``min(rho A, clip(rho, 1-e, 1+e) A)``."""
    return torch.minimum(ratio * advantages, ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * advantages)


def k3_kl(log_probs: torch.Tensor, reference_log_probs: torch.Tensor) -> torch.Tensor:
    """``r - log r - 1`` with ``r = pi_ref / pi`` at sampled tokens: k3, elementwise, >= 0."""
    log_ratio = reference_log_probs - log_probs
    return log_ratio.exp() - log_ratio - 1.0


class GrpoAgent(SequenceLevelAgent):
    """GRPO with the generator as the policy, trained in place.

    Args:
        generator: the policy (usually MLE-pretrained).
        config: hyperparameters.
        seed: seed of the agent's action sampling and minibatch order.
        reference: pi_ref of the KL term (default: a frozen copy of ``generator`` as given).
    """

    KIND = "grpo-agent"
    CONFIG = GrpoConfig

    def __init__(self, generator: Generator, config: GrpoConfig | None = None, seed: int = 0,
                 reference: Generator | None = None) -> None:
        super().__init__(generator, config, seed)
        self.reference = reference if reference is not None else frozen_copy(generator)

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        config, gen = self.config, self.generator
        sequences, mask, rewards = self.batch_tensors(batch)
        with torch.no_grad():
            old_taken, old_all = token_log_probs(gen, sequences)
            reference_taken, _ = token_log_probs(self.reference, sequences)
        if config.kl_beta:  # the policy's half of the KL-regularised reward
            rewards = rewards - config.kl_beta * (old_taken * mask).sum(dim=1)
        advantages = group_normalised_advantages(rewards, config.group_size, config.std_eps)
        lengths = mask.sum(dim=1).clamp(min=1.0)
        rows = sequences.shape[0]
        losses, clipped, kls, grad_norms = [], [], [], []
        gen.train()
        for _ in range(config.epochs):
            order = torch.randperm(rows, generator=self.rng, device=self.rng.device).to(gen.device)
            for begin in range(0, rows, config.minibatch_size):
                index = order[begin : begin + config.minibatch_size]
                taken, _ = token_log_probs(gen, sequences[index])
                ratio = (taken - old_taken[index]).exp()
                surrogate = clipped_surrogate(ratio, advantages[index].unsqueeze(1), config.clip_eps)
                kl = k3_kl(taken, reference_taken[index])
                per_token = surrogate - config.kl_coef * kl if config.kl_coef else surrogate
                loss = -((per_token * mask[index]).sum(dim=1) / lengths[index]).mean()
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                grad_norms.append(float(torch.nn.utils.clip_grad_norm_(gen.parameters(), config.grad_clip)))
                self.optimizer.step()
                valid = mask[index].bool()
                losses.append(loss.item())
                clipped.append(float(((ratio - 1.0).abs() > config.clip_eps)[valid].float().mean()))
                kls.append(float((kl.detach() * mask[index]).sum(dim=1).mean()))
        gen.eval()
        with torch.no_grad():  # how far this batch's epochs moved the policy, on the states it learned from
            moved = policy_kl(old_all, torch.log_softmax(gen(sequences), -1), mask)
        self.updates += 1
        return {"pg_loss": sum(losses) / len(losses), "clip_fraction": sum(clipped) / len(clipped),
                "kl_ref": sum(kls) / len(kls), "entropy": masked_entropy(old_all, mask), "kl": moved,
                "grad_norm": sum(grad_norms) / len(grad_norms), "sequence_reward": float(rewards.mean()),
                "env_steps": float(mask.sum()),
                "mean_reward": float((batch.rewards * batch.mask).sum() / batch.mask.sum())}

    def extra_state(self) -> dict[str, Any]:
        return {"reference": model_payload(self.reference, "generator")}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        self.reference.load_state_dict(model_from_payload(state["reference"]).state_dict())


def make_grpo(generator: Generator, envs: Any, seed: int, **hparams: Any) -> GrpoAgent:
    """``seqgan compare --algos agents.grpo:make_grpo``: GRPO on ``envs``'s rows (groups of
    ``group_size`` consecutive envs, each within one of the env's prompt groups when it has
    prompts), pi_ref the generator as given."""
    config = GrpoConfig(**hparams)
    check_env_groups(config.group_size, envs)
    return GrpoAgent(generator, config, seed)


__all__ = ["GrpoAgent", "GrpoConfig", "clipped_surrogate", "group_normalised_advantages", "k3_kl", "make_grpo"]
