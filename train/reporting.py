"""Reporting of a comparison: statistics, the results table and the plots.

Kept apart from running trials (:mod:`train.compare`): everything here reads finished
results (plain dicts, as the runs' JSON files hold them) and writes files; nothing trains.
"""

from __future__ import annotations

import contextlib
import csv
import math
import statistics
from collections.abc import Iterator, Sequence
from pathlib import Path
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
CONTROL_REWARDS = ("constant", "random")
"""Baselines whose reward carries no information: a method must beat them to show it learned."""


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


def controls_for(name: str, controls: Sequence[str]) -> list[str]:
    """The controls (baseline names) that the method ``name`` is compared with.

    A control is named after its reward, alone (``constant``, as older comparisons name it) or
    with the update it runs under (``constant/reinforce-mean``). A method is compared with the
    controls that run under its own update, the update being one ``/``-separated part of its
    name before any `` @ reward`` (``reinforce-mean`` and ``reinforce-mean @ dense`` both match ``constant/reinforce-mean``,
    ``reinforce`` does not); a method no control shares an update with (``ppo``, or any method
    when the controls carry no update) is compared with every control.
    """
    parts = set(name.split(" @ ", 1)[0].split("/"))  # "reinforce-mean @ dense": the update is before " @ "
    same_update = [c for c in controls if "/" in c and c.split("/", 1)[1] in parts]
    return same_update or list(controls)


def is_control(setting: str, name: str) -> bool:
    """Whether ``(setting, name)`` is a no-information control (constant or random reward)."""
    return setting == "baseline" and name.split("/", 1)[0] in CONTROL_REWARDS


METRICS = (("nll_oracle", "NLL-oracle"), ("nll_test", "NLL-test"), ("entropy", "entropy (nats/token)"),
           ("vs_temperature", "NLL-oracle vs cooled MLE"),
           ("mean_reward", "final mean reward"), ("wall_time", "wall time (s)"))


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


def mle_start_values(results: dict[tuple[str, str], list[dict[str, Any]]]) -> list[float]:
    """NLL-oracle of the base generator, one value per seed: the first evaluation of the runs.

    Every run starts from the same base and evaluates it with its seed's samples, so the runs
    of one seed agree (the first run of each seed is taken).
    """
    by_seed: dict[int, float] = {}
    for runs in results.values():
        for run in runs:
            if run["curve"] and run["curve"][0]["tokens"] == 0:
                by_seed.setdefault(run["seed"], float(run["curve"][0]["nll_oracle"]))
    return [by_seed[s] for s in sorted(by_seed)]


