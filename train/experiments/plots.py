"""The comparison's plots: learning curves, intervals, probabilities of improvement, reward spread,
quality against diversity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from train.experiments.runs import method_label, row_label
from train.experiments.statistics import MLE_CONTROL, mean_ci, mean_curve


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


CURVE_METRICS = (("reverse_kl", "reverse KL(G || oracle), nats/token"),
                 ("forward_kl", "forward KL(oracle || G), nats/token"),
                 ("nll_oracle", "NLL-oracle (lower: closer to the oracle)"))
"""The learning curves' rows: the divergences to the oracle (where the runs logged them), then NLL-oracle."""


def plot_learning_curves(path: Path, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """Reverse KL, forward KL and NLL-oracle against generated tokens (a row each; the divergences where
    the runs logged them), one column per setting: mean and 95% band over seeds."""
    plt = _pyplot()
    settings = _settings(results)
    if not settings:
        return
    metrics = [(key, label) for key, label in CURVE_METRICS
               if any(key in r["curve"][0] for runs in results.values() for r in runs if r.get("curve"))]
    fig, axes = plt.subplots(len(metrics), len(settings), figsize=(5 * len(settings), 4 * len(metrics)),
                             sharey="row", squeeze=False)
    for row, (key, label) in enumerate(metrics):
        for ax, setting in zip(axes[row], settings):
            for (s, name), runs in sorted(results.items()):
                if s != setting or not runs:
                    continue
                _mean_band(ax, runs, key, method_label(s, name))
            ax.set_title(SETTING_TITLES.get(setting, setting))
            ax.set_xlabel("generated tokens")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        axes[row][0].set_ylabel(label)
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
               ("d_train_accuracy", "D's accuracy on its training positives"),
               ("d_heldout_auc", "D's ROC-AUC on held-out real vs. fresh samples"))


