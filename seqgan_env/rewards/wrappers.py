"""Reward wrappers: the single-env and vector-env faces of one reward model.

Both wrappers hand the sequences after each step to a :class:`~seqgan_env.rewards.RewardModel`
that works on batches; the single env is a batch of one. The reward's randomness is seeded
from the env's own generator at every ``reset`` (a vector env's autoresets included), so the
same seed and the same actions give the same rewards, and a one-row vector env gives exactly
what ``SyncVectorEnv`` over the single env gives. With prompts, the rows that start again are
passed to the reward with their prompts (:meth:`~seqgan_env.rewards.RewardModel.reset`).

To retrain the discriminator between episodes, call :meth:`set_discriminator` (and
:meth:`set_rollout_policy` for a new rollout policy). On an env from ``gymnasium.make``,
which adds Gymnasium's own wrappers on top, reach them with
``env.get_wrapper_attr("set_discriminator")(d)`` or :func:`seqgan_env.set_discriminator`.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import VectorEnv, VectorWrapper

from seqgan_env.rewards import RewardModel


def _seed_from(rng: np.random.Generator) -> int:
    return int(rng.integers(0, 2**62))


def _reset_rewards(model: RewardModel, rows: torch.Tensor, obs: np.ndarray, prompt_length: int) -> None:
    """Tell the reward which rows start again, and from which prompts (the first ``prompt_length``
    tokens of their new observations); without prompts, exactly the call it always was."""
    if prompt_length:
        model.reset(rows, prompts=torch.as_tensor(obs[..., :prompt_length], device=rows.device).view(rows.shape[0], -1))
    else:
        model.reset(rows)


class _Swappable:
    """Run-time swaps of the reward's discriminator and rollout policy."""

    reward_model: RewardModel

    def set_discriminator(self, discriminator: Any) -> None:
        """Score with ``discriminator`` from the next step on."""
        if not hasattr(self.reward_model, "set_discriminator"):
            raise TypeError(f"the {type(self.reward_model).__name__} uses no discriminator")
        self.reward_model.set_discriminator(discriminator)

    def set_rollout_policy(self, policy: Any) -> None:
        """Complete prefixes with ``policy`` from the next step on (Monte Carlo reward only)."""
        if not hasattr(self.reward_model, "set_rollout_policy"):
            raise TypeError(f"the {type(self.reward_model).__name__} uses no rollout policy")
        self.reward_model.set_rollout_policy(policy)


class SeqGANRewardWrapper(gym.Wrapper[np.ndarray, np.int64, np.ndarray, np.int64], _Swappable):
    """Adds a reward model's reward to a :class:`~seqgan_env.envs.SeqGANEnv`."""

    def __init__(self, env: gym.Env[np.ndarray, np.int64], reward_model: RewardModel) -> None:
        super().__init__(env)
        self.reward_model = reward_model
        self._device = reward_model.device

    def reset(self, *, seed: int | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.reward_model.seed(_seed_from(self.np_random))
        _reset_rewards(self.reward_model, torch.ones(1, dtype=torch.bool, device=self._device), obs,
                       self.env.unwrapped.prompt_length)
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(action)
        rewards = self.reward_model.step(
            torch.as_tensor(obs, device=self._device).unsqueeze(0),
            torch.tensor([info["prefix_length"]], device=self._device),
            torch.tensor([int(np.asarray(action).reshape(()))], device=self._device),
            torch.tensor([bool(terminated)], device=self._device),
        )
        return obs, float(rewards[0]), terminated, truncated, info


class SeqGANVectorRewardWrapper(VectorWrapper, _Swappable):
    """Adds a reward model's reward to a :class:`~seqgan_env.envs.SeqGANVectorEnv`."""

    def __init__(self, env: VectorEnv, reward_model: RewardModel) -> None:
        super().__init__(env)
        self.reward_model = reward_model
        self._device = reward_model.device

    def reset(self, *, seed: int | list[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        if isinstance(seed, (list, tuple)):
            seed = seed[0]  # one generator drives the whole batch
        obs, info = self.env.reset(seed=seed, options=options)
        self.reward_model.seed(_seed_from(self.np_random))
        _reset_rewards(self.reward_model, torch.ones(self.num_envs, dtype=torch.bool, device=self._device), obs,
                       self.env.unwrapped.prompt_length)
        return obs, info

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        obs, _, terminated, truncated, info = self.env.step(actions)
        sequences, lengths = obs, info["prefix_length"]
        if terminated.any():  # same-step autoreset: the finished rows' last step is in final_obs / final_info
            sequences, lengths = obs.copy(), lengths.copy()
            sequences[terminated] = np.stack(info["final_obs"][terminated])
            lengths[terminated] = info["final_info"]["prefix_length"][terminated]
        done = torch.from_numpy(terminated).to(self._device)
        rewards = self.reward_model.step(
            torch.from_numpy(sequences).to(self._device),
            torch.from_numpy(lengths).to(self._device),
            torch.as_tensor(np.asarray(actions, dtype=np.int64).reshape(-1), device=self._device),
            done,
        )
        if terminated.any():
            # An autoreset is a reset: reseed the reward from the env's generator, as the single
            # env does, so one row reproduces SyncVectorEnv over SeqGANEnv exactly.
            self.reward_model.seed(_seed_from(self.np_random))
            _reset_rewards(self.reward_model, done, obs, self.env.unwrapped.prompt_length)
        return obs, rewards.double().cpu().numpy(), terminated, truncated, info