def write_report(root: Path, jobs: list[tuple[str, str, int]], results: dict[tuple[str, str], list[dict[str, Any]]],
                 errors: dict[tuple[str, str], list[str]], curve: list[dict[str, float]], seeds: tuple[int, ...],
                 token_budget: int, *, bootstrap_reps: int = BOOTSTRAP_REPS,
                 bootstrap_seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """Write ``results.md``, ``results.csv`` and the plots; return the rows.

    ``results`` maps ``(setting, name)`` to the result files of its finished seeds,
    ``errors`` to the errors of its failed seeds (its row's ``status`` says so; the
    statistics are over the seeds that finished), ``curve`` is the MLE temperature curve.
    Besides mean ± 95% CI, each row has the interquartile mean of the final NLL-oracle with its
    stratified-bootstrap interval, where its curve ends relative to its best point
    (:func:`curve_position`) and, for every method that is not a control, its probability of
    improvement over each control (:func:`controls_for`), over the MLE generator and over the
    cooled MLE (``row["p_improve"]``). Plots: ``learning_curves.png``, ``quality_diversity.png``,
    ``iqm.png``, ``probability_of_improvement.png`` and, when the runs recorded them,
    ``reward_spread.png``.
    """
    bootstrap = {"reps": bootstrap_reps, "seed": bootstrap_seed}
    rows = []
    starts = mle_start_values(results)
    mle = curve[0] if curve and curve[0]["temperature"] == 1.0 else None
    if mle is not None:
        row = {"setting": "-", "method": MLE_CONTROL, "seeds": len(seeds),
               "nll_oracle": mle["nll_oracle"], "nll_oracle_ci": mle["nll_oracle_ci"],
               "nll_test": mle["nll_test"], "nll_test_ci": 0.0, "status": "ok", "error": ""}
        if starts:
            row.update(_iqm_fields(starts, bootstrap))
        rows.append(row)
    controls = {name: [float(r["final"]["nll_oracle"]) for r in runs]
                for (setting, name), runs in results.items() if is_control(setting, name) and runs}
    methods = list(dict.fromkeys((job[0], job[1]) for job in jobs))
    for setting, name in methods:
        runs, failed = results.get((setting, name), []), errors.get((setting, name), [])
        if not runs and not failed:
            continue  # not run yet
        row = {"setting": setting, "method": method_label(setting, name), "seeds": len(runs),
               "status": f"{len(failed)} of {len(runs) + len(failed)} failed" if failed else "ok",
               "error": "; ".join(failed)}
        for key, _ in METRICS:
            if not runs:
                break
            if key == "vs_temperature":
                values = [r["final"]["nll_oracle"] - nll_oracle_at_same_diversity(curve, r["final"]["nll_test"])
                          for r in runs] if curve else []
            else:
                values = [r["wall_time"] if key == "wall_time" else r["final"][key] for r in runs
                          if key == "wall_time" or key in r["final"]]
            if values:
                row[key], row[f"{key}_ci"] = mean_ci([float(v) for v in values])
        if runs:
            finals = [float(r["final"]["nll_oracle"]) for r in runs]
            row.update(_iqm_fields(finals, bootstrap))
            row.update(curve_position(runs))
            if not is_control(setting, name):
                references = {control: controls[control] for control in controls_for(name, list(controls))}
                if starts:
                    references[MLE_CONTROL] = starts
                if curve:
                    references[COOLED_MLE_CONTROL] = [nll_oracle_at_same_diversity(curve, r["final"]["nll_test"])
                                                      for r in runs]
                row["p_improve"] = [dict(zip(("control", "p", "low", "high"),
                                             (control, *probability_of_improvement_ci(finals, values, **bootstrap))))
                                    for control, values in references.items()]
        rows.append(row)
    write_table(root, rows, token_budget, bootstrap_reps)
    plot_learning_curves(root / "learning_curves.png", results)
    plot_quality_diversity(root / "quality_diversity.png", curve, results)
    plot_iqm(root / "iqm.png", rows)
    plot_probability_of_improvement(root / "probability_of_improvement.png", rows)
    plot_reward_spread(root / "reward_spread.png", results)
    return rows


def _iqm_fields(values: list[float], bootstrap: dict[str, int]) -> dict[str, float]:
    iqm, low, high = iqm_ci(values, **bootstrap)
    return {"nll_oracle_iqm": iqm, "nll_oracle_iqm_low": low, "nll_oracle_iqm_high": high}


def method_label(setting: str, name: str) -> str:
    """The row label of a method: the agent's name, or what a baseline's reward is (and its update)."""
    if setting == "baseline":
        reward, _, update = name.partition("/")
        described = {"constant": "constant reward", "random": "random reward",
                     "oracle": "oracle log-likelihood reward"}.get(reward)
        if described is None:
            return name
        return f"{update}, {described}" if update not in ("", "reinforce") else f"REINFORCE, {described}"
    return name


def row_label(row: dict[str, Any]) -> str:
    """A row's method with its setting where the method name alone is ambiguous (plots)."""
    return row["method"] if row["setting"] in ("-", "baseline") else f"{row['method']} ({row['setting']})"


STATISTICS_COLUMNS = ("nll_oracle_iqm", "nll_oracle_iqm_low", "nll_oracle_iqm_high", "final_minus_best",
                      "best_tokens", "last_change")
"""Columns of ``results.csv`` after :data:`METRICS`' and before the :func:`improvement_column` ones."""


def improvement_column(control: str) -> str:
    """The ``results.csv`` column of the probability of improvement over ``control``."""
    return "p_improve_vs_" + control.replace(" ", "_")


def _verdict(low: float, high: float) -> str:
    if low > 0.5:
        return "better"
    if high < 0.5:
        return "worse"
    return "not shown to differ"


def write_table(root: Path, rows: list[dict[str, Any]], token_budget: int,
                bootstrap_reps: int = BOOTSTRAP_REPS) -> None:
    """``results.csv`` and ``results.md`` from the rows of :func:`write_report`.

    The CSV has one ``p_improve_vs_<control>`` column (with ``_low`` and ``_high``) per
    control any row was compared with; ``results.md`` lists those comparisons in a second table.
    """
    controls = list(dict.fromkeys(entry["control"] for row in rows for entry in row.get("p_improve", [])))
    improvement_fields = [f"{improvement_column(c)}{end}" for c in controls for end in ("", "_low", "_high")]
    fields = (["setting", "method", "seeds"] + [k for key, _ in METRICS for k in (key, f"{key}_ci")]
              + list(STATISTICS_COLUMNS) + improvement_fields + ["status", "error"])
    with (root / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(row)
            for entry in row.get("p_improve", []):
                for end, key in (("", "p"), ("_low", "low"), ("_high", "high")):
                    flat[f"{improvement_column(entry['control'])}{end}"] = entry[key]
            writer.writerow(flat)
    labels = dict(METRICS)
    columns = ["nll_oracle", "iqm", "nll_test", "entropy", "vs_temperature", "mean_reward", "wall_time", "curve"]
    titles = {**labels, "iqm": "IQM NLL-oracle [95% CI]", "curve": "final − best (best at tokens; last change)"}
    header = "| setting | method | seeds | " + " | ".join(titles[c] for c in columns) + " | status |"
    lines = [f"Budget: {token_budget:,} generated tokens per run; mean ± 95% CI over seeds (Student's t). "
             "IQM: interquartile mean over seeds with a 95% stratified-bootstrap interval "
             f"({bootstrap_reps:,} resamples). "
             "NLL-oracle vs cooled MLE: the run's NLL-oracle minus that of the MLE generator "
             "sampled at the temperature giving the same NLL-test; negative is better than cooling. "
             "final − best: the mean curve's last NLL-oracle minus its lowest (0: still at its best), "
             "the tokens where the lowest was, and the change over the last evaluation interval "
             "(clearly negative: still falling).", "",
             header, "|" + "---|" * (4 + len(columns))]
    for row in rows:
        cells = []
        for key in columns:
            if key == "iqm" and "nll_oracle_iqm" in row:
                cells.append(f"{row['nll_oracle_iqm']:.3f} [{row['nll_oracle_iqm_low']:.3f}, "
                             f"{row['nll_oracle_iqm_high']:.3f}]")
            elif key == "curve" and "final_minus_best" in row:
                cells.append(f"{row['final_minus_best']:+.3f} ({row['best_tokens']:,.0f}; {row['last_change']:+.3f})")
            elif key in row:
                digits = 1 if key == "wall_time" else 3
                cells.append(f"{row[key]:.{digits}f} ± {row[f'{key}_ci']:.{digits}f}")
            else:
                cells.append("–")
        status = row["status"] + (f": {row['error']}" if row.get("error") else "")
        lines.append(f"| {row['setting']} | {row['method']} | {row['seeds']} | " + " | ".join(cells)
                     + f" | {status.replace('|', '/')} |")
    if controls:
        lines += ["", "Probability of improvement: P(NLL-oracle of a run of the method < that of a run of "
                  "the control), ties counting half, with its 95% stratified-bootstrap interval. 0.5: no "
                  f"difference. Controls: the constant- and random-reward runs under the method's own update "
                  f"(all of them where none shares it), {MLE_CONTROL} (the base generator, per seed) and "
                  f"{COOLED_MLE_CONTROL} (the MLE generator cooled to each run's NLL-test). \"better\": the "
                  "whole interval is above 0.5.", "",
                  "| setting | method | control | P(improve) [95% CI] | verdict |", "|---|---|---|---|---|"]
        for row in rows:
            for entry in row.get("p_improve", []):
                lines.append(f"| {row['setting']} | {row['method']} | {entry['control']} | {entry['p']:.2f} "
                             f"[{entry['low']:.2f}, {entry['high']:.2f}] | {_verdict(entry['low'], entry['high'])} |")
    (root / "results.md").write_text("\n".join(lines) + "\n")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Lay out, write (120 dpi) and close a figure."""
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    _pyplot().close(fig)


def _mean_band(ax: Any, runs: list[dict[str, Any]], key: str, label: str) -> None:
    """``key`` against generated tokens: the mean over ``runs`` and its 95% band."""
    xs, stats = mean_curve(runs, key)
    if not xs:
        return
    line, = ax.plot(xs, [m for m, _ in stats], marker=".", label=label)
    ax.fill_between(xs, [m - h for m, h in stats], [m + h for m, h in stats], color=line.get_color(), alpha=0.2)


def _interval_axes(ax: Any, labels: list[str], fontsize: int, title: str, xlabel: str) -> None:
    """The row labels (first at the top), title, x label and grid of a horizontal interval plot."""
    ax.set_yticks(range(len(labels)), labels, fontsize=fontsize)
    ax.invert_yaxis()
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")


SETTING_TITLES = {"fixed": "fixed discriminator", "adversarial": "adversarial (D retrained)", "baseline": "baselines"}


def _settings(results: dict[tuple[str, str], list[dict[str, Any]]]) -> list[str]:
    """The settings with results: the known ones in their usual order, then any other."""
    present = list(dict.fromkeys(setting for (setting, _), runs in sorted(results.items()) if runs))
    return [s for s in SETTING_TITLES if s in present] + [s for s in present if s not in SETTING_TITLES]


def plot_learning_curves(path: Path, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """NLL-oracle against generated tokens, one panel per setting: mean and 95% band over seeds."""
    plt = _pyplot()
    settings = _settings(results)
    if not settings:
        return
    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), sharey=True, squeeze=False)
    for ax, setting in zip(axes[0], settings):
        for (s, name), runs in sorted(results.items()):
            if s != setting or not runs:
                continue
            _mean_band(ax, runs, "nll_oracle", method_label(s, name))
        ax.set_title(SETTING_TITLES.get(setting, setting))
        ax.set_xlabel("generated tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("NLL-oracle (lower: closer to the oracle)")
    save_figure(fig, path)


def plot_iqm(path: Path, rows: list[dict[str, Any]]) -> None:
    """Interval plot: each row's IQM of the final NLL-oracle (tick) and its 95% bootstrap interval (bar)."""
    rows = [r for r in rows if "nll_oracle_iqm" in r]
    if not rows:
        path.unlink(missing_ok=True)  # not an earlier report's plot beside this report's table
        return
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 1.2 + 0.35 * len(rows)))
    for i, row in enumerate(rows):
        control = row["method"] == MLE_CONTROL or row["setting"] == "baseline"
        colour = "0.55" if control else f"C{i % 10}"
        low, high = row["nll_oracle_iqm_low"], row["nll_oracle_iqm_high"]
        ax.barh(i, high - low, left=low, height=0.6, color=colour, alpha=0.7)
        ax.plot([row["nll_oracle_iqm"]], [i], marker="|", markersize=14, color="k")
    mle = next((r for r in rows if r["method"] == MLE_CONTROL), None)
    if mle is not None:
        ax.axvline(mle["nll_oracle_iqm"], color="k", linestyle="--", linewidth=0.8, label="MLE only")
        ax.legend(fontsize=8, loc="lower right")
    ax.use_sticky_edges = False  # bars would otherwise touch the frame
    ax.margins(x=0.05)
    _interval_axes(ax, [row_label(r) for r in rows], 8,
                   "IQM of the final NLL-oracle over seeds, 95% stratified-bootstrap CI",
                   "NLL-oracle (lower is better; grey: controls)")
    save_figure(fig, path)


