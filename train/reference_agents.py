"""The agents of the reference scores, as ``module:function`` for ``seqgan evaluate --agent``.

Each function has the signature the scoring protocol (and ``seqgan compare``) calls,
``function(generator, envs, seed) -> agents.Agent``: ``generator`` is the shared MLE
generator (a copy the agent may train in place), ``envs`` the vector env it trains on.
Use them as templates for your own agent.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.base import Agent, EpisodeBatch
from agents.reinforce import ReinforceAgent, ReinforceConfig
from seqgan_env.models import Generator


class MLEAgent(ReinforceAgent):
    """The MLE generator as it is: it acts like REINFORCE's policy and never updates (the no-RL row)."""

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        return {}


class SB3Learner(Agent):
    """A PPO or A2C model that collects its own rollouts: the protocol calls :meth:`update`, not
    :meth:`learn`. ``generator`` follows the model's actor after every update."""

    def __init__(self, model: Any, generator: Generator) -> None:
        from train.adversarial import sb3_step

        self.model, self.generator = model, generator
        self._step = sb3_step(model, generator)

    def act(self, observations: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(observations, deterministic=False)
        return np.asarray(actions, dtype=np.int64).reshape(-1)

    def learn(self, batch: EpisodeBatch) -> dict[str, float]:
        raise NotImplementedError("SB3 learns from its own rollouts: call update(seed)")

    def update(self, seed: int) -> dict[str, float]:
        """One rollout on the model's env and one update (see :func:`train.adversarial.sb3_step`)."""
        return self._step(seed)

    def save(self, path: Any) -> None:
        from agents.sb3 import SB3Agent

        SB3Agent(self.model).save(path)

    @classmethod
    def load(cls, path: Any, **kwargs: Any) -> Agent:
        from agents.sb3 import SB3Agent

        return SB3Agent.load(path, **kwargs)


def mle(generator: Generator, envs: Any, seed: int) -> Agent:
    """No RL: the shared MLE generator, sampled at temperature 1."""
    return MLEAgent(generator, ReinforceConfig(lr=0.0, rollout_beta=0.0), seed=seed)


def reinforce(generator: Generator, envs: Any, seed: int) -> Agent:
    """The paper's REINFORCE (no baseline, Adam 0.01, rollout policy beta = 0.8)."""
    return ReinforceAgent(generator, ReinforceConfig(), seed=seed)


def reinforce_mean_baseline(generator: Generator, envs: Any, seed: int) -> Agent:
    """REINFORCE with each step's batch-mean reward as a baseline."""
    return ReinforceAgent(generator, ReinforceConfig(baseline="mean"), seed=seed)


def ppo(generator: Generator, envs: Any, seed: int) -> Agent:
    """stable-baselines3 PPO with the project's preset, starting as the MLE generator."""
    from agents.sb3 import make_ppo

    return SB3Learner(make_ppo(envs, generator=generator, seed=seed, device=generator.device), generator)


def a2c(generator: Generator, envs: Any, seed: int) -> Agent:
    """stable-baselines3 A2C with the project's preset, starting as the MLE generator."""
    from agents.sb3 import make_a2c

    return SB3Learner(make_a2c(envs, generator=generator, seed=seed, device=generator.device), generator)
