"""Registered variants: ids, their spec, their spaces, the text variant's corpus, type annotations."""

from __future__ import annotations

import typing

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import seqgan_env
from seqgan_env.envs import SeqGANEnv, SeqGANVectorEnv
from seqgan_env.wrappers import SeqGANRewardWrapper


@pytest.mark.parametrize(("env_id", "vocab", "length"), [
    ("SeqGAN-v0", 5000, 20), ("SeqGAN-Tiny-v0", 64, 8), ("SeqGAN-Paper-v0", 5000, 20),
])
def test_variant_spec_says_what_it_is(env_id, vocab, length):
    spec = gym.spec(env_id)
    assert spec.kwargs == seqgan_env.VARIANTS[env_id] and spec.kwargs["preset"]
    assert spec.max_episode_steps is None and spec.reward_threshold is None
    if env_id == "SeqGAN-v0":
        return  # building the default loads its shipped models; covered by test_env
    env = gym.make(env_id)
    assert env.spec.kwargs["preset"] == spec.kwargs["preset"]
    assert env.action_space == gym.spaces.Discrete(vocab)
    assert env.observation_space.shape == (length,)


def test_tiny_variant_passes_the_checker_and_runs_vectorised():
    check_env(gym.make("SeqGAN-Tiny-v0").unwrapped)
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=3)
    obs, _ = envs.reset(seed=0)
    for _ in range(8):
        obs, rewards, terminated, truncated, _ = envs.step(envs.action_space.sample())
        assert ((0 <= rewards) & (rewards <= 1)).all() and not truncated.any()
    assert terminated.all()


def test_text_variant_reads_the_corpus(tmp_path):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(["the cat sat on the mat .", "a dog ran home .", "the dog sat ."] * 20) + "\n")
    env = gym.make("SeqGAN-Text-v0", corpus=str(path), max_length=10, render_mode="ansi")
    assert env.spec.kwargs["corpus"] == str(path) and env.observation_space.shape == (10,)
    env.reset(seed=0)
    vocab = seqgan_env.factory.load_text_corpus(str(path), 10).vocab
    env.step(vocab.encode("cat")[0])
    assert env.render() == "[1/10] cat"
    envs = gym.make_vec("SeqGAN-Text-v0", num_envs=2, corpus=str(path), max_length=10)
    assert envs.reset(seed=0)[0].shape == (2, 10)


def test_text_variant_without_corpus_says_what_is_missing(tmp_path):
    with pytest.raises(TypeError, match="corpus="):
        gym.make("SeqGAN-Text-v0")
    with pytest.raises(FileNotFoundError, match="corpus="):
        gym.make("SeqGAN-Text-v0", corpus=str(tmp_path / "missing.txt"))


def test_envs_are_typed():
    assert SeqGANEnv.__orig_bases__[0] == gym.Env[np.ndarray, np.int64]
    assert SeqGANVectorEnv.__orig_bases__[0] == gym.vector.VectorEnv[np.ndarray, np.ndarray, np.ndarray]
    for cls in (SeqGANEnv, SeqGANVectorEnv, SeqGANRewardWrapper):
        for method in ("reset", "step"):
            assert typing.get_type_hints(getattr(cls, method))["return"].__origin__ is tuple, (cls, method)
    assert (seqgan_env.factory.asset_path("..") / "py.typed").is_file()
