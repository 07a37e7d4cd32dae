"""Reference answers of the course exercises (docs/exercises.md), on the tiny variant.

Each test is what a student should observe, asserted with a margin, so the exercises stay
true as the code changes.
"""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env
from agents import ReinforceAgent, ReinforceConfig, collect_episodes

ACTIONS = (3, 5, 7, 9, 11, 13, 15, 17)  # one fixed sequence of the tiny vocabulary


def nll_oracle(models, generator):
    return models["oracle"].nll(generator.sample(4000, torch.Generator().manual_seed(5)))


def reinforce(models, reward, config, updates=15):
    """``updates`` REINFORCE updates of a copy of the MLE generator on ``reward``; the trained
    generator and each update's statistics."""
    generator = copy.deepcopy(models["generator"])
    given = {"monte_carlo": dict(discriminator=models["discriminator"], rollout_policy=generator),
             "oracle": dict(oracle=models["oracle"])}.get(reward, {})
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=64, reward=reward, **given)
    agent = ReinforceAgent(generator, config, seed=0)
    if reward == "monte_carlo":
        seqgan_env.set_rollout_policy(envs, agent.rollout_policy)
    stats = [agent.learn(collect_episodes(envs, agent, seed=seed)) for seed in range(updates)]
    return generator, stats


def rewards_of_fixed_sequence(models, num_rollouts, seeds=40):
    env = gym.make("SeqGAN-Tiny-v0", discriminator=models["discriminator"], rollout_policy=models["generator"],
                   num_rollouts=num_rollouts)
    rows = []
    for seed in range(seeds):
        env.reset(seed=seed)
        rows.append([env.step(action)[1] for action in ACTIONS])
    return np.array(rows)


def test_exercise_1_more_rollouts_less_noise(trained_tiny):
    """The Monte Carlo reward is an estimate: its spread over seeds falls like 1/sqrt(N), and
    the last step (D's score of the finished sequence itself) has none."""
    one, sixteen = rewards_of_fixed_sequence(trained_tiny, 1), rewards_of_fixed_sequence(trained_tiny, 16)
    ratio = one[:, :4].std(axis=0) / sixteen[:, :4].std(axis=0)
    assert (ratio > 2.5).all() and (ratio < 6.5).all(), ratio  # sqrt(16) = 4
    assert one[:, -1].std() == sixteen[:, -1].std() == 0.0
    assert one[:, 0].std() > 3 * one[:, -2].std()  # the fewer tokens left to complete, the less noise


def test_exercise_2_a_baseline_stops_the_constant_control(trained_tiny):
    """With a constant reward the paper's update (no baseline) still moves the policy; with a
    mean baseline every advantage is zero and nothing moves."""
    _, without = reinforce(trained_tiny, "constant", ReinforceConfig())
    assert min(s["kl"] for s in without) > 1e-4
    generator, with_baseline = reinforce(trained_tiny, "constant", ReinforceConfig(baseline="mean"))
    assert max(s["kl"] for s in with_baseline) < 1e-6
    for mine, original in zip(generator.parameters(), trained_tiny["generator"].parameters()):
        assert torch.equal(mine, original)


def test_exercise_3_an_informative_reward_beats_the_controls(trained_tiny):
    """The oracle's own log-likelihood as the reward lowers NLL-oracle by more than a nat in 15
    updates, and collapses the entropy; the controls move NLL-oracle by far less."""
    before = nll_oracle(trained_tiny, trained_tiny["generator"])
    informed, stats = reinforce(trained_tiny, "oracle", ReinforceConfig(baseline="mean", reward_to_go=True))
    assert nll_oracle(trained_tiny, informed) < before - 1.0
    assert stats[-1]["entropy"] < stats[0]["entropy"] - 1.0
    for control in ("constant", "random"):
        moved, _ = reinforce(trained_tiny, control, ReinforceConfig())
        assert abs(nll_oracle(trained_tiny, moved) - before) < 0.3, control


def reward_by_prefix_length(models, discriminator):
    """Mean reward at each step for G's own tokens and for uniformly random tokens."""
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=256, discriminator=discriminator,
                        rollout_policy=models["generator"])
    sampler = ReinforceAgent(models["generator"], ReinforceConfig(lr=0.0, rollout_beta=0.0), seed=0)

    class Uniform(ReinforceAgent):
        tokens = np.random.default_rng(0)

        def act(self, observations):
            return self.tokens.integers(0, 64, observations.shape[0])

    by_g = collect_episodes(envs, sampler, seed=1).rewards.mean(axis=0)
    by_random = collect_episodes(envs, Uniform(models["generator"], seed=0), seed=1).rewards.mean(axis=0)
    return by_g, by_random


def test_exercise_4_d_only_knows_what_it_was_shown(trained_tiny_copy):
    """A D trained only against G's samples pays random tokens as much as G's own; shown random
    negatives too, it pays them less and less as the random prefix grows."""
    from train.pretrain import DiscriminatorSchedule, train_discriminator

    models = trained_tiny_copy
    by_g, by_random = reward_by_prefix_length(models, models["discriminator"])
    assert abs(by_random[-1] - by_g[-1]) < 0.05, (by_g, by_random)

    discriminator = models["discriminator"]
    schedule = DiscriminatorSchedule(rounds=3, epochs=3, num_negatives=2000, lr=1e-3, random_negatives=0.25)
    train_discriminator(discriminator, models["generator"], models["real"], schedule, torch.Generator().manual_seed(0))
    by_g, by_random = reward_by_prefix_length(models, discriminator.eval())
    assert by_random[-1] < by_random[0] - 0.05, by_random
    assert by_g[-1] > by_random[-1] + 0.1, (by_g, by_random)


@pytest.mark.parametrize("exercise", [1, 2, 3, 4, 5])
def test_exercises_are_documented(exercise):
    from tests.conftest import REPO

    text = (REPO / "docs" / "exercises.md").read_text()
    assert f"## Exercise {exercise}" in text and f"test_exercise_{exercise}_" in text


def prompt_group_rewards(models, prompt_length):
    """D's score of 256 sequences by G: 16 groups of 16 rows sharing a prompt (or none)."""
    from agents.sequence_level import sequence_rewards

    prompts = dict(prompt_length=prompt_length, group_size=16) if prompt_length else {}
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=256, reward="terminal", discriminator=models["discriminator"],
                        **prompts)
    sampler = ReinforceAgent(models["generator"], ReinforceConfig(lr=0.0, rollout_beta=0.0), seed=0)
    return sequence_rewards(collect_episodes(envs, sampler, seed=1), "sum")


def test_exercise_5_a_prompt_decides_part_of_the_reward(trained_tiny):
    """With half the sequence a real prompt, the prompt groups hold a large share of D's reward
    variance (chance: 1/16); the group baseline removes it, a batch-wide one does not."""
    from agents.rloo import leave_one_out_advantages

    shares, ratios = {}, {}
    for k in (0, 4):
        rewards = prompt_group_rewards(trained_tiny, k)
        shares[k] = float(rewards.view(16, 16).mean(1).var() / rewards.var())
        ratios[k] = float(leave_one_out_advantages(rewards, 16).var() / leave_one_out_advantages(rewards).var())
    assert shares[0] < 0.15 and shares[4] > 0.3, shares
    assert ratios[4] < 0.8 and ratios[0] > 0.9, ratios
