"""The Bayes-optimal discriminator D*: exact on an enumerated oracle, a drop-in D for the env's rewards."""

from __future__ import annotations

import itertools
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from seqgan_env.checkpoint import save_model
from seqgan_env.models import Generator, Oracle
from seqgan_env.optimal import OptimalDiscriminator
from seqgan_env.presets import get_preset

VOCAB, LENGTH = 3, 3


@pytest.fixture
def enumerable():
    """An oracle and a generator small enough that every sequence (3^3 = 27) can be listed."""
    oracle = Oracle(VOCAB, 4, 4, LENGTH, seed=5)
    torch.manual_seed(1)
    generator = Generator(VOCAB, 4, 4, LENGTH, init_std=0.8)
    return oracle, generator


@torch.no_grad()
def probability_by_steps(model, sequence: tuple[int, ...]) -> float:
    """p(sequence) as the product of the policy's step-by-step softmax (not its teacher-forced path)."""
    logits, state = model.start(1)
    probability = 1.0
    for token in sequence:
        probability *= float(torch.softmax(logits.double(), -1)[0, token])
        logits, state = model.step(torch.tensor([token]), state)
    return probability


def test_optimal_discriminator_is_the_exact_posterior(enumerable):
    oracle, generator = enumerable
    sequences = list(itertools.product(range(VOCAB), repeat=LENGTH))
    p_data = np.array([probability_by_steps(oracle, s) for s in sequences])
    p_gen = np.array([probability_by_steps(generator, s) for s in sequences])
    assert p_data.sum() == pytest.approx(1.0) and p_gen.sum() == pytest.approx(1.0)
    optimal = OptimalDiscriminator(oracle, generator)
    scores = optimal.score(torch.tensor(sequences)).double().numpy()
    posterior = p_data / (p_data + p_gen)
    np.testing.assert_allclose(scores, posterior, rtol=1e-5, atol=1e-6)
    # Goodfellow et al. (2014), Thm. 1: against D*, GAN's value is 2 JSD(p_data || p_G) - log 4.
    value = float((p_data * np.log(posterior) + p_gen * np.log(1 - posterior)).sum())
    mixture = (p_data + p_gen) / 2
    jsd = 0.5 * float((p_data * np.log(p_data / mixture)).sum() + (p_gen * np.log(p_gen / mixture)).sum())
    assert value == pytest.approx(2 * jsd - math.log(4), rel=1e-5)
    # and any other D does worse: D* maximises the value (Prop. 1)
    for other in (np.full_like(posterior, 0.5), np.clip(posterior + 0.05, 0, 0.999)):
        assert float((p_data * np.log(other) + p_gen * np.log(1 - other)).sum()) < value


def test_the_reference_can_be_swapped_and_is_followed_when_trained_in_place(enumerable):
    oracle, generator = enumerable
    optimal = OptimalDiscriminator(oracle, generator)
    tokens = torch.tensor(list(itertools.product(range(VOCAB), repeat=LENGTH)))
    before, key = optimal.score(tokens), optimal.weights_key()
    with torch.no_grad():
        generator.output.bias.add_(torch.tensor([1.0, 0.0, -1.0]))  # an in-place update, as an optimiser does
    assert not torch.allclose(optimal.score(tokens), before)
    assert optimal.weights_key() != key
    optimal.set_reference(oracle)  # D* of the oracle against itself: 1/2 everywhere
    torch.testing.assert_close(optimal.score(tokens), torch.full((27,), 0.5))


def test_clear_errors(enumerable, tiny_models, tmp_path):
    oracle, generator = enumerable
    with pytest.raises(ValueError, match="needs the oracle's density"):
        OptimalDiscriminator(None, generator)
    with pytest.raises(TypeError, match="must be a seqgan_env Oracle"):
        OptimalDiscriminator(generator, generator)
    with pytest.raises(ValueError, match="vocabulary of 64 tokens, the oracle 3"):
        OptimalDiscriminator(oracle, tiny_models["generator"])
    with pytest.raises(ValueError, match="sequences of 5 tokens, the oracle 3"):
        OptimalDiscriminator(oracle, Generator(VOCAB, 4, 4, 5))
    with pytest.raises(ValueError, match="end token"):
        OptimalDiscriminator(oracle, Generator(VOCAB, 4, 4, LENGTH, eos_token=2))
    with pytest.raises(TypeError, match="token model"):
        OptimalDiscriminator(oracle, torch.nn.Linear(2, 2))
    with pytest.raises(TypeError, match="not saved"):
        save_model(OptimalDiscriminator(oracle, generator), tmp_path / "unused.pt")


