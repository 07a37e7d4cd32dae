"""Over-optimisation at equal KL: Gao et al.'s fits, the KL-budget interpolation and table, best-of-n
points on the base generator and the tempered-MLE curve."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from seqgan_env.best_of_n import best_of_n
from seqgan_env.divergence import sequence_log_probs
from seqgan_env.models import Generator
from train.experiments.config import CompareConfig
from train.experiments.kl_report import answer_lines, budget_rows, fit_rows, plot_panels, write_budgets
from train.experiments.overoptimisation import fit_gao, gao_gain, value_at_kl
from train.experiments.plots import plot_overoptimisation
from train.experiments.reference_points import OPTIMAL, best_of_n_points, sequence_scorers, tempered_points

pytestmark = pytest.mark.usefixtures("one_thread")


# -- Gao et al.'s forms -------------------------------------------------------------------
@pytest.mark.parametrize("form, alpha, beta", [("best-of-n", 0.8, 0.2), ("rl", 0.5, 0.3)])
def test_fits_recover_known_coefficients_and_turn_where_the_curve_peaks(form, alpha, beta):
    d = np.linspace(0.1, 6.0, 25)
    fit = fit_gao(d, gao_gain(form, d, alpha, beta), form)
    assert fit.alpha == pytest.approx(alpha, abs=1e-9) and fit.beta == pytest.approx(beta, abs=1e-9)
    grid = np.linspace(1e-4, 20.0, 200_001)  # the turn found by brute force, not by the closed form
    gains = alpha * grid - beta * (grid**2 if form == "best-of-n" else grid * np.log(grid))
    assert fit.d_star == pytest.approx(grid[np.argmax(gains)], abs=2e-3)
    assert fit.gain_star == pytest.approx(gains.max(), abs=1e-6)
    assert fit.d_star == pytest.approx(alpha / (2 * beta) if form == "best-of-n" else math.exp(alpha / beta - 1))


def test_a_fit_without_a_turn_is_nan_with_its_reason():
    d = np.linspace(0.1, 3.0, 10)
    rising = fit_gao(d, 0.5 * d + 0.1 * d**2, "best-of-n")  # beta = -0.1: gold only improves
    assert rising.beta == pytest.approx(-0.1) and math.isnan(rising.d_star) and "does not turn" in rising.reason
    short = fit_gao([0.0, 1.0], [0.0, 0.3], "rl")
    assert math.isnan(short.alpha) and "fewer than 2" in short.reason
    far = fit_gao(d, gao_gain("best-of-n", d, 1.0, 0.05), "best-of-n")  # turns at d = 10, data end at 3
    assert far.d_star == pytest.approx(10.0) and "extrapolated" in far.reason
    # Three points that fit a nearly straight line (a prompted tiny run's): beta is a hair above 0
    # and the turn exp(alpha / beta - 1) overflows a float; the fit says so instead of raising.
    flat = fit_gao([0.0, 0.6835564630420945, 1.073236580192767], [0.0, 0.3305127563476562, 0.518739044189453], "rl")
    assert 0 < flat.beta < 1e-3 and flat.d_star == math.inf and math.isnan(flat.gain_star)
    assert "far beyond the data" in flat.reason


# -- interpolation at KL budgets ----------------------------------------------------------
CURVE = [{"kl": 0.0, "nll_oracle": 4.0}, {"kl": 0.5, "nll_oracle": 3.8}, {"kl": 2.0, "nll_oracle": 3.2},
         {"kl": 5.0, "nll_oracle": 3.0}]


def test_budget_values_interpolate_linearly_in_kl_and_never_extrapolate():
    assert value_at_kl(CURVE, "nll_oracle", 1.0) == pytest.approx(3.8 + (1.0 - 0.5) / 1.5 * (3.2 - 3.8))  # 3.6
    assert value_at_kl(CURVE, "nll_oracle", 4.0) == pytest.approx(3.2 + 2 / 3 * (3.0 - 3.2))
    assert value_at_kl(CURVE, "nll_oracle", 5.0) == pytest.approx(3.0)
    assert math.isnan(value_at_kl(CURVE, "nll_oracle", 5.01))  # beyond the run's reach
    assert math.isnan(value_at_kl([{"nll_oracle": 4.0}], "nll_oracle", 0.0))  # no KL recorded
    # Not monotone in KL: the first time the run reaches the budget.
    wiggly = [{"kl": 0.0, "x": 0.0}, {"kl": 2.0, "x": 2.0}, {"kl": 1.0, "x": 10.0}, {"kl": 3.0, "x": 30.0}]
    assert value_at_kl(wiggly, "x", 1.5) == pytest.approx(1.5)


def _run(setting, name, seed, kls, nlls, reward):
    curve = [{"tokens": 100 * i, "kl": k, "nll_oracle": v, "nll_test": v + 1.0, "entropy": 3.0 - k / 10,
              **({"mean_reward": 0.5 + k / 10} if i else {})} for i, (k, v) in enumerate(zip(kls, nlls))]
    return {"setting": setting, "name": name, "seed": seed, "reward": reward, "curve": curve, "final": curve[-1]}


def synthetic():
    results = {
        ("fixed", "rloo"): [_run("fixed", "rloo", s, [0, 1 + s, 4 + s, 9], [4.0, 3.5 - s / 10, 3.3, 3.6], "monte_carlo")
                            for s in range(3)],
        ("fixed", "grpo"): [_run("fixed", "grpo", s, [0, 0.5, 2.0 + s], [4.0, 3.9, 3.8], "monte_carlo")
                            for s in range(3)],
        ("baseline", "random/rloo"): [_run("baseline", "random/rloo", s, [0, 0.5, 1.5 + s], [4.0, 4.1, 4.2 + s / 10],
                                           "random") for s in range(3)],
    }
    references = {"best_of_n": [{"reward": "optimal", "label": "D*", "seed": s, "n": n, "kl_bound": 0.0,
                                 "kl": math.log(n) - (n - 1) / n, "nll_oracle": 4.0 - 0.1 * math.log2(n) - s / 100,
                                 "entropy": 3.0, "proxy": 0.5, "nll_test": None} for s in range(3) for n in (1, 4, 16)],
                  "tempered": [{"temperature": t, "seed": s, "kl": 5 * (1 - t) ** 2 * 10, "nll_oracle": 4.0 - (1 - t),
                                "nll_test": 3.5 + (1 - t), "entropy": 3.0 * t} for s in range(3)
                               for t in (0.5, 0.7, 1.0, 1.3)]}
    return results, references


def test_budget_table_matches_hand_computation_and_counts_unreached_runs():
    results, references = synthetic()
    rows = {(r["budget"], r["method"]): r for r in budget_rows(results, references, (1.0, 4.0, 16.0), bootstrap_reps=200)}
    # rloo at KL 4, by hand: seeds 0 and 2 reach it at an evaluation of NLL-oracle 3.3, seed 1 between
    # (2, 3.4) and (5, 3.3).
    assert rows[(4.0, "rloo")]["nll_oracle"] == pytest.approx(np.mean([3.3, 3.4 + 2 / 3 * (3.3 - 3.4), 3.3]))
    assert rows[(4.0, "rloo")]["reached"] == 3
    assert rows[(16.0, "rloo")]["reached"] == 0 and math.isnan(rows[(16.0, "rloo")]["nll_oracle"])
    grpo = rows[(4.0, "grpo")]  # only seed 2 (KL 4) gets there
    assert grpo["reached"] == 1 and grpo["nll_oracle"] == pytest.approx(3.8)
    # KL 1: rloo at 3.5, 3.7 and 3.767; the random control at 4.15 (every seed); the MLE cooled to KL 1
    # (between T = 1, KL 0, and T = 0.7, KL 4.5) at 4.0 - 0.3 / 4.5 = 3.933.
    at_one = rows[(1.0, "rloo")]
    assert at_one["nll_oracle"] == pytest.approx(np.mean([3.5, 3.7, 4.0 + (3.3 - 4.0) / 3]))
    assert rows[(1.0, "rloo, random reward")]["nll_oracle"] == pytest.approx(4.15)
    assert rows[(1.0, "tempered MLE")]["nll_oracle"] == pytest.approx(4.0 - 0.3 / 4.5)
    assert at_one["p_vs_random/rloo"][0] == 1.0 and at_one["p_vs_tempered MLE"][0] == 1.0
    assert "p_vs_random/rloo" not in rows[(1.0, "rloo, random reward")]  # the control is not compared with itself
    # Best-of-n along n: KL 1 lies between n = 4 (0.636) and n = 16 (1.835).
    assert rows[(1.0, "best-of-n @ optimal")]["reached"] == 3


def test_the_short_answer_names_the_best_gold_at_each_budget():
    results, references = synthetic()
    budgets = budget_rows(results, references, (1.0, 16.0), bootstrap_reps=100)
    lines = answer_lines(budgets, fit_rows(results, references["best_of_n"]))
    # KL 1: rloo 3.656 (mean of 3.5, 3.7, 3.767) < best-of-n 3.729 < grpo 3.878; cooled MLE 3.933.
    assert lines[0].startswith("- KL 1: best gold rloo (fixed), NLL-oracle 3.656")
    assert "the MLE cooled to this KL 3.933" in lines[0] and lines[0].endswith("rloo, grpo, best-of-n @ optimal.")
    assert lines[1] == "- KL 16: no method reached it in every seed."


def test_fits_curves_and_table_are_written(tmp_path):
    results, references = synthetic()
    fits = fit_rows(results, references["best_of_n"])
    assert {f["method"] for f in fits} == {"rloo", "grpo", "rloo, random reward", "best-of-n @ optimal"}
    lines = write_budgets(tmp_path, budget_rows(results, references, (1.0,), bootstrap_reps=100))
    assert (tmp_path / "kl_budgets.csv").read_text().count("\n") == 1 + 5  # 3 methods, best-of-n, tempered
    assert any("| rloo |" in line for line in lines)
    plot_overoptimisation(tmp_path / "over.png", plot_panels(results, references, fits))
    assert (tmp_path / "over.png").stat().st_size > 10_000


# -- the reference points on a tiny model ---------------------------------------------------
@pytest.fixture
def scorers(tmp_path):
    config = CompareConfig(rewards=(), baselines=("constant", "random"))
    found, skipped = sequence_scorers(tmp_path, config)
    assert set(found) == {"constant", "random", OPTIMAL} and not skipped
    return found


def test_best_of_n_under_d_star_lowers_nll_oracle_within_the_kl_bound(tiny_models, scorers):
    generator, oracle = tiny_models["generator"].eval(), tiny_models["oracle"].eval()
    points = best_of_n_points(generator, oracle, scorers, (1, 4, 16, 64), 512, seed=0)
    by = {(p["reward"], p["n"]): p for p in points}
    for p in points:
        assert p["kl"] <= p["kl_bound"] + 1e-9
    for name in ("constant", "random"):  # a selection that ignores the sequence leaves pi as it is
        assert by[(name, 64)]["kl"] == 0.0
        assert by[(name, 64)]["nll_oracle"] == pytest.approx(by[(name, 1)]["nll_oracle"])
    nll = [by[(OPTIMAL, n)]["nll_oracle"] for n in (1, 4, 16, 64)]
    assert all(b < a for a, b in zip(nll, nll[1:])) and nll[-1] < nll[0] - 0.3, nll
    assert by[(OPTIMAL, 64)]["kl"] > 3.0  # no ties among 512 log ratios: close to the bound 3.17


def test_pool_expectation_matches_actually_keeping_the_best(tiny_models, scorers):
    """The pool's best-of-n expectation against best-of-n sampled as defined (2,000 groups of 8)."""
    generator, oracle = tiny_models["generator"].eval(), tiny_models["oracle"].eval()
    expected = {p["n"]: p for p in best_of_n_points(generator, oracle, {OPTIMAL: scorers[OPTIMAL]}, (8,), 8192, 1)}[8]

    def log_ratio(sequences):
        return sequence_log_probs(oracle, sequences)[0] - sequence_log_probs(generator, sequences)[0]

    kept = best_of_n(generator, log_ratio, 8, 2000, torch.Generator().manual_seed(5))
    assert oracle.nll(kept.sequences) == pytest.approx(expected["nll_oracle"], abs=0.05)
    assert float(torch.sigmoid(kept.scores).mean()) == pytest.approx(expected["proxy"], abs=0.03)
    plain = best_of_n_points(generator, oracle, {OPTIMAL: scorers[OPTIMAL]}, (1,), 8192, 1)[0]["nll_oracle"]
    assert abs(plain - expected["nll_oracle"]) > 0.2  # the selection is far from no selection


