"""The exact-regret task and the per-token log ratios, against enumeration of a tiny sequence space.

With ``reward="exact-regret"`` each step pays ``log p_oracle(y_t | y_<t) - log p_ref(y_t | y_<t)``;
with a KL penalty beta = 1 to the same reference (the env's wrapper adds ``+log p_ref``, the agent
``-log pi``) the return of a sequence is ``log p_oracle(x) - log pi(x)``, and its expectation
under pi is ``-KL(pi || p_oracle)``: 0 exactly when pi is the oracle.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from agents.kl_penalty import kl_regularised_rewards
from seqgan_env.divergence import all_sequences, exact_kl, sequence_log_probs
from seqgan_env.models import Oracle, TokenLSTM
from seqgan_env.presets import get_preset
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator, OptimalDiscriminator
from seqgan_env.rewards.reference_penalty import REFERENCE_TERM, with_reference_penalty
from seqgan_env.rewards.registry import EXACT_REGRET, get_reward_kind

pytestmark = pytest.mark.usefixtures("one_thread")

VOCAB, LENGTH = 3, 3  # 27 sequences: every expectation below is an exact sum


@pytest.fixture
def space_models():
    preset = get_preset("tiny").replace(vocab_size=VOCAB, seq_len=LENGTH)
    torch.manual_seed(0)
    oracle = Oracle.from_preset(preset)
    # init_std 1: policies far from uniform and from the oracle, so every KL below is far from 0
    policy = TokenLSTM(VOCAB, 4, 8, LENGTH, init_std=1.0).eval()
    reference = TokenLSTM(VOCAB, 4, 8, LENGTH, init_std=1.0).eval()
    return preset, oracle, policy, reference


def step_all(envs, space: torch.Tensor) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Write every row's sequence of ``space`` into the vector env; ``(T, B)`` rewards, the terms the
    reference wrapper added (0 without one), and each step's info."""
    envs.reset(seed=0)
    rewards, terms, infos = [], [], []
    for t in range(space.shape[1]):
        _, reward, terminated, _, info = envs.step(space[:, t].numpy())
        rewards.append(reward)
        terms.append(info.get(REFERENCE_TERM, np.zeros_like(reward)))
        infos.append(info)
    assert terminated.all()
    return np.stack(rewards), np.stack(terms), infos


def log_probs(model: TokenLSTM, space: torch.Tensor) -> np.ndarray:
    """``(T, B)`` log-probability of each token of each sequence, time first."""
    with torch.no_grad():
        return model.log_probs(space).double().T.numpy()


def test_per_token_rewards_sum_to_d_stars_logit(space_models):
    preset, oracle, policy, reference = space_models
    space = all_sequences(VOCAB, LENGTH)
    envs = gym.make_vec("SeqGAN-v0", num_envs=space.shape[0], preset=preset, reward="optimal-dense",
                        oracle=oracle, reference=reference)
    rewards, _, _ = step_all(envs, space)
    logit = OptimalDiscriminator(oracle, reference).log_ratio(space).double().numpy()
    np.testing.assert_allclose(rewards.sum(axis=0), logit, atol=2e-5)
    assert np.abs(logit).max() > 1.0  # a ratio far from 1: the check is not 0 = 0


def paid_with_kl_beta_one(preset, oracle, reference, policy, space) -> np.ndarray:
    """``(T, B)`` what an agent with ``kl_beta = 1`` learns from on the exact-regret task: the env's
    reward with the reference's term (the wrapper) and the policy's ``-log pi`` (the agent's)."""
    envs = with_reference_penalty(gym.make_vec("SeqGAN-v0", num_envs=space.shape[0], preset=preset,
                                               reward=EXACT_REGRET, oracle=oracle, reference=reference),
                                  reference, 1.0)
    rewards, terms, _ = step_all(envs, space)
    starts = np.zeros_like(rewards, dtype=bool)
    starts[0] = True
    return kl_regularised_rewards(rewards, log_probs(policy, space), 1.0, starts, terms)


def test_exact_regret_expected_return_is_minus_the_reverse_kl(space_models):
    preset, oracle, policy, reference = space_models
    space = all_sequences(VOCAB, LENGTH)
    assert get_reward_kind(EXACT_REGRET).kl_beta == 1.0
    own = log_probs(policy, space)
    returns = paid_with_kl_beta_one(preset, oracle, reference, policy, space).sum(axis=0)
    # Every sequence's return is log p_oracle(x) - log pi(x): the reference cancels exactly.
    log_oracle = sequence_log_probs(oracle, space)[0].numpy()
    np.testing.assert_allclose(returns, log_oracle - own.sum(axis=0), atol=5e-5)
    weights = np.exp(own.sum(axis=0))
    assert weights.sum() == pytest.approx(1.0, abs=1e-6)
    reverse_kl = exact_kl(policy, oracle)
    assert reverse_kl > 0.1
    assert float((weights * returns).sum()) == pytest.approx(-reverse_kl, abs=1e-4)


