"""Property-based tests (Hypothesis) of reset/step of the single and the vector env.

Over seeds, presets (``tiny``, a small custom one, one with an end-of-sequence token),
reward kinds and actions, valid and invalid:

* an invalid action raises ``ValueError`` naming it, and leaves the episode as it was;
  stepping a finished single env raises ``RuntimeError`` (call reset); nothing else is raised;
* a valid action is accepted, and rewards are finite and in the README's range for the kind;
* the same seed and the same actions give the same observations and rewards;
* with prompts (``prompt_length``, and ``group_size`` in the vector env) all of the above, and
  the prompt stays in front of what the agent writes.

The finished-episode info layout of the vector env is not asserted here (see test_vector_env).
"""

from __future__ import annotations

import math
import warnings
from functools import cache
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from seqgan_env.factory import REWARD_ARGUMENTS
from seqgan_env.presets import DiscriminatorConfig, Preset

_SMALL_D = DiscriminatorConfig(embedding_dim=8, filter_sizes=(1, 2, 3), num_filters=(4, 4, 4))
PRESETS: dict[str, Any] = {
    "tiny": "tiny",
    "small": Preset(name="small", vocab_size=7, seq_len=5, gen_embedding_dim=8, gen_hidden_dim=8,
                    oracle_embedding_dim=8, oracle_hidden_dim=8, num_rollouts=3, discriminator=_SMALL_D),
    # Variable length: token 2 ends the episode, and the Monte Carlo completions, early.
    "eos": Preset(name="eos", vocab_size=9, seq_len=6, eos_token=2, gen_embedding_dim=8, gen_hidden_dim=8,
                  oracle_embedding_dim=8, oracle_hidden_dim=8, num_rollouts=3, discriminator=_SMALL_D),
}
VOCAB = {"tiny": 64, "small": 7, "eos": 9}
SEQ_LEN = {"tiny": 8, "small": 5, "eos": 6}
EOS = {"tiny": None, "small": None, "eos": 2}
# The README's table: the range of each reward kind.
REWARD_RANGES = {"monte_carlo": (0.0, 1.0), "terminal": (0.0, 1.0), "random": (0.0, 1.0),
                 "constant": (1.0, 1.0), "oracle": (-math.inf, 0.0), "dense": (0.0, 1.0)}
NUM_ENVS = (1, 3)

