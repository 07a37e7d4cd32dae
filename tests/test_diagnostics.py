"""Held-out discriminator diagnostics against direct computations (and SciPy, when installed)."""

from __future__ import annotations

import itertools

import pytest
import torch

from seqgan_env.diagnostics import average_ranks, held_out_metrics, held_out_real, roc_auc, spearman
from seqgan_env.rewards.density_ratio import OptimalDiscriminator


def brute_force_auc(real: list[float], fake: list[float]) -> float:
    """Every (real, generated) pair: 1 if the real one scores higher, 1/2 on a tie."""
    wins = sum(1.0 if r > f else 0.5 if r == f else 0.0 for r, f in itertools.product(real, fake))
    return wins / (len(real) * len(fake))


def test_average_ranks_share_ties():
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]


def test_auc_matches_every_pair_with_ties():
    real, fake = [0.9, 0.4, 0.4, 0.7, 0.1], [0.4, 0.2, 0.8, 0.4]
    assert roc_auc(torch.tensor(real), torch.tensor(fake)) == pytest.approx(brute_force_auc(real, fake))
    assert roc_auc(torch.tensor([1.0, 2.0]), torch.tensor([0.0])) == 1.0
    assert roc_auc(torch.tensor([0.5, 0.5]), torch.tensor([0.5])) == 0.5
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(torch.tensor([1.0]), torch.tensor([]))


def test_spearman_of_a_monotone_map_is_one_and_of_its_reverse_minus_one():
    x = torch.randn(50, generator=torch.Generator().manual_seed(0))
    assert spearman(x, x.exp()) == pytest.approx(1.0)
    assert spearman(x, -x**3) == pytest.approx(-1.0)


def test_against_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = torch.Generator().manual_seed(1)
    real = torch.randint(0, 6, (40,), generator=rng).double()  # many ties
    fake = torch.randint(0, 5, (30,), generator=rng).double()
    u_statistic = stats.mannwhitneyu(real.numpy(), fake.numpy(), alternative="two-sided").statistic
    assert roc_auc(real, fake) == pytest.approx(u_statistic / (40 * 30))
    x, y = torch.randn(60, generator=rng).round(), torch.randn(60, generator=rng)
    assert spearman(x, y) == pytest.approx(stats.spearmanr(x.numpy(), y.numpy()).statistic)
    assert average_ranks(x).tolist() == pytest.approx(stats.rankdata(x.numpy()).tolist())


def test_held_out_metrics_match_a_direct_computation(tiny_models):
    """D*'s metrics recomputed by hand from its log ratios; its Spearman with itself is 1."""
    oracle, generator = tiny_models["oracle"], tiny_models["generator"]
    rng = torch.Generator().manual_seed(0)
    real, fake = oracle.sample(300, rng), generator.sample(300, rng)
    optimal = OptimalDiscriminator(oracle, generator)
    metrics = held_out_metrics(optimal, real, fake, oracle=oracle, generator=generator)
    r, f = optimal.log_ratio(real).double(), optimal.log_ratio(fake).double()
    pr, pf = torch.sigmoid(r), torch.sigmoid(f)
    assert metrics["accuracy"] == pytest.approx(((r > 0).sum() + (f <= 0).sum()).item() / 600)
    assert metrics["auc"] == pytest.approx(brute_force_auc(r.tolist(), f.tolist()))
    assert metrics["brier"] == pytest.approx((((1 - pr) ** 2).sum() + (pf**2).sum()).item() / 600)
    assert metrics["mean_p_real"] == pytest.approx(pr.mean().item())
    assert metrics["log_ratio_spearman"] == pytest.approx(1.0)
    assert metrics["accuracy"] > 0.6  # the oracle and an untrained generator differ


def test_held_out_metrics_of_an_untrained_cnn_are_near_chance(tiny_models):
    oracle, generator, disc = tiny_models["oracle"], tiny_models["generator"], tiny_models["discriminator"]
    rng = torch.Generator().manual_seed(0)
    metrics = held_out_metrics(disc, oracle.sample(500, rng), generator.sample(500, rng), oracle, generator)
    assert 0.4 < metrics["auc"] < 0.6
    assert set(metrics) == {"accuracy", "auc", "brier", "mean_p_real", "mean_p_fake", "log_ratio_spearman"}


def test_held_out_real_draws_from_the_oracle_or_the_split(tiny_models):
    rng = torch.Generator().manual_seed(0)
    split = torch.arange(40).view(10, 4)
    drawn = held_out_real(4, rng, held_out=split)
    assert drawn.shape == (4, 4) and len({tuple(r) for r in drawn.tolist()}) == 4
    assert held_out_real(20, rng, held_out=split) is split
    assert held_out_real(3, rng, oracle=tiny_models["oracle"]).shape == (3, tiny_models["oracle"].seq_len)
    with pytest.raises(ValueError, match="oracle or a non-empty held-out split"):
        held_out_real(3, rng)
