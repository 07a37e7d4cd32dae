"""Every algorithm of the comparison learns on rewards whose optimum is known: the oracle's
log-likelihood (``reward="oracle"``, per token ``log p_oracle(y_t | y_<t)``) and the exact-regret
task (``reward="exact-regret"`` with ``kl_beta = 1``: the objective is ``-KL(pi || p_oracle)``, its
optimum the oracle; :data:`REGRET_MARGINS` holds its measurements).

Each algorithm's update, built by the comparison's own builder (``train.experiments.steps``),
with its default hyperparameters, trains an untrained tiny generator (near-uniform, far from the
oracle) for 20 updates of 32 episodes. Two golds must fall, each by its own margin:

* NLL-oracle, ``E_pi[-log p_oracle]`` per token, on 2,000 fresh samples: the reward's own
  objective (its expectation is minus NLL-oracle times the length).
* the reverse KL to the oracle, ``KL(pi || p_oracle)`` per token (NLL-oracle minus pi's entropy
  on the same samples), which sharpening alone cannot lower: cooling an untrained generator
  concentrates it on its own arbitrary modes, not the oracle's. (Run longer, the oracle
  reward itself sharpens past the oracle: from the MLE generator its reverse KL rises.)

The margins are half of the smallest fall measured on seeds 0-4 (torch 2.13 CPU, one thread,
the same evaluation seeds as below); the test runs seed 0. Measured falls, per token:

=============== ============================== ==============================
algorithm       reverse KL, seeds 0-4           NLL-oracle, seeds 0-4
=============== ============================== ==============================
reinforce       0.053 0.036 0.033 0.041 0.005   0.039 0.018 0.016 0.014 0.066
reinforce-mean  0.292 0.352 0.447 0.368 0.417   0.735 0.611 0.842 0.766 0.805
reinforce-value 0.053 0.039 0.032 0.040 0.007   0.037 0.019 0.017 0.015 0.066
rloo            0.262 0.272 0.193 0.207 0.196   0.406 0.370 0.189 0.216 0.256
grpo            0.094 0.147 0.163 0.173 0.167   0.071 0.156 0.151 0.148 0.151
ppo             0.048 0.064 0.089 0.065 0.053   0.043 0.043 0.078 0.071 0.041
a2c             0.017 0.041 0.064 0.011 0.034   0.016 0.037 0.043 0.024 0.028
=============== ============================== ==============================

RLlib's PPO (same setup, its default hyperparameters, ``test_rllib_ppo_lowers_nll_oracle``)
measured reverse-KL falls 0.053 0.083 0.036 -0.001 0.082 and NLL-oracle falls 0.042 0.066 0.143
0.182 0.177: on seed 3 it only sharpened, so no reverse-KL margin follows from its spread and its
test asserts NLL-oracle alone (margin 0.021). Flipped, seeds 0 and 1: reverse KL rose 1.45 and
3.41, NLL-oracle 0.34 and 1.47.

A sign flip of the update fails every case: with every optimiser's gradients negated before its
step (the whole update reversed), seeds 0 and 1 gave reverse-KL falls of -0.072 -0.035
(reinforce), -1.90 -1.83 (reinforce-mean), -0.068 -0.034 (reinforce-value), -0.72 -0.69 (rloo),
-0.27 -0.76 (grpo), 0.003 -0.009 (ppo), -0.008 -0.035 (a2c), each below its margin, and
NLL-oracle rose in every one. The KL estimate's standard error is about 0.015 per token; the
evaluation draws with the same seeds before and after, which is why smaller falls still read.
"""

from __future__ import annotations

import copy

import pytest
import torch

from seqgan_env.divergence import kl_to_reference
from seqgan_env.models import Generator, Oracle
from seqgan_env.presets import get_preset
from seqgan_env.rewards.registry import EXACT_REGRET, get_reward_kind
from train.algorithms import get_algorithm
from train.experiments.steps import StepInputs, generator_step

pytestmark = pytest.mark.usefixtures("one_thread")

UPDATES = 20
BATCH = 32
MARGINS = {  # (reverse KL, NLL-oracle) per token: half the smallest fall over seeds 0-4 (table above)
    "reinforce": (0.0025, 0.007),
    "reinforce-mean": (0.14, 0.30),
    "reinforce-value": (0.0034, 0.0075),
    "rloo": (0.096, 0.094),
    "grpo": (0.047, 0.035),
    "ppo": (0.024, 0.020),
    "a2c": (0.0055, 0.008),
}


@pytest.fixture(scope="module")
def start():
    """The tiny oracle and an untrained generator (the models of tests/conftest.py's ``tiny_models``)."""
    preset = get_preset("tiny")
    torch.manual_seed(0)
    return Oracle.from_preset(preset), Generator.from_preset(preset), preset


def golds(generator: Generator, oracle: Oracle, seq_len: int) -> tuple[float, float]:
    """(reverse KL to the oracle, NLL-oracle), per token, on 2,000 samples of a fixed seed."""
    reverse = kl_to_reference(generator, oracle, 2000, torch.Generator().manual_seed(777)).kl / seq_len
    nll = oracle.nll(generator.sample(2000, torch.Generator().manual_seed(778)))
    return reverse, nll


