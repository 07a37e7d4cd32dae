"""Agents that act in SeqGAN-v0 and learn from its reward.

* :class:`agents.base.Agent`: the interface every agent meets.
* :class:`agents.reinforce.ReinforceAgent`: the paper's policy-gradient generator.
* :mod:`agents.sb3`: stable-baselines3 PPO, A2C (and sb3-contrib's RecurrentPPO) on the same
  reward; imported on its own (``from agents.sb3 import make_ppo``) to keep SB3 out of the
  import of this package.
"""

from agents.base import Agent, EpisodeBatch, collect_episodes
from agents.reinforce import ReinforceAgent, ReinforceConfig

__all__ = ["Agent", "EpisodeBatch", "ReinforceAgent", "ReinforceConfig", "collect_episodes"]
