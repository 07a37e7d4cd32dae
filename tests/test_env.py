"""The single env: API, spaces, episodes, rewards, determinism, errors, registration."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env
from seqgan_env.envs import SeqGANEnv
from seqgan_env.factory import REWARD_ARGUMENTS
from seqgan_env.models import Discriminator


def tiny_env(tiny_models, **kwargs):
    uses = REWARD_ARGUMENTS.get(kwargs.get("reward", "monte_carlo"), ())  # make refuses arguments the reward ignores
    if "discriminator" in uses:
        kwargs.setdefault("discriminator", tiny_models["discriminator"])
    if "rollout_policy" in uses:
        kwargs.setdefault("rollout_policy", tiny_models["generator"])
    return gym.make("SeqGAN-v0", preset="tiny", **kwargs)


def run_episode(env, actions, seed):
    obs, _ = env.reset(seed=seed)
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        out.append((obs.copy(), reward, terminated, truncated))
    return out, info


def test_spaces_and_padding(tiny, tiny_models):
    env = tiny_env(tiny_models)
    assert env.action_space == gym.spaces.Discrete(tiny.vocab_size)
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.int64 and obs.shape == (tiny.seq_len,)
    assert env.observation_space.contains(obs)
    assert (obs == tiny.vocab_size).all(), "an empty prefix is all PAD"
    assert info["prefix_length"] == 0
    obs, *_ = env.step(5)
    assert obs[0] == 5 and (obs[1:] == tiny.vocab_size).all()
    assert env.observation_space.contains(obs)


def test_episode_length_termination_and_sequence(tiny, tiny_models):
    env = tiny_env(tiny_models)
    actions = list(range(1, tiny.seq_len + 1))
    steps, info = run_episode(env, actions, seed=0)
    assert [s[2] for s in steps] == [False] * (tiny.seq_len - 1) + [True]
    assert not any(s[3] for s in steps)
    np.testing.assert_array_equal(info["sequence"], actions)
    np.testing.assert_array_equal(steps[-1][0], actions)


def test_rewards_are_python_floats_in_unit_interval(tiny, tiny_models):
    env = tiny_env(tiny_models)
    steps, _ = run_episode(env, np.random.default_rng(0).integers(0, tiny.vocab_size, tiny.seq_len), seed=1)
    for _, reward, terminated, truncated in steps:
        assert type(reward) is float and 0.0 <= reward <= 1.0
        assert type(terminated) is bool and type(truncated) is bool


def test_same_seed_same_actions_same_rewards(tiny, tiny_models):
    actions = np.random.default_rng(3).integers(0, tiny.vocab_size, tiny.seq_len)
    first, _ = run_episode(tiny_env(tiny_models), actions, seed=42)
    second, _ = run_episode(tiny_env(tiny_models), actions, seed=42)
    other, _ = run_episode(tiny_env(tiny_models), actions, seed=43)
    assert [s[1] for s in first] == [s[1] for s in second]
    assert [s[1] for s in first] != [s[1] for s in other], "the Monte Carlo reward is random"
    # The last reward is D's score of the finished sequence itself: no randomness there.
    assert first[-1][1] == pytest.approx(other[-1][1], abs=1e-6)


def test_final_reward_is_discriminator_score(tiny, tiny_models):
    env = tiny_env(tiny_models, compute_dtype="float32")
    actions = np.arange(tiny.seq_len) % tiny.vocab_size
    steps, _ = run_episode(env, actions, seed=0)
    with torch.no_grad():
        expected = float(tiny_models["discriminator"].prob_real(torch.as_tensor(actions)[None]))
    assert steps[-1][1] == pytest.approx(expected, abs=1e-5)


def test_terminal_reward_is_sparse(tiny, tiny_models):
    env = tiny_env(tiny_models, reward="terminal", compute_dtype="float32")
    steps, _ = run_episode(env, np.ones(tiny.seq_len, dtype=int), seed=0)
    assert all(s[1] == 0.0 for s in steps[:-1]) and 0.0 < steps[-1][1] < 1.0


def test_oracle_reward_sums_to_log_likelihood(tiny, tiny_models):
    oracle = tiny_models["oracle"]
    env = tiny_env(tiny_models, reward="oracle", oracle=oracle)
    seq = oracle.sample(1, torch.Generator().manual_seed(0))[0].numpy()
    steps, _ = run_episode(env, seq, seed=0)
    expected = oracle.log_probs(torch.as_tensor(seq)[None]).detach()[0].numpy()
    np.testing.assert_allclose([s[1] for s in steps], expected, atol=1e-4)


def test_invalid_actions_are_rejected_with_a_clear_message(tiny, tiny_models):
    env = tiny_env(tiny_models)
    env.reset(seed=0)
    for bad in (-1, tiny.vocab_size, 2.5, "a"):
        with pytest.raises(ValueError, match="invalid action"):
            env.step(bad)
    bare = SeqGANEnv(vocab_size=10, seq_len=2)
    with pytest.raises(RuntimeError, match="reset"):
        bare.step(0)
    bare.reset()
    bare.step(1)
    bare.step(1)
    with pytest.raises(RuntimeError, match="reset"):
        bare.step(1)
    # An end-of-sequence token finishes the episode as surely as the last position does.
    text = SeqGANEnv(vocab_size=10, seq_len=4, eos_token=3)
    text.reset()
    assert text.step(3)[2] is True
    with pytest.raises(RuntimeError, match="reset"):
        text.step(1)


def test_render_ansi_shows_the_prefix(tiny_models):
    env = tiny_env(tiny_models, render_mode="ansi")
    env.reset(seed=0)
    env.step(7)
    env.step(11)
    assert env.render() == "[2/8] 7 11"


def test_swap_discriminator_at_run_time(tiny, tiny_models):
    env = tiny_env(tiny_models, compute_dtype="float32")
    actions = np.full(tiny.seq_len, 3)
    before, _ = run_episode(env, actions, seed=0)
    torch.manual_seed(123)
    other = Discriminator.from_preset(tiny).eval()
    seqgan_env.set_discriminator(env, other)
    after, _ = run_episode(env, actions, seed=0)
    with torch.no_grad():
        expected = float(other.prob_real(torch.as_tensor(actions)[None]))
    assert after[-1][1] == pytest.approx(expected, abs=1e-5)
    assert after[-1][1] != pytest.approx(before[-1][1], abs=1e-4)
    # Gymnasium's own accessor reaches the same method.
    env.get_wrapper_attr("set_discriminator")(tiny_models["discriminator"])
    again, _ = run_episode(env, actions, seed=0)
    assert again[-1][1] == pytest.approx(before[-1][1], abs=1e-6)
    with pytest.raises(ValueError, match="vocabulary"):
        seqgan_env.set_discriminator(env, Discriminator(tiny.vocab_size + 1, tiny.seq_len, tiny.discriminator))


def test_swap_rollout_policy_mid_episode(tiny, trained_tiny):
    """After a swap mid-episode every later reward is the Monte Carlo value under the new
    policy, as the original per-prefix loop computes it. The new policy is the oracle, whose
    completions the trained D finds far more real than the MLE generator's, so a swap that
    is ignored, or that keeps the old policy's state of the prefix, misses by many sigmas."""
    from seqgan_env.reference import reference_rewards

    old, new, disc = trained_tiny["generator"], trained_tiny["oracle"], trained_tiny["discriminator"]
    rollouts = 2000
    env = gym.make("SeqGAN-v0", preset="tiny", discriminator=disc, rollout_policy=old, num_rollouts=rollouts,
                   compute_dtype="float32")
    actions = old.sample(1, torch.Generator().manual_seed(0))[0]
    env.reset(seed=0)
    env.step(int(actions[0]))
    seqgan_env.set_rollout_policy(env, new)
    got = np.array([env.step(int(a))[1] for a in actions[1:]])

    # The reference: the same number of completions, 4 for each of as many copies of the sequence.
    copies = actions.repeat(rollouts // 4, 1)
    per_copy = {name: reference_rewards(copies, policy, disc, 4, torch.Generator().manual_seed(1))[:, 1:]
                for name, policy in (("new", new), ("old", old))}
    expected = {name: rewards.mean(0).numpy() for name, rewards in per_copy.items()}
    # Standard error of the difference of two means of `rollouts` completions each.
    sigma = per_copy["new"].std(0).numpy() / np.sqrt(rollouts // 4) * np.sqrt(2)
    tolerance = 5 * sigma + 1e-4
    assert np.all(np.abs(got - expected["new"]) <= tolerance), (got, expected["new"], tolerance)
    # The check has the power to tell the policies apart: the old policy's rewards are far off.
    assert np.any(np.abs(got - expected["old"]) > 3 * tolerance), (got, expected["old"], tolerance)
    with torch.no_grad():
        assert got[-1] == pytest.approx(float(disc.prob_real(actions[None])), abs=1e-5)  # the last step is D alone


def test_gymnasium_and_sb3_env_checkers_pass_on_the_default_env():
    from gymnasium.utils.env_checker import check_env as gym_check
    from stable_baselines3.common.env_checker import check_env as sb3_check

    env = gym.make("SeqGAN-v0", num_rollouts=2)
    gym_check(env.unwrapped)
    sb3_check(env)
    obs, _ = env.reset(seed=0)
    _, reward, terminated, truncated, _ = env.step(env.action_space.sample())
    assert type(reward) is float and 0.0 <= reward <= 1.0
    assert type(terminated) is bool and type(truncated) is bool


def test_default_env_uses_the_shipped_models():
    from seqgan_env.factory import DEFAULT_DISCRIMINATOR_FILE, DEFAULT_GENERATOR_FILE, asset_path

    assert asset_path(DEFAULT_GENERATOR_FILE).is_file() and asset_path(DEFAULT_DISCRIMINATOR_FILE).is_file()
    assert asset_path(DEFAULT_GENERATOR_FILE).stat().st_size + asset_path(DEFAULT_DISCRIMINATOR_FILE).stat().st_size < 5e6
    env = gym.make("SeqGAN-v0")
    reward_model = seqgan_env.reward_wrapper(env).reward_model
    assert reward_model.num_rollouts == 16
    # The shipped discriminator tells fresh real (oracle) sequences from the shipped
    # generator's, and the Monte Carlo reward pays more for real ones.
    from seqgan_env.models import Oracle
    from seqgan_env.presets import get_preset

    policy, disc = reward_model.rollout_policy, reward_model.discriminator
    rng = torch.Generator().manual_seed(0)
    real = Oracle.from_preset(get_preset("default")).sample(512, rng)
    generated = policy.sample(512, rng)
    assert float(disc.score(real).mean()) > float(disc.score(generated).mean()) + 0.05
    envs = gym.make_vec("SeqGAN-v0", num_envs=128)
    paid = {}
    for name, batch in (("real", real[:128]), ("generated", generated[:128])):
        envs.reset(seed=0)
        paid[name] = np.mean([envs.step(batch[:, t].numpy())[1].mean() for t in range(20)])
    assert paid["real"] > paid["generated"] + 0.05


def test_make_without_prior_import():
    code = (
        "import gymnasium as gym, warnings; warnings.simplefilter('ignore');"
        "env = gym.make('seqgan_env:SeqGAN-v0', preset='tiny', num_rollouts=2);"
        "obs, _ = env.reset(seed=0); print(obs.shape)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(8,)"


def test_bad_keyword_arguments_are_named(tiny_models):
    with pytest.raises(ValueError, match="unknown preset"):
        gym.make("SeqGAN-v0", preset="huge")
    with pytest.raises(ValueError, match="unknown reward kind"):
        tiny_env(tiny_models, reward="bleu")
    with pytest.raises(ValueError, match="num_rollouts"):
        tiny_env(tiny_models, num_rollouts=0)
    with pytest.raises(ValueError, match="discriminator reads"):
        gym.make("SeqGAN-v0", preset="tiny", discriminator=Discriminator(10, 8, tiny_models["discriminator"].config))


def test_monte_carlo_reward_sees_a_discriminator_retrained_in_place_mid_episode(tiny, trained_tiny_copy):
    """docs/agents.md: D retrained in place (same object, new weights) is read from the next step.

    After the update, each reward must equal the one an env gets that used the updated D from the
    start: the completions are drawn from the same seeded stream whatever D is, so the two agree
    to float32 rounding (1e-5). A reward that kept D's pooled prefix features from before the
    update (its cache keyed on the model's identity alone) is off by about 0.014, and the update
    itself moves the rewards by more than 0.01 (asserted, so the check has the power to see it).
    """
    import copy

    from train.pretrain import DiscriminatorSchedule, train_discriminator

    generator, disc = trained_tiny_copy["generator"], trained_tiny_copy["discriminator"]
    actions = generator.sample(1, torch.Generator().manual_seed(3))[0].tolist()
    before_update = copy.deepcopy(disc)
    split = 3  # steps taken with the old weights

    def rewards(discriminator, retrain_after=None):
        env = gym.make("SeqGAN-v0", preset="tiny", discriminator=discriminator, rollout_policy=generator,
                       num_rollouts=64, compute_dtype="float32")
        env.reset(seed=0)
        got = []
        for t, action in enumerate(actions):
            if t == split and retrain_after is not None:
                retrain_after()
            got.append(env.step(action)[1])
        return np.array(got[split:])

    def retrain_in_place():
        train_discriminator(disc, generator, trained_tiny_copy["real"],
                            DiscriminatorSchedule(rounds=1, epochs=2, num_negatives=1000, lr=1e-2),
                            torch.Generator().manual_seed(5))
        disc.eval()

    mid_episode = rewards(disc, retrain_after=retrain_in_place)
    fresh = rewards(copy.deepcopy(disc))  # the updated D from the start
    stale = rewards(before_update)
    np.testing.assert_allclose(mid_episode, fresh, atol=1e-5)
    assert np.abs(fresh - stale).max() > 0.01, (fresh, stale)
