"""Reporting of a comparison: statistics, the results table and the plots.

Kept apart from running trials (:mod:`train.compare`): everything here reads finished
results (plain dicts, as the runs' JSON files hold them) and writes files; nothing trains.
"""

from __future__ import annotations

import csv
import math
import statistics
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


METRICS = (("nll_oracle", "NLL-oracle"), ("nll_test", "NLL-test"),
           ("vs_temperature", "NLL-oracle vs cooled MLE"),
           ("mean_reward", "final mean reward"), ("wall_time", "wall time (s)"))


def nll_oracle_at_same_diversity(curve: list[dict[str, float]], nll_test: float) -> float:
    """NLL-oracle of the MLE generator cooled to the temperature that gives ``nll_test``.

    Linear interpolation along the temperature curve (clamped at its ends): what lowering
    the sampling temperature alone buys for the same loss of diversity.
    """
    points = sorted((c["nll_test"], c["nll_oracle"]) for c in curve)
    return float(np.interp(nll_test, [x for x, _ in points], [y for _, y in points]))


def write_report(root: Path, jobs: list[tuple[str, str, int]], results: dict[tuple[str, str], list[dict[str, Any]]],
                 errors: dict[tuple[str, str], list[str]], curve: list[dict[str, float]], seeds: tuple[int, ...],
                 token_budget: int) -> list[dict[str, Any]]:
    """Write ``results.md``, ``results.csv``, ``learning_curves.png`` and ``quality_diversity.png``; return the rows.

    ``results`` maps ``(setting, name)`` to the result files of its finished seeds,
    ``errors`` to the errors of its failed seeds (its row's ``status`` says so; the
    statistics are over the seeds that finished), ``curve`` is the MLE temperature curve.
    """
    rows = []
    mle = curve[0] if curve and curve[0]["temperature"] == 1.0 else None
    if mle is not None:
        rows.append({"setting": "-", "method": "MLE only", "seeds": len(seeds),
                     "nll_oracle": mle["nll_oracle"], "nll_oracle_ci": mle["nll_oracle_ci"],
                     "nll_test": mle["nll_test"], "nll_test_ci": 0.0, "status": "ok", "error": ""})
    methods = list(dict.fromkeys((job[0], job[1]) for job in jobs))
    for setting, name in methods:
        runs, failed = results.get((setting, name), []), errors.get((setting, name), [])
        if not runs and not failed:
            continue  # not run yet
        row: dict[str, Any] = {"setting": setting, "method": method_label(setting, name), "seeds": len(runs),
                               "status": f"{len(failed)} of {len(runs) + len(failed)} failed" if failed else "ok",
                               "error": "; ".join(failed)}
        for key, _ in METRICS:
            if not runs:
                break
            if key == "vs_temperature":
                values = [r["final"]["nll_oracle"] - nll_oracle_at_same_diversity(curve, r["final"]["nll_test"])
                          for r in runs] if curve else []
            else:
                values = [r["wall_time"] if key == "wall_time" else r["final"][key] for r in runs]
            if values:
                row[key], row[f"{key}_ci"] = mean_ci([float(v) for v in values])
        rows.append(row)
    write_table(root, rows, token_budget)
    plot_learning_curves(root / "learning_curves.png", results)
    plot_quality_diversity(root / "quality_diversity.png", curve, results)
    return rows




def method_label(setting: str, name: str) -> str:
    """The row label of a method: the agent's name (`` @ reward`` where not the paper's), or what a
    baseline's reward is and which REINFORCE variant it runs under (``constant/reinforce-mean``)."""
    if setting == "baseline":
        kind, _, update = name.partition("/")
        reward = {"constant": "constant reward", "random": "random reward",
                  "oracle": "oracle log-likelihood reward"}[kind]
        return f"{'REINFORCE' if update in ('', 'reinforce') else update}, {reward}"
    return name


def write_table(root: Path, rows: list[dict[str, Any]], token_budget: int) -> None:
    """``results.csv`` and ``results.md`` from the rows of :func:`write_report`."""
    fields = ["setting", "method", "seeds"] + [k for key, _ in METRICS for k in (key, f"{key}_ci")] + ["status", "error"]
    with (root / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    header = "| setting | method | seeds | " + " | ".join(label for _, label in METRICS) + " | status |"
    lines = [f"Budget: {token_budget:,} generated tokens per run; mean ± 95% CI over seeds. "
             "NLL-oracle vs cooled MLE: the run's NLL-oracle minus that of the MLE generator "
             "sampled at the temperature giving the same NLL-test; negative is better than cooling.", "",
             header, "|" + "---|" * (4 + len(METRICS))]
    for row in rows:
        cells = []
        for key, _ in METRICS:
            if key in row:
                digits = 1 if key == "wall_time" else 3
                cells.append(f"{row[key]:.{digits}f} ± {row[f'{key}_ci']:.{digits}f}")
            else:
                cells.append("–")
        status = row["status"] + (f": {row['error']}" if row.get("error") else "")
        lines.append(f"| {row['setting']} | {row['method']} | {row['seeds']} | " + " | ".join(cells)
                     + f" | {status.replace('|', '/')} |")
    (root / "results.md").write_text("\n".join(lines) + "\n")


def plot_learning_curves(path: Path, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """NLL-oracle against generated tokens, one panel per setting: mean and 95% band over seeds."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = [s for s in ("fixed", "adversarial", "baseline") if any(k[0] == s for k in results)]
    if not settings:
        return
    fig, axes = plt.subplots(1, len(settings), figsize=(5 * len(settings), 4), sharey=True, squeeze=False)
    titles = {"fixed": "fixed discriminator", "adversarial": "adversarial (D retrained)", "baseline": "baselines"}
    for ax, setting in zip(axes[0], settings):
        for (s, name), runs in sorted(results.items()):
            if s != setting:
                continue
            steps = min(len(r["curve"]) for r in runs)
            xs = [statistics.fmean(r["curve"][i]["tokens"] for r in runs) for i in range(steps)]
            stats = [mean_ci([r["curve"][i]["nll_oracle"] for r in runs]) for i in range(steps)]
            means = [m for m, _ in stats]
            line, = ax.plot(xs, means, marker=".", label=method_label(s, name))
            ax.fill_between(xs, [m - h for m, h in stats], [m + h for m, h in stats], color=line.get_color(),
                            alpha=0.2)
        ax.set_title(titles[setting])
        ax.set_xlabel("generated tokens")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("NLL-oracle (lower: closer to the oracle)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_quality_diversity(path: Path, curve: list[dict[str, float]],
                            results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """NLL-oracle against NLL-test: the MLE temperature curve and every method's final point."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    markers = {"fixed": "o", "adversarial": "s", "baseline": "^"}
    # One colour per method, one marker per setting: REINFORCE fixed and adversarial match.
    names = sorted({name for _, name in results})
    colours = {name: f"C{i % 10}" for i, name in enumerate(names)}
    points = []  # (label, setting, name, x, dx, y, dy) of every method, drawn on both panels
    for (setting, name), runs in sorted(results.items()):
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
            ax.errorbar(x, y, xerr=dx, yerr=dy, marker=markers[setting], linestyle="none", capsize=2,
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
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