def plot_reward_spread(path: Path, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """``reward_std``, ``d_train_accuracy`` and ``d_heldout_auc`` over tokens per method, when the
    runs' evaluations carry them.

    A reward whose spread within a batch falls to 0 tells the update nothing about which
    sequences are better; a discriminator at training accuracy 1 gives every generated sequence
    ~0; one whose held-out AUC is near 0.5 tells real from generated no better than a coin.
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


def _band(ax: Any, xs: list[float], stats: list[tuple[float, float]], label: str, style: dict[str, Any]) -> Any:
    """A line of means with its 95% band; the line drawn."""
    line, = ax.plot(xs, [m for m, _ in stats], label=label, **style)
    ax.fill_between(xs, [m - h for m, h in stats], [m + h for m, h in stats], color=line.get_color(), alpha=0.15)
    return line


def plot_overoptimisation(path: Path, panels: list[dict[str, Any]]) -> None:
    """Gold (NLL-oracle) and proxy (mean reward) against ``d = sqrt(KL)``, one row of two panels per reward.

    Each panel's series (:func:`train.experiments.kl_report.plot_panels`): the runs on that reward
    (mean and 95% band over seeds), best-of-n by that reward's score (hollow markers: the same
    points at the analytic bound's ``d``), the tempered MLE, and each fit of Gao et al. (dashed).
    """
    panels = [p for p in panels if p["series"]]
    if not panels:
        path.unlink(missing_ok=True)
        return
    plt = _pyplot()
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.6 * len(panels)), squeeze=False)
    styles = {"run": {"marker": "."}, "best-of-n": {"marker": "o", "markersize": 3},
              "tempered": {"color": "k", "linestyle": ":", "marker": "x", "markersize": 4}}
    for (gold_ax, proxy_ax), panel in zip(axes, panels):
        for series in panel["series"]:
            if not series["d"]:
                continue
            line = _band(gold_ax, series["d"], series["gold"], series["label"], styles[series["kind"]])
            if series.get("fit"):
                gold_ax.plot(*series["fit"], linestyle="--", linewidth=0.9, color=line.get_color())
            if series.get("d_bound"):
                gold_ax.plot(series["d_bound"], [m for m, _ in series["gold"]], linestyle="none", marker="o",
                             markerfacecolor="none", markersize=4, color=line.get_color())
            if series["proxy_d"]:
                _band(proxy_ax, series["proxy_d"], series["proxy"], series["label"],
                      {**styles[series["kind"]], "color": line.get_color()})
        gold_ax.set_title(f"{panel['title']}: gold", fontsize=9)
        proxy_ax.set_title(f"{panel['title']}: proxy (its own reward)", fontsize=9)
        gold_ax.set_ylabel("NLL-oracle (lower is better)")
        proxy_ax.set_ylabel("mean reward / best-of-n score")
        for ax in (gold_ax, proxy_ax):
            ax.set_xlabel("d = sqrt(KL to the MLE generator, nats per sequence)")
            ax.grid(alpha=0.3)
        gold_ax.legend(fontsize=7)
    save_figure(fig, path)


def plot_divergences(path: Path, tempered: list[dict[str, Any]],
                     results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    """Reverse KL (what G writes that the data would not) against forward KL (what the data writes
    that G has lost), both per token to the oracle: every method's final point (mean ± 95% CI over
    seeds), the MLE generator it started from and the MLE generator at each temperature (``tempered``:
    :func:`train.experiments.kl_report.tempered_rows`). The oracle itself is at (0, 0)."""
    import math

    finals = {key: runs for key, runs in sorted(results.items())
              if runs and all(r["final"].get("forward_kl") is not None for r in runs)}
    curve = [t for t in tempered if math.isfinite(t.get("reverse_kl", math.nan))]
    if not finals and not curve:
        path.unlink(missing_ok=True)
        return
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 5))
    if curve:
        ax.errorbar([t["forward_kl"] for t in curve], [t["reverse_kl"] for t in curve],
                    xerr=[t["forward_kl_ci"] for t in curve], yerr=[t["reverse_kl_ci"] for t in curve],
                    color="k", linestyle=":", marker="x", capsize=2, label="MLE at temperature T")
        for t in curve:
            ax.annotate(f"T={t['temperature']:g}", (t["forward_kl"], t["reverse_kl"]), fontsize=7,
                        textcoords="offset points", xytext=(4, 4))
    starts = [r["curve"][0] for runs in finals.values() for r in runs if r["curve"][0].get("tokens") == 0]
    if starts:
        ax.plot(mean_ci([s["forward_kl"] for s in starts])[0], mean_ci([s["reverse_kl"] for s in starts])[0],
                marker="*", markersize=12, color="k", linestyle="none", label=MLE_CONTROL)
    for (setting, name), runs in finals.items():
        x, dx = mean_ci([r["final"]["forward_kl"] for r in runs])
        y, dy = mean_ci([r["final"]["reverse_kl"] for r in runs])
        label = method_label(setting, name) if setting == "baseline" else f"{method_label(setting, name)} ({setting})"
        ax.errorbar(x, y, xerr=dx, yerr=dy, marker="o", linestyle="none", capsize=2, label=label)
    ax.set_xlabel("forward KL(oracle || G), nats per token (coverage lost)")
    ax.set_ylabel("reverse KL(G || oracle), nats per token (quality lost)")
    ax.set_title("distance to the oracle both ways (lower left is better; the oracle is at 0, 0)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    save_figure(fig, path)


def plot_regret(path: Path, series: list[dict[str, Any]], levels: list[dict[str, Any]]) -> None:
    """The exact-regret task: regret (reverse KL per token) against sampled sequences and against wall time.

    ``series``: each with ``label``, ``kind`` (``algorithm``: a mean over seeds with its 95% band ``half``;
    ``reference``: a trained reference line, dashed) and per point ``sequences``, ``wall_time``, ``mean``,
    ``half``; ``levels``: reference values without a budget of their own (``label``, ``value``, ``kind``:
    ``cooled`` or ``best-of-n`` with its ``n``), drawn as horizontal lines on both panels."""
    import math

    if not series:
        path.unlink(missing_ok=True)
        return
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), sharey=True)
    for ax, x_key, x_label in ((axes[0], "sequences", "sampled sequences"), (axes[1], "wall_time", "training time (s), evaluations excluded")):
        for s in series:
            points = [(x, m, h) for x, m, h in zip(s[x_key], s["mean"], s["half"]) if math.isfinite(x)]
            if not points:
                continue
            xs, means, halves = zip(*points)
            style = {"linestyle": "--", "linewidth": 1.6} if s["kind"] == "reference" else {}
            line, = ax.plot(xs, means, marker=".", label=s["label"], **style)
            if s["kind"] == "algorithm" or all(math.isfinite(h) for h in halves):
                ax.fill_between(xs, [m - h for m, h in zip(means, halves)], [m + h for m, h in zip(means, halves)],
                                color=line.get_color(), alpha=0.15)
        named = set()
        for level in levels:
            # One legend entry per kind of level; each line says which it is at the panel's right edge.
            cooled = level.get("kind") == "cooled"
            label = level["label"] if cooled else "best-of-n by D*'s logit (n at the right)"
            ax.axhline(level["value"], color="k" if cooled else "0.5", linestyle="-." if cooled else ":",
                       linewidth=1.0, label=None if label in named else label)
            named.add(label)
            if not cooled:
                ax.text(1.0, level["value"], f" n={level['n']}", transform=ax.get_yaxis_transform(), fontsize=7,
                        va="center", ha="left", color="0.4")
        ax.set_xlabel(x_label)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("regret: reverse KL(G || oracle), nats/token")
    axes[0].set_title("regret against sampled sequences")
    axes[1].set_title("regret against training time")
    axes[1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.06, 1.0))
    save_figure(fig, path)
