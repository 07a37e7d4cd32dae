"""The forms of a discriminator's score: P(real), its logit and log P(real), all from the logit."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from seqgan_env.models import PrefixDiscriminator
from seqgan_env.rewards.forms import REWARD_FORMS, check_reward_form, from_logits
from seqgan_env.rewards.registry import REWARDS

pytestmark = pytest.mark.usefixtures("one_thread")


def test_forms_are_computed_from_the_logit_and_stay_finite_where_the_probability_saturates():
    logits = torch.tensor([-200.0, -57.0, -1.0, 0.0, 3.0, 120.0])
    probability = from_logits(logits, "probability")
    assert probability[0] == 0.0  # float32 sigmoid(-200) underflows: the paper's form has lost the logit
    assert torch.equal(from_logits(logits, "logit"), logits)
    log = from_logits(logits, "log")
    assert torch.isfinite(log).all()
    assert float(log[0]) == pytest.approx(-200.0)  # log D = l - log(1 + e^l): about l far below 0
    assert float(log[1]) == pytest.approx(-57.0, abs=1e-6)
    assert float(log[-1]) == pytest.approx(0.0, abs=1e-6)
    assert float(torch.log(probability[0])) == -math.inf  # what the log of a saturated probability gives
    middle = logits[2:5].double()
    torch.testing.assert_close(from_logits(middle, "log"), torch.log(torch.sigmoid(middle)))


def test_a_wrong_form_is_an_error_naming_it():
    with pytest.raises(ValueError, match="unknown reward form 'logits'"):
        check_reward_form("logits")
    with pytest.raises(ValueError, match="cannot pay reward_form='log'"):
        check_reward_form("log", ("logit",), "optimal-dense")
    with pytest.raises(ValueError, match="unknown reward form"):
        gym.make("SeqGAN-Tiny-v0", reward="terminal", reward_form="Probability")


def test_every_discriminator_kind_offers_every_form_and_no_other_kind_reads_one():
    scored_by_d = {"monte_carlo", "terminal", "dense", "optimal", "optimal-terminal"}
    for name in scored_by_d:
        assert REWARDS[name].forms == REWARD_FORMS, name
    for name in ("optimal-dense", "density-ratio-dense", "exact-regret"):
        assert REWARDS[name].forms == ("logit",), name
    for name in ("oracle", "constant", "random"):
        assert REWARDS[name].forms == () and "reward_form" not in REWARDS[name].arguments


def rewards_in(form: str, reward: str, **kwargs) -> np.ndarray:
    """``(T, B)`` rewards of a seeded episode of 6 rows, the same actions and Monte Carlo draws for every form."""
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=6, reward=reward, reward_form=form, **kwargs)
    envs.reset(seed=11)
    actions = np.random.default_rng(0).integers(0, 64, size=(8, 6))
    out = [envs.step(step)[1] for step in actions]
    return np.stack(out)


@pytest.mark.parametrize("reward", ["monte_carlo", "terminal", "dense", "optimal", "optimal-terminal"])
def test_the_forms_of_one_episode_are_sigmoid_and_log_sigmoid_of_its_logits(reward, tiny_models):
    kwargs = {}
    if reward in ("monte_carlo", "terminal"):
        kwargs["discriminator"] = tiny_models["discriminator"]
    if reward == "dense":
        torch.manual_seed(1)
        kwargs["discriminator"] = PrefixDiscriminator(64, 8).eval()
    if reward in ("monte_carlo", "optimal"):
        kwargs.update(rollout_policy=tiny_models["generator"], num_rollouts=1)  # one completion: mean = itself
    if reward.startswith("optimal"):
        kwargs.update(oracle=tiny_models["oracle"], reference=tiny_models["generator"])
    logits = rewards_in("logit", reward, compute_dtype="float32", **kwargs) if "compute_dtype" in REWARDS[
        reward].arguments else rewards_in("logit", reward, **kwargs)
    extra = {"compute_dtype": "float32"} if "compute_dtype" in REWARDS[reward].arguments else {}
    probability = rewards_in("probability", reward, **extra, **kwargs)
    log = rewards_in("log", reward, **extra, **kwargs)
    paid = logits if reward not in ("terminal", "optimal-terminal") else logits[-1]
    assert np.abs(paid).max() > 0.05  # logits away from 0, so that the forms differ
    as_tensor = torch.as_tensor(logits, dtype=torch.float64)
    expected_p = torch.sigmoid(as_tensor).numpy()
    expected_log = torch.nn.functional.logsigmoid(as_tensor).numpy()
    if reward in ("terminal", "optimal-terminal"):  # 0 before the last step in every form
        assert (probability[:-1] == 0).all() and (log[:-1] == 0).all() and (logits[:-1] == 0).all()
        expected_p, expected_log = expected_p[-1], expected_log[-1]
        probability, log = probability[-1], log[-1]
    np.testing.assert_allclose(probability, expected_p, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(log, expected_log, rtol=1e-4, atol=1e-5)


def test_d_stars_logit_form_is_the_log_ratio_where_its_probability_has_saturated(tiny_models):
    # A reference far sharper than the oracle: D*'s logit on its own samples is far below 0.
    reference = tiny_models["generator"]
    with torch.no_grad():
        reference.output.weight.mul_(200.0)
    envs = gym.make_vec("SeqGAN-Tiny-v0", num_envs=4, reward="optimal-terminal", oracle=tiny_models["oracle"],
                        reference=reference, reward_form="log")
    envs.reset(seed=0)
    tokens = reference.sample(4, torch.Generator().manual_seed(0))
    for t in range(8):
        _, log, _, _, _ = envs.step(tokens[:, t].numpy())
    from seqgan_env.rewards.density_ratio import OptimalDiscriminator

    ratio = OptimalDiscriminator(tiny_models["oracle"], reference).log_ratio(tokens).numpy()
    assert ratio.max() < -15  # P(real) below 3e-7 for every row
    np.testing.assert_allclose(log, ratio, rtol=1e-5)
