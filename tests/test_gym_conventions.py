"""Gymnasium's conventions: the vector env against ``SyncVectorEnv`` over the single env, key
by key, and ``check_env`` on what ``gymnasium.make`` returns for every reward kind."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.factory import REWARD_ARGUMENTS
from seqgan_env.models import PrefixDiscriminator
from seqgan_env.presets import get_preset
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator
from seqgan_env.rewards.registry import REWARD_KINDS


def assert_same(ours: Any, theirs: Any, where: str = "info") -> None:
    """Equal keys, types, dtypes, shapes and values, recursively (object arrays element by element)."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{where}: {type(ours).__name__}, expected a dict"
        assert sorted(ours) == sorted(theirs), f"{where}: keys {sorted(ours)}, expected {sorted(theirs)}"
        for key in theirs:
            assert_same(ours[key], theirs[key], f"{where}[{key!r}]")
    elif isinstance(theirs, np.ndarray):
        assert isinstance(ours, np.ndarray), f"{where}: {type(ours).__name__}, expected an array"
        assert (ours.dtype, ours.shape) == (theirs.dtype, theirs.shape), \
            f"{where}: {ours.dtype}{ours.shape}, expected {theirs.dtype}{theirs.shape}"
        if theirs.dtype == object:
            for index, (mine, expected) in enumerate(zip(ours, theirs)):
                assert_same(mine, expected, f"{where}[{index}]")
        else:
            np.testing.assert_array_equal(ours, theirs, err_msg=where)
    else:
        assert type(ours) is type(theirs) and ours == theirs, f"{where}: {ours!r}, expected {theirs!r}"


def model_arguments(reward: str, models: dict[str, Any]) -> dict[str, Any]:
    if reward == "dense":  # the dense reward reads the LSTM prefix discriminator, not the CNN
        torch.manual_seed(0)
        return {"discriminator": PrefixDiscriminator.from_preset(get_preset("tiny")).eval()}
    if reward == "density-ratio-dense":  # a learned density ratio: a language model against a generator
        return {"discriminator": DensityRatioDiscriminator(copy.deepcopy(models["generator"]), models["generator"])}
    given = dict(discriminator=models["discriminator"], rollout_policy=models["generator"],
                 oracle=models["oracle"], compute_dtype="float32", reference=models["generator"])
    return {k: v for k, v in given.items() if k in REWARD_ARGUMENTS[reward]}


def play(envs: Any, actions: np.ndarray, seed: int) -> list[tuple]:
    """Reset with ``seed``, then one step per row of ``actions``; every return value, copied."""
    out = [envs.reset(seed=seed)]
    for step_actions in actions:
        out.append(envs.step(step_actions))
    return out


def compare_runs(ours: list[tuple], theirs: list[tuple], rewards: str) -> None:
    """Everything equal; rewards ``"exact"``, ``"close"`` (same numbers up to batching's
    rounding) or ``"range"`` (only shape, dtype and [0, 1])."""
    assert_same(ours[0][0], theirs[0][0], "reset obs")
    assert_same(ours[0][1], theirs[0][1], "reset info")
    for t, (mine, expected) in enumerate(zip(ours[1:], theirs[1:])):
        assert_same(mine[0], expected[0], f"step {t} obs")
        assert_same(mine[2], expected[2], f"step {t} terminated")
        assert_same(mine[3], expected[3], f"step {t} truncated")
        assert_same(mine[4], expected[4], f"step {t} info")
        assert mine[1].dtype == expected[1].dtype == np.float64 and mine[1].shape == expected[1].shape
        if rewards == "exact":
            np.testing.assert_array_equal(mine[1], expected[1], err_msg=f"step {t} rewards")
        elif rewards == "close":
            np.testing.assert_allclose(mine[1], expected[1], rtol=1e-5, atol=1e-6, err_msg=f"step {t} rewards")
        else:
            assert ((mine[1] >= 0) & (mine[1] <= 1)).all()


def sync_over_single(num_envs: int, **kwargs: Any) -> SyncVectorEnv:
    return SyncVectorEnv([lambda: gym.make("SeqGAN-v0", **kwargs) for _ in range(num_envs)],
                         autoreset_mode=AutoresetMode.SAME_STEP)


def random_actions(steps: int, num_envs: int, vocab_size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, vocab_size, (steps, num_envs))


def test_bare_vector_env_is_sync_vector_env_over_the_single_env(tiny):
    actions = random_actions(3 * tiny.seq_len + 2, 3, tiny.vocab_size)
    ours = SeqGANVectorEnv(3, tiny.vocab_size, tiny.seq_len)
    theirs = SyncVectorEnv([lambda: SeqGANEnv(tiny.vocab_size, tiny.seq_len) for _ in range(3)],
                           autoreset_mode=AutoresetMode.SAME_STEP)
    assert ours.metadata["autoreset_mode"] == theirs.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert ours.observation_space == theirs.observation_space
    assert ours.single_action_space == theirs.single_action_space
    compare_runs(play(ours, actions, 0), play(theirs, actions, 0), "exact")


