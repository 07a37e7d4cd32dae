"""KL(pi || pi_ref) per sequence on samples of pi, against the exact KL by enumeration."""

from __future__ import annotations

import math

import pytest
import torch

from seqgan_env.divergence import all_sequences, exact_kl, kl_to_reference
from seqgan_env.models import TokenLSTM

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_lstm(seed: int, vocab: int = 4, length: int = 3) -> TokenLSTM:
    torch.manual_seed(seed)
    return TokenLSTM(vocab, 4, 8, length, init_std=1.0).eval()


def stepwise_log_prob(model: TokenLSTM, sequence: list[int], temperature: float = 1.0) -> float:
    """log p(y) by the step interface, one token at a time (not the teacher-forced path)."""
    with torch.no_grad():
        logits, state = model.start(1)
        total = 0.0
        for token in sequence:
            total += float(torch.log_softmax(logits[0] / temperature, -1)[token])
            logits, state = model.step(torch.tensor([token]), state)
    return total


def enumerated_kl(policy: TokenLSTM, reference: TokenLSTM, temperature: float = 1.0) -> float:
    kl = 0.0
    for row in all_sequences(policy.vocab_size, policy.seq_len).tolist():
        own = stepwise_log_prob(policy, row, temperature)
        kl += math.exp(own) * (own - stepwise_log_prob(reference, row))
    return kl


def test_all_sequences_enumerates_the_space():
    space = all_sequences(3, 2)
    assert space.tolist() == [[a, b] for a in range(3) for b in range(3)]
    with pytest.raises(ValueError, match="too many"):
        all_sequences(64, 8)


def test_exact_kl_matches_the_step_by_step_enumeration():
    policy, reference = tiny_lstm(1), tiny_lstm(2)
    assert exact_kl(policy, reference) == pytest.approx(enumerated_kl(policy, reference), rel=1e-5)
    assert exact_kl(policy, policy) == pytest.approx(0.0, abs=1e-9)


def test_estimate_matches_exact_kl_within_its_standard_errors_over_seeds():
    policy, reference = tiny_lstm(1), tiny_lstm(2)
    exact = enumerated_kl(policy, reference)
    assert exact > 0.5  # the two models differ enough for the test to mean something
    scores = []
    for seed in range(20):
        estimate = kl_to_reference(policy, reference, 400, torch.Generator().manual_seed(seed))
        assert estimate.samples == 400 and estimate.kl_stderr > 0
        scores.append((estimate.kl - exact) / estimate.kl_stderr)
    scores = torch.tensor(scores)
    assert scores.abs().max() < 4.0
    # The reported standard error is the spread of the estimates: z-scores have unit spread.
    assert 0.6 < float(scores.std()) < 1.5
    assert abs(float(scores.mean())) < 4.0 / math.sqrt(20)


def test_tempered_generator_kl_to_itself_untempered():
    model = tiny_lstm(3)
    exact = enumerated_kl(model, model, temperature=0.6)
    assert exact == pytest.approx(exact_kl(model, model, temperature=0.6), rel=1e-5)
    estimate = kl_to_reference(model, model, 4000, torch.Generator().manual_seed(0), temperature=0.6)
    assert abs(estimate.kl - exact) < 4 * estimate.kl_stderr
    assert kl_to_reference(model, model, 500, torch.Generator().manual_seed(0)).kl == pytest.approx(0.0, abs=1e-9)


def test_entropy_is_the_mean_negative_log_likelihood_of_the_same_samples():
    policy, reference = tiny_lstm(1), tiny_lstm(2)
    samples = policy.sample(300, torch.Generator().manual_seed(0))
    estimate = kl_to_reference(policy, reference, samples=samples)
    assert estimate.samples == 300
    assert estimate.entropy == pytest.approx(policy.nll(samples), rel=1e-5)


def test_padding_after_an_end_token_is_not_counted():
    """Two different policies with an end token (0) on rows that end early: the KL per sequence is
    the mean of ``log pi(y) - log pi_ref(y)`` over each row's tokens up to its end token, and the
    entropy is ``-sum log pi`` over those 6 tokens divided by 6, both computed here one token at a
    time with the step interface. Counting the 3 PAD positions as tokens would give an entropy 2/3
    of the right one."""
    torch.manual_seed(0)
    policy = TokenLSTM(4, 4, 8, 3, init_std=1.0, eos_token=0).eval()
    torch.manual_seed(1)
    reference = TokenLSTM(4, 4, 8, 3, init_std=1.0, eos_token=0).eval()
    samples = torch.tensor([[0, 4, 4], [1, 0, 4], [1, 2, 3]])  # 4 is PAD after the end token
    tokens = [[0], [1, 0], [1, 2, 3]]
    own = [stepwise_log_prob(policy, row) for row in tokens]
    theirs = [stepwise_log_prob(reference, row) for row in tokens]
    estimate = kl_to_reference(policy, reference, samples=samples)
    expected_kl = sum(a - b for a, b in zip(own, theirs)) / 3
    assert abs(expected_kl) > 0.1  # the two policies differ: a KL of a policy to itself would be 0
    assert estimate.kl == pytest.approx(expected_kl, rel=1e-5)
    assert estimate.entropy == pytest.approx(-sum(own) / 6, rel=1e-5)
    assert estimate.samples == 3


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="differ in shape"):
        kl_to_reference(tiny_lstm(1), tiny_lstm(2, vocab=5))
    with pytest.raises(ValueError, match="at least 2"):
        kl_to_reference(tiny_lstm(1), tiny_lstm(2), samples=torch.zeros(1, 3, dtype=torch.long))