# No example database: nothing is written into the checkout.
FUZZ = settings(max_examples=30, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def _reward_options(reward: str) -> dict[str, Any]:
    """float32 rewards where the reward computes with D (make refuses options a reward does not read)."""
    return {"compute_dtype": "float32"} if "compute_dtype" in REWARD_ARGUMENTS[reward] else {}


@cache
def single_env(preset: str, reward: str, prompt_length: int = 0) -> gym.Env:
    """One env per preset and reward kind, shared by the examples (each starts with a seeded reset)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # untrained D and rollout policy: their reward means little, fine here
        return gym.make("SeqGAN-v0", preset=PRESETS[preset], reward=reward, prompt_length=prompt_length,
                        **_reward_options(reward))


@cache
def vector_env(preset: str, reward: str, num_envs: int, prompt_length: int = 0) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        groups = {"group_size": num_envs} if prompt_length else {}  # every row one prompt
        return gym.make_vec("SeqGAN-v0", num_envs=num_envs, preset=PRESETS[preset], reward=reward,
                            prompt_length=prompt_length, **groups, **_reward_options(reward))


PROMPT_LENGTH = 2
PROMPTED_KINDS = ("monte_carlo", "terminal", "oracle", "dense")


# -- actions -------------------------------------------------------------------------------
def valid_token(vocab: int) -> st.SearchStrategy:
    """A token id in any form the env accepts: Python or NumPy integers, integral floats, a 1-element array."""
    token = st.integers(0, vocab - 1)
    return st.one_of(token, token.map(np.int64), token.map(np.int32), token.map(np.uint8), token.map(float),
                     token.map(lambda t: np.array([t])), token.map(lambda t: [t]))


def invalid_token(vocab: int) -> st.SearchStrategy:
    """Things that are not one token id of the vocabulary."""
    return st.one_of(
        st.integers(vocab, 2**70), st.integers(-(2**70), -1), st.integers(-5, -1).map(np.int64),
        st.integers(vocab, 255).map(np.uint8),
        st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not (x == int(x) and 0 <= x < vocab)
                                                              if math.isfinite(x) else True),
        st.booleans(), st.none(), st.text(max_size=3),
        st.lists(st.integers(0, vocab - 1), min_size=2, max_size=4),
        st.just(np.zeros(0, dtype=np.int64)), st.just(np.zeros((2, 2), dtype=np.int64)),
    )


def action_script(vocab: int) -> st.SearchStrategy:
    """``(is_valid, action)`` pairs, mostly valid so that episodes finish."""
    valid = st.tuples(st.just(True), valid_token(vocab))
    invalid = st.tuples(st.just(False), invalid_token(vocab))
    return st.lists(st.one_of(valid, valid, valid, invalid), min_size=1, max_size=24)


def assert_reward_in_range(reward: float, kind: str, final: bool) -> None:
    low, high = REWARD_RANGES[kind]
    assert math.isfinite(reward) and low <= reward <= high, (kind, reward)
    if kind == "terminal" and not final:
        assert reward == 0.0


# -- the single env ------------------------------------------------------------------------
def play_single(env: gym.Env, kind: str, seed: int, script: list[tuple[bool, Any]]) -> list[tuple]:
    """Play ``script`` from ``reset(seed)``, checking each step; returns what the valid steps gave."""
    preset = env.unwrapped
    k = preset.prompt_length
    obs, _ = env.reset(seed=seed)
    prompt = obs[:k].copy()
    trace, length = [], k
    for is_valid, action in script:
        if not is_valid:
            with pytest.raises(ValueError, match="invalid action"):
                env.step(action)
            continue
        obs, reward, terminated, truncated, info = env.step(action)
        token = int(np.asarray(action).reshape(()))
        length += 1
        assert type(reward) is float and type(terminated) is bool and truncated is False
        assert env.observation_space.contains(obs) and obs[length - 1] == token
        assert (obs[:k] == prompt).all()
        assert info["prefix_length"] == length
        assert terminated == (length == preset.seq_len or token == preset.eos_token)
        assert_reward_in_range(reward, kind, terminated)
        trace.append((obs.tolist(), reward, terminated))
        if terminated:
            with pytest.raises(RuntimeError, match="reset"):
                env.step(0)
            obs, _ = env.reset()  # no seed: the env's own generator goes on, still reproducible
            length, prompt = k, obs[:k].copy()
    return trace


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("kind", list(REWARD_RANGES))
def test_single_env_steps_raise_only_documented_errors_and_replay_exactly(preset, kind):
    env = single_env(preset, kind)

    @FUZZ
    @given(seed=st.integers(0, 2**63 - 1), script=action_script(VOCAB[preset]))
    def check(seed, script):
        first = play_single(env, kind, seed, script)
        assert play_single(env, kind, seed, script) == first

    check()


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("kind", PROMPTED_KINDS)
def test_prompted_single_env_steps_raise_only_documented_errors_and_replay_exactly(preset, kind):
    env = single_env(preset, kind, PROMPT_LENGTH)

    @FUZZ
    @given(seed=st.integers(0, 2**63 - 1), script=action_script(VOCAB[preset]))
    def check(seed, script):
        first = play_single(env, kind, seed, script)
        assert play_single(env, kind, seed, script) == first

    check()


# -- the vector env ------------------------------------------------------------------------
def valid_batch(vocab: int, num_envs: int) -> st.SearchStrategy:
    tokens = st.lists(st.integers(0, vocab - 1), min_size=num_envs, max_size=num_envs)
    return st.one_of(tokens.map(np.array), tokens.map(lambda t: np.array(t, dtype=np.int32)),
                     tokens.map(lambda t: np.array(t, dtype=np.uint8)), tokens.map(lambda t: np.array(t, float)),
                     tokens.map(lambda t: np.array(t).reshape(num_envs, 1)), tokens)


def invalid_batch(vocab: int, num_envs: int) -> st.SearchStrategy:
    tokens = st.lists(st.integers(0, vocab - 1), min_size=num_envs, max_size=num_envs)
    bad = st.one_of(st.integers(vocab, 2**40), st.integers(-(2**40), -1))

    def spoil(pair):  # one row's action out of range
        row_tokens, (row, value) = pair
        out = np.array(row_tokens, dtype=np.int64)
        out[row % num_envs] = value
        return out

    return st.one_of(
        st.tuples(tokens, st.tuples(st.integers(0, num_envs - 1), bad)).map(spoil),
        st.lists(st.integers(0, vocab - 1), min_size=0, max_size=num_envs + 3)
        .filter(lambda t: len(t) != num_envs).map(np.array),
        tokens.map(lambda t: np.array(t, dtype=float) + 0.5),
        tokens.map(lambda t: np.array([str(x) for x in t])),
        st.just(np.full(num_envs, np.nan)),
    )


def play_vector(envs: Any, kind: str, seed: int, script: list[tuple[bool, Any]]) -> list[tuple]:
    unwrapped = envs.unwrapped
    k = unwrapped.prompt_length
    obs, _ = envs.reset(seed=seed)
    prompts = obs[:, :k].copy()
    lengths = np.full(envs.num_envs, k, dtype=np.int64)
    trace = []
    for is_valid, actions in script:
        if not is_valid:
            with pytest.raises(ValueError, match="invalid action"):
                envs.step(actions)
            continue
        obs, rewards, terminated, truncated, _ = envs.step(actions)
        tokens = np.asarray(actions).reshape(-1)
        lengths += 1
        expected_end = lengths == unwrapped.seq_len
        if unwrapped.eos_token is not None:
            expected_end |= tokens == unwrapped.eos_token
        assert rewards.shape == (envs.num_envs,) and not truncated.any()
        np.testing.assert_array_equal(terminated, expected_end)
        assert envs.observation_space.contains(obs)
        for row in range(envs.num_envs):
            assert_reward_in_range(float(rewards[row]), kind, bool(terminated[row]))
            if terminated[row]:  # same-step autoreset: the row already shows an empty prefix (or a new prompt)
                assert (obs[row, k:] == unwrapped.pad_token).all() and (obs[row, :k] < unwrapped.pad_token).all()
                prompts[row] = obs[row, :k]
            else:
                assert obs[row, lengths[row] - 1] == tokens[row] and (obs[row, :k] == prompts[row]).all()
        lengths[terminated] = k
        if k and unwrapped.group_size == envs.num_envs and terminated.all():
            assert (obs[:, :k] == obs[:1, :k]).all()  # one group: one prompt
        trace.append((obs.tolist(), rewards.tolist(), terminated.tolist()))
    return trace


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("kind", list(REWARD_RANGES))
def test_vector_env_steps_raise_only_documented_errors_and_replay_exactly(preset, kind):
    vocab = VOCAB[preset]

    @FUZZ
    @given(num_envs=st.sampled_from(NUM_ENVS), seed=st.integers(0, 2**63 - 1), data=st.data())
    def check(num_envs, seed, data):
        envs = vector_env(preset, kind, num_envs)
        step = st.one_of(*[st.tuples(st.just(True), valid_batch(vocab, num_envs))] * 3,
                         st.tuples(st.just(False), invalid_batch(vocab, num_envs)))
        script = data.draw(st.lists(step, min_size=1, max_size=20), label="script")
        first = play_vector(envs, kind, seed, script)
        assert play_vector(envs, kind, seed, script) == first

    check()


@pytest.mark.parametrize("preset", list(PRESETS))
@pytest.mark.parametrize("kind", PROMPTED_KINDS)
def test_prompted_vector_env_steps_raise_only_documented_errors_and_replay_exactly(preset, kind):
    vocab = VOCAB[preset]

    @FUZZ
    @given(num_envs=st.sampled_from(NUM_ENVS), seed=st.integers(0, 2**63 - 1), data=st.data())
    def check(num_envs, seed, data):
        envs = vector_env(preset, kind, num_envs, PROMPT_LENGTH)
        step = st.one_of(*[st.tuples(st.just(True), valid_batch(vocab, num_envs))] * 3,
                         st.tuples(st.just(False), invalid_batch(vocab, num_envs)))
        script = data.draw(st.lists(step, min_size=1, max_size=20), label="script")
        first = play_vector(envs, kind, seed, script)
        assert play_vector(envs, kind, seed, script) == first

    check()