def test_tempered_kl_is_zero_at_one_and_grows_away_from_it(tiny_models):
    torch.manual_seed(1)
    generator = Generator(64, 16, 16, 8, 0, init_std=1.0).eval()  # peaked enough for temperature to matter
    oracle = tiny_models["oracle"].eval()
    test = oracle.sample(200, torch.Generator().manual_seed(3))
    points = {p["temperature"]: p for p in tempered_points(generator, oracle, test, (0.5, 0.7, 1.0, 1.3, 1.6), 1000, 0)}
    assert points[1.0]["kl"] == 0.0
    assert points[0.5]["kl"] > points[0.7]["kl"] > 0.3
    assert points[1.6]["kl"] > points[1.3]["kl"] > 0.05
    assert points[0.5]["entropy"] < points[1.0]["entropy"] < points[1.6]["entropy"]


@pytest.mark.parametrize("field, value, message", [
    ("best_of_n", (1, 0), "best_of_n must be whole numbers of at least 1"),
    ("best_of_n_samples", 100, "best_of_n_samples (100) must be at least the largest n (1024)"),
    ("kl_temperatures", (1.0, 0.0), "kl_temperatures must be positive"),
    ("kl_budgets", (4.0, -1.0), "kl_budgets must be positive"),
])
def test_bad_reference_settings_are_named(field, value, message):
    from train.experiments.config import check_config

    with pytest.raises(ValueError, match=re.escape(message)):
        check_config(CompareConfig(**{field: value}))