def plot_probability_of_improvement(path: Path, rows: list[dict[str, Any]]) -> None:
    """Each method's P(improve) over each of its controls (tick) with its 95% interval (bar)."""
    pairs = [(f"{row_label(row)}  vs  {entry['control']}", entry) for row in rows for entry in row.get("p_improve", [])]
    if not pairs:
        path.unlink(missing_ok=True)
        return
    plt = _pyplot()
    controls = list(dict.fromkeys(entry["control"] for _, entry in pairs))
    colours = {c: f"C{i % 10}" for i, c in enumerate(controls)}  # one colour per control
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.3 * len(pairs)))
    for i, (_, entry) in enumerate(pairs):
        ax.barh(i, entry["high"] - entry["low"], left=entry["low"], height=0.6, color=colours[entry["control"]],
                alpha=0.7)
        ax.plot([entry["p"]], [i], marker="|", markersize=12, color="k")  # visible on a zero-width interval too
    ax.axvline(0.5, color="k", linestyle="--", linewidth=0.8)
    ax.set_xlim(-0.03, 1.03)
    _interval_axes(ax, [label for label, _ in pairs], 7,
                   "Probability of improvement over each control, 95% stratified-bootstrap CI",
                   "P(NLL-oracle of method < NLL-oracle of control); above 0.5: method better")
    save_figure(fig, path)


