"""Rewards read from the oracle's own probabilities (no discriminator)."""

from __future__ import annotations

import torch

from seqgan_env.devices import module_on
from seqgan_env.models.oracle import Oracle
from seqgan_env.rewards.base import RewardModel
from seqgan_env.rollout import PrefixStates


class OracleLikelihoodReward(RewardModel):
    """The oracle's log-probability of each chosen token (a stationary, dense reward).

    The return of an episode is the sequence's log-likelihood under the oracle, so
    maximising it lowers NLL-oracle directly. Rewards are ``<= 0``.
    """

    def __init__(self, oracle: Oracle, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        if not isinstance(oracle, Oracle):
            raise TypeError(f"expected a seqgan_env Oracle, got {type(oracle).__name__}")
        self.oracle = module_on(oracle, self.device)
        self.prefixes: PrefixStates | None = None

    def bind(self, batch_size):
        super().bind(batch_size)
        self.prefixes = PrefixStates(self.oracle, batch_size)

    def reset(self, rows, prompts=None):
        if self.prefixes is None or self.prefixes.batch_size != rows.shape[0]:
            self.bind(rows.shape[0])
            if prompts is not None:
                self.prefixes.reset(rows, prompts)
        else:
            self.prefixes.reset(rows, prompts)

    def step(self, sequences, lengths, actions, finished):
        if self.prefixes is None:
            raise RuntimeError("reset() must be called before step()")
        self.prefixes.sync()
        with torch.inference_mode():
            log_probs = torch.log_softmax(self.prefixes.logits, dim=-1)
            rewards = log_probs.gather(1, actions.view(-1, 1)).squeeze(1)
        self.prefixes.advance(actions)
        return rewards
