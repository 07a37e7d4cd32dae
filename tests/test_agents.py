"""Agents: the episode collector and REINFORCE learning on small presets."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import EpisodeBatch, ReinforceAgent, ReinforceConfig, collect_episodes
from seqgan_env.models import Generator


def test_episode_batch_observations_and_returns():
    batch = EpisodeBatch(np.array([[3, 4, 9]]), np.array([[0.5, 0.25, 1.0]], dtype=np.float32), np.array([3]), 9)
    np.testing.assert_array_equal(batch.observations()[0], [[9, 9, 9], [3, 9, 9], [3, 4, 9]])
    np.testing.assert_allclose(batch.returns(1.0)[0], [1.75, 1.25, 1.0])


def test_collect_episodes_records_what_the_env_paid(tiny, tiny_models):
    envs = gym.make_vec("SeqGAN-v0", num_envs=6, preset="tiny", discriminator=tiny_models["discriminator"],
                        rollout_policy=tiny_models["generator"], compute_dtype="float32")
    agent = ReinforceAgent(tiny_models["generator"], seed=0)
    batch = collect_episodes(envs, agent, seed=0)
    assert batch.sequences.shape == (6, tiny.seq_len) and (batch.lengths == tiny.seq_len).all()
    assert ((batch.rewards >= 0) & (batch.rewards <= 1)).all()
    final = tiny_models["discriminator"].score(torch.as_tensor(batch.sequences)).numpy()
    np.testing.assert_allclose(batch.rewards[:, -1], final, atol=1e-5)


def test_reinforce_agent_acts_like_its_generator(tiny, tiny_models):
    """Sampling step by step through the agent follows G's own first-token distribution."""
    gen = tiny_models["generator"]
    with torch.no_grad():
        gen.output.bias.copy_(torch.linspace(-3, 3, tiny.vocab_size))
    agent = ReinforceAgent(gen, seed=0)
    empty = np.full((20_000, tiny.seq_len), tiny.vocab_size)
    freq = np.bincount(agent.act(empty), minlength=tiny.vocab_size) / 20_000
    expected = torch.softmax(gen.start(1)[0], -1)[0].detach().numpy()
    assert np.abs(freq - expected).max() < 0.01


def train_reinforce(envs, agent, updates, seed=0):
    rewards = []
    for update in range(updates):
        batch = collect_episodes(envs, agent, seed=seed + update)
        rewards.append(agent.learn(batch)["mean_reward"])
    return rewards


@pytest.mark.parametrize("baseline", ["none", "mean", "value"])
def test_reinforce_raises_the_mean_reward_against_a_fixed_discriminator(trained_tiny_copy, baseline):
    models = trained_tiny_copy
    gen = models["generator"]
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset="tiny", discriminator=models["discriminator"],
                        rollout_policy=gen, num_rollouts=4)
    agent = ReinforceAgent(gen, ReinforceConfig(lr=0.01, baseline=baseline), seed=0)
    rewards = train_reinforce(envs, agent, 50)
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.1


def test_reinforce_lowers_nll_oracle_on_the_oracle_reward(tiny, tiny_models):
    oracle = tiny_models["oracle"]
    gen = tiny_models["generator"]
    rng = torch.Generator().manual_seed(0)
    before = oracle.nll(gen.sample(2000, rng))
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset="tiny", reward="oracle", oracle=oracle)
    agent = ReinforceAgent(gen, ReinforceConfig(lr=0.02, baseline="mean"), seed=0)
    train_reinforce(envs, agent, 40)
    after = oracle.nll(gen.sample(2000, rng))
    assert after < before - 0.3


@pytest.mark.slow
def test_reinforce_raises_the_default_envs_reward_over_30_updates():
    """The embedded default as a user gets it (shipped G and D, vocabulary 5000, length 20):
    30 REINFORCE updates of 64 sequences against the fixed shipped D raise the Monte Carlo
    reward (measured: 0.35 over the first five updates, 0.58 over the last five; 45 s)."""
    import copy

    import seqgan_env

    torch.manual_seed(0)
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, num_rollouts=4)
    generator = copy.deepcopy(seqgan_env.reward_wrapper(envs).reward_model.rollout_policy)
    agent = ReinforceAgent(generator, ReinforceConfig(baseline="mean"), seed=0)
    seqgan_env.set_rollout_policy(envs, agent.rollout_policy)
    rewards = train_reinforce(envs, agent, 30)
    assert np.mean(rewards[-5:]) > np.mean(rewards[:5]) + 0.1, rewards


@pytest.mark.slow
def test_reinforce_on_the_paper_oracles_likelihood_lowers_nll_oracle(paper_oracle_path):
    """The paper's oracle (vocabulary 5000) as the reward: 30 updates take an untrained G's
    NLL-oracle down (measured: 11.43 -> 10.90; 15 s)."""
    from seqgan_env.models import Oracle
    from seqgan_env.presets import get_preset

    oracle = Oracle.load(paper_oracle_path)
    torch.manual_seed(0)
    generator = Generator.from_preset(get_preset("paper"))
    before = oracle.nll(generator.sample(2000, torch.Generator().manual_seed(0)))
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset="paper", reward="oracle", oracle=oracle)
    agent = ReinforceAgent(generator, ReinforceConfig(baseline="mean", reward_to_go=True), seed=0)
    train_reinforce(envs, agent, 30)
    after = oracle.nll(generator.sample(2000, torch.Generator().manual_seed(0)))
    assert after < before - 0.3, (before, after)


