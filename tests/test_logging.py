"""What every run logs for RL users: env-steps/s, and per update the policy's KL to its previous
self beside entropy, gradient norm and rewards, in metrics.csv and TensorBoard alike."""

from __future__ import annotations

import csv

import gymnasium as gym
import numpy as np
import pytest
import torch

from agents import ReinforceAgent, ReinforceConfig, collect_episodes
from agents.base import policy_kl
from train.cli import main

PER_UPDATE = ("policy_kl", "policy_entropy", "mean_reward", "env_steps_per_s")
"""The update's statistics in metrics.csv (an agent's ``kl`` and ``entropy``, named apart from the evaluation's)."""


def test_policy_kl_is_zero_for_the_same_policy_and_positive_otherwise():
    torch.manual_seed(0)
    old = torch.log_softmax(torch.randn(5, 7, 11), -1)
    new = torch.log_softmax(torch.randn(5, 7, 11), -1)
    assert policy_kl(old, old) == pytest.approx(0.0, abs=1e-7)
    assert policy_kl(old, new) > 0.1
    mask = torch.zeros(5, 7, dtype=torch.bool)
    mask[0, 0] = True
    expected = float((old[0, 0].exp() * (old[0, 0] - new[0, 0])).sum())
    assert policy_kl(old, new, mask) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("lr", [0.0, 0.01])
def test_reinforce_reports_the_kl_of_its_update(tiny_models, lr):
    envs = gym.make_vec("SeqGAN-v0", num_envs=16, preset="tiny", discriminator=tiny_models["discriminator"],
                        rollout_policy=tiny_models["generator"], num_rollouts=2, compute_dtype="float32")
    agent = ReinforceAgent(tiny_models["generator"], ReinforceConfig(lr=lr, rollout_beta=0), seed=0)
    stats = agent.learn(collect_episodes(envs, agent, seed=0))
    assert {"kl", "entropy", "grad_norm", "mean_reward"} <= set(stats)
    if lr == 0.0:  # the policy did not change
        assert stats["kl"] == pytest.approx(0.0, abs=1e-7)
    else:
        assert stats["kl"] > 1e-5


def read_rows(folder, phase="adversarial"):
    with open(folder / "metrics.csv") as handle:
        return [row for row in csv.DictReader(handle) if row["phase"] == phase]


def tensorboard_tags(folder):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "tb"))
    events.Reload()
    return set(events.Tags()["scalars"])


@pytest.mark.parametrize("algo", ["reinforce", "ppo", "a2c"])
def test_train_logs_kl_entropy_and_speed_per_update(tmp_path, algo):
    out = tmp_path / algo
    assert main(["train", "--preset", "tiny", "--algo", algo, "--out", str(out), "--steps", "2"]) == 0
    rows = read_rows(out)
    assert len(rows) == 2
    for row in rows:
        values = {key: float(row[key]) for key in PER_UPDATE}
        assert all(np.isfinite(v) for v in values.values()), values
        assert values["policy_kl"] > 0  # every update changed the policy
        assert values["env_steps_per_s"] > 0
    if algo == "reinforce":
        assert all(float(row["grad_norm"]) > 0 for row in rows)
    tags = tensorboard_tags(out)
    assert {f"adversarial/{key}" for key in PER_UPDATE} <= tags
