"""The adversarial loop's discriminator schedule: always retrained, or gated on its accuracy."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents import ReinforceAgent
from seqgan_env.models import Discriminator
from seqgan_env.presets import get_preset
from train.adversarial import AdversarialConfig, adversarial_train, fresh_accuracy, reinforce_step


def _run(models, target):
    envs = gym.make_vec("SeqGAN-v0", num_envs=8, preset="tiny", discriminator=models["discriminator"],
                        rollout_policy=models["generator"], num_rollouts=2, compute_dtype="float32")
    agent = ReinforceAgent(models["generator"], seed=0)
    config = AdversarialConfig(steps=3, batch_size=8, num_rollouts=2, d_rounds=1, d_epochs=1, d_negatives=64,
                               d_target_accuracy=target)
    before = [p.detach().clone() for p in models["discriminator"].parameters()]
    log = []
    adversarial_train(reinforce_step(agent, envs), models["generator"], envs, models["discriminator"],
                      models["real"], config, torch.Generator().manual_seed(0), progress=False,
                      on_step=lambda step, stats: log.append(stats), held_out=models["oracle"])
    changed = any(not torch.equal(a, b) for a, b in zip(before, models["discriminator"].parameters()))
    return log, changed


def test_fresh_accuracy_is_the_discriminators_accuracy_on_the_same_samples(trained_tiny):
    """fresh_accuracy scores by D's fast inference path on fresh oracle samples (never D's
    training positives); recompute it on the very samples it draws (the same seed) with D's
    ordinary forward pass and labels of our own."""
    gen, disc, oracle = trained_tiny["generator"], trained_tiny["discriminator"], trained_tiny["oracle"]
    count = 500
    accuracy = fresh_accuracy(disc, gen, oracle, count, torch.Generator().manual_seed(0))

    rng = torch.Generator().manual_seed(0)
    fake = gen.sample(count, rng)
    real = oracle.sample(count, rng)
    assert not {tuple(r) for r in real.tolist()} & {tuple(r) for r in trained_tiny["real"].tolist()}
    with torch.no_grad():
        says_real = disc(torch.cat([real, fake])).argmax(dim=1) == 1
    labels = torch.cat([torch.ones(count, dtype=torch.bool), torch.zeros(count, dtype=torch.bool)])
    # The fast path scores in bfloat16 where native: a sequence whose P(real) lies within rounding
    # of 0.5 may land on the other side (2 of 1,000 did after D's pooling moved before its ReLU).
    assert accuracy == pytest.approx(float((says_real == labels).float().mean()), abs=4.5 / (2 * count))
    # The fixture's D was trained against this G; an untrained D is near chance on the same data.
    torch.manual_seed(1)
    untrained = Discriminator.from_preset(get_preset("tiny")).eval()
    chance = fresh_accuracy(untrained, gen, oracle, count, torch.Generator().manual_seed(0))
    assert accuracy > 0.6 and abs(chance - 0.5) < 0.1 and accuracy > chance + 0.1, (accuracy, chance)


def test_held_out_accuracy_is_below_the_accuracy_on_training_positives(trained_tiny):
    """The gate's figure: on D's own training positives D looks better than on fresh oracle
    sequences (memory), so the two must not be confused."""
    gen, disc = trained_tiny["generator"], trained_tiny["discriminator"]
    held_out = fresh_accuracy(disc, gen, trained_tiny["oracle"], 1000, torch.Generator().manual_seed(0))
    on_training_data = fresh_accuracy(disc, gen, trained_tiny["real"], 1000, torch.Generator().manual_seed(0))
    assert on_training_data > held_out + 0.02, (on_training_data, held_out)


def test_the_gate_needs_held_out_real_data(trained_tiny_copy):
    models = trained_tiny_copy
    envs = gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", discriminator=models["discriminator"],
                        rollout_policy=models["generator"], num_rollouts=2)
    agent = ReinforceAgent(models["generator"], seed=0)
    with pytest.raises(ValueError, match="held-out real sequences"):
        adversarial_train(reinforce_step(agent, envs), models["generator"], envs, models["discriminator"],
                          models["real"], AdversarialConfig(steps=1, batch_size=2, d_target_accuracy=0.9),
                          torch.Generator().manual_seed(0), progress=False)


@pytest.mark.parametrize("target, trained", [(None, True), (1.01, True), (0.0, False)])
def test_discriminator_is_retrained_only_below_the_target_accuracy(trained_tiny_copy, target, trained):
    log, changed = _run(trained_tiny_copy, target)
    assert changed is trained
    assert [s["d_trained"] for s in log] == [float(trained)] * 3
    assert ("d_accuracy_fresh" in log[0]) is (target is not None)
    assert ("d_loss" in log[0]) is trained
    assert ("d_train_accuracy" in log[0]) is trained and "d_accuracy" not in log[0]
