"""The policy's half of the KL-regularised reward (``kl_beta``) for REINFORCE, GRPO and SB3's PPO/A2C:
the per-step arithmetic against a hand computation, the wrapper's term reaching the agents, and
beta > 0 ending nearer the reference than beta = 0 on a fixed seed."""

from __future__ import annotations

import copy

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers the envs)
from agents.base import collect_episodes
from agents.kl_penalty import kl_regularised_rewards
from agents.reinforce import ReinforceAgent, ReinforceConfig
from agents.sb3 import KLPenaltyCallback, SB3VecEnvAdapter, make_ppo
from seqgan_env.divergence import kl_to_reference
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset
from seqgan_env.rewards.reference_penalty import REFERENCE_TERM, with_reference_penalty
from train.adversarial import sb3_step

pytestmark = pytest.mark.usefixtures("one_thread")


def test_additive_rewards_get_minus_beta_log_pi_at_each_step():
    rewards = np.array([[1.0, 2.0], [3.0, 4.0]])
    log_probs = np.array([[-1.0, -2.0], [-0.5, -0.25]])
    got = kl_regularised_rewards(rewards, log_probs, 0.5, np.zeros((2, 2), bool))
    np.testing.assert_allclose(got, [[1.5, 3.0], [3.25, 4.125]])


def test_outcome_rewards_get_the_penalties_still_to_come_in_their_episode():
    # One column, 4 steps; a new episode begins at step 2. Rewards are Q_t plus the wrapper's term.
    q = np.array([0.2, 0.4, 0.6, 0.8])
    reference = np.array([-0.1, -0.2, -0.3, -0.4])  # beta * log pi_ref, added by the wrapper
    log_probs = np.array([-1.0, -2.0, -3.0, -4.0])
    beta = 0.5
    starts = np.array([True, False, True, False])
    got = kl_regularised_rewards((q + reference)[:, None], log_probs[:, None], beta, starts[:, None],
                                 reference[:, None], additive=False)[:, 0]
    p = reference + beta * -log_probs  # each step's penalty: beta * (log pi_ref - log pi)
    expected = [q[0] + p[0] + p[1], q[1] + p[1], q[2] + p[2] + p[3], q[3] + p[3]]
    np.testing.assert_allclose(got, expected)
    # Without the info the wrapper's term is taken as 0 and stays inside Q_t.
    plain = kl_regularised_rewards(q[:, None], log_probs[:, None], beta, starts[:, None], None, additive=False)[:, 0]
    np.testing.assert_allclose(plain, [q[0] + 1.5, q[1] + 1.0, q[2] + 3.5, q[3] + 2.0])


def tiny_envs(reference: Generator, beta: float, num_envs: int = 16):
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=num_envs, reward="oracle")
    return with_reference_penalty(envs, reference, beta)


def start() -> tuple[Generator, Generator]:
    torch.manual_seed(0)
    generator = Generator.from_preset(get_preset("tiny"))
    return generator, copy.deepcopy(generator).requires_grad_(False).eval()


def test_episodes_carry_the_wrappers_term_of_every_step():
    generator, reference = start()
    agent = ReinforceAgent(generator, seed=0)
    plain = collect_episodes(gym.make_vec("SeqGAN-Tiny-v0", num_envs=4, reward="oracle"), agent, seed=3)
    agent = ReinforceAgent(copy.deepcopy(reference).requires_grad_(True), seed=0)
    wrapped = collect_episodes(tiny_envs(reference, 0.7, num_envs=4), agent, seed=3)
    np.testing.assert_array_equal(wrapped.sequences, plain.sequences)
    with torch.no_grad():
        log_ref = reference.log_probs(torch.as_tensor(wrapped.sequences)).numpy()
    np.testing.assert_allclose(wrapped.reference_terms, 0.7 * log_ref, rtol=1e-5)
    np.testing.assert_allclose(wrapped.rewards - wrapped.reference_terms, plain.rewards, atol=1e-5)
    assert plain.reference_terms is None


def test_reinforce_with_beta_zero_is_the_paper_update_exactly():
    results = []
    for wrapped in (False, True):
        generator, reference = start()
        envs = tiny_envs(reference, 0.0) if wrapped else gym.make_vec("SeqGAN-Tiny-v0", num_envs=16, reward="oracle")
        agent = ReinforceAgent(generator, ReinforceConfig(lr=0.05, kl_beta=0.0) if wrapped else
                               ReinforceConfig(lr=0.05), seed=0)
        for update in range(3):
            agent.learn(collect_episodes(envs, agent, seed=update))
        results.append(torch.cat([p.detach().flatten() for p in generator.parameters()]))
    assert torch.equal(results[0], results[1])


