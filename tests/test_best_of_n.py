"""Best-of-n: selection, its exact KL by enumeration, the sampled estimate, and the analytic bound."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from seqgan_env.best_of_n import (
    best_of_n,
    best_of_n_kl,
    best_of_n_probabilities,
    exact_best_of_n_kl,
    kl_bound,
)
from seqgan_env.divergence import all_sequences
from seqgan_env.models import Generator, Oracle
from seqgan_env.presets import get_preset

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_lstm(seed: int = 0) -> Generator:
    torch.manual_seed(seed)
    return Generator(3, 4, 8, 3, init_std=1.0).eval()


def zeros_count(sequences: torch.Tensor) -> torch.Tensor:
    """A scorer with many ties: how many 0 tokens a sequence has."""
    return (sequences == 0).sum(dim=1).float()


def table_scorer(seed: int):
    table = torch.rand(27, generator=torch.Generator().manual_seed(seed))
    return lambda sequences: table[(sequences * torch.tensor([9, 3, 1])).sum(1)]


def brute_force_best_of_n(probs: torch.Tensor, scores: torch.Tensor, n: int) -> torch.Tensor:
    """P_n by summing over every n-tuple of draws, keeping the first of the highest scores."""
    out = torch.zeros_like(probs, dtype=torch.float64)
    for draw in itertools.product(range(probs.shape[0]), repeat=n):
        chosen = max(range(n), key=lambda i: (scores[draw[i]], -i))
        out[draw[chosen]] += float(torch.prod(probs[list(draw)].double()))
    return out


def test_kl_bound_values():
    assert kl_bound(1) == 0.0
    assert kl_bound(2) == pytest.approx(math.log(2) - 0.5)
    assert kl_bound(1024) == pytest.approx(math.log(1024) - 1023 / 1024)


def distinct_scores(sequences: torch.Tensor) -> torch.Tensor:
    """A scorer without ties on length-2 sequences over 3 tokens."""
    return (sequences * torch.tensor([3, 1])).sum(1).float().neg()


@pytest.mark.parametrize("scorer", [zeros_count, distinct_scores], ids=["ties", "no-ties"])
def test_best_of_n_distribution_matches_brute_force(scorer):
    torch.manual_seed(0)
    model = Generator(3, 4, 8, 2, init_std=1.0).eval()  # 9 sequences
    space = all_sequences(3, 2)
    probs = model.log_probs(space).sum(1).exp().detach().double()
    probs = probs / probs.sum()
    scores = scorer(space)
    for n in (2, 3):
        torch.testing.assert_close(best_of_n_probabilities(scores, n, probs), brute_force_best_of_n(probs, scores, n),
                                   rtol=1e-9, atol=1e-12)


def test_exact_best_of_n_kl_is_below_the_analytic_bound():
    model = tiny_lstm()
    for scorer in (zeros_count, table_scorer(2)):
        assert exact_best_of_n_kl(model, scorer, 1) == pytest.approx(0.0, abs=1e-12)
        previous = 0.0
        for n in (2, 4, 16, 64, 1024):
            kl = exact_best_of_n_kl(model, scorer, n)
            assert previous < kl < kl_bound(n)  # grows with n, stays below the bound
            previous = kl
    # A constant scorer keeps pi as it is.
    assert exact_best_of_n_kl(model, lambda s: torch.zeros(s.shape[0]), 16) == pytest.approx(0.0, abs=1e-12)


def test_without_ties_among_many_atoms_the_kl_reaches_the_bound():
    scores = torch.arange(100_000).float()
    for n in (2, 8, 64):
        assert best_of_n_kl(scores, n) == pytest.approx(kl_bound(n), abs=2e-3)


def test_sampled_best_of_n_keeps_the_best_and_its_kl_stays_within_the_bound():
    preset = get_preset("tiny")
    torch.manual_seed(0)
    generator, oracle = Generator.from_preset(preset).eval(), Oracle.from_preset(preset)

    def gold(sequences: torch.Tensor) -> torch.Tensor:
        return oracle.log_probs(sequences).sum(1)

    for n in (1, 4, 64):
        result = best_of_n(generator, gold, n, 200, torch.Generator().manual_seed(n))
        groups = result.pool_scores.view(200, n)
        torch.testing.assert_close(result.scores, groups.max(dim=1).values)
        torch.testing.assert_close(result.scores, gold(result.sequences))
        estimate = best_of_n_kl(result.pool_scores, n)
        assert 0.0 <= estimate <= kl_bound(n) + 1e-12
        if n > 1:
            assert estimate > 0.5 * kl_bound(n)
    # The chosen sequences score higher than pi's: the selection works on the gold scorer.
    assert float(result.scores.mean()) > float(result.pool_scores.mean()) + 1.0


def test_sampled_estimate_approaches_the_exact_kl_on_a_tiny_model():
    model = tiny_lstm()
    exact = exact_best_of_n_kl(model, zeros_count, 4)
    pool = model.sample(20_000, torch.Generator().manual_seed(0))
    assert best_of_n_kl(zeros_count(pool), 4) == pytest.approx(exact, abs=0.02)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="n must be at least 1"):
        kl_bound(0)
    with pytest.raises(ValueError, match="returned 1 scores"):
        best_of_n(tiny_lstm(), lambda s: torch.zeros(1), 2, 3)
