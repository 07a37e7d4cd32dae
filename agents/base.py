"""The agent interface, the episode batch it learns from, and the episode collector.

An agent acts on a batch of observations (prefixes), learns from a batch of finished
episodes, saves and loads itself, and, when its policy can continue a prefix, lends that
policy to the Monte Carlo reward as its rollout policy. See ``examples/custom_agent.py``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import seqgan_env
from seqgan_env.models import TokenLSTM
from seqgan_env.rewards.reference_penalty import REFERENCE_TERM
from seqgan_env.rollout import PrefixStates, RolloutPolicy


def policy_kl(old_log_probs: torch.Tensor, new_log_probs: torch.Tensor,
              mask: torch.Tensor | None = None) -> float:
    """Mean KL(old || new) of two policies' next-token distributions over the same states.

    ``old_log_probs`` and ``new_log_probs``: ``(..., vocab)`` normalised log-probabilities
    (e.g. before and after an update, on the states the update learned from); ``mask``
    (shape ``...``) selects the states that count. The KL of the policy to its previous self,
    logged beside the entropy, is how far one update moved the policy.
    """
    kl = (old_log_probs.exp() * (old_log_probs - new_log_probs)).sum(-1)
    if mask is not None:
        mask = mask.to(kl.dtype)
        return float((kl * mask).sum() / mask.sum().clamp(min=1))
    return float(kl.mean())


@dataclass
class EpisodeBatch:
    """``B`` finished episodes of the token MDP.

    In this MDP the actions are the sequence, and the observation before the step that writes
    position ``t`` is the prefix ``sequences[:, :t]`` padded with ``pad_token``;
    :meth:`observations` rebuilds them. With prompts (``prompt_length = k > 0``) the first ``k``
    positions hold each episode's prompt, which no step wrote: :attr:`mask` leaves them out.
    """

    sequences: np.ndarray
    """``(B, L)`` int64: the prompt (if any), then the actions, padded with ``pad_token`` after each episode's end."""
    rewards: np.ndarray
    """``(B, L)`` float32: the reward of the step that wrote each position (0 in the prompt and after the end)."""
    lengths: np.ndarray
    """``(B,)`` int64: tokens in each sequence, the prompt's included (steps: ``lengths - prompt_length``)."""
    pad_token: int
    """The PAD id of the observations."""
    per_token: bool | None = None
    """What the env's reward declared (:attr:`seqgan_env.rewards.RewardModel.per_token`): each step
    pays for its own token (weight tokens by the reward-to-go), or estimates the final outcome;
    ``None`` where the env has no SeqGAN reward."""
    reference_terms: np.ndarray | None = None
    """``(B, L)`` float32: the part of each step's reward that a reference-penalty wrapper
    (:mod:`seqgan_env.rewards.reference_penalty`) added, ``beta * log pi_ref(y_t | y_<t)``; ``None``
    where the env has no such wrapper."""
    prompt_length: int = 0
    """``k``: the first ``k`` positions of every sequence are its prompt, not actions."""

    @property
    def actions(self) -> np.ndarray:
        """The sequences; the actions are the positions :attr:`mask` selects."""
        return self.sequences

    @property
    def mask(self) -> np.ndarray:
        """``(B, L)`` bool: which positions the episode's steps wrote (past the prompt, before the end)."""
        grid = np.arange(self.sequences.shape[1])[None, :]
        return (grid >= self.prompt_length) & (grid < self.lengths[:, None])

    def observations(self) -> np.ndarray:
        """``(B, L, L)`` int64: the observation before each step."""
        batch, length = self.sequences.shape
        grid = np.arange(length)
        visible = grid[None, :] < grid[:, None]  # (step, position): position < step
        obs = np.where(visible[None], self.sequences[:, None, :], self.pad_token)
        return obs.astype(np.int64)

    def returns(self, gamma: float = 1.0) -> np.ndarray:
        """``(B, L)`` discounted reward-to-go."""
        out = np.zeros_like(self.rewards, dtype=np.float64)
        running = np.zeros(self.rewards.shape[0])
        for t in range(self.rewards.shape[1] - 1, -1, -1):
            running = self.rewards[:, t] + gamma * running
            out[:, t] = running
        return (out * self.mask).astype(np.float32)


class Agent(abc.ABC):
    """What the training loops need from an agent."""

    @abc.abstractmethod
    def act(self, observations: np.ndarray) -> np.ndarray:
        """Actions ``(B,)`` for a batch of observations ``(B, L)`` (prefixes padded with PAD)."""

    @abc.abstractmethod
    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        """One update from finished episodes; returns statistics to log."""

    @abc.abstractmethod
    def save(self, path: str | Path) -> None:
        """Write everything needed to continue training."""

    @classmethod
    @abc.abstractmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Agent:
        """Inverse of :meth:`save`."""

    @property
    def rollout_policy(self) -> RolloutPolicy | None:
        """A policy that continues prefixes for the Monte Carlo reward, if the agent has one."""
        return None


