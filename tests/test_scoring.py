"""``seqgan evaluate --agent module:function``: any agent scored on the reference protocol."""

from __future__ import annotations

import json

import pytest

from train.cli import main
from train.experiments.scoring import ScoringConfig, score_agent

FAST = dict(seeds=(0, 1), updates=10, batch_size=32, eval_samples=300)


def not_an_agent(generator, envs, seed):
    return object()


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    out = tmp_path_factory.mktemp("scores")
    return out, {name: score_agent(f"train.reference_agents:{name}", ScoringConfig(**FAST), out)
                 for name in ("mle", "reinforce_mean_baseline")}


def test_every_agent_gets_the_three_metrics_with_intervals_over_seeds(scored):
    out, results = scored
    for result in results.values():
        assert set(result["summary"]) == {"reverse_kl", "forward_kl", "nll_oracle", "nll_test", "mean_reward"}
        assert [run["seed"] for run in result["runs"]] == [0, 1]
        assert all(v["ci95"] >= 0 for v in result["summary"].values())
    assert (out / "score-train.reference_agents_mle.json").is_file()
    assert (out / "base" / "generator.pt").is_file()


def test_the_protocol_tells_a_learning_agent_from_the_mle_generator(scored):
    _, results = scored
    mle, learner = (results[name]["summary"] for name in ("mle", "reinforce_mean_baseline"))
    assert mle["nll_test"]["ci95"] == 0.0  # the same generator on the same held-out data
    assert mle["forward_kl"]["ci95"] == 0.0
    # Forward KL is NLL-test less the oracle's entropy on the same held-out data: they move together.
    assert learner["forward_kl"]["mean"] - mle["forward_kl"]["mean"] == pytest.approx(
        learner["nll_test"]["mean"] - mle["nll_test"]["mean"], abs=2e-4)
    assert learner["mean_reward"]["mean"] > mle["mean_reward"]["mean"] + 0.03
    assert learner["nll_oracle"]["mean"] < mle["nll_oracle"]["mean"] - 0.1


def test_cli_prints_the_summary_and_reuses_the_base(scored, capsys):
    out, _ = scored
    assert main(["evaluate", "--agent", "train.reference_agents:reinforce", "--reward", "constant",
                 "--seeds", "3", "--updates", "1", "--batch-size", "8", "--eval-samples", "50",
                 "--out", str(out)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reward"] == "constant" and printed["mean_reward"]["ci95"] == 0.0  # one seed: no interval
    assert (out / "score-train.reference_agents_reinforce-constant.json").is_file()


def test_bad_agents_are_named(tmp_path, capsys):
    with pytest.raises(ValueError, match="cannot load agent"):
        score_agent("train.reference_agents:nope", ScoringConfig(**FAST), tmp_path)
    assert main(["evaluate", "--agent", "x:y", "--checkpoint", "z"]) != 0
    assert "exactly one of --checkpoint" in capsys.readouterr().err
    with pytest.raises(TypeError, match="not an agents.Agent"):
        score_agent("tests.test_scoring:not_an_agent", ScoringConfig(**{**FAST, "seeds": (0,)}), tmp_path)


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_sb3_reference_agents_train_through_their_own_rollouts(scored, algo):
    out, _ = scored
    config = ScoringConfig(seeds=(0,), updates=2, batch_size=8, eval_samples=50)
    result = score_agent(f"train.reference_agents:{algo}", config, out)
    (run,) = result["runs"]
    assert run["updates"] == 2 and set(result["summary"]) == {"reverse_kl", "forward_kl", "nll_oracle", "nll_test",
                                                              "mean_reward"}