def expected_reward(oracle, generator, prefix: tuple[int, ...]) -> float:
    """E over the generator's completions of ``prefix`` of D*(completed sequence), by enumeration."""
    optimal = OptimalDiscriminator(oracle, generator)
    total = 0.0
    p_prefix = probability_by_steps(generator, prefix)
    for rest in itertools.product(range(VOCAB), repeat=LENGTH - len(prefix)):
        sequence = prefix + rest
        weight = probability_by_steps(generator, sequence) / p_prefix
        total += weight * float(optimal.score(torch.tensor([sequence]))[0])
    return total


@pytest.mark.parametrize("vector", [False, True])
def test_monte_carlo_and_terminal_rewards_take_it_as_their_discriminator(enumerable, vector):
    """``gymnasium.make(..., discriminator=D*)``: the final reward is D*(x), and an unfinished prefix's
    Monte Carlo reward is the mean of D* over completions (checked by enumeration, 4,000 rollouts)."""
    oracle, generator = enumerable
    preset = get_preset("tiny").replace(vocab_size=VOCAB, seq_len=LENGTH)
    optimal = OptimalDiscriminator(oracle, generator)
    kwargs = dict(preset=preset, reward="monte_carlo", discriminator=optimal, rollout_policy=generator,
                  num_rollouts=4000)
    env = gym.make_vec("SeqGAN-v0", num_envs=2, **kwargs) if vector else gym.make("SeqGAN-v0", **kwargs)
    env.reset(seed=0)
    actions = [(2, 0, 1), (0, 1, 1)]
    for t in range(LENGTH):
        if vector:
            _, reward, *_ = env.step(np.array([a[t] for a in actions]))
        else:
            _, reward, *_ = env.step(actions[0][t])
            reward = np.array([reward])
        for row, rewarded in enumerate(np.atleast_1d(reward)):
            prefix = actions[row][: t + 1]
            exact = expected_reward(oracle, generator, prefix) if t + 1 < LENGTH else \
                float(optimal.score(torch.tensor([prefix]))[0])
            assert rewarded == pytest.approx(exact, abs=0.03 if t + 1 < LENGTH else 1e-6)
    terminal = gym.make("SeqGAN-v0", preset=preset, reward="terminal", discriminator=optimal)
    terminal.reset(seed=0)
    rewards = [terminal.step(a)[1] for a in actions[0]]
    assert rewards[:-1] == [0.0, 0.0]
    assert rewards[-1] == pytest.approx(float(optimal.score(torch.tensor([actions[0]]))[0]))


def test_reward_optimal_is_the_monte_carlo_reward_scored_by_d_star(enumerable, tmp_path):
    """``reward="optimal"`` (and ``"optimal-terminal"``) built from the oracle and a reference: the
    same rewards, seed for seed, as the Monte Carlo (terminal) reward given that D* by hand; a
    missing oracle, a reference that is not a generator, or one of another vocabulary is refused."""
    oracle, generator = enumerable
    preset = get_preset("tiny").replace(vocab_size=VOCAB, seq_len=LENGTH)
    actions = (2, 0, 1)

    def rewards(**kwargs):
        env = gym.make("SeqGAN-v0", preset=preset, **kwargs)
        env.reset(seed=3)
        return [env.step(a)[1] for a in actions]

    by_hand = rewards(reward="monte_carlo", discriminator=OptimalDiscriminator(oracle, generator),
                      rollout_policy=generator, num_rollouts=8)
    assert rewards(reward="optimal", oracle=oracle, rollout_policy=generator, num_rollouts=8) == by_hand
    save_model(generator, tmp_path / "reference.pt")
    assert rewards(reward="optimal", oracle=oracle, reference=tmp_path / "reference.pt", rollout_policy=generator,
                   num_rollouts=8) == pytest.approx(by_hand)
    terminal = rewards(reward="optimal-terminal", oracle=oracle, reference=generator)
    assert terminal[:-1] == [0.0, 0.0]
    assert terminal[-1] == pytest.approx(float(OptimalDiscriminator(oracle, generator).score(torch.tensor([actions]))[0]))
    with pytest.raises(ValueError, match="needs oracle"):
        rewards(reward="optimal", rollout_policy=generator)
    with pytest.raises(TypeError, match="reference must be a generator"):
        rewards(reward="optimal", oracle=oracle, reference=42, rollout_policy=generator)
    with pytest.raises(ValueError, match="vocab"):
        rewards(reward="optimal", oracle=oracle, reference=Generator(VOCAB + 2, 4, 4, LENGTH), rollout_policy=generator)