def prefix_features(embedding: nn.Embedding, lstm: nn.LSTM, start_token: int, pad_token: int,
                    observations: torch.Tensor) -> torch.Tensor:
    """The LSTM state after reading each observed prefix, as the generator reads it: ``(B, hidden)``.

    An observation is a prefix ``y_1 .. y_t`` left-aligned and padded with ``pad_token``
    (= the vocabulary size). The start token is fed first, then the prefix; the hidden state
    after the last prefix token (input position ``t``) is what predicts ``y_{t+1}``. The
    LSTM runs over the whole prefix at each call (prefixes are short), and only as far as
    the longest prefix in the batch needs. Policies of other libraries (SB3's features
    extractor, RLlib's module) read observations through this one function.
    """
    tokens = observations.long()  # rollout buffers may hand back floats
    lengths = (tokens != pad_token).sum(dim=1)
    steps = int(lengths.max()) + 1 if tokens.shape[0] else 1
    start = torch.full_like(tokens[:, :1], start_token)
    # PAD never reaches a position that is read: the LSTM is causal and each row is read
    # at its own length, so clamping PAD to a valid id only keeps the embedding in range.
    inputs = torch.cat([start, tokens[:, : steps - 1]], dim=1).clamp(max=pad_token - 1)
    hidden, _ = lstm(embedding(inputs))
    return hidden[torch.arange(tokens.shape[0], device=tokens.device), lengths]


class PrefixTracker:
    """Follows each env's prefix step by step, so a recurrent policy never re-reads it.

    ``logits(obs)`` returns next-token logits for each row; when every row grew by exactly
    one token since the last call it costs one policy step, otherwise it replays prefixes.
    """

    def __init__(self, policy: TokenLSTM, pad_token: int) -> None:
        self.policy = policy
        self.pad_token = pad_token
        self.states: PrefixStates | None = None
        self.lengths: torch.Tensor | None = None

    @torch.inference_mode()
    def logits(self, observations: np.ndarray) -> torch.Tensor:
        obs = torch.as_tensor(observations, device=self.policy.device)
        lengths = (obs != self.pad_token).sum(dim=1)
        batch = obs.shape[0]
        if bool((lengths == 0).all()):
            self.states = PrefixStates(self.policy, batch)
        elif (self.states is not None and self.lengths is not None and self.states.batch_size == batch
              and bool((lengths == self.lengths + 1).all())):
            self.states.advance(obs[torch.arange(batch), lengths - 1])
        else:
            self.states = PrefixStates(self.policy, batch)
            self.states.rebuild(obs, lengths)
        self.lengths = lengths
        return self.states.logits


def collect_episodes(envs: Any, agent: Agent, seed: int | None = None) -> EpisodeBatch:
    """Run one episode in each of the vector env's rows; the env is reset first.

    Rows that finish early (an end-of-sequence token) are reset by the env and keep
    stepping; what they do after their first episode is discarded. With prompts, each
    sequence starts with its row's prompt (the reset's observation) and the steps follow it.
    """
    num_envs = envs.num_envs
    obs, _ = envs.reset(seed=seed)
    seq_len = obs.shape[1]
    pad = int(envs.unwrapped.pad_token)
    prompt_length = int(getattr(envs.unwrapped, "prompt_length", 0))
    sequences = np.full((num_envs, seq_len), pad, dtype=np.int64)
    sequences[:, :prompt_length] = obs[:, :prompt_length]
    rewards = np.zeros((num_envs, seq_len), dtype=np.float32)
    lengths = np.full(num_envs, prompt_length, dtype=np.int64)
    finished = np.zeros(num_envs, dtype=bool)
    reference_terms = None
    step = prompt_length
    while not finished.all():
        actions = np.asarray(agent.act(obs), dtype=np.int64).reshape(num_envs)
        obs, reward, terminated, truncated, info = envs.step(actions)
        live = ~finished
        sequences[live, step] = actions[live]
        rewards[live, step] = reward[live]
        if REFERENCE_TERM in info:
            if reference_terms is None:
                reference_terms = np.zeros((num_envs, seq_len), dtype=np.float32)
            reference_terms[live, step] = np.asarray(info[REFERENCE_TERM])[live]
        lengths[live] += 1
        finished |= terminated | truncated
        step += 1
    return EpisodeBatch(sequences, rewards, lengths, pad, per_token=reward_is_per_token(envs),
                        reference_terms=reference_terms, prompt_length=prompt_length)


def reward_is_per_token(env: Any) -> bool | None:
    """The ``per_token`` declaration of ``env``'s SeqGAN reward, ``None`` for an env without one."""
    try:
        return bool(seqgan_env.reward_wrapper(env).reward_model.per_token)
    except ValueError:
        return None
