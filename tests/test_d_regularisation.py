"""Regularising D against saturation: label smoothing and weight decay in fit/train_discriminator,
and the chosen setting ``REGULARISED_D`` keeping the Monte Carlo reward's spread."""

from __future__ import annotations

import pytest
import torch

from benchmarks.d_regularisation import fixed_generator, overtrained_discriminator, reward_statistics
from seqgan_env.models import Discriminator
from seqgan_env.models.discriminator import fit_discriminator
from seqgan_env.precision import training_autocast
from seqgan_env.presets import get_preset
from train.pretrain import REGULARISED_D, DiscriminatorSchedule

# The schedule below, run on seeds 0-5 (the seed of the generator, of D's initialisation and
# training, and of the rewarded batch; one thread; torch 2.13 CPU), measured:
#   plain D:       reward spread 0.159 0.090 0.141 0.174 0.167 0.158, mean reward 0.072 0.031 0.052 0.063 0.065 0.064
#   REGULARISED_D: reward spread 0.204 0.168 0.196 0.183 0.168 0.189, mean reward 0.169 0.113 0.144 0.122 0.106 0.139
# so, seed by seed, the regularised D's mean reward is 1.6-3.6 times the plain D's, while its
# spread is higher by 0.0006-0.078 (seed 4: 0.168 against 0.167): the two spreads' ranges overlap,
# and no single threshold separates a "saturated" plain D from a regularised one. The bounds
# below hold on every one of those seeds, with a margin beyond the measured range.
PLAIN_STD_BELOW = 0.19
"""The plain D's spread (measured 0.090-0.174 over seeds 0-5)."""
KEPT_STD = 0.15
"""The regularised D keeps its spread above this (measured 0.168-0.204)."""
MEAN_RATIO = 1.4
"""The regularised D's mean reward is at least this many times the plain D's (measured 1.63-3.6)."""


def test_regularised_d_pays_over_1_4_times_the_plain_ds_reward_and_keeps_its_spread_above_0_15():
    """The same over-training schedule (an untrained generator, 4 rounds x 10 epochs at Adam lr 3e-2,
    tiny preset with a 512-token vocabulary) for the paper's D and for D with REGULARISED_D, from
    the same initialisation; then the Monte Carlo rewards of one fixed batch of 64 samples.
    The regularised D's mean reward is over MEAN_RATIO times the plain one's, its spread stays
    above KEPT_STD and the plain D's below PLAIN_STD_BELOW, with D still telling real from
    generated. That the plain D's spread is lower holds on each measured seed but by as little as
    0.0006 (seed 4): it is no margin, and this test does not claim the plain D saturates."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the thresholds were measured on one thread
    try:
        preset = get_preset("tiny").replace(vocab_size=512)
        setup = fixed_generator(preset, real_count=500, mle_epochs=0)
        results = {}
        for name, regularisation in (("plain", {}), ("regularised", REGULARISED_D)):
            disc, stats = overtrained_discriminator(preset, setup["generator"], setup["real"], rounds=4, epochs=10,
                                                    lr=3e-2, **regularisation)
            results[name] = {**reward_statistics(preset, disc, setup["generator"]), **stats}
    finally:
        torch.set_num_threads(threads)
    plain, regularised = results["plain"], results["regularised"]
    assert plain["reward_std"] < PLAIN_STD_BELOW, results
    assert regularised["reward_std"] > KEPT_STD, results
    assert regularised["mean_reward"] > MEAN_RATIO * plain["mean_reward"], results  # rewards no longer pushed to 0
    assert regularised["d_accuracy"] > 0.95, results  # D still tells real from generated (measured >= 0.996)


def test_regularisation_values_are_checked():
    disc = Discriminator.from_preset(get_preset("tiny"))
    data = torch.zeros(4, 8, dtype=torch.long)
    optimizer = torch.optim.SGD(disc.parameters(), lr=0.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 0.5\), got 0.6"):
        fit_discriminator(disc, data, data, 1, optimizer, label_smoothing=0.6)
    with pytest.raises(ValueError, match="weight_decay must be >= 0, got -0.1"):
        fit_discriminator(disc, data, data, 1, optimizer, weight_decay=-0.1)
    assert DiscriminatorSchedule().label_smoothing == 0.0 and DiscriminatorSchedule().weight_decay == 0.0  # paper


def test_label_smoothing_is_one_sided_and_weight_decay_is_an_l2_term():
    """At learning rate 0 the reported loss is the paper's cross-entropy with real targets 1 - α and
    fake targets 0; weight decay adds λ/2 Σθ² to what is minimised (one SGD step shows it)."""
    tiny = get_preset("tiny")
    torch.manual_seed(0)
    disc = Discriminator.from_preset(tiny).eval()
    disc.dropout.p = 0.0  # deterministic forward passes for the comparison
    real = torch.randint(0, 64, (8, 8), generator=torch.Generator().manual_seed(1))
    fake = torch.randint(0, 64, (8, 8), generator=torch.Generator().manual_seed(2))
    stats = fit_discriminator(disc, real, fake, 1, torch.optim.SGD(disc.parameters(), lr=0.0), batch_size=16,
                              label_smoothing=0.2)
    with torch.no_grad(), training_autocast(disc.device):
        logits = disc(torch.cat([real, fake])).float()
    p_real = torch.sigmoid(logits[:, 1] - logits[:, 0])
    targets = torch.cat([torch.full((8,), 0.8), torch.zeros(8)])
    expected = torch.nn.functional.binary_cross_entropy(p_real, targets)
    assert stats["d_loss"] == pytest.approx(float(expected), rel=1e-4)

    # weight decay: one SGD step on an empty-gradient direction shrinks the embedding of unseen tokens
    tokens = torch.zeros(4, 8, dtype=torch.long)  # only token 0 appears, so token 5's row gets only decay
    before = disc.embedding.weight[5].detach().clone()
    fit_discriminator(disc, tokens, tokens, 1, torch.optim.SGD(disc.parameters(), lr=0.1), batch_size=8,
                      weight_decay=0.5)
    assert torch.allclose(disc.embedding.weight[5].detach(), before * (1 - 0.1 * 0.5), atol=1e-6)
