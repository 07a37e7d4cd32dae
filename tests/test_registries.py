"""The registries: a reward kind and an algorithm added at run time reach ``gymnasium.make``, a
comparison and ``seqgan tune``'s checks; what a reward declares decides reward-to-go and discounting."""

from __future__ import annotations

import csv
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from agents.base import collect_episodes
from agents.reinforce import ReinforceAgent, ReinforceConfig
from seqgan_env.rewards import RewardModel
from seqgan_env.rewards.registry import REWARDS, RewardKind, register_reward, unregister_reward
from train.algorithms import ALGORITHMS, Algorithm, get_algorithm, unregister_algorithm
from train.cli import build_parser, main
from train.experiments.config import check_hparams
from train.experiments.rewards import ComparisonReward
from train.experiments.tuning import check_algos, in_space


class LowTokenReward(RewardModel):
    """A toy per-token reward: 1 for a token in the lower half of the vocabulary, else 0."""

    def __init__(self, vocab_size: int, device: str | torch.device = "cpu") -> None:
        super().__init__(device)
        self.vocab_size = vocab_size

    def step(self, sequences, lengths, actions, finished):
        return (actions.to(self.device) < self.vocab_size // 2).float()


class LowTokenEstimate(LowTokenReward):
    """The same toy, declared as an estimate of the final outcome."""

    per_token = False


TOY_KIND = RewardKind("low-tokens", LowTokenReward, ("num_rollouts",),
                      lambda inputs: LowTokenReward(inputs.preset.vocab_size, device=inputs.device),
                      "1 for a token in the lower half of the vocabulary")
"""A reward kind a user's module defines: ``reward="tests.test_registries:TOY_KIND"`` loads it anywhere."""
TOY_REWARD = ComparisonReward("low-tokens", "tests.test_registries:TOY_KIND", "low-token reward")
"""The toy as a reward of the comparison: no learned discriminator, so the base pretrains none."""
TOY_ALGORITHM = Algorithm(
    "toy", "REINFORCE, mean baseline, no rollout copy", "reinforce",
    lambda generator, envs, seed, lr=0.02: ReinforceAgent(
        generator, ReinforceConfig(lr=lr, baseline="mean", rollout_beta=0.0), seed=seed),
    hparams=lambda: {"lr": 0.02}, search_space={"lr": ("loguniform", 1e-3, 1e-1)}, runs_controls=True)
"""An algorithm a user's module defines, with its hyperparameters, search space and controls."""


@pytest.fixture
def toy_kind():
    register_reward(RewardKind("toy", LowTokenReward, (), lambda inputs: LowTokenReward(
        inputs.preset.vocab_size, device=inputs.device), "toy"))
    yield "toy"
    unregister_reward("toy")


def test_a_reward_registered_at_run_time_is_made_by_gymnasium(toy_kind):
    env = gym.make("SeqGAN-v0", preset="tiny", reward=toy_kind)
    env.reset(seed=0)
    rewards = [env.step(action)[1] for action in (1, 60, 2)]
    assert rewards == [1.0, 0.0, 1.0]
    envs = gym.make_vec("SeqGAN-v0", num_envs=4, preset="tiny", reward=toy_kind)
    envs.reset(seed=0)
    assert envs.step(np.array([0, 63, 5, 40]))[1].tolist() == [1.0, 0.0, 1.0, 0.0]
    # The argument checks read the entry: a model the toy does not read is refused, by name.
    with pytest.raises(ValueError, match="reward='toy' does not use oracle=3"):
        gym.make("SeqGAN-v0", preset="tiny", reward=toy_kind, oracle=3)
    with pytest.raises(TypeError, match="unexpected arguments"):
        gym.make_vec("SeqGAN-v0", num_envs=2, preset="tiny", reward=toy_kind, discriminatr=1)


def test_a_reward_kind_named_by_module_loads_in_any_process():
    name = "tests.test_registries:TOY_KIND"
    try:
        env = gym.make("SeqGAN-v0", preset="tiny", reward=name, num_rollouts=4)
        env.reset(seed=0)
        assert env.step(3)[1] == 1.0
        assert REWARDS[name].per_token
    finally:
        unregister_reward(name)
    with pytest.raises(ValueError, match="cannot load reward kind"):
        gym.make("SeqGAN-v0", preset="tiny", reward="tests.test_registries:NO_SUCH_KIND")


@pytest.mark.parametrize("reward_class, per_token", [(LowTokenReward, True), (LowTokenEstimate, False)])
def test_the_declared_property_decides_reward_to_go_and_the_discount(tiny_models, reward_class, per_token):
    """REINFORCE takes reward-to-go and SB3 gamma 1 for a per-token reward, the step's own reward
    and gamma 0 for an estimate of the final outcome: read from the declaration, whatever the class."""
    from agents.sb3 import discount_for

    register_reward(RewardKind("toy-declared", reward_class, (), lambda inputs: reward_class(
        inputs.preset.vocab_size, device=inputs.device), "toy"), replace=True)
    try:
        envs = gym.make_vec("SeqGAN-v0", num_envs=16, preset="tiny", reward="toy-declared")
        assert discount_for(envs) == ((1.0, 1.0) if per_token else (0.0, 1.0))
        agent = ReinforceAgent(tiny_models["generator"], ReinforceConfig(lr=0.0), seed=0)
        batch = collect_episodes(envs, agent, seed=0)
        envs.close()
    finally:
        unregister_reward("toy-declared")
    assert batch.per_token is per_token and agent.uses_reward_to_go(batch) is per_token
    stats = agent.learn(batch)
    weights = batch.returns() if per_token else batch.rewards
    assert stats["mean_reward"] == pytest.approx(float((weights * batch.mask).sum() / batch.mask.sum()), rel=1e-5)
    # Reward-to-go differs from the per-step rewards here: the test can tell which one was used.
    assert abs(float(batch.returns().sum()) - float(batch.rewards.sum())) > 1.0
    # An explicit choice still wins over the declaration.
    assert ReinforceAgent(tiny_models["generator"], ReinforceConfig(reward_to_go=False)).uses_reward_to_go(batch) \
        is False


def test_every_builtin_reward_declares_its_meaning():
    declared = {name: (kind.per_token, kind.uses_rollout_policy, kind.checkpoint_kind) for name, kind in REWARDS.items()
                if ":" not in name}
    assert declared["monte_carlo"] == (False, True, "discriminator")
    assert declared["oracle"] == (True, False, None)
    assert declared["terminal"] == (True, False, "discriminator")
    assert declared["dense"] == (False, False, "prefix-discriminator")


def test_an_algorithm_named_by_module_registers_with_its_hparams_and_search_space(tmp_path, capsys):
    name = "tests.test_registries:TOY_ALGORITHM"
    try:
        entry = get_algorithm(name)
        assert entry.name == name and ALGORITHMS[name].runs_controls
        check_hparams({name: {"lr": 0.01}})
        with pytest.raises(ValueError, match="unknown hyperparameter 'learning_rate'"):
            check_hparams({name: {"learning_rate": 0.01}})
        check_algos([name])  # seqgan tune's check: it has a search space
        assert in_space(name, {"lr": 0.01}) and not in_space(name, {"lr": 0.5})
        with pytest.raises(ValueError, match="no search space for"):
            check_algos(["rllib-ppo"])
        # Through the command line: the name passes tune's checks, which stop at the next problem.
        assert main(["tune", "--preset", "tiny", "--algos", name, "--trials", "0", "--tuning-seeds", "9",
                     "--folder", str(tmp_path / "t"), "--out", str(tmp_path / "p.json")]) == 2
        assert "trials must be at least 1" in capsys.readouterr().err
    finally:
        unregister_algorithm(name)


def test_the_command_line_lists_the_registries():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    algo = next(a for a in commands["train"]._actions if a.dest == "algo")
    assert set(algo.choices) == {"reinforce", "reinforce-mean", "reinforce-value", "ppo", "a2c"}
    tune_algos = next(a for a in commands["tune"]._actions if a.dest == "algos")
    assert tune_algos.default.split(",") == ["reinforce", "reinforce-mean", "reinforce-value", "ppo", "a2c", "rloo", "grpo"]
    compare_algos = next(a for a in commands["compare"]._actions if a.dest == "algos")
    assert "rllib-ppo (RLlib's PPO)" in compare_algos.help and "oracle" not in compare_algos.help


def test_a_toy_algorithm_and_a_toy_reward_run_through_a_tiny_comparison(tmp_path, ray_local):
    """Both named by module, so the comparison's Ray workers load them too; the toy reward has no
    D (the base pretrains none), the controls run under the toy algorithm."""
    out = tmp_path / "c"
    algorithm, reward = "tests.test_registries:TOY_ALGORITHM", "tests.test_registries:TOY_REWARD"
    try:
        assert main(["compare", "--preset", "tiny", "--out", str(out), "--cpus", "1", "--algos", algorithm,
                     "--rewards", reward, "--seeds", "1", "--settings", "fixed", "--baselines", "constant",
                     "--tokens", str(32 * 8 * 2)]) == 0
    finally:
        unregister_algorithm(algorithm)
    from seqgan_env.checkpoint import load_checkpoint

    assert load_checkpoint(out / "base" / "checkpoint.pt", "training-run")["state"]["d_rounds"] == 0, \
        "no run reads a learned D: the base pretrains none"
    results = {(r["setting"], r["name"]): r for r in
               (json.loads(p.read_text()) for p in (out / "runs").rglob("seed*.json"))}
    toy = results[("fixed", f"{algorithm} @ {reward}")]
    assert toy["algo"] == algorithm and toy["tokens"] == 32 * 8 * 2
    # The toy reward is per token, so REINFORCE weighted tokens by the reward-to-go (the update's
    # mean reward is that of the returns): a per-step reward of at most 1 could not exceed 1.
    assert toy["final"]["mean_reward"] > 1.0
    # The generator trained: NLL-test moved beyond float noise (the evaluation is seeded alike, so
    # an unchanged generator gives the same number to the last digit, as the control's does;
    # float32 rounding of a 500-sequence mean is ~1e-6). Measured: +0.047.
    assert abs(toy["final"]["nll_test"] - toy["curve"][0]["nll_test"]) > 1e-3, "the generator trained"
    control = results[("baseline", f"constant/{algorithm}")]
    assert control["final"]["nll_test"] == control["curve"][0]["nll_test"], "a mean baseline on a constant reward"
    methods = {r["method"] for r in csv.DictReader(open(out / "results.csv"))}
    assert f"{algorithm}, constant reward" in methods


@pytest.mark.parametrize("name", ["rloo", "grpo"])
def test_the_group_algorithms_are_entries_that_build_and_update_the_generator(tiny_models, name):
    """RLOO and GRPO reach the comparison and tuning through their entries alone: the entry builds
    an agent on a vector env, one collected batch updates the generator, and a bad value is refused.
    (That they learn, on a reward whose optimum is known, is tests/test_learning.py's.)"""
    algorithm = get_algorithm(name)
    check_algos([name])  # tuning accepts it (it raises for an algorithm without a search space)
    assert algorithm.runs_controls and algorithm.search_space
    with pytest.raises(ValueError, match=name):
        algorithm.check_hparams({"not_a_hyperparameter": 1})
    envs = gym.make_vec("SeqGAN-v0", num_envs=8, preset="tiny", reward="oracle", oracle=tiny_models["oracle"])
    agent = algorithm.make_agent(tiny_models["generator"], envs, 0, group_size=4)
    before = [p.detach().clone() for p in agent.generator.parameters()]
    agent.learn(collect_episodes(envs, agent, seed=0))
    assert any(not torch.equal(b, p) for b, p in zip(before, agent.generator.parameters()))
    envs.close()


def test_a_rewards_sequence_level_form_is_checked_and_chosen_for_sequence_level_algorithms():
    """Each reward of the D axis names its terminal form for RLOO and GRPO; a form that reads
    another kind of D than the reward is refused when registered."""
    from train.experiments.rewards import get_comparison_reward, register_comparison_reward

    assert get_algorithm("rloo").sequence_level and get_algorithm("grpo").sequence_level
    assert not get_algorithm("reinforce-mean").sequence_level and not get_algorithm("ppo").sequence_level
    for name, token_level, sequence_level in (("monte_carlo", "monte_carlo", "terminal"),
                                              ("density-ratio", "monte_carlo", "terminal"),
                                              ("optimal", "optimal", "optimal-terminal"),
                                              ("random", "random", "random"), ("dense", "dense", "dense")):
        entry = get_comparison_reward(name)
        assert (entry.env_reward_for(False), entry.env_reward_for(True)) == (token_level, sequence_level), name
    with pytest.raises(ValueError, match="sequence-level kind 'dense' reads another discriminator"):
        register_comparison_reward(ComparisonReward("mismatched", "monte_carlo", "a CNN D whose terminal form is "
                                                    "a prefix D", discriminator_file="d.pt",
                                                    sequence_env_reward="dense"))
