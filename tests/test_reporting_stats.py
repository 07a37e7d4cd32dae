"""Robust statistics of the comparison report (train/reporting.py): IQM, probability of improvement,
the matching of methods to controls, and the table and plots they feed. Fake results, no training."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from train.experiments.reporting import controls_for, improvement_column, write_report
from train.experiments.runs import method_label
from train.experiments.statistics import (
    COOLED_MLE_CONTROL,
    MLE_CONTROL,
    curve_position,
    iqm_ci,
    probability_of_improvement_ci,
    probability_of_lower,
)

REPS = 300  # enough for the checks below, fast


def test_iqm_is_the_mean_of_the_middle_half():
    iqm, low, high = iqm_ci([8, 3, 1, 6, 2, 7, 5, 4], reps=REPS)
    assert iqm == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    assert low <= iqm <= high
    # An outlier moves the mean by 12 and the IQM not at all.
    assert iqm_ci([1, 2, 3, 4, 5, 6, 7, 100], reps=REPS)[0] == pytest.approx(4.5)


def test_probability_of_improvement_by_hand_lower_is_better():
    # Pairs (x, y) with x < y: 1<2, 1<2, 1<4, 2<4, 3<4 = 5; ties: (2, 2) twice = 2 halves; of 9 pairs.
    p, low, high = probability_of_improvement_ci([1, 2, 3], [2, 2, 4], reps=REPS)
    assert p == pytest.approx(6 / 9)
    assert low <= p <= high
    # The other direction is the complement.
    assert probability_of_improvement_ci([2, 2, 4], [1, 2, 3], reps=REPS)[0] == pytest.approx(3 / 9)
    # Ties only: x = [1, 1] against y = [1, 2]: 0.5 + 1 + 0.5 + 1 over 4 pairs.
    assert probability_of_improvement_ci([1, 1], [1, 2], reps=REPS)[0] == pytest.approx(0.75)
    assert probability_of_improvement_ci([3, 5, 4], [4, 3, 5], reps=REPS)[0] == pytest.approx(0.5)
    # Every run of x below every run of y: certain, and so is every resample.
    assert probability_of_improvement_ci([1, 2], [3, 4, 5], reps=REPS) == (1.0, 1.0, 1.0)


def test_probability_of_lower_is_rliables_probability_of_improvement_on_negated_scores():
    from rliable.metrics import probability_of_improvement

    rng = np.random.default_rng(0)
    for n_x, n_y in ((1, 1), (3, 5), (5, 5), (10, 7)):
        for _ in range(5):
            x = rng.integers(0, 4, (n_x, 1)).astype(float)  # few distinct values: many ties
            y = rng.integers(0, 4, (n_y, 1)).astype(float)
            assert probability_of_lower(x, y) == pytest.approx(probability_of_improvement(-x, -y))


def test_bootstrap_is_seeded_and_leaves_numpys_generator_alone():
    values = [3.1, 2.7, 2.9, 3.8, 3.3]
    np.random.seed(123)
    expected_next = np.random.rand()
    np.random.seed(123)
    first = iqm_ci(values, reps=REPS, seed=7)
    assert np.random.rand() == expected_next, "the caller's random stream is untouched"
    assert iqm_ci(values, reps=REPS, seed=7) == first
    assert iqm_ci(values, reps=REPS, seed=8) != first
    assert probability_of_improvement_ci(values, [3.0, 3.5], reps=REPS, seed=7) == \
        probability_of_improvement_ci(values, [3.0, 3.5], reps=REPS, seed=7)


def test_intervals_narrow_with_more_seeds_and_settle_with_more_reps():
    sample = np.random.default_rng(1).normal(8.0, 0.1, 40)
    _, low5, high5 = iqm_ci(sample[:5], reps=REPS)
    _, low40, high40 = iqm_ci(sample, reps=REPS)
    assert high40 - low40 < 0.6 * (high5 - low5)
    _, plow5, phigh5 = probability_of_improvement_ci(sample[:5], sample[5:10] + 0.05, reps=REPS)
    _, plow40, phigh40 = probability_of_improvement_ci(sample[:20], sample[20:] + 0.05, reps=REPS)
    assert phigh40 - plow40 < phigh5 - plow5

    def spread_of_low_end(reps: int) -> float:
        return float(np.ptp([iqm_ci(sample[:8], reps=reps, seed=s)[1] for s in range(4)]))

    assert spread_of_low_end(2_000) < spread_of_low_end(50)


def test_bad_values_are_refused_with_their_name():
    with pytest.raises(ValueError, match="values: no values"):
        iqm_ci([])
    with pytest.raises(ValueError, match="values_y: not finite"):
        probability_of_improvement_ci([1.0], [float("nan")])


def test_methods_are_matched_to_the_controls_under_their_update():
    controls = ["constant/reinforce", "random/reinforce", "constant/reinforce-mean", "random/reinforce-mean"]
    assert controls_for("reinforce-mean", controls) == ["constant/reinforce-mean", "random/reinforce-mean"]
    assert controls_for("reinforce", controls) == ["constant/reinforce", "random/reinforce"]
    assert controls_for("reinforce-mean @ dense", controls) == ["constant/reinforce-mean", "random/reinforce-mean"]
    assert controls_for("ppo", controls) == controls  # no control shares its update: all of them
    assert controls_for("reinforce-mean", ["constant", "random"]) == ["constant", "random"]  # older comparisons
    assert controls_for("reinforce", []) == []
    assert method_label("baseline", "constant/reinforce-mean") == "reinforce-mean, constant reward"
    assert method_label("baseline", "random") == "REINFORCE, random reward"


def _run(setting: str, name: str, seed: int, curve: list[float], extra: bool = False) -> dict:
    points = [{"tokens": 100 * i, "nll_oracle": value, "nll_test": 7.0 + 0.01 * i,
               **({"reward_std": 0.1 / (i + 1), "d_train_accuracy": 0.5 + 0.05 * i} if extra and i else {})}
              for i, value in enumerate(curve)]
    return {"setting": setting, "name": name, "seed": seed, "tokens": points[-1]["tokens"], "curve": points,
            "final": {**points[-1], "mean_reward": 0.5}, "wall_time": 1.0}


def _comparison(extra: bool) -> tuple[list, dict]:
    seeds = range(5)
    start = [9.0 + 0.01 * s for s in seeds]  # the base generator, per evaluation seed
    methods = {
        ("fixed", "reinforce-mean"): lambda s: [start[s], 8.0 + 0.01 * s, 7.8 + 0.01 * s, 7.9 + 0.01 * s],
        ("fixed", "ppo"): lambda s: [start[s], 8.95, 8.9, 8.9 - 0.01 * s],
        ("baseline", "constant/reinforce-mean"): lambda s: [start[s], 8.9, 8.9, 8.9 + 0.02 * s],
        ("baseline", "random/reinforce-mean"): lambda s: [start[s], 8.9, 8.85, 8.8 + 0.05 * s],
        ("baseline", "constant/reinforce"): lambda s: [start[s], 8.5, 8.4, 8.3 + 0.01 * s],
        ("baseline", "random/reinforce"): lambda s: [start[s], 8.5, 8.4, 8.4 + 0.01 * s],
    }
    jobs = [(setting, name, s) for setting, name in methods for s in seeds]
    results = {key: [_run(*key, s, make(s), extra) for s in seeds] for key, make in methods.items()}
    return jobs, results


CURVE = [{"temperature": 1.0, "nll_oracle": 9.02, "nll_oracle_ci": 0.01, "nll_test": 7.0},
         {"temperature": 0.5, "nll_oracle": 6.0, "nll_oracle_ci": 0.01, "nll_test": 8.0}]


def test_the_table_has_iqm_improvement_and_curve_columns(tmp_path):
    jobs, results = _comparison(extra=True)
    rows = write_report(tmp_path, jobs, results, {}, CURVE, tuple(range(5)), 300, bootstrap_reps=REPS)
    table = {(r["setting"], r["method"]): r for r in csv.DictReader(open(tmp_path / "results.csv"))}
    mean_baseline = table[("fixed", "reinforce-mean")]
    # Finals 7.9 .. 7.94: the IQM drops one run at each end.
    assert float(mean_baseline["nll_oracle_iqm"]) == pytest.approx(7.92)
    assert float(mean_baseline["nll_oracle_iqm_low"]) <= 7.92 <= float(mean_baseline["nll_oracle_iqm_high"])
    # Its mean curve is lowest at 200 tokens (7.82), and ends 0.1 above it, having risen by 0.1.
    assert float(mean_baseline["final_minus_best"]) == pytest.approx(0.1)
    assert float(mean_baseline["best_tokens"]) == 200
    assert float(mean_baseline["last_change"]) == pytest.approx(0.1)
    # Compared with the controls of its own update (and the MLE ones), all of whose runs end higher.
    assert float(mean_baseline["p_improve_vs_constant/reinforce-mean"]) == 1.0
    assert float(mean_baseline["p_improve_vs_random/reinforce-mean_low"]) == 1.0
    assert mean_baseline["p_improve_vs_constant/reinforce"] == ""
    assert float(mean_baseline[improvement_column(MLE_CONTROL)]) == 1.0
    # The cooled MLE at NLL-test 7.03 has NLL-oracle 9.02 - 0.03 * 3.02 = 8.93: the run is far below it.
    assert float(mean_baseline[improvement_column(COOLED_MLE_CONTROL)]) == 1.0
    assert improvement_column(COOLED_MLE_CONTROL) == "p_improve_vs_cooled_MLE"
    # PPO shares no control's update: compared with all four. It ends at 8.86-8.9, below constant/
    # reinforce-mean's 8.9-8.98 (one tie at 8.9) and above constant/reinforce's 8.3-8.34.
    ppo = table[("fixed", "ppo")]
    assert float(ppo["p_improve_vs_constant/reinforce-mean"]) == pytest.approx(24.5 / 25)
    assert float(ppo["p_improve_vs_constant/reinforce"]) == 0.0
    assert all(ppo[f"p_improve_vs_{c}/reinforce{u}"] != "" for c in ("constant", "random") for u in ("", "-mean"))
    # Controls are not compared with controls; the MLE row has the IQM of the base per seed.
    control = table[("baseline", "reinforce-mean, constant reward")]
    assert control["nll_oracle_iqm"] != "" and control["p_improve_vs_random/reinforce-mean"] == ""
    assert float(table[("-", MLE_CONTROL)]["nll_oracle_iqm"]) == pytest.approx(9.02)
    assert [r["method"] for r in rows if "p_improve" in r] == ["reinforce-mean", "ppo"]

    markdown = (tmp_path / "results.md").read_text()
    assert "| fixed | reinforce-mean | 5 | – | – | 7.920 ± " in markdown  # results without the divergences
    assert "7.920 [" in markdown and "+0.100 (200; +0.100)" in markdown
    assert "| fixed | reinforce-mean | constant/reinforce-mean | 1.00 [1.00, 1.00] | better |" in markdown
    assert "| fixed | ppo | constant/reinforce | 0.00 [0.00, 0.00] | worse |" in markdown
    for name in ("learning_curves.png", "quality_diversity.png", "iqm.png", "probability_of_improvement.png",
                 "reward_spread.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name

    # The same runs without reward_std / d_train_accuracy: the same table (the bootstrap is seeded), no spread plot.
    table = (tmp_path / "results.csv").read_text()
    write_report(tmp_path, *_comparison(extra=False), {}, CURVE, tuple(range(5)), 300, bootstrap_reps=REPS)
    assert (tmp_path / "results.csv").read_text() == table
    assert not (tmp_path / "reward_spread.png").exists(), "the first report's plot is not left beside it"


def test_curve_position_of_a_curve_still_falling():
    runs = [_run("fixed", "reinforce", s, [9.0, 8.8, 8.5 - 0.1 * s]) for s in range(3)]
    position = curve_position(runs)
    assert position["final_minus_best"] == 0.0 and position["best_tokens"] == 200
    assert position["last_change"] == pytest.approx(8.4 - 8.8)
