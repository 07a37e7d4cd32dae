"""stable-baselines3 on SeqGAN-v0: the VecEnv adapter, the generator-initialised policy,
PPO/A2C learning against a fixed discriminator, the D-retraining callback, RecurrentPPO."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

import seqgan_env
from agents.sb3 import (
    DiscriminatorRetrainCallback,
    GeneratorActorCriticPolicy,
    SB3Agent,
    SB3VecEnvAdapter,
    TokenLSTMExtractor,
    copy_actor_to_generator,
    discount_for,
    make_a2c,
    make_ppo,
    make_recurrent_ppo,
)
from seqgan_env.factory import REWARD_ARGUMENTS
from seqgan_env.rewards.wrappers import SeqGANVectorRewardWrapper
from train.adversarial import fresh_accuracy


def tiny_envs(models, num_envs, reward="monte_carlo", **kwargs):
    given = dict(discriminator=models["discriminator"], rollout_policy=models["generator"], num_rollouts=4,
                 compute_dtype="float32")
    return gym.make_vec("SeqGAN-v0", num_envs=num_envs, preset="tiny", reward=reward,
                        **{k: v for k, v in given.items() if k in REWARD_ARGUMENTS[reward]}, **kwargs)


def mean_final_reward(model, venv, seed):
    """Mean D's P(real) of one batch of episodes sampled from ``model`` (terminal-reward env)."""
    torch.manual_seed(seed)
    venv.seed(seed)
    obs = venv.reset()
    finals = []
    for _ in range(venv.observation_space.shape[0]):
        actions, _ = model.predict(obs, deterministic=False)
        obs, rewards, dones, _ = venv.step(actions)
        finals.append(rewards[dones])
    return float(np.concatenate(finals).mean())


def test_adapter_follows_the_sb3_vecenv_protocol(tiny, tiny_models):
    venv = SB3VecEnvAdapter(tiny_envs(tiny_models, num_envs=4))
    pad, length = tiny.vocab_size, tiny.seq_len
    assert venv.num_envs == 4
    assert venv.observation_space == spaces.MultiDiscrete(np.full(length, pad + 1), dtype=np.int64)
    assert venv.action_space == spaces.Discrete(tiny.vocab_size)

    def episode(seed, actions):
        venv.seed(seed)
        obs = venv.reset()
        assert obs.shape == (4, length) and obs.dtype == np.int64 and (obs == pad).all()
        paid = []
        for t in range(length):
            obs, rewards, dones, infos = venv.step(actions[:, t])
            assert rewards.dtype == np.float32 and rewards.shape == (4,) and dones.dtype == bool
            assert len(infos) == 4 and all(info["TimeLimit.truncated"] is False for info in infos)
            paid.append(rewards)
            if t < length - 1:
                assert not dones.any() and not any("terminal_observation" in info for info in infos)
                np.testing.assert_array_equal(obs[:, : t + 1], actions[:, : t + 1])
        assert dones.all() and (obs == pad).all()  # same-step autoreset: already the next episode
        for row, info in enumerate(infos):
            np.testing.assert_array_equal(info["terminal_observation"], actions[row])
            np.testing.assert_array_equal(info["sequence"], actions[row])
        return np.stack(paid, axis=1)

    actions = np.random.default_rng(0).integers(0, tiny.vocab_size, size=(4, length))
    np.testing.assert_array_equal(episode(3, actions), episode(3, actions))  # seed() reaches the reward

    assert venv.get_attr("pad_token") == [pad] * 4 and venv.get_attr("seq_len", indices=1) == [length]
    assert venv.env_is_wrapped(SeqGANVectorRewardWrapper) == [True] * 4
    new_d = seqgan_env.Discriminator.from_preset(tiny)
    venv.env_method("set_discriminator", new_d)
    assert seqgan_env.reward_wrapper(venv.env).reward_model.discriminator is new_d
    with pytest.raises(ValueError, match="whole batched env"):
        venv.set_attr("render_mode", None, indices=[0])
    venv.close()


@pytest.mark.parametrize("make", [make_ppo, make_a2c])
def test_policy_starts_as_the_generator(tiny, trained_tiny, make):
    gen = trained_tiny["generator"]
    model = make(tiny_envs(trained_tiny, num_envs=2), generator=gen, seed=0)
    assert isinstance(model.policy, GeneratorActorCriticPolicy)
    lengths = torch.tensor([0, 0, 1, 3, 5, tiny.seq_len - 1])
    rng = torch.Generator().manual_seed(0)
    sequences = torch.randint(0, tiny.vocab_size, (len(lengths), tiny.seq_len), generator=rng)
    obs = torch.where(torch.arange(tiny.seq_len) < lengths[:, None], sequences, tiny.vocab_size)
    rows = torch.arange(len(lengths))
    with torch.no_grad():
        expected = torch.log_softmax(gen(sequences)[rows, lengths], dim=-1)
        logits = model.policy.get_distribution(obs).distribution.logits  # normalised log-probs
        _, log_prob, _ = model.policy.evaluate_actions(obs, sequences[rows, lengths])
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(log_prob, expected[rows, sequences[rows, lengths]], atol=1e-5, rtol=0)


