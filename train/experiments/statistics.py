"""Statistics of a comparison's results: means with intervals, robust statistics, curve positions.

Everything here reads finished results (plain dicts, as the runs' JSON files hold them); nothing
trains and nothing is written.
"""

from __future__ import annotations

import contextlib
import math
import statistics
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom (standard tables).
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def mean_ci(values: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student's t; 0 for one value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, 0.0
    df = len(values) - 1
    t = _T975[df - 1] if df <= len(_T975) else 1.96
    return mean, t * statistics.stdev(values) / math.sqrt(len(values))


BOOTSTRAP_REPS = 2_000
"""Bootstrap resamples behind each IQM and probability-of-improvement interval (rliable's own
examples use 2,000 for the probability of improvement). Measured on 5 + 5 seeds of spread 0.06:
the IQM interval's ends moved by under 0.001 between six bootstrap seeds; the probability of
improvement takes few values (multiples of 1/50), and its lower end was 0.52 for five bootstrap
seeds and 0.40 for one: an end within a step of 0.5 is fragile at any number of resamples."""
BOOTSTRAP_SEED = 0
"""Seed of every bootstrap, so that a table written twice from the same runs is the same."""

@contextlib.contextmanager
def _numpy_seeded(seed: int) -> Iterator[None]:
    """Seed NumPy's global generator for the block and restore its state after it.

    rliable's stratified bootstraps draw their indices from ``np.random`` itself (they ignore
    their ``random_state`` argument), so this is the only way to make its intervals reproducible.
    """
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def iqm_ci(values: Sequence[float], reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
           ) -> tuple[float, float, float]:
    """Interquartile mean of ``values`` and its 95% stratified-bootstrap interval: ``(iqm, low, high)``.

    The IQM is the mean of the middle half once a quarter is cut at each end (rliable's
    ``aggregate_iqm``: SciPy's ``trim_mean(0.25)``, which cuts ``floor(n / 4)`` values at each end);
    the interval is rliable's percentile bootstrap over seeds (Agarwal et al., NeurIPS 2021).
    """
    from rliable import library, metrics

    scores = _as_runs(values, "values")
    with _numpy_seeded(seed):
        point, interval = library.get_interval_estimates(
            {"x": scores}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps)
    return float(point["x"][0]), float(interval["x"][0, 0]), float(interval["x"][1, 0])


def probability_of_lower(values_x: np.ndarray, values_y: np.ndarray) -> float:
    """P(X < Y) + P(X = Y) / 2 for one draw of each sample: X improves on Y when lower is better.

    This is rliable's ``probability_of_improvement`` (the Mann-Whitney U statistic over
    ``n_x * n_y``, ties counting half) applied to the negated scores, computed over all pairs
    directly: rliable's own asks SciPy for an exact p-value it then throws away, which made
    every bootstrap twelve times slower. ``tests/test_reporting_stats.py`` checks the two agree.
    Takes ``(runs, 1)`` arrays, the shape rliable's bootstraps hand over.
    """
    x, y = values_x[:, 0][:, None], values_y[:, 0][None, :]
    return float(np.mean(x < y) + 0.5 * np.mean(x == y))


def probability_of_improvement_ci(values_x: Sequence[float], values_y: Sequence[float],
                                  reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
                                  ) -> tuple[float, float, float]:
    """P(X improves on Y) = P(NLL_X < NLL_Y), ties counting half, and its 95% interval: ``(p, low, high)``.

    Lower is better (NLL-oracle). The interval resamples the seeds of X and of Y independently
    (rliable's stratified independent bootstrap). 0.5 means no difference; above 0.5, X is
    lower more often than not.
    """
    from rliable import library

    x, y = _as_runs(values_x, "values_x"), _as_runs(values_y, "values_y")
    with _numpy_seeded(seed):
        point, interval = library.get_interval_estimates(
            {"p": [x, y]}, lambda a, b: np.array([probability_of_lower(a, b)]), reps=reps)
    return float(point["p"][0]), float(interval["p"][0, 0]), float(interval["p"][1, 0])


def _as_runs(values: Sequence[float], name: str) -> np.ndarray:
    """``values`` as the ``(runs, tasks=1)`` array rliable expects, refusing what it cannot use."""
    array = np.asarray(values, dtype=float).reshape(-1, 1)
    if array.size == 0:
        raise ValueError(f"{name}: no values to estimate from")
    if not np.isfinite(array).all():
        raise ValueError(f"{name}: not finite: {array[:, 0].tolist()}")
    return array


def nll_oracle_at_same_diversity(curve: list[dict[str, float]], nll_test: float) -> float:
    """NLL-oracle of the MLE generator cooled to the temperature that gives ``nll_test``.

    Linear interpolation along the temperature curve (clamped at its ends): what lowering
    the sampling temperature alone buys for the same loss of diversity.
    """
    points = sorted((c["nll_test"], c["nll_oracle"]) for c in curve)
    return float(np.interp(nll_test, [x for x, _ in points], [y for _, y in points]))



MLE_CONTROL = "MLE only"
"""The base generator with no RL (the first evaluation of every run, one value per seed)."""
COOLED_MLE_CONTROL = "cooled MLE"
"""The MLE generator cooled to each run's NLL-test: what lowering the temperature alone buys."""



def mean_curve(runs: list[dict[str, Any]], key: str) -> tuple[list[float], list[tuple[float, float]]]:
    """Mean tokens and (mean, 95% CI half-width) of ``key`` over the runs, at each evaluation all runs carry it."""
    steps = min(len(r["curve"]) for r in runs)
    points = [i for i in range(steps) if all(key in r["curve"][i] for r in runs)]
    xs = [statistics.fmean(r["curve"][i]["tokens"] for r in runs) for i in points]
    return xs, [mean_ci([float(r["curve"][i][key]) for r in runs]) for i in points]


def curve_position(runs: list[dict[str, Any]]) -> dict[str, float]:
    """Where the mean NLL-oracle curve ends relative to its best point: has it flattened?

    ``final_minus_best`` (0: the last evaluation is the best; positive: the curve went back up
    after ``best_tokens``) and ``last_change``, the change over the last evaluation interval
    (clearly negative: still falling when the budget ended). On the mean over seeds, whose
    minimum is less biased by one seed's noise than the mean of every seed's own minimum.
    """
    xs, stats = mean_curve(runs, "nll_oracle")
    means = [m for m, _ in stats]
    best = int(np.argmin(means))
    return {"final_minus_best": means[-1] - means[best], "best_tokens": xs[best],
            "last_change": means[-1] - means[-2] if len(means) > 1 else 0.0}


def mle_start_values(results: dict[tuple[str, str], list[dict[str, Any]]], key: str = "nll_oracle") -> list[float]:
    """``key`` (NLL-oracle by default) of the base generator, one value per seed: the first evaluation
    of the runs (none for a key they did not record).

    Every run starts from the same base and evaluates it with its seed's samples, so the runs
    of one seed agree (the first run of each seed is taken).
    """
    by_seed: dict[int, float] = {}
    for runs in results.values():
        for run in runs:
            if run["curve"] and run["curve"][0]["tokens"] == 0 and run["curve"][0].get(key) is not None:
                by_seed.setdefault(run["seed"], float(run["curve"][0][key]))
    return [by_seed[s] for s in sorted(by_seed)]

