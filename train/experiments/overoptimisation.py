"""Over-optimisation of a proxy reward: gold against KL, Gao et al.'s fits, and the KL-budget table.

A learned reward is a proxy a policy over-optimises. Gao, Schulman and Hilton ("Scaling Laws for
Reward Model Overoptimization", ICML 2023) measure the gold score against ``d = sqrt(KL)``, the
square root of the policy's KL divergence from where it started, and fit the gain in gold
``R(d)`` with two forms (:func:`fit_gao`):

* best-of-n: ``R(d) = d (alpha - beta d)``, which turns at ``d* = alpha / (2 beta)``;
* RL: ``R(d) = d (alpha - beta log d)``, which turns at ``d* = exp(alpha / beta - 1)``.

Here the gold is the oracle's likelihood: ``R = NLL-oracle at the start - NLL-oracle`` (higher
is better), and KL is ``kl`` of each evaluation of a run (nats per sequence to the base MLE
generator). Runs whose evaluations carry no ``kl`` are left out, with a note. Both forms are
linear in ``(alpha, beta)``: an ordinary least-squares fit over every seed's points.

The KL-budget table (:func:`budget_rows`) reads each run's curve at KL budgets (1, 4, 16 and 64
nats per sequence by default), by linear interpolation between the two evaluations around the
first time the run's KL reached the budget; a run that never reached it gives NaN, never an
extrapolation. Beside the runs it has best-of-n (interpolated along n) and the tempered MLE
(interpolated along its temperatures below 1, cooling: the branch with the better NLL-oracle),
both from :mod:`train.experiments.reference_points`.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

GAO_FORMS = ("best-of-n", "rl")


@dataclass(frozen=True)
class GaoFit:
    """A least-squares fit of one of Gao et al.'s forms and where its gold turns."""

    form: str
    """``best-of-n`` (``d (alpha - beta d)``) or ``rl`` (``d (alpha - beta log d)``)."""
    alpha: float
    beta: float
    d_star: float
    """``argmax_d R(d)``: where the gold turns (NaN, with :attr:`reason`, when it does not)."""
    gain_star: float
    """``R(d*)``: the most gold the fitted curve reaches."""
    d_max: float
    """The largest ``d`` fitted: a ``d*`` beyond it is an extrapolation."""
    points: int
    reason: str = ""
    """Why there is no turn, or that it lies beyond the data (empty otherwise)."""

    def gain(self, d: np.ndarray | float) -> np.ndarray:
        """The fitted ``R(d)``."""
        return gao_gain(self.form, np.asarray(d, dtype=float), self.alpha, self.beta)


def _d_log_d(d: np.ndarray) -> np.ndarray:
    """``d log d``, 0 at ``d = 0`` (its limit)."""
    safe = np.where(d > 0, d, 1.0)
    return np.where(d > 0, d * np.log(safe), 0.0)


