"""The reference's term of the KL-regularised reward, on the single and the vector env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers the envs)
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset
from seqgan_env.rewards.reference_penalty import (
    ReferencePenaltyVectorWrapper,
    ReferencePenaltyWrapper,
    with_reference_penalty,
)

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def reference() -> Generator:
    torch.manual_seed(5)
    return Generator.from_preset(get_preset("tiny")).eval()


def play_vector(envs, steps: int, seed: int = 0):
    """Random actions for ``steps`` steps; rewards (steps, rows) and actions (steps, rows)."""
    rng = np.random.default_rng(seed)
    envs.reset(seed=seed)
    actions = rng.integers(0, 64, size=(steps, envs.num_envs))
    rewards = np.stack([envs.step(a)[1] for a in actions])
    return rewards, actions


def reference_terms(reference: Generator, actions: np.ndarray, seq_len: int) -> np.ndarray:
    """log pi_ref of each action given its episode's prefix, by the teacher-forced path."""
    steps, rows = actions.shape
    episodes = torch.as_tensor(actions.T.reshape(rows, steps // seq_len, seq_len).reshape(-1, seq_len))
    with torch.no_grad():
        log_probs = reference.log_probs(episodes).double().numpy()
    return log_probs.reshape(rows, steps).T


def test_beta_zero_leaves_the_rewards_exactly_as_they_were(reference):
    plain = gym.make_vec("SeqGAN-Tiny-v0", num_envs=3, reward="random")
    wrapped = ReferencePenaltyVectorWrapper(gym.make_vec("SeqGAN-Tiny-v0", num_envs=3, reward="random"), reference, 0.0)
    expected, _ = play_vector(plain, 16)
    got, _ = play_vector(wrapped, 16)
    np.testing.assert_array_equal(got, expected)


def test_vector_env_adds_beta_log_pi_ref_across_autoresets(reference):
    beta = 0.3
    plain = gym.make_vec("SeqGAN-Tiny-v0", num_envs=3, reward="oracle")
    wrapped = with_reference_penalty(gym.make_vec("SeqGAN-Tiny-v0", num_envs=3, reward="oracle"), reference, beta)
    assert isinstance(wrapped, ReferencePenaltyVectorWrapper)
    base, actions = play_vector(plain, 16)  # two episodes of 8 per row: the second follows an autoreset
    got, _ = play_vector(wrapped, 16)
    np.testing.assert_allclose(got - base, beta * reference_terms(reference, actions, 8), rtol=1e-5, atol=1e-6)


def test_single_env_adds_beta_log_pi_ref(reference):
    beta = 2.0
    plain = gym.make("SeqGAN-Tiny-v0", reward="oracle")
    env = with_reference_penalty(gym.make("SeqGAN-Tiny-v0", reward="oracle"), reference, beta)
    assert isinstance(env, ReferencePenaltyWrapper)
    rng = np.random.default_rng(1)
    actions = rng.integers(0, 64, size=16)
    differences = []
    for environment, sign in ((plain, -1.0), (env, 1.0)):
        environment.reset(seed=3)
        rewards = []
        for action in actions:
            _, reward, terminated, _, _ = environment.step(action)
            rewards.append(reward)
            if terminated:
                environment.reset()
        differences.append(sign * np.array(rewards))
    expected = beta * reference_terms(reference, actions.reshape(-1, 1), 8)[:, 0]
    np.testing.assert_allclose(differences[0] + differences[1], expected, rtol=1e-5, atol=1e-6)


def test_bad_arguments_are_named(reference):
    with pytest.raises(ValueError, match="beta must be >= 0"):
        ReferencePenaltyWrapper(gym.make("SeqGAN-Tiny-v0", reward="random"), reference, -1.0)
    small = Generator(8, 4, 4, 8)
    with pytest.raises(ValueError, match="vocabulary of 8"):
        ReferencePenaltyVectorWrapper(gym.make_vec("SeqGAN-Tiny-v0", num_envs=2, reward="random"), small, 0.1)