def test_variable_length_rows_reset_one_by_one_as_in_sync_vector_env(tiny):
    """With an end token rows finish at different steps. ``SyncVectorEnv`` stacks the finished
    sequences into one 2-D array, which fails when two of different lengths finish in the same
    step; ours is an object array of 1-D arrays, so that key is compared row by row."""
    eos = 1
    actions = random_actions(4 * tiny.seq_len, 3, tiny.vocab_size, seed=1)
    actions[[2, 9, 14, 20], [0, 1, 2, 0]] = eos  # rows end early, in different steps
    ours = play(SeqGANVectorEnv(3, tiny.vocab_size, tiny.seq_len, eos_token=eos), actions, 0)
    theirs = play(SyncVectorEnv([lambda: SeqGANEnv(tiny.vocab_size, tiny.seq_len, eos_token=eos) for _ in range(3)],
                                autoreset_mode=AutoresetMode.SAME_STEP), actions, 0)
    finished_early = 0
    for mine, expected in zip(ours[1:], theirs[1:]):
        if "final_info" in expected[4]:
            mine_seq = mine[4]["final_info"].pop("sequence")
            expected_seq = expected[4]["final_info"].pop("sequence")
            assert mine_seq.dtype == object
            for row in np.flatnonzero(expected[4]["final_info"]["_sequence"]):
                np.testing.assert_array_equal(mine_seq[row], expected_seq[row])
                finished_early += len(mine_seq[row]) < tiny.seq_len
            assert all(mine_seq[row] is None for row in np.flatnonzero(~expected[4]["final_info"]["_sequence"]))
    assert finished_early >= 3
    compare_runs(ours, theirs, "exact")


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_one_row_reproduces_sync_vector_env_bit_for_bit(reward, tiny_models, tiny):
    """One row: the same seed drives the same reward draws, across autoresets too."""
    kwargs = dict(preset="tiny", reward=reward, **model_arguments(reward, tiny_models))
    actions = random_actions(3 * tiny.seq_len, 1, tiny.vocab_size, seed=2)
    ours = play(gym.make_vec("SeqGAN-v0", num_envs=1, **kwargs), actions, 5)
    theirs = play(sync_over_single(1, **kwargs), actions, 5)
    compare_runs(ours, theirs, "exact")


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_many_rows_match_sync_vector_env(reward, tiny_models, tiny):
    """Many rows: obs, flags and infos exactly. Rewards that need no randomness (constant,
    oracle, terminal) match up to the rounding of batched matrix products. The random and
    Monte Carlo rewards cannot match draw for draw: SyncVectorEnv seeds row i with seed + i,
    the batched engine draws every row from one generator; only their range is compared."""
    kwargs = dict(preset="tiny", reward=reward, **model_arguments(reward, tiny_models))
    actions = random_actions(2 * tiny.seq_len + 3, 4, tiny.vocab_size, seed=3)
    ours = play(gym.make_vec("SeqGAN-v0", num_envs=4, **kwargs), actions, 7)
    theirs = play(sync_over_single(4, **kwargs), actions, 7)
    deterministic = ("oracle", "terminal", "dense", "optimal-dense", "density-ratio-dense", "exact-regret")
    expected = "exact" if reward == "constant" else "close" if reward in deterministic else "range"
    compare_runs(ours, theirs, expected)


# -- check_env ------------------------------------------------------------------------------

# check_env prefers env.unwrapped, but the reward lives in a wrapper: the bare MDP always pays
# 0. What users get from gymnasium.make is what is checked; that one warning is expected.
WRAPPED_WARNING = r".*is different from the unwrapped version"


def checked(env: gym.Env) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message=WRAPPED_WARNING)
        warnings.filterwarnings("ignore", message="no (discriminator|rollout policy) given")
        check_env(env)


@pytest.mark.parametrize("reward", REWARD_KINDS)
def test_check_env_passes_on_gym_make_for_every_reward(reward, tiny_models):
    env = gym.make("SeqGAN-v0", preset="tiny", reward=reward, **model_arguments(reward, tiny_models))
    checked(env)


def test_check_env_passes_with_an_end_token_and_ansi_rendering(tiny_models):
    preset = get_preset("tiny").replace(eos_token=1)
    checked(gym.make("SeqGAN-v0", preset=preset, discriminator=tiny_models["discriminator"],
                     rollout_policy=tiny_models["generator"], render_mode="ansi"))

