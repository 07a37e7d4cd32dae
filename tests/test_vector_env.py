"""The batched twin: make_vec, autoreset, agreement with the single env and with the
original per-prefix loop, and the bfloat16 path."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import seqgan_env
from seqgan_env.reference import reference_rewards
from seqgan_env.rewards import MonteCarloReward


def tiny_vec(tiny_models, num_envs, **kwargs):
    kwargs.setdefault("discriminator", tiny_models["discriminator"])
    kwargs.setdefault("rollout_policy", tiny_models["generator"])
    return gym.make_vec("SeqGAN-v0", num_envs=num_envs, preset="tiny", **kwargs)


def test_make_vec_gives_the_batched_env(tiny, tiny_models):
    envs = tiny_vec(tiny_models, 5)
    assert isinstance(envs, seqgan_env.SeqGANVectorRewardWrapper)
    assert isinstance(envs.unwrapped, seqgan_env.SeqGANVectorEnv)
    assert envs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert envs.num_envs == 5
    assert envs.single_action_space == gym.spaces.Discrete(tiny.vocab_size)
    obs, info = envs.reset(seed=0)
    assert obs.shape == (5, tiny.seq_len) and envs.observation_space.contains(obs)
    assert (info["prefix_length"] == 0).all()


def test_same_step_autoreset(tiny, tiny_models):
    envs = tiny_vec(tiny_models, 3)
    envs.reset(seed=0)
    actions = np.arange(3 * tiny.seq_len).reshape(tiny.seq_len, 3) % tiny.vocab_size
    for t in range(tiny.seq_len):
        obs, rewards, terminated, truncated, info = envs.step(actions[t])
        assert not truncated.any()
        assert rewards.shape == (3,) and ((0 <= rewards) & (rewards <= 1)).all()
        assert (terminated == (t == tiny.seq_len - 1)).all()
    # The step that finished the episodes also reset them.
    assert (obs == tiny.vocab_size).all()
    assert info["_final_obs"].all() and info["_final_info"].all() and info["final_info"]["_sequence"].all()
    for row in range(3):
        np.testing.assert_array_equal(info["final_obs"][row], actions[:, row])
        np.testing.assert_array_equal(info["final_info"]["sequence"][row], actions[:, row])
    np.testing.assert_array_equal(info["final_info"]["prefix_length"], tiny.seq_len)
    np.testing.assert_array_equal(info["prefix_length"], 0)  # the reset's info
    obs, *_ = envs.step(np.array([1, 2, 3]))
    np.testing.assert_array_equal(obs[:, 0], [1, 2, 3])


def test_vector_env_rejects_bad_actions(tiny, tiny_models):
    envs = tiny_vec(tiny_models, 2)
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="invalid action"):
        envs.step(np.array([0, tiny.vocab_size]))
    with pytest.raises(ValueError, match="invalid action shape"):
        envs.step(np.array([0, 1, 2]))


def test_vector_env_agrees_with_single_env(tiny, tiny_models):
    rng = np.random.default_rng(0)
    actions = rng.integers(0, tiny.vocab_size, (tiny.seq_len,))
    num_envs, episodes = 64, 4
    envs = tiny_vec(tiny_models, num_envs)
    envs.reset(seed=7)
    vec_rewards = []
    for _ in range(episodes):
        for t in range(tiny.seq_len):
            obs, rewards, terminated, _, _ = envs.step(np.full(num_envs, actions[t]))
            vec_rewards.append(rewards)
    vec_rewards = np.array(vec_rewards).reshape(episodes, tiny.seq_len, num_envs)

    env = gym.make("SeqGAN-v0", preset="tiny", discriminator=tiny_models["discriminator"],
                   rollout_policy=tiny_models["generator"])
    single_rewards, single_obs, single_done = [], [], []
    for episode in range(episodes * 8):
        env.reset(seed=episode)
        for t in range(tiny.seq_len):
            obs, reward, terminated, _, _ = env.step(actions[t])
            single_rewards.append(reward)
            single_obs.append(obs)
            single_done.append(terminated)
    single_rewards = np.array(single_rewards).reshape(-1, tiny.seq_len)

    # Observations and terminations are the same; reward means agree within sampling error.
    np.testing.assert_array_equal(single_obs[-1], actions)
    assert single_done[-tiny.seq_len:] == [False] * (tiny.seq_len - 1) + [True]
    vec_mean = vec_rewards.mean(axis=(0, 2))
    single_mean = single_rewards.mean(axis=0)
    spread = vec_rewards.std(axis=(0, 2)) / np.sqrt(episodes * num_envs) + single_rewards.std(axis=0) / np.sqrt(len(single_rewards))
    assert np.all(np.abs(vec_mean - single_mean) <= 5 * spread + 1e-6)
    assert vec_mean[-1] == pytest.approx(single_mean[-1], abs=5e-5)  # the final score is exact


def test_engine_matches_the_original_loop_in_expectation(tiny, trained_tiny):
    """The engine's expected rewards are the original per-prefix loop's, step by step.

    Trained models, so that the check can fail: the oracle completes the prefixes, and the trained
    D finds its completions far more real than uniform ones (up to 0.2 apart; an untrained D
    spreads P(real) by only 0.05). The tolerance is 5 standard errors of the difference of two
    means of ``rollouts`` completions, from the reference's own spread; an engine that drew
    completions uniformly (ignoring the policy) misses by more than 3 tolerances (asserted below).
    """
    policy, disc = trained_tiny["oracle"], trained_tiny["discriminator"]
    sequences = trained_tiny["generator"].sample(4, torch.Generator().manual_seed(1))
    rollouts = 1000
    envs = tiny_vec({"discriminator": disc, "generator": policy}, 4, num_rollouts=rollouts,
                    compute_dtype="float32")
    envs.reset(seed=3)
    got = np.stack([envs.step(sequences[:, t].numpy())[1] for t in range(tiny.seq_len)], axis=1)

    def reference(rollout_policy):  # (rows, rollouts, L): one completion of every prefix per copy
        copies = sequences.repeat_interleave(rollouts, dim=0)
        return reference_rewards(copies, rollout_policy, disc, 1, torch.Generator().manual_seed(2)).view(
            4, rollouts, tiny.seq_len)

    per_copy = reference(policy)
    expected = per_copy.mean(1).numpy()
    sigma = per_copy.std(1).numpy() / np.sqrt(rollouts) * np.sqrt(2)
    tolerance = 5 * sigma + 1e-4
    np.testing.assert_allclose(got[:, -1], expected[:, -1], atol=5e-5)  # the last step is D alone
    assert np.all(np.abs(got - expected) <= tolerance), (got, expected, tolerance)
    uniform = copy.deepcopy(policy)
    with torch.no_grad():
        uniform.output.weight.zero_()
        uniform.output.bias.zero_()
    uniform_expected = reference(uniform).mean(1).numpy()
    assert np.any(np.abs(got - uniform_expected) > 3 * tolerance), (got, uniform_expected, tolerance)


def test_mixed_prefix_lengths_match_the_original_loop(tiny, trained_tiny):
    """Rows at different prefix lengths in one batch (the masked path, rebuilt from the
    sequences) get the expected reward of the original per-prefix loop for their own prefix."""
    # The oracle completes the prefixes: its sharp distributions depend strongly on the prefix's
    # state, which the trained D then tells apart.
    generator, disc = trained_tiny["oracle"], trained_tiny["discriminator"]
    # 4 rows x 256 completions fill exactly one chunk of the engine, so the rows share one masked batch.
    per_step, repeats = 256, 8
    model = MonteCarloReward(disc, generator, num_rollouts=per_step, compute_dtype="float32")
    sequences = trained_tiny["oracle"].sample(4, torch.Generator().manual_seed(0))
    lengths = torch.tensor([1, 3, 4, 6])
    masked = sequences.clone()
    masked[torch.arange(tiny.seq_len) >= lengths[:, None]] = tiny.vocab_size
    rows = torch.arange(len(lengths))
    got = []
    for repeat in range(repeats):
        model.seed(repeat)
        model.bind(len(lengths))
        model.reset(torch.ones(len(lengths), dtype=torch.bool))
        model._stale = True  # rebuild the prefix states from the sequences, as after a policy swap
        got.append(model.step(masked, lengths, masked[rows, lengths - 1], torch.zeros(len(lengths), dtype=torch.bool)))
    got = torch.stack(got).mean(0).numpy()
    rollouts = per_step * repeats

    # The original loop on the full sequences, `rollouts` completions of every prefix of each row.
    copies = sequences.repeat_interleave(rollouts // 4, dim=0)
    reference = reference_rewards(copies, generator, disc, 4, torch.Generator().manual_seed(1))
    reference = reference.view(len(lengths), rollouts // 4, tiny.seq_len)
    per_row = reference[rows, :, lengths - 1]  # (rows, copies): each row at its own prefix length
    expected = per_row.mean(1).numpy()
    sigma = per_row.std(1).numpy() / np.sqrt(rollouts // 4) * np.sqrt(2)
    tolerance = 5 * sigma + 1e-4
    assert np.all(np.abs(got - expected) <= tolerance), (got, expected, tolerance)
    # Prefixes one token longer have other values, so a row read at the wrong length would fail.
    neighbours = reference[rows, :, lengths].mean(1).numpy()
    assert np.any(np.abs(neighbours - expected) > 2 * tolerance), (neighbours, expected, tolerance)


def test_bfloat16_rewards_stay_within_1e_2_of_float32():
    """bfloat16 runs D's products and the rollout policy's output layer. The completions then
    differ from float32's, so compare expected rewards: the mean difference over many
    rollouts (its bias) must be far below 1e-2, and each step's difference within the
    Monte Carlo noise of 1024 rollouts."""
    envs = {dtype: gym.make_vec("SeqGAN-v0", num_envs=4, compute_dtype=dtype, num_rollouts=1024)
            for dtype in ("float32", "bfloat16")}
    generator = seqgan_env.reward_wrapper(envs["float32"]).reward_model.rollout_policy
    sequences = generator.sample(4, torch.Generator().manual_seed(1)).numpy()
    rewards = {}
    for dtype, env in envs.items():
        env.reset(seed=0)
        rewards[dtype] = np.stack([env.step(sequences[:, t])[1] for t in range(20)])
    difference = rewards["bfloat16"] - rewards["float32"]
    assert abs(difference.mean()) < 3e-3
    assert np.abs(difference).max() < 0.04
    # The final step is D alone on the same sequences: the bfloat16 path's own error.
    assert np.abs(difference[-1]).max() < 2e-3


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_rewards_agree_with_cpu(tiny, tiny_models):
    actions = np.random.default_rng(0).integers(0, tiny.vocab_size, (tiny.seq_len,))
    means = {}
    for device in ("cpu", "cuda"):
        envs = tiny_vec(tiny_models, 256, device=device, compute_dtype="float32")
        envs.reset(seed=0)
        means[device] = np.array([envs.step(np.full(256, a))[1].mean() for a in actions])
    np.testing.assert_allclose(means["cuda"], means["cpu"], atol=0.02)
