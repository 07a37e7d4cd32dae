"""seqgan-env: SeqGAN as a Gymnasium environment.

``import seqgan_env`` registers ``SeqGAN-v0``::

    import gymnasium, seqgan_env
    env = gymnasium.make("SeqGAN-v0")                     # the embedded default
    envs = gymnasium.make_vec("SeqGAN-v0", num_envs=64)   # the batched twin
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.presets import PRESETS, Preset, get_preset
from seqgan_env.rewards import MonteCarloReward, OracleLikelihoodReward, RewardModel, TerminalReward
from seqgan_env.wrappers import SeqGANRewardWrapper, SeqGANVectorRewardWrapper

__version__ = "0.1.0"

ENV_ID = "SeqGAN-v0"

if ENV_ID not in gym.registry:
    gym.register(
        id=ENV_ID,
        entry_point="seqgan_env.factory:make_env",
        vector_entry_point="seqgan_env.factory:make_vector_env",
    )


def reward_wrapper(env: Any) -> SeqGANRewardWrapper | SeqGANVectorRewardWrapper:
    """The reward wrapper inside ``env`` (through Gymnasium's own wrappers)."""
    current = env
    while current is not None:
        if isinstance(current, (SeqGANRewardWrapper, SeqGANVectorRewardWrapper)):
            return current
        current = getattr(current, "env", None)
    raise ValueError("this env has no SeqGAN reward wrapper")


def set_discriminator(env: Any, discriminator: Discriminator) -> None:
    """Swap the discriminator that scores ``env``'s sequences (single or vector env)."""
    reward_wrapper(env).set_discriminator(discriminator)


def set_rollout_policy(env: Any, policy: Any) -> None:
    """Swap the policy that completes prefixes for ``env``'s Monte Carlo reward."""
    reward_wrapper(env).set_rollout_policy(policy)


__all__ = [
    "ENV_ID", "PRESETS", "Discriminator", "Generator", "MonteCarloReward", "Oracle",
    "OracleLikelihoodReward", "Preset", "RewardModel", "SeqGANEnv", "SeqGANRewardWrapper",
    "SeqGANVectorEnv", "SeqGANVectorRewardWrapper", "TerminalReward", "get_preset",
    "reward_wrapper", "set_discriminator", "set_rollout_policy",
]