def _curve(kls, gold):
    return [{"kl": k, "nll_oracle": gold(k), "entropy": 5.0} for k in kls]


def test_the_kl_frontier_gap_is_zero_on_the_frontier_and_negative_below_it():
    """``benchmarks.kl_frontier``: beta = 0's runs define gold against KL; a penalised run on that
    curve (ending earlier) has gap 0, one that is 0.05 nats better at every KL has gap -0.05, and
    points past the KL every beta = 0 seed reached are not compared."""
    from benchmarks.kl_frontier import summarise

    def line(offset):
        return lambda k: 9.0 - 0.1 * k + offset

    free = [{"curve": _curve([0, 1, 2, 4], line(s)), "final": {"kl": 4, "nll_oracle": line(s)(4), "entropy": 5.0}}
            for s in (-0.01, 0.01)]
    on = [{"curve": _curve([0, 0.5, 1.5], line(0.0)), "final": {"kl": 1.5, "nll_oracle": 8.85, "entropy": 5.0}}] * 2
    below = [{"curve": _curve([0, 1, 3, 6], line(-0.05)), "final": {"kl": 6, "nll_oracle": 8.35, "entropy": 5.0}}] * 2
    summary = summarise({0.0: free, 0.1: on, 1.0: below})
    assert summary["0.1"]["gap"] == pytest.approx(0.0, abs=1e-9)
    assert summary["1.0"]["gap"] == pytest.approx(-0.05, abs=1e-9)
    assert summary["1.0"]["points_on_frontier"] == 4  # KL 6 lies beyond the frontier's 4 nats
    assert summary["0.1"]["final_kl"] == 1.5 and "gap" not in summary["0.0"]
    with pytest.raises(ValueError, match="include 0"):
        summarise({0.1: on})
