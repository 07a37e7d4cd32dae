"""What the sequence-level agents (:mod:`agents.rloo`, :mod:`agents.grpo`) share.

They learn from one number per sequence (the sum of its episode's rewards, or the last
step's reward) and compare the ``k`` samples of a group with each other. A group is ``k``
consecutive rows of the batch. Without prompts every row starts from the empty prefix, so
any ``k`` rows are samples of the same prompt. With prompts (the env's ``prompt_length``) the
env's ``group_size=g`` puts the ``g`` rows of one prompt side by side, and ``k`` must divide
``g`` so that every group compares completions of one prompt (:func:`check_env_groups`), as
the methods' papers mean; the log-probabilities are those of the completion given the prompt.

The policy is the generator itself (acting by sampling its next-token distribution, one
cached LSTM step per env step), lent to the Monte Carlo reward as its rollout policy.
Checkpoints hold tensors and plain data only and are read with ``weights_only`` loading.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from agents.base import Agent, EpisodeBatch, PrefixTracker
from seqgan_env.checkpoint import FORMAT, atomic_save, load_checkpoint, model_from_payload, model_payload
from seqgan_env.models import Generator
from seqgan_env.precision import adam
from seqgan_env.sampling import sample_categorical

SEQUENCE_REWARDS = ("sum", "terminal")
"""How an episode's rewards become one number: their sum, or the last step's reward."""


def check_group_size(group_size: int, rows: int | None = None) -> None:
    """A clear error unless ``group_size >= 2`` divides ``rows`` (when given)."""
    if group_size < 2:
        raise ValueError(f"group_size must be at least 2 (samples compared within a group), got {group_size}")
    if rows is not None and rows % group_size:
        raise ValueError(f"a batch of {rows} episodes does not split into groups of {group_size}: "
                         f"use a batch size (number of envs) that is a multiple of group_size")


def check_env_groups(group_size: int, envs: Any) -> None:
    """A clear error unless ``group_size`` divides ``envs``'s rows and, when its episodes have
    prompts, the env's prompt groups (so that each group of the agent shares one prompt)."""
    check_group_size(group_size, int(envs.num_envs))
    env = envs.unwrapped
    if getattr(env, "prompt_length", 0) and getattr(env, "group_size", 1) % group_size:
        raise ValueError(f"the env's rows share prompts in groups of {getattr(env, 'group_size', 1)}, which do not "
                         f"split into the agent's groups of group_size={group_size}: make the env with "
                         f"group_size={group_size} (gymnasium.make_vec(..., prompt_length=k, group_size={group_size}))")


def sequence_rewards(batch: EpisodeBatch, how: str, device: torch.device | str = "cpu") -> torch.Tensor:
    """One reward per episode, ``(B,)`` float32: the sum of its steps' rewards or its last one."""
    if how not in SEQUENCE_REWARDS:
        raise ValueError(f"sequence_reward must be one of {SEQUENCE_REWARDS}, got {how!r}")
    rewards = np.where(batch.mask, batch.rewards, 0.0)
    if how == "sum":
        per_episode = rewards.sum(axis=1)
    else:
        per_episode = rewards[np.arange(len(batch.lengths)), np.maximum(batch.lengths - 1, 0)]
    return torch.as_tensor(per_episode, dtype=torch.float32, device=device)


def token_log_probs(generator: Generator, sequences: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(log pi of each taken token (B, T), log pi of every token (B, T, V))``, with gradients."""
    log_probs_all = torch.log_softmax(generator(sequences), dim=-1)
    taken = log_probs_all.gather(-1, sequences.clamp(max=generator.vocab_size - 1).unsqueeze(-1)).squeeze(-1)
    return taken, log_probs_all


def masked_entropy(log_probs_all: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean next-token entropy over the states where ``mask`` is set."""
    entropy = -(log_probs_all.exp() * log_probs_all).sum(-1)
    return float((entropy * mask).sum() / mask.sum().clamp(min=1))


class SequenceLevelAgent(Agent):
    """An agent whose policy is a generator trained by Adam from whole-sequence rewards.

    Subclasses set :attr:`KIND` and :attr:`CONFIG` (a dataclass with ``lr`` and
    ``group_size``) and write :meth:`learn`; extra state goes through :meth:`extra_state`.
    """

    KIND: ClassVar[str]
    CONFIG: ClassVar[type]

    def __init__(self, generator: Generator, config: Any = None, seed: int = 0) -> None:
        self.config = config if config is not None else self.CONFIG()
        self.generator = generator
        self.optimizer = adam(generator.parameters(), self.config.lr)
        self.rng = torch.Generator(device=generator.device).manual_seed(seed)
        self._tracker = PrefixTracker(generator, pad_token=generator.vocab_size)
        self.updates = 0

    @property
    def rollout_policy(self) -> Generator:
        return self.generator

    def act(self, observations: np.ndarray) -> np.ndarray:
        return sample_categorical(self._tracker.logits(observations), self.rng).cpu().numpy()

    def batch_tensors(self, batch: EpisodeBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(sequences, mask, rewards)`` on the generator's device, the groups checked."""
        check_group_size(self.config.group_size, batch.sequences.shape[0])
        device = self.generator.device
        sequences = torch.as_tensor(batch.sequences, device=device)
        mask = torch.as_tensor(batch.mask, device=device, dtype=torch.float32)
        return sequences, mask, sequence_rewards(batch, self.config.sequence_reward, device)

    # -- persistence ---------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def state_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "kind": self.KIND, "config": asdict(self.config),
                "generator": model_payload(self.generator, "generator"), "optimizer": self.optimizer.state_dict(),
                "rng": self.rng.get_state(), "updates": self.updates, **self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.load_state_dict(model_from_payload(state["generator"]).state_dict())
        self.optimizer.load_state_dict(state["optimizer"])
        self.rng.set_state(state["rng"])
        self.updates = int(state["updates"])
        self.load_extra_state(state)

    def save(self, path: str | Path) -> None:
        atomic_save(self.state_dict(), path)

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> SequenceLevelAgent:
        state = load_checkpoint(path, cls.KIND)
        agent = cls(model_from_payload(state["generator"], str(path)), cls.CONFIG(**state["config"]), **kwargs)
        agent.load_state_dict(state)
        return agent


def frozen_copy(generator: Generator) -> Generator:
    """A copy of ``generator`` that no update touches (the reference pi_ref)."""
    return copy.deepcopy(generator).requires_grad_(False).eval()
