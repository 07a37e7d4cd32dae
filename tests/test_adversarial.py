"""The adversarial loop's discriminator schedule: always retrained, or gated on its accuracy."""

from __future__ import annotations

import gymnasium as gym
import pytest
import torch

from agents import ReinforceAgent
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
                      on_step=lambda step, stats: log.append(stats))
    changed = any(not torch.equal(a, b) for a, b in zip(before, models["discriminator"].parameters()))
    return log, changed


def test_fresh_accuracy_scores_real_and_generated_halves(trained_tiny):
    accuracy = fresh_accuracy(trained_tiny["discriminator"], trained_tiny["generator"], trained_tiny["real"], 500,
                              torch.Generator().manual_seed(0))
    # The fixture's D was trained against this G: better than chance, and a fraction of 1000 samples.
    assert 0.55 < accuracy <= 1.0 and (accuracy * 1000) == pytest.approx(round(accuracy * 1000))


@pytest.mark.parametrize("target, trained", [(None, True), (1.01, True), (0.0, False)])
def test_discriminator_is_retrained_only_below_the_target_accuracy(trained_tiny_copy, target, trained):
    log, changed = _run(trained_tiny_copy, target)
    assert changed is trained
    assert [s["d_trained"] for s in log] == [float(trained)] * 3
    assert ("d_accuracy_fresh" in log[0]) is (target is not None)
    assert ("d_loss" in log[0]) is trained
