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
from seqgan_env.presets import get_preset
from seqgan_env.rewards.density_ratio import OptimalDiscriminator

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


def _plain_log_likelihood(model, tokens, first=0):
    """log p(x) by the textbook route: every position's log-softmax over the whole vocabulary."""
    with torch.no_grad():
        log_probs = torch.log_softmax(model(tokens), dim=-1).gather(
            -1, tokens.clamp(max=model.vocab_size - 1).unsqueeze(-1)).squeeze(-1)
    skip = (tokens >= model.vocab_size) | (torch.arange(tokens.shape[1]) < first)
    return log_probs.masked_fill(skip, 0.0).sum(1)


@pytest.mark.parametrize("first", [0, 3])
@pytest.mark.parametrize("shared", [0, 2, 5])
def test_the_chunked_shared_prefix_scoring_equals_the_plain_log_likelihood(tiny_models, first, shared):
    """The Monte Carlo engine's path (output layer a chunk of rows at a time, positions before
    ``shared`` scored once per run of rows with that prefix) gives the plain log-likelihood of every
    row, PAD positions included; chunks smaller than a run of rows must not matter."""
    from seqgan_env.rewards.density_ratio import sequence_log_likelihood

    generator, oracle = tiny_models["generator"], tiny_models["oracle"]
    rng = torch.Generator().manual_seed(3)
    prefixes = generator.sample(6, rng)
    tokens = prefixes.repeat_interleave(4, dim=0)  # 6 runs of 4 completions, as the engine writes them
    tokens[:, shared:] = generator.sample(24, rng)[:, shared:]
    tokens[5, -2:] = generator.vocab_size  # PAD after an end token counts nothing
    for model in (generator, oracle):
        expected = _plain_log_likelihood(model, tokens, first)
        with torch.no_grad():
            got = sequence_log_likelihood(model, tokens, batch_size=10, first=first, shared=shared)
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-5)
        hidden = model.hidden_states(tokens).detach().reshape(-1, model.hidden_dim)
        per_token = model.taken_log_probs(hidden, tokens.reshape(-1), chunk_rows=7).view(tokens.shape)
        torch.testing.assert_close(per_token.masked_fill(tokens >= model.vocab_size, 0.0).sum(1),
                                   _plain_log_likelihood(model, tokens), atol=1e-4, rtol=1e-5)
        with torch.no_grad():  # log_probs without gradients takes the chunked path, at any temperature
            for temperature in (1.0, 0.7):
                plain = torch.log_softmax(model(tokens) / temperature, -1).gather(
                    -1, tokens.clamp(max=model.vocab_size - 1).unsqueeze(-1)).squeeze(-1)
                torch.testing.assert_close(model.log_probs(tokens, temperature), plain, atol=1e-5, rtol=1e-5)


def test_the_learned_numerator_still_gets_gradients_through_the_log_ratio(tiny_models):
    """A learned density-ratio D trains its numerator through ``log_ratio``: with gradients on,
    the fast inference path must not be taken."""
    from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator

    numerator = Generator.from_preset(get_preset("tiny"))
    ratio = DensityRatioDiscriminator(numerator, tiny_models["generator"])
    tokens = tiny_models["oracle"].sample(8, torch.Generator().manual_seed(0))
    ratio.log_ratio(tokens).sum().backward()
    assert numerator.output.weight.grad is not None and float(numerator.output.weight.grad.abs().sum()) > 0
    assert tiny_models["generator"].output.weight.grad is None  # the reference is read, never trained


def test_the_scoring_benchmark_runs_and_its_three_paths_agree(capsys, one_thread):  # it sets 1 thread
    """``benchmarks.bench_density_ratio`` at a few rows: it raises if a path's log-likelihoods
    leave the plain path's by more than 1e-3 nats, and prints each path's ratio."""
    from benchmarks import bench_density_ratio

    times = bench_density_ratio.main(["--batch", "2", "--rollouts", "2", "--repeats", "1"])
    assert set(times) == set(bench_density_ratio.PATHS) and all(t > 0 for t in times.values())
    printed = capsys.readouterr().out
    assert "GFLOP/s" in printed and printed.count("x the plain path") == 3