def train(algorithm: str, start, seed: int, reward: str = "oracle") -> Generator:
    """``UPDATES`` updates of ``algorithm``'s comparison step on ``reward`` (the oracle's, or the
    exact-regret task with its ``kl_beta = 1`` to the start), from ``start``."""
    oracle, untrained, preset = start
    generator = copy.deepcopy(untrained)
    torch.manual_seed(seed)
    reference = copy.deepcopy(untrained)
    env_kwargs = dict(preset=preset, reward=reward, oracle=oracle)
    hparams = {}
    if reward == EXACT_REGRET:
        env_kwargs["reference"] = reference
        hparams["kl_beta"] = get_reward_kind(EXACT_REGRET).kl_beta
    step = generator_step(get_algorithm(algorithm), StepInputs(generator, env_kwargs, BATCH, hparams, seed, None,
                                                               reference))
    episodes = torch.Generator().manual_seed(1000 + seed)
    try:
        for _ in range(UPDATES):
            step.update(int(torch.randint(2**31 - 1, (1,), generator=episodes)))
    finally:
        step.close()
    return step.generator


@pytest.mark.parametrize("algorithm", list(MARGINS))
def test_the_oracle_reward_lowers_reverse_kl_and_nll_oracle(algorithm, start):
    if get_algorithm(algorithm).family == "sb3":
        pytest.importorskip("stable_baselines3")
    oracle, untrained, preset = start
    kl_before, nll_before = golds(untrained, oracle, preset.seq_len)
    kl_after, nll_after = golds(train(algorithm, start, seed=0), oracle, preset.seq_len)
    kl_margin, nll_margin = MARGINS[algorithm]
    assert kl_before - kl_after > kl_margin, (kl_before, kl_after)
    assert nll_before - nll_after > nll_margin, (nll_before, nll_after)


REGRET_MARGINS = {
    # Reverse-KL falls on the exact-regret task (D*'s logit per token, kl_beta = 1 to the start),
    # same start, updates and evaluation seeds, seeds 0-4 (torch 2.13 CPU, one thread):
    # reinforce 0.245 0.163 0.277 0.218 0.184; reinforce-mean 0.361 0.385 0.434 0.424 0.446;
    # reinforce-value 0.241 0.161 0.276 0.237 0.183; rloo 0.266 0.246 0.173 0.188 0.187;
    # grpo 0.086 0.146 0.129 0.136 0.138; ppo 0.500 0.499 0.463 0.494 0.478; a2c 0.157 0.208 0.180
    # 0.169 0.195. Margins: half the smallest fall of each. With every optimiser's gradients negated
    # (seed 0) the regret rose instead: by 0.994, 1.957, 0.943, 0.895, 0.225, 0.033, 0.154 in this order.
    "reinforce": 0.081, "reinforce-mean": 0.18, "reinforce-value": 0.080, "rloo": 0.086, "grpo": 0.043,
    "ppo": 0.23, "a2c": 0.078,
}


@pytest.mark.parametrize("algorithm", list(REGRET_MARGINS))
def test_the_exact_regret_task_lowers_the_regret(algorithm, start):
    """On the task whose objective is -KL(pi || p_oracle), the regret (reverse KL) falls for every algorithm."""
    if get_algorithm(algorithm).family == "sb3":
        pytest.importorskip("stable_baselines3")
    oracle, untrained, preset = start
    kl_before, _ = golds(untrained, oracle, preset.seq_len)
    kl_after, _ = golds(train(algorithm, start, seed=0, reward=EXACT_REGRET), oracle, preset.seq_len)
    assert kl_before - kl_after > REGRET_MARGINS[algorithm], (kl_before, kl_after)


def test_rllib_ppo_lowers_nll_oracle(start, ray_local):
    pytest.importorskip("ray.rllib")
    oracle, untrained, preset = start
    _, nll_before = golds(untrained, oracle, preset.seq_len)
    _, nll_after = golds(train("rllib-ppo", start, seed=0), oracle, preset.seq_len)
    assert nll_before - nll_after > 0.021, (nll_before, nll_after)


RLLIB_REGRET_MARGIN = 0.19
"""RLlib's PPO on the exact-regret task, same setup: reverse-KL falls 0.466 0.447 0.418 0.383 0.509
on seeds 0-4 (torch 2.13 CPU, one thread, Ray with 2 CPUs); the margin is half the smallest. Unlike
on the oracle reward, it lowers the regret on every seed: the KL penalty to the start keeps it from
merely sharpening. (No sign-flip measurement: RLlib's learner owns its optimiser step.)"""


def test_rllib_ppo_lowers_the_regret(start, ray_local):
    pytest.importorskip("ray.rllib")
    oracle, untrained, preset = start
    kl_before, _ = golds(untrained, oracle, preset.seq_len)
    kl_after, _ = golds(train("rllib-ppo", start, seed=0, reward=EXACT_REGRET), oracle, preset.seq_len)
    assert kl_before - kl_after > RLLIB_REGRET_MARGIN, (kl_before, kl_after)


def test_every_algorithm_of_the_comparison_is_held_by_a_learning_test():
    from train.algorithms import names

    shipped = {name for name in names(compare=True) if ":" not in name}  # not a user's module:attr agent
    assert shipped <= set(MARGINS) | {"rllib-ppo"}
    assert shipped <= set(REGRET_MARGINS) | {"rllib-ppo"}  # rllib-ppo: test_rllib_ppo_lowers_the_regret