def test_rollout_copy_follows_the_generator(tiny):
    torch.manual_seed(0)
    gen = Generator.from_preset(tiny)
    agent = ReinforceAgent(gen, ReinforceConfig(rollout_beta=0.8))
    start = [p.clone() for p in agent.rollout_policy.parameters()]
    with torch.no_grad():
        for p in gen.parameters():
            p.add_(1.0)
    agent._update_rollout()
    for before, now, target in zip(start, agent.rollout_policy.parameters(), gen.parameters()):
        torch.testing.assert_close(now, 0.8 * before + 0.2 * target)
    assert ReinforceAgent(gen, ReinforceConfig(rollout_beta=0.0)).rollout_policy is gen


def assert_same_state(mine, theirs, where="state"):
    """Nested dicts, lists and tensors equal, exactly."""
    if isinstance(mine, torch.Tensor):
        assert isinstance(theirs, torch.Tensor) and torch.equal(mine, theirs), where
    elif isinstance(mine, dict):
        assert isinstance(theirs, dict) and mine.keys() == theirs.keys(), where
        for key in mine:
            assert_same_state(mine[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(mine, (list, tuple)):
        assert type(mine) is type(theirs) and len(mine) == len(theirs), where
        for index, (a, b) in enumerate(zip(mine, theirs)):
            assert_same_state(a, b, f"{where}[{index}]")
    else:
        assert mine == theirs, where


def test_reinforce_save_and_load_restore_everything_and_training_continues_identically(tiny, tiny_models, tmp_path):
    """After a few updates every piece of the agent's training state comes back from the file:
    G, its Adam moments, the sampling RNG, the delayed rollout copy (which differs from G by
    then), the value head and its optimizer, the update count. Training on from the loaded
    agent then gives bit for bit what training on without saving gives."""
    config = ReinforceConfig(baseline="value", rollout_beta=0.8, entropy_coef=0.01)
    agent = ReinforceAgent(tiny_models["generator"], config, seed=3)

    def envs_for(some_agent):
        return gym.make_vec("SeqGAN-v0", num_envs=16, preset="tiny", discriminator=tiny_models["discriminator"],
                            rollout_policy=some_agent.rollout_policy, num_rollouts=2, compute_dtype="float32")

    envs = envs_for(agent)
    train_reinforce(envs, agent, 2, seed=0)
    agent.save(tmp_path / "agent.pt")
    loaded = ReinforceAgent.load(tmp_path / "agent.pt")

    assert loaded.config == agent.config and loaded.updates == agent.updates == 2
    assert_same_state(loaded.generator.state_dict(), agent.generator.state_dict(), "generator")
    assert loaded.rollout_policy is not loaded.generator
    assert not all(torch.equal(a, b) for a, b in zip(agent.rollout_policy.parameters(), agent.generator.parameters()))
    assert_same_state(loaded.rollout_policy.state_dict(), agent.rollout_policy.state_dict(), "rollout copy")
    assert_same_state(loaded.optimizer.state_dict(), agent.optimizer.state_dict(), "optimizer")
    assert len(agent.optimizer.state_dict()["state"]) > 0, "Adam has moments to restore"
    assert_same_state(loaded.value_head.state_dict(), agent.value_head.state_dict(), "value head")
    assert_same_state(loaded.value_optimizer.state_dict(), agent.value_optimizer.state_dict(), "value optimizer")
    assert torch.equal(loaded.rng.get_state(), agent.rng.get_state())

    continued = train_reinforce(envs, agent, 3, seed=2)
    resumed = train_reinforce(envs_for(loaded), loaded, 3, seed=2)
    assert resumed == continued
    for name, mine, theirs in (("generator", loaded.generator, agent.generator),
                               ("rollout copy", loaded.rollout_policy, agent.rollout_policy),
                               ("value head", loaded.value_head, agent.value_head)):
        assert_same_state(mine.state_dict(), theirs.state_dict(), f"{name} after training on")


def _token_weights(generator: Generator, batch: EpisodeBatch, **config) -> float:
    """What one REINFORCE update weighted the tokens by, read from its statistics (their mean over tokens)."""
    import copy

    agent = ReinforceAgent(copy.deepcopy(generator), ReinforceConfig(lr=1e-6, rollout_beta=0.0, **config))
    return agent.learn(batch)["mean_reward"]


@pytest.mark.parametrize("kl_beta", [0.0, 0.5])
def test_the_discount_weights_each_token_by_its_discounted_reward_to_go(tiny, tiny_models, kl_beta):
    """discount = gamma of the reward-to-go of a per-token reward (the KL term included); 0: each step's own."""
    gen = tiny_models["generator"]
    rng = np.random.default_rng(0)
    sequences = rng.integers(0, tiny.vocab_size, (5, tiny.seq_len))
    rewards = rng.normal(size=(5, tiny.seq_len)).astype(np.float32)
    batch = EpisodeBatch(sequences, rewards, np.full(5, tiny.seq_len), tiny.vocab_size, per_token=True)
    with torch.no_grad():
        taken = torch.log_softmax(gen.output(gen.hidden_states(torch.as_tensor(sequences))), -1).gather(
            -1, torch.as_tensor(sequences).unsqueeze(-1)).squeeze(-1).double().numpy()
    penalised = rewards - kl_beta * taken
    for discount in (0.0, 0.5, 1.0):
        expected = EpisodeBatch(sequences, penalised, batch.lengths, tiny.vocab_size).returns(discount).mean()
        got = _token_weights(gen, batch, discount=discount, kl_beta=kl_beta)
        assert got == pytest.approx(expected, rel=1e-4, abs=1e-5), discount
    assert _token_weights(gen, batch, discount=0.0, kl_beta=kl_beta) != pytest.approx(
        _token_weights(gen, batch, discount=1.0, kl_beta=kl_beta), abs=1e-3)  # the choice matters here
    with pytest.raises(ValueError, match="discount must be in"):
        ReinforceConfig(discount=1.5)
