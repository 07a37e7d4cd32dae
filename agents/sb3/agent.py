"""An SB3 model behind :class:`agents.base.Agent`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from gymnasium.vector import VectorEnv
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.vec_env import VecEnv

from agents.base import Agent, EpisodeBatch
from agents.sb3.state import sb3_from_state_dict, sb3_state_dict
from seqgan_env.checkpoint import FORMAT, CheckpointError, atomic_save, load_checkpoint


class SB3Agent(Agent):
    """An SB3 model behind :class:`agents.base.Agent`: it acts, saves and loads.

    It does not :meth:`learn` from an :class:`~agents.base.EpisodeBatch`: SB3 algorithms
    learn from the rollouts they collect themselves (their buffers hold values and
    log-probabilities recorded while acting), so train with ``agent.model.learn(total_timesteps)``.

    Args:
        model: a PPO or A2C model, e.g. from :func:`make_ppo`.
    """

    def __init__(self, model: BaseAlgorithm) -> None:
        self.model = model

    def act(self, observations: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(observations, deterministic=False)
        return np.asarray(actions, dtype=np.int64).reshape(-1)

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        raise NotImplementedError(
            "SB3 algorithms learn from their own rollouts: train with agent.model.learn(total_timesteps) "
            "on an SB3VecEnvAdapter env"
        )

    def save(self, path: str | Path) -> None:
        """Write the model as tensors and plain data (:func:`sb3_state_dict`), never SB3's pickled zip."""
        atomic_save({"format": FORMAT, "kind": "sb3-agent", **sb3_state_dict(self.model)}, path)

    @classmethod
    def load(cls, path: str | Path, env: VecEnv | VectorEnv | None = None, device: str | torch.device = "auto",
             **kwargs: Any) -> SB3Agent:
        """Load a model saved by :meth:`save` (``torch.load(weights_only=True)``: the file cannot run code).

        ``env``: the env to train on (``None`` for acting only). Raises
        :class:`~seqgan_env.checkpoint.CheckpointError` for a file that is not such a model.
        """
        if kwargs:
            raise TypeError(f"unexpected arguments {sorted(kwargs)}")
        state = load_checkpoint(path, "sb3-agent")
        try:
            return cls(sb3_from_state_dict(state, env, device))
        except (KeyError, TypeError, RuntimeError) as exc:
            raise CheckpointError(f"{path}: not a usable SB3 model ({exc!r})") from exc
