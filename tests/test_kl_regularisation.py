"""The KL-regularised reward end to end: the reference's term from the env's wrapper, the policy's
term from the agent's ``kl_beta``; beta > 0 keeps the policy nearer its MLE start."""

from __future__ import annotations

import copy

import gymnasium as gym
import pytest
import torch

import seqgan_env  # noqa: F401  (registers the envs)
from agents.base import collect_episodes
from agents.rloo import RlooAgent, RlooConfig
from seqgan_env.divergence import kl_to_reference
from seqgan_env.models import Generator, Oracle
from seqgan_env.presets import get_preset
from seqgan_env.rewards.reference_penalty import with_reference_penalty

pytestmark = pytest.mark.usefixtures("one_thread")


def train_rloo(beta: float, updates: int = 15) -> tuple[float, float]:
    """KL(pi || pi_ref) and the mean oracle log-likelihood per sequence after RLOO on the tiny
    preset's oracle reward, beta in both halves of the penalty (the env's and the agent's)."""
    preset = get_preset("tiny")
    torch.manual_seed(0)
    generator = Generator.from_preset(preset)
    reference = copy.deepcopy(generator).requires_grad_(False)
    envs = with_reference_penalty(gym.make_vec("SeqGAN-Tiny-v0", num_envs=32, reward="oracle"), reference, beta)
    agent = RlooAgent(generator, RlooConfig(lr=0.05, group_size=4, kl_beta=beta), seed=0)
    for update in range(updates):
        agent.learn(collect_episodes(envs, agent, seed=update))
    kl = kl_to_reference(generator, reference, 2000, torch.Generator().manual_seed(0)).kl
    samples = generator.sample(2000, torch.Generator().manual_seed(1))
    return kl, float(Oracle.from_preset(preset).log_probs(samples).sum(1).mean())


def test_kl_penalty_keeps_rloo_nearer_its_reference():
    free_kl, free_gold = train_rloo(0.0)
    held_kl, held_gold = train_rloo(1.0)
    assert free_kl > 1.0  # without the penalty the reward moves the policy far from its start
    assert held_kl < 0.5 * free_kl
    assert free_gold > held_gold  # and it is the penalty, not a broken update, that holds it back
