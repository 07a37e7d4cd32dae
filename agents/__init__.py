"""Agents that act in SeqGAN-v0 and learn from its reward.

* :class:`agents.base.Agent`: the interface every agent meets.
* :class:`agents.reinforce.ReinforceAgent`: the paper's policy-gradient generator.
"""

from agents.base import Agent, EpisodeBatch, collect_episodes
from agents.reinforce import ReinforceAgent, ReinforceConfig

__all__ = ["Agent", "EpisodeBatch", "ReinforceAgent", "ReinforceConfig", "collect_episodes"]