def gao_gain(form: str, d: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``R(d)`` of ``form`` with ``alpha`` and ``beta``."""
    if form == "best-of-n":
        return d * (alpha - beta * d)
    if form == "rl":
        return alpha * d - beta * _d_log_d(d)
    raise ValueError(f"unknown form {form!r}; choose from {GAO_FORMS}")


def fit_gao(d: Sequence[float], gain: Sequence[float], form: str) -> GaoFit:
    """Fit ``R(d)`` of ``form`` to points ``(d, gain)`` by least squares, and find its turn."""
    if form not in GAO_FORMS:
        raise ValueError(f"unknown form {form!r}; choose from {GAO_FORMS}")
    xs, ys = np.asarray(d, dtype=float), np.asarray(gain, dtype=float)
    if xs.shape != ys.shape:
        raise ValueError(f"{xs.size} distances for {ys.size} gains")
    keep = np.isfinite(xs) & np.isfinite(ys) & (xs > 0)  # d = 0 is the start, R = 0 by construction
    xs, ys = xs[keep], ys[keep]
    d_max = float(xs.max()) if xs.size else math.nan
    if np.unique(xs).size < 2:
        return GaoFit(form, math.nan, math.nan, math.nan, math.nan, d_max, int(xs.size),
                      "fewer than 2 distinct points with KL > 0")
    second = -xs**2 if form == "best-of-n" else -_d_log_d(xs)
    (alpha, beta), *_ = np.linalg.lstsq(np.stack([xs, second], axis=1), ys, rcond=None)
    alpha, beta = float(alpha), float(beta)
    if beta <= 0:
        return GaoFit(form, alpha, beta, math.nan, math.nan, d_max, int(xs.size),
                      f"beta = {beta:.3g} <= 0: the fitted gold does not turn")
    if form == "rl" and alpha / beta - 1 > math.log(sys.float_info.max):  # a near-flat fit: exp overflows
        return GaoFit(form, alpha, beta, math.inf, math.nan, d_max, int(xs.size),
                      f"the fitted turn lies at d = exp({alpha / beta - 1:.3g}), far beyond the data "
                      f"(largest d {d_max:.3g})")
    d_star = alpha / (2 * beta) if form == "best-of-n" else math.exp(alpha / beta - 1)
    if d_star <= 0:
        return GaoFit(form, alpha, beta, math.nan, math.nan, d_max, int(xs.size),
                      f"alpha = {alpha:.3g} <= 0: the fitted gold only falls")
    gain_star = float(gao_gain(form, np.array(d_star), alpha, beta))
    reason = f"beyond the data (largest d {d_max:.3g}): extrapolated" if d_star > d_max else ""
    return GaoFit(form, alpha, beta, d_star, gain_star, d_max, int(xs.size), reason)


def sqrt_kl(kl: float) -> float:
    """``d = sqrt(KL)``; a KL estimate a little below 0 (sampling noise near the start) counts as 0."""
    return math.sqrt(max(float(kl), 0.0))


def value_at_kl(curve: Sequence[dict[str, Any]], key: str, budget: float) -> float:
    """``key`` of ``curve`` where its ``kl`` first reaches ``budget``, interpolated linearly in KL
    between the evaluations on either side; NaN when it never does or a point lacks the values."""
    previous = None
    for point in curve:
        if "kl" not in point or key not in point or point[key] is None or point["kl"] is None:
            return math.nan
        kl, value = float(point["kl"]), float(point[key])
        if kl >= budget:
            if previous is None or kl == previous[0]:
                return value
            fraction = (budget - previous[0]) / (kl - previous[0])
            return previous[1] + fraction * (value - previous[1])
        previous = (kl, value)
    return math.nan


def has_kl(run: dict[str, Any]) -> bool:
    """Whether every evaluation of a run carries its KL."""
    return bool(run.get("curve")) and all(point.get("kl") is not None for point in run["curve"])


def run_gains(runs: Sequence[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """``(d, R)`` of every evaluation of ``runs`` that carry KL: R is the run's gain in gold since its start."""
    ds, gains = [], []
    for run in runs:
        if not has_kl(run):
            continue
        start = float(run["curve"][0]["nll_oracle"])
        for point in run["curve"]:
            ds.append(sqrt_kl(point["kl"]))
            gains.append(start - float(point["nll_oracle"]))
    return ds, gains


def by_seed(points: Sequence[dict[str, Any]], order: str) -> dict[int, list[dict[str, Any]]]:
    """Points of several seeds as one curve per seed, in increasing ``order`` (``n``; or
    ``-temperature``: from 1 down, cooling)."""
    out: dict[int, list[dict[str, Any]]] = {}
    for point in points:
        out.setdefault(int(point["seed"]), []).append(point)
    key = (lambda p: -float(p["temperature"])) if order == "-temperature" else (lambda p: float(p[order]))
    return {seed: sorted(curve, key=key) for seed, curve in sorted(out.items())}


def best_of_n_gains(points: Sequence[dict[str, Any]]) -> tuple[list[float], list[float]]:
    """``(d, R)`` of best-of-n points of one reward: R is the gain over n = 1 of the same seed."""
    ds, gains = [], []
    for curve in by_seed(points, "n").values():
        start = next((float(p["nll_oracle"]) for p in curve if p["n"] == 1), None)
        if start is None:
            continue
        for point in curve:
            ds.append(sqrt_kl(point["kl"]))
            gains.append(start - float(point["nll_oracle"]))
    return ds, gains


def cooled(points: Sequence[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """The tempered-MLE points at temperatures up to 1, per seed, from 1 down (KL rising)."""
    return by_seed([p for p in points if float(p["temperature"]) <= 1.0], "-temperature")


__all__ = ["GAO_FORMS", "GaoFit", "best_of_n_gains", "by_seed", "cooled", "fit_gao", "gao_gain", "has_kl",
           "run_gains", "sqrt_kl", "value_at_kl"]