SPREAD_KEYS = (("reward_std", "spread of the reward within a batch (std)"),
               ("d_accuracy", "discriminator accuracy"))


def plot_reward_spread(path: Path, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """``reward_std`` and ``d_accuracy`` over tokens per method, when the runs' evaluations carry them.

    A reward whose spread within a batch falls to 0 tells the update nothing about which
    sequences are better; a discriminator at accuracy 1 gives every generated sequence ~0.
    """
    keys = [(key, label) for key, label in SPREAD_KEYS
            if any(key in point for runs in results.values() for r in runs for point in r["curve"])]
    if not keys:
        path.unlink(missing_ok=True)
        return
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(keys), figsize=(6 * len(keys), 4), squeeze=False)
    for ax, (key, label) in zip(axes[0], keys):
        for (setting, name), runs in sorted(results.items()):
            if not runs:
                continue
            _mean_band(ax, runs, key, row_label({"setting": setting, "method": method_label(setting, name)}))
        ax.set_title(label)
        ax.set_xlabel("generated tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_quality_diversity(path: Path, curve: list[dict[str, float]],
                            results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """NLL-oracle against NLL-test: the MLE temperature curve and every method's final point."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    markers = {"fixed": "o", "adversarial": "s", "baseline": "^"}
    # One colour per method, one marker per setting: REINFORCE fixed and adversarial match.
    names = sorted({name for _, name in results})
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    points = []  # (label, setting, name, x, dx, y, dy) of every method, drawn on both panels
    for (setting, name), runs in sorted(results.items()):
        if not runs:
            continue
        x, dx = mean_ci([r["final"]["nll_test"] for r in runs])
        y, dy = mean_ci([r["final"]["nll_oracle"] for r in runs])
        label = method_label(setting, name) if setting == "baseline" else f"{method_label(setting, name)} ({setting})"
        points.append((label, setting, name, x, dx, y, dy))
    for ax in axes:
        ax.plot([c["nll_test"] for c in curve], [c["nll_oracle"] for c in curve], "k--", marker="o",
                label="MLE at temperature T")
        for c in curve:
            ax.annotate(f"T={c['temperature']:g}", (c["nll_test"], c["nll_oracle"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
        for label, setting, name, x, dx, y, dy in points:
            ax.errorbar(x, y, xerr=dx, yerr=dy, marker=markers.get(setting, "D"), linestyle="none", capsize=2,
                        color=colours[name], label=label)
    if points and curve:
        # The right panel zooms on the RL results and the temperatures next to them.
        x_lo = min(min(p[3] - p[4] for p in points), curve[0]["nll_test"])
        x_hi = max(p[3] + p[4] for p in points)
        y_lo = min(p[5] - p[6] for p in points)
        y_hi = max(max(p[5] + p[6] for p in points), curve[0]["nll_oracle"])
        pad_x, pad_y = 0.15 * (x_hi - x_lo) + 1e-3, 0.1 * (y_hi - y_lo) + 1e-3
        axes[1].set_xlim(x_lo - pad_x, x_hi + pad_x)
        axes[1].set_ylim(y_lo - pad_y, y_hi + pad_y)
        axes[1].set_title("zoom on the RL results", fontsize=9)
    axes[0].set_title("MLE cooled from T=1, and every RL result", fontsize=9)
    for ax in axes:
        ax.set_xlabel("NLL-test (lower: covers the real data better; higher: less diverse)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("NLL-oracle (lower: samples the oracle finds likely)")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_figure(fig, path)
