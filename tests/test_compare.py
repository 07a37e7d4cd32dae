"""``seqgan compare``: every run from one base, same budget, table with CIs, plots, resume."""

from __future__ import annotations

import csv
import json
import math

import pytest

from agents.reinforce import ReinforceAgent, ReinforceConfig
from train.cli import main
from train.compare import CompareConfig
from train.reporting import mean_ci, nll_oracle_at_same_diversity


def reinforce_mean_baseline(generator, envs, seed):
    """A user-supplied agent for ``--agent``: REINFORCE with a batch-mean baseline."""
    return ReinforceAgent(generator, ReinforceConfig(baseline="mean"), seed=seed)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, ray_local):
    out = tmp_path_factory.mktemp("compare")
    argv = ["compare", "--preset", "tiny", "--out", str(out), "--cpus", "1", "--algos", "reinforce,a2c",
            "--agent", "tests.test_compare:reinforce_mean_baseline"]
    assert main(argv) == 0
    return out, argv


def test_mean_ci_uses_student_t():
    mean, half = mean_ci([1.0, 2.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(4.303 / math.sqrt(3))
    assert mean_ci([5.0]) == (5.0, 0.0)


def test_gain_over_cooling_interpolates_the_temperature_curve():
    curve = [{"temperature": 1.0, "nll_test": 8.5, "nll_oracle": 9.0},
             {"temperature": 0.8, "nll_test": 9.5, "nll_oracle": 8.0}]
    assert nll_oracle_at_same_diversity(curve, 9.0) == pytest.approx(8.5)
    # Outside the curve it compares with the nearest temperature rather than extrapolating.
    assert nll_oracle_at_same_diversity(curve, 8.0) == pytest.approx(9.0)


def test_every_run_starts_from_the_base_and_spends_the_same_budget(comparison):
    out, _ = comparison
    config = CompareConfig.from_dict(json.loads((out / "compare.json").read_text()))
    results = [json.loads(p.read_text()) for p in (out / "runs").rglob("seed*.json")]
    assert len(results) == len(config.jobs()) == 2 * 3 * 2 + 3 * 2
    starts = {round(r["curve"][0]["nll_test"], 6) for r in results}
    assert len(starts) == 1, "all runs start from the same MLE generator"
    for r in results:
        assert config.token_budget <= r["tokens"] < config.token_budget + config.batch_size * 8
        assert r["curve"][-1]["tokens"] == r["tokens"]


def test_oracle_reward_lowers_nll_oracle_and_the_constant_reward_does_not_match_it(comparison):
    """REINFORCE on the oracle's log-likelihood is the informative reward: it lowers NLL-oracle
    from the shared start by a margin on every seed. The constant reward carries no information
    about the oracle, so the same update on it ends well above the oracle reward's NLL-oracle."""
    out, _ = comparison
    config = CompareConfig.from_dict(json.loads((out / "compare.json").read_text()))
    by = {(r["setting"], r["name"], r["seed"]): r for r in
          (json.loads(p.read_text()) for p in (out / "runs").rglob("seed*.json"))}
    for seed in config.seeds:
        oracle, constant = by[("baseline", "oracle", seed)], by[("baseline", "constant", seed)]
        start = oracle["curve"][0]["nll_oracle"]
        assert constant["curve"][0]["nll_oracle"] == start, "both start from the base generator, same evaluation seed"
        # Measured on the tiny preset: about -0.37 for the oracle reward after 4 updates.
        assert oracle["final"]["nll_oracle"] < start - 0.2
        assert [c["nll_oracle"] for c in oracle["curve"]] == sorted((c["nll_oracle"] for c in oracle["curve"]),
                                                                      reverse=True)
        # Measured: the constant reward ends 0.25-0.4 above the oracle reward.
        assert constant["final"]["nll_oracle"] > oracle["final"]["nll_oracle"] + 0.1
        assert constant["final"]["mean_reward"] == 1.0
        assert oracle["final"]["mean_reward"] < 0, "the oracle reward is a log-probability"


def test_table_and_plots_are_written(comparison):
    out, _ = comparison
    rows = list(csv.DictReader(open(out / "results.csv")))
    methods = {(r["setting"], r["method"]) for r in rows}
    assert ("-", "MLE only") in methods
    assert {("fixed", "a2c"), ("adversarial", "a2c"), ("fixed", "tests.test_compare:reinforce_mean_baseline")} <= methods
    assert ("baseline", "REINFORCE, oracle log-likelihood reward") in methods
    reinforce = next(r for r in rows if r["method"] == "reinforce" and r["setting"] == "fixed")
    assert float(reinforce["nll_oracle_ci"]) >= 0 and int(reinforce["seeds"]) == 2
    table = (out / "results.md").read_text()
    assert "± " in table and "MLE only" in table and "vs cooled MLE" in table
    assert reinforce["vs_temperature"] != "" and rows[0]["vs_temperature"] == ""
    for name in ("learning_curves.png", "quality_diversity.png"):
        assert (out / name).stat().st_size > 10_000


def test_a_restarted_comparison_redoes_only_missing_runs(comparison, capsys):
    out, argv = comparison
    files = sorted((out / "runs").rglob("seed*.json"))
    victim = files[0]
    victim.unlink()
    before = {p: p.stat().st_mtime_ns for p in files[1:]}
    assert main(argv) == 0
    assert victim.exists()
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    capsys.readouterr()
    # Other settings in the same folder are refused rather than mixed in.
    assert main(argv[:-2] + ["--tokens", "999"]) == 2
    assert "other settings" in capsys.readouterr().err


def test_bad_agent_specs_are_reported(tmp_path, capsys):
    assert main(["compare", "--preset", "tiny", "--out", str(tmp_path / "a"), "--algos", "sarsa"]) == 2
    assert "unknown agent 'sarsa'" in capsys.readouterr().err
