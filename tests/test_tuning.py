"""``seqgan tune``: Optuna on Ray Tune, the same budget for every algorithm, disjoint seeds, presets."""

from __future__ import annotations

import json

import pytest

import train.experiments.tuning
from train.cli import main
from train.experiments.config import get_compare_config
from train.experiments.runner import run_one
from train.experiments.tuning import (
    SEARCH_SPACES,
    check_seeds,
    in_space,
    load_hparams,
    search_space,
    tune_algorithms,
)

TOKENS = 32 * 8  # one update of the tiny preset


@pytest.fixture(scope="module")
def tuned(ray_local, tmp_path_factory):
    """One small tuning run through the command line: two algorithms, three trials each."""
    root = tmp_path_factory.mktemp("tuning")
    out = root / "preset.json"
    code = main(["tune", "--preset", "tiny", "--algos", "reinforce-value,a2c", "--trials", "3", "--tuning-seeds", "7",
                 "--tokens", str(TOKENS), "--folder", str(root / "work"), "--out", str(out)])
    assert code == 0
    return root, json.loads(out.read_text())


def test_every_algorithm_gets_the_same_budget(tuned):
    root, preset = tuned
    assert preset["budget"]["trials_per_algo"] == 3 and preset["budget"]["tokens_per_trial"] == TOKENS
    assert preset["budget"]["tuning_seeds"] == [7]
    for algo in ("reinforce-value", "a2c"):
        trials = preset["trials"][algo]
        assert len(trials) == 3
        # what each trial generated, as counted by the runs themselves
        assert [t["tokens"] for t in trials] == [TOKENS] * 3
    # Trials read the base through Ray's object store and report their scores: they write no file here.
    assert sorted(p.name for p in (root / "work").iterdir()) == ["base", "searched", "tune", "tuning.json"]


def test_optuna_searched_and_the_best_trial_is_the_preset(tuned):
    _, preset = tuned
    for algo, trials in preset["trials"].items():
        configs = [json.dumps(t["hparams"], sort_keys=True) for t in trials]
        assert len(set(configs)) == 3, "the search proposed the same point twice"
        assert len({t["nll_oracle"] for t in trials}) > 1, "the hyperparameters did not change the result"
        best = min(trials, key=lambda t: t["objective"])
        assert best["objective"] == pytest.approx(best["nll_oracle"] + best["nll_test"])
        assert preset["hparams"][algo] == best["hparams"] and preset["objective"][algo] == best["objective"]


def test_the_saved_preset_loads_and_lies_in_the_search_space(tuned, tmp_path):
    root, preset = tuned
    hparams = load_hparams(str(root / "preset.json"))
    assert set(hparams) == {"reinforce-value", "a2c"}
    for algo, values in hparams.items():
        assert in_space(algo, values), (algo, values)
    assert not in_space("a2c", {**hparams["a2c"], "learning_rate": 1.0})  # the check can fail
    assert not list(root.glob(".*.tmp"))  # written through a rename: no temporary file left


def test_a_finished_search_is_not_run_again(tuned, monkeypatch):
    root, preset = tuned

    def no_search(*args, **kwargs):
        raise AssertionError("searched again")

    monkeypatch.setattr(train.experiments.tuning, "_search", no_search)
    config = get_compare_config("tiny")
    config.token_budget = TOKENS
    again = tune_algorithms(root / "work", config, ["reinforce-value", "a2c"], 3, [7], None, None, progress=False)
    assert again["hparams"] == preset["hparams"]


def test_hparams_reach_the_agent(tuned):
    """A learning rate of 0 leaves G where the base put it: NLL-oracle does not move."""
    root, _ = tuned
    config = get_compare_config("tiny")
    config.token_budget = TOKENS
    for lr, moved in ((0.0, False), (0.05, True)):
        config.hparams = {"reinforce": {"lr": lr}}
        result = run_one(str(root / "work"), ("fixed", "reinforce", 3), config.to_dict(), None)
        start, end = result["curve"][0]["nll_oracle"], result["curve"][-1]["nll_oracle"]
        assert (abs(end - start) > 1e-4) == moved, (lr, start, end)


def test_tuning_seeds_must_not_be_evaluation_seeds():
    with pytest.raises(ValueError, match=r"tuning seeds \[1, 2\] are also evaluation seeds"):
        check_seeds([1, 2, 9], [0, 1, 2])
    config = get_compare_config("tiny")  # seeds (0, 1)
    with pytest.raises(ValueError, match=r"\[1\]"):
        tune_algorithms("unused", config, ["reinforce"], 2, [1, 5], None, None)
    check_seeds([5], [0, 1])


def test_unknown_algorithm_and_hyperparameters_are_named(tmp_path):
    with pytest.raises(ValueError, match="'reinforce-typo'"):
        tune_algorithms(tmp_path, get_compare_config("tiny"), ["ppo", "reinforce-typo"], 2, [5], None, None)
    with pytest.raises(ValueError, match="'montecarlo'"):
        tune_algorithms(tmp_path, get_compare_config("tiny"), ["ppo"], 2, [5], None, None, reward="montecarlo")
    preset = tmp_path / "bad.json"
    preset.write_text(json.dumps({"hparams": {"ppo": {"learning_rate": 1e-4, "learnin_rate": 1}}}))
    with pytest.raises(ValueError, match="learnin_rate"):
        load_hparams(str(preset))
    preset.write_text(json.dumps({"hparams": {"sac": {"lr": 1e-4}}}))
    with pytest.raises(ValueError, match="'sac'"):
        load_hparams(str(preset))
    with pytest.raises(ValueError, match="'nonexistent' is neither a JSON file nor a shipped preset"):
        load_hparams("nonexistent")


def test_the_shipped_presets_load_and_lie_in_the_search_space():
    shipped = sorted(train.experiments.tuning.HPARAMS_DIR.glob("*.json"))
    for path in shipped:
        reward = json.loads(path.read_text()).get("budget", {}).get("reward")
        for algo, values in load_hparams(path.stem).items():
            # in the space fitted to its reward, or (tuned before the spaces were) in the algorithm's own
            assert algo in SEARCH_SPACES and (in_space(algo, values, reward) or in_space(algo, values)), (
                path.name, algo, values)


def test_the_search_space_fits_the_reward():
    """The exact-regret task fixes kl_beta and has no rollouts; its per-token reward opens the discount."""
    assert "kl_beta" in search_space("rloo") and "kl_beta" not in search_space("rloo", "exact-regret")
    assert "rollout_beta" in search_space("reinforce-mean", "monte_carlo")
    assert "rollout_beta" not in search_space("reinforce-mean", "exact-regret")
    assert search_space("reinforce-mean", "exact-regret")["discount"] == ("uniform", 0.0, 1.0)
    assert "discount" not in search_space("reinforce-mean", "monte_carlo")  # its steps estimate the outcome
    assert {"gamma", "gae_lambda"} <= set(search_space("ppo", "exact-regret"))
    assert "gamma" not in search_space("ppo", "monte_carlo")
    assert "discount" not in search_space("rloo", "exact-regret")  # one reward per sequence: nothing to discount