def test_exact_regret_is_zero_at_the_oracle_and_equals_d_star_against_the_policy(space_models):
    preset, oracle, policy, reference = space_models
    space = all_sequences(VOCAB, LENGTH)

    # pi = the oracle: every step pays 0, so every return and the regret are 0.
    np.testing.assert_allclose(paid_with_kl_beta_one(preset, oracle, reference, oracle, space), 0.0, atol=5e-6)
    # D* against the current policy itself, beta = 0: the same per-step rewards as the task's form.
    envs = gym.make_vec("SeqGAN-v0", num_envs=space.shape[0], preset=preset, reward="optimal-dense",
                        oracle=oracle, reference=policy)
    against_policy, _, _ = step_all(envs, space)
    np.testing.assert_allclose(against_policy, paid_with_kl_beta_one(preset, oracle, reference, policy, space),
                               atol=5e-6)


def test_single_env_pays_what_the_vector_env_pays(space_models):
    preset, oracle, _, reference = space_models
    space = all_sequences(VOCAB, LENGTH)
    envs = gym.make_vec("SeqGAN-v0", num_envs=space.shape[0], preset=preset, reward=EXACT_REGRET,
                        oracle=oracle, reference=reference)
    vector, _, _ = step_all(envs, space)
    env = gym.make("SeqGAN-v0", preset=preset, reward=EXACT_REGRET, oracle=oracle, reference=reference)
    for row in (0, 5, 26):
        env.reset(seed=row)  # several episodes of one env: the prefix states restart at each reset
        single = [env.step(int(token))[1] for token in space[row]]
        np.testing.assert_allclose(single, vector[:, row], atol=1e-6)


def test_prompted_rewards_sum_to_the_completions_log_ratio(space_models):
    preset, oracle, _, reference = space_models
    envs = gym.make_vec("SeqGAN-v0", num_envs=8, preset=preset, reward="optimal-dense", oracle=oracle,
                        reference=reference, prompt_length=1)
    obs, _ = envs.reset(seed=3)
    prompts = obs[:, :1].copy()
    rng = np.random.default_rng(0)
    total = np.zeros(8)
    for _ in range(LENGTH - 1):
        obs, reward, terminated, _, info = envs.step(rng.integers(0, VOCAB, 8))
        total += reward
    assert terminated.all()
    finished = torch.as_tensor(np.stack(info["final_obs"]))
    assert (finished[:, :1].numpy() == prompts).all()
    oracle_part = sequence_log_probs(oracle, finished, first=1)[0]
    reference_part = sequence_log_probs(reference, finished, first=1)[0]
    np.testing.assert_allclose(total, (oracle_part - reference_part).numpy(), atol=2e-5)
    # The prompt's own tokens are not paid: counting them would change the sums.
    whole = (sequence_log_probs(oracle, finished)[0] - sequence_log_probs(reference, finished)[0]).numpy()
    assert np.abs(whole - total).max() > 1e-2


def test_density_ratio_dense_pays_the_learned_ratio_per_token(space_models):
    preset, _, policy, reference = space_models
    space = all_sequences(VOCAB, LENGTH)
    learned = DensityRatioDiscriminator(policy, reference)
    envs = gym.make_vec("SeqGAN-v0", num_envs=space.shape[0], preset=preset, reward="density-ratio-dense",
                        discriminator=learned)
    rewards, _, _ = step_all(envs, space)
    np.testing.assert_allclose(rewards.sum(axis=0), learned.log_ratio(space).detach().double().numpy(), atol=2e-5)


def test_log_ratio_kinds_refuse_other_forms_and_missing_models(space_models):
    preset, oracle, _, reference = space_models
    for form in ("probability", "log"):
        with pytest.raises(ValueError, match=f"cannot pay reward_form='{form}'"):
            gym.make("SeqGAN-v0", preset=preset, reward=EXACT_REGRET, oracle=oracle, reference=reference,
                     reward_form=form)
    with pytest.raises(ValueError, match="needs oracle"):
        gym.make("SeqGAN-v0", preset=preset, reward="optimal-dense", reference=reference)
    with pytest.raises(ValueError, match="needs discriminator"):
        gym.make("SeqGAN-v0", preset=preset, reward="density-ratio-dense")
    with pytest.raises(ValueError, match="does not use reward_form"):
        gym.make("SeqGAN-v0", preset=preset, reward="oracle", oracle=oracle, reward_form="logit")
    assert math.isfinite(exact_kl(reference, oracle))