def test_discount_presets_follow_the_reward(trained_tiny):
    assert discount_for(tiny_envs(trained_tiny, 1)) == (0.0, 1.0)
    assert discount_for(tiny_envs(trained_tiny, 1, reward="terminal")) == (1.0, 1.0)
    assert make_ppo(tiny_envs(trained_tiny, 1, reward="terminal")).gamma == 1.0


@pytest.mark.parametrize("make, rollouts", [(make_ppo, 20), (make_a2c, 24)])
def test_sb3_raises_the_reward_against_a_fixed_discriminator(trained_tiny_copy, make, rollouts):
    models = trained_tiny_copy
    num_envs = 64
    model = make(tiny_envs(models, num_envs), generator=models["generator"], seed=0)
    evaluation = SB3VecEnvAdapter(tiny_envs(models, 512, reward="terminal"))
    before = mean_final_reward(model, evaluation, seed=1)
    model.learn(rollouts * num_envs * model.n_steps)
    after = mean_final_reward(model, evaluation, seed=1)
    assert after > before + 0.05, (before, after)


def test_callback_retrains_the_discriminator_and_hands_it_to_the_env(trained_tiny_copy):
    """Starting from an untrained D (chance on fresh samples), three rollouts of retraining
    make it tell the policy's fresh samples from real data, and the env scores with it. The
    policy starts as an untrained generator, far from the real data: a separable case."""
    models = trained_tiny_copy
    tiny = seqgan_env.get_preset("tiny")
    num_envs, rollouts = 64, 3
    envs = tiny_envs(models, num_envs=num_envs)
    torch.manual_seed(1)
    disc = seqgan_env.Discriminator.from_preset(tiny).eval()
    start = [p.detach().clone() for p in disc.parameters()]
    sampler = seqgan_env.Generator.from_preset(tiny)
    model = make_ppo(envs, generator=sampler, seed=0)

    def accuracy() -> float:
        copy_actor_to_generator(model.policy, sampler)
        return fresh_accuracy(disc, sampler, models["real"], 500, torch.Generator().manual_seed(0))

    before = accuracy()
    callback = DiscriminatorRetrainCallback(disc, models["real"], epochs=5, lr=1e-3)
    model.learn(rollouts * num_envs * model.n_steps, callback=callback, log_interval=None)
    assert model.num_timesteps == rollouts * num_envs * model.n_steps
    after = accuracy()
    assert any(not torch.equal(a, b) for a, b in zip(start, disc.parameters()))
    assert after > before + 0.2, (before, after)  # measured: 0.5 -> 0.82
    assert model.logger.name_to_value["discriminator/d_accuracy"] > 0.6
    assert model.logger.name_to_value["discriminator/d_loss"] < math.log(2)
    assert seqgan_env.reward_wrapper(envs).reward_model.discriminator is disc


def test_recurrent_ppo_runs_on_the_adapter(tiny_models):
    model = make_recurrent_ppo(tiny_envs(tiny_models, num_envs=8), n_steps=8, batch_size=32, n_epochs=2, seed=0,
                               policy_kwargs=dict(lstm_hidden_size=16, net_arch=[32]))
    assert isinstance(model.policy.features_extractor, TokenLSTMExtractor)
    before = [p.detach().clone() for p in model.policy.parameters()]
    model.learn(256)
    assert model.num_timesteps == 256  # exactly 4 rollouts of 8 envs x 8 steps
    # 4 updates on D's reward set no direction for the return; each Adam step (lr 3e-4) moves a
    # trained weight by about the learning rate, far above float noise:
    moved = max(float((a - b.detach()).abs().max()) for a, b in zip(before, model.policy.parameters()))
    assert moved > 1e-4, "no update happened"


def test_sb3_agent_acts_saves_and_loads(tiny, trained_tiny, tmp_path):
    envs = tiny_envs(trained_tiny, num_envs=4)
    agent = SB3Agent(make_ppo(envs, generator=trained_tiny["generator"], seed=0))
    obs = np.full((4, tiny.seq_len), tiny.vocab_size)
    actions = agent.act(obs)
    assert actions.shape == (4,) and actions.dtype == np.int64 and ((0 <= actions) & (actions < tiny.vocab_size)).all()
    with pytest.raises(NotImplementedError, match="model.learn"):
        agent.learn(None)
    agent.save(tmp_path / "ppo.zip")
    loaded = SB3Agent.load(tmp_path / "ppo.zip")
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.policy.get_distribution(torch.as_tensor(obs)).distribution.logits,
                                   agent.model.policy.get_distribution(torch.as_tensor(obs)).distribution.logits)
