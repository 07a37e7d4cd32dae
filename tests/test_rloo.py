"""RLOO: the leave-one-out baseline, its zero gradient on a constant reward, its unbiasedness."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers the envs)
from agents.base import EpisodeBatch, collect_episodes
from agents.rloo import RlooAgent, RlooConfig, leave_one_out_advantages, make_rloo
from seqgan_env.divergence import all_sequences
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_generator(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(3, 4, 8, 3, init_std=1.0)


def terminal_batch(sequences: torch.Tensor, scores: torch.Tensor) -> EpisodeBatch:
    rows, length = sequences.shape
    rewards = np.zeros((rows, length), dtype=np.float32)
    rewards[:, -1] = scores.numpy()
    return EpisodeBatch(sequences.numpy(), rewards, np.full(rows, length), pad_token=3)


def test_leave_one_out_advantages_by_hand():
    rewards = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 5.0])
    expected = [1 - 3, 2 - 8 / 3, 3 - 7 / 3, 4 - 2, 0.0, 0.0]  # groups [1, 2, 3, 4] and... of 2: [5, 5]
    got = leave_one_out_advantages(rewards[:4], 4).tolist() + leave_one_out_advantages(rewards[4:], 2).tolist()
    assert got == pytest.approx(expected)
    with pytest.raises(ValueError, match="does not split into groups of 4"):
        leave_one_out_advantages(rewards, 4)


def test_constant_reward_gives_exactly_zero_gradient_and_no_update():
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=8, reward="constant")
    torch.manual_seed(0)
    generator = Generator.from_preset(get_preset("tiny"))
    agent = RlooAgent(generator, RlooConfig(group_size=4), seed=0)
    batch = collect_episodes(envs, agent, seed=0)
    assert len(set(map(tuple, batch.sequences.tolist()))) > 1  # different samples, the same reward
    loss, _ = agent.loss(batch)
    loss.backward()
    assert all(bool((p.grad == 0).all()) for p in generator.parameters())
    before = [p.detach().clone() for p in generator.parameters()]
    stats = agent.learn(batch)
    assert stats["grad_norm"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(before, generator.parameters()))


def flat_grad(generator: Generator) -> torch.Tensor:
    return torch.cat([p.grad.flatten() for p in generator.parameters()])


def test_expected_gradient_equals_the_true_gradient_by_enumeration():
    generator = tiny_generator()
    space = all_sequences(3, 3)
    scores = torch.rand(space.shape[0], generator=torch.Generator().manual_seed(1)) * 2.0
    # True gradient of E[R] = sum_y p(y) R(y), by enumeration.
    generator.zero_grad()
    (generator.log_probs(space).sum(1).exp() * scores).sum().backward()
    true = flat_grad(generator)
    # Score of each of the 27 sequences, to average the estimator over many batches cheaply.
    scores_of = []
    for row in space:
        generator.zero_grad()
        generator.log_probs(row.unsqueeze(0)).sum().backward()
        scores_of.append(flat_grad(generator))
    jacobian = torch.stack(scores_of)
    probs = generator.log_probs(space).sum(1).exp().detach()
    agent = RlooAgent(generator, RlooConfig(group_size=4), seed=0)
    rng = torch.Generator().manual_seed(2)

    def draw(rows: int) -> torch.Tensor:
        return torch.multinomial(probs, rows, replacement=True, generator=rng)

    # The agent's loss is the estimator: on one batch its gradient is sum_i A_i grad log p(y_i) / B.
    index = draw(16)
    generator.zero_grad()
    loss, _ = agent.loss(terminal_batch(space[index], scores[index]))
    loss.backward()
    by_formula = (leave_one_out_advantages(scores[index], 4).unsqueeze(1) * jacobian[index]).mean(0)
    torch.testing.assert_close(-flat_grad(generator), by_formula, rtol=1e-4, atol=1e-6)
    # Its expectation, over 30 x 40,000 groups, is the true gradient.
    estimates = []
    for _ in range(30):
        index = draw(160_000)
        advantages = leave_one_out_advantages(scores[index], 4)
        per_sequence = torch.zeros(space.shape[0]).index_add_(0, index, advantages)  # sum of A_i over equal y_i
        estimates.append(per_sequence @ jacobian / index.shape[0])
    estimates = torch.stack(estimates)
    mean, stderr = estimates.mean(0), estimates.std(0) / estimates.shape[0] ** 0.5
    assert float(true.norm()) > 0.1
    assert float(((mean - true).abs() / (stderr + 1e-7)).max()) < 5.0
    assert float((mean - true).norm() / true.norm()) < 0.02


def test_save_and_load_round_trip(tmp_path):
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=4, reward="random")
    torch.manual_seed(0)
    agent = make_rloo(Generator.from_preset(get_preset("tiny")), envs, seed=3, group_size=2, kl_beta=0.1)
    agent.learn(collect_episodes(envs, agent, seed=0))
    agent.save(tmp_path / "rloo.pt")
    loaded = RlooAgent.load(tmp_path / "rloo.pt")
    assert loaded.config == agent.config and loaded.updates == 1
    for mine, theirs in zip(agent.generator.parameters(), loaded.generator.parameters()):
        assert torch.equal(mine, theirs)
    observations = np.full((4, 8), 64)
    np.testing.assert_array_equal(agent.act(observations), loaded.act(observations))


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="group_size must be at least 2"):
        RlooConfig(group_size=1)
    with pytest.raises(ValueError, match="sequence_reward"):
        RlooConfig(sequence_reward="mean")
    with pytest.raises(ValueError, match="multiple of group_size"):
        make_rloo(tiny_generator(), gym.make_vec("SeqGAN-Tiny-v0", num_envs=6, reward="random"), 0, group_size=4)
