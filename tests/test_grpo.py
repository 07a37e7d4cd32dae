"""GRPO: group-normalised advantages, the clipped objective, and its KL term to pi_ref."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers the envs)
from agents.base import collect_episodes
from agents.grpo import GrpoAgent, GrpoConfig, clipped_surrogate, group_normalised_advantages, k3_kl, make_grpo
from seqgan_env.divergence import kl_to_reference
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_group_normalised_advantages_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0, 5.0, 5.0])
    std = math.sqrt((1.5**2 + 0.5**2 + 0.5**2 + 1.5**2) / 3)  # Bessel's correction
    eps = 0.01  # relative to the group's largest |R| (4 in the first group)
    d = std + eps * 4
    expected = [-1.5 / d, -0.5 / d, 0.5 / d, 1.5 / d, 0, 0, 0, 0]
    assert group_normalised_advantages(rewards, 4, eps).tolist() == pytest.approx(expected, rel=1e-6)
    # Groups of 2 are the consecutive pairs (1, 2) and (3, 4): deviations -+0.5 over a std of sqrt(0.5).
    pairs = group_normalised_advantages(rewards[:4], 2, 0.0)
    assert pairs.tolist() == pytest.approx([-0.5 / math.sqrt(0.5), 0.5 / math.sqrt(0.5)] * 2, rel=1e-6)


def test_group_normalised_advantages_do_not_depend_on_the_rewards_scale():
    # D*'s P(real) of an MLE generator's samples is about 1e-25: a fixed eps of 1e-4 made every
    # advantage about 1e-21. A relative eps normalises them as it does rewards of order 1.
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    unit = group_normalised_advantages(rewards, 4)
    assert unit.abs().max() > 1.0
    torch.testing.assert_close(group_normalised_advantages(rewards * 1e-25, 4), unit)
    torch.testing.assert_close(group_normalised_advantages(rewards * 1e6, 4), unit)
    # Equal rewards, zero ones included, give 0 (no 0/0), whatever their scale.
    for value in (0.0, 1e-25, -3.0):
        equal = group_normalised_advantages(torch.full((4,), value, dtype=torch.float64), 4)
        assert equal.tolist() == [0.0] * 4


def test_clipped_surrogate_by_hand():
    ratio = torch.tensor([1.5, 0.5, 0.5, 1.5, 1.1])
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0, 2.0])
    # min(rho A, clip(rho) A): the clipped value where it is the smaller, never a larger one.
    expected = [1.2, 0.5, -0.8, -1.5, 2.2]
    assert clipped_surrogate(ratio, advantages, 0.2).tolist() == pytest.approx(expected)


def test_k3_is_zero_at_equal_policies_and_positive_elsewhere():
    log_probs = torch.log(torch.tensor([0.5, 0.2, 0.9]))
    assert k3_kl(log_probs, log_probs).tolist() == [0.0, 0.0, 0.0]
    reference = torch.log(torch.tensor([0.25, 0.4, 0.9]))
    # r = ref / pi: 0.5 -> 0.5 - log 0.5 - 1; 2 -> 2 - log 2 - 1
    assert k3_kl(log_probs, reference).tolist() == pytest.approx([0.5 + math.log(2) - 1, 1 - math.log(2), 0.0])


def train(kl_coef: float, updates: int = 12) -> float:
    """KL(pi || pi_ref) after ``updates`` GRPO batches on the tiny oracle reward (fixed seed)."""
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=32, reward="oracle")
    torch.manual_seed(0)
    generator = Generator.from_preset(get_preset("tiny"))
    agent = GrpoAgent(generator, GrpoConfig(lr=0.01, epochs=2, minibatch_size=16, kl_coef=kl_coef), seed=0)
    for update in range(updates):
        agent.learn(collect_episodes(envs, agent, seed=update))
    return kl_to_reference(generator, agent.reference, 2000, torch.Generator().manual_seed(0)).kl


def test_kl_term_keeps_the_policy_nearer_its_reference():
    free, held = train(0.0), train(2.0)
    assert free > 0.5  # the reward moved the policy
    assert held < 0.7 * free


def test_learn_statistics_and_save_load(tmp_path):
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=8, reward="random")
    torch.manual_seed(0)
    agent = make_grpo(Generator.from_preset(get_preset("tiny")), envs, seed=1, minibatch_size=4, epochs=2)
    stats = agent.learn(collect_episodes(envs, agent, seed=0))
    assert 0.0 <= stats["clip_fraction"] <= 1.0 and stats["kl_ref"] >= 0.0 and stats["env_steps"] == 64
    agent.save(tmp_path / "grpo.pt")
    loaded = GrpoAgent.load(tmp_path / "grpo.pt")
    assert loaded.config == agent.config and loaded.updates == 1
    for mine, theirs in zip([*agent.generator.parameters(), *agent.reference.parameters()],
                            [*loaded.generator.parameters(), *loaded.reference.parameters()]):
        assert torch.equal(mine, theirs)
    assert not torch.equal(agent.generator.output.weight, agent.reference.output.weight)
    observations = np.full((8, 8), 64)
    np.testing.assert_array_equal(agent.act(observations), loaded.act(observations))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="clip_eps must be > 0"):
        GrpoConfig(clip_eps=0.0)
    with pytest.raises(ValueError, match="kl_coef must be >= 0"):
        GrpoConfig(kl_coef=-0.1)
    with pytest.raises(ValueError, match="multiple of group_size"):
        make_grpo(Generator.from_preset(get_preset("tiny")),
                  gym.make_vec("SeqGAN-Tiny-v0", num_envs=6, reward="random"), 0)