def train_reinforce(beta: float, reward_to_go: bool, updates: int = 15) -> float:
    """KL(pi || pi_ref) after REINFORCE (mean baseline) on the tiny oracle reward."""
    generator, reference = start()
    envs = tiny_envs(reference, beta, num_envs=32)
    agent = ReinforceAgent(generator, ReinforceConfig(lr=0.05, baseline="mean", rollout_beta=0.0, kl_beta=beta,
                                                      reward_to_go=reward_to_go), seed=0)
    for update in range(updates):
        agent.learn(collect_episodes(envs, agent, seed=update))
    return kl_to_reference(generator, reference, 2000, torch.Generator().manual_seed(0)).kl


@pytest.mark.parametrize("reward_to_go", [True, False])
def test_kl_penalty_keeps_reinforce_nearer_its_reference(reward_to_go):
    free, held = train_reinforce(0.0, reward_to_go), train_reinforce(1.0, reward_to_go)
    assert free > 10.0  # the reward alone moves the policy far from its start (measured 26-30; beta = 1: 5.2-5.5)
    assert held < 0.4 * free


def sb3_collect(model, callbacks) -> None:
    model.learn(total_timesteps=model.n_envs * model.n_steps, reset_num_timesteps=False, callback=callbacks)


@pytest.mark.parametrize("reward", ["oracle", "random"])
def test_ppo_callback_rewrites_the_rewards_and_recomputes_the_returns(reward):
    """Oracle (per-token, gamma = 1): each reward less beta log pi, returns the rewards still to
    come. Random (stands in for the Monte Carlo reward, gamma = 0): each step's outcome plus the
    penalties still to come in its episode, and the return is that."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Before(BaseCallback):
        def _on_step(self) -> bool:
            infos.append([info[REFERENCE_TERM] for info in self.locals["infos"]])
            return True

        def _on_rollout_end(self) -> None:
            seen.update(rewards=self.model.rollout_buffer.rewards.copy(),
                        log_probs=self.model.rollout_buffer.log_probs.copy())

    class After(BaseCallback):
        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:  # before the update flattens the buffer
            seen.update(new_rewards=self.model.rollout_buffer.rewards.copy(),
                        returns=self.model.rollout_buffer.returns.copy())

    beta = 0.5
    generator, reference = start()
    envs = with_reference_penalty(gym.make_vec("SeqGAN-Tiny-v0", num_envs=4, reward=reward), reference, beta)
    model = make_ppo(envs, generator=generator, seed=0, n_epochs=1)
    seen, infos = {}, []
    sb3_collect(model, [Before(), KLPenaltyCallback(beta), After()])  # SB3 calls them in this order
    terms = np.asarray(infos)
    assert terms.shape == seen["rewards"].shape  # every step's info has the wrapper's term
    policy_terms = -beta * seen["log_probs"]
    if reward == "oracle":
        expected = seen["rewards"] + policy_terms
        returns = np.cumsum(expected[::-1], axis=0)[::-1]
    else:  # one episode of 8 steps per env: Q_t + sum over s >= t of the penalties
        penalties = terms + policy_terms
        expected = seen["rewards"] - terms + np.cumsum(penalties[::-1], axis=0)[::-1]
        returns = expected
        assert model.gamma == 0.0
    np.testing.assert_allclose(seen["new_rewards"], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(seen["returns"], returns, rtol=1e-4, atol=1e-4)


def train_ppo(beta: float, updates: int = 30) -> float:
    generator, reference = start()
    model = make_ppo(SB3VecEnvAdapter(tiny_envs(reference, beta, num_envs=32)), generator=generator, seed=0,
                     learning_rate=3e-3)
    step = sb3_step(model, generator, KLPenaltyCallback(beta) if beta else None)
    for update in range(updates):
        step(update)
    return kl_to_reference(generator, reference, 2000, torch.Generator().manual_seed(0)).kl


def test_kl_penalty_keeps_ppo_nearer_its_reference():
    free, held = train_ppo(0.0), train_ppo(1.0)
    assert free > 3.0  # measured 6.5 (beta = 1: 1.2)
    assert held < 0.4 * free


def test_beta_must_be_positive_for_the_callback():
    with pytest.raises(ValueError, match="beta must be > 0"):
        KLPenaltyCallback(0.0)
    with pytest.raises(ValueError, match="kl_beta must be >= 0"):
        ReinforceConfig(kl_beta=-1.0)


def train_grpo(beta: float, updates: int = 12) -> float:
    """KL(pi || pi_ref) after GRPO on the tiny oracle reward with the KL-regularised reward (no k3 term)."""
    from agents.grpo import GrpoAgent, GrpoConfig

    generator, reference = start()
    envs = tiny_envs(reference, beta, num_envs=32)
    agent = GrpoAgent(generator, GrpoConfig(lr=0.01, epochs=2, minibatch_size=16, kl_coef=0.0, kl_beta=beta), seed=0)
    for update in range(updates):
        agent.learn(collect_episodes(envs, agent, seed=update))
    return kl_to_reference(generator, reference, 2000, torch.Generator().manual_seed(0)).kl


def test_kl_penalty_keeps_grpo_nearer_its_reference():
    free, held = train_grpo(0.0), train_grpo(1.0)
    assert free > 3.0  # measured 7.8 (beta = 1: 0.36)
    assert held < 0.25 * free
