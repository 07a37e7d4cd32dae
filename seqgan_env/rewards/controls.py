"""Rewards that carry no information about the sequence: controls for how much a method's gain comes from D at all."""

from __future__ import annotations

import torch

from seqgan_env.rewards.base import RewardModel


class ConstantReward(RewardModel):
    """The same reward ``value`` after every token, whatever the sequence (a control)."""

    per_token = False  # a control stands in for the discriminator's reward, and is weighted as it is

    def __init__(self, value: float = 1.0, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.value = float(value)

    def step(self, sequences, lengths, actions, finished):
        return torch.full((sequences.shape[0],), self.value, device=self.device)


class RandomReward(RewardModel):
    """An independent uniform [0, 1) reward after every token (a control), seeded by :meth:`seed`."""

    per_token = False  # a control stands in for the discriminator's reward, and is weighted as it is

    def step(self, sequences, lengths, actions, finished):
        return torch.rand(sequences.shape[0], generator=self.generator, device=self.device)
