"""The learning-curve figure of a ``seqgan train`` run (the paper's figure, and the divergences beside it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

PHASES = (("mle", "tab:blue", "MLE pretraining"), ("adversarial", "tab:red", "SeqGAN"))
DIVERGENCES = (("reverse_kl", "-", "reverse KL(G || oracle)"), ("forward_kl", "--", "forward KL(oracle || G)"))


def plot_learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """NLL-oracle (NLL-test for text) against epochs, MLE and adversarial phases marked (the paper's
    figure); where the run logged them, a second panel with ``reverse_kl`` and ``forward_kl`` per
    token and their standard errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "nll_oracle" if any("nll_oracle" in r for r in history) else "nll_test"
    has_divergences = any(r.get("reverse_kl") is not None for r in history)
    fig, axes = plt.subplots(1, 2 if has_divergences else 1, figsize=(11 if has_divergences else 6, 4),
                             squeeze=False)
    ax = axes[0][0]
    points = [(r["epoch"], r[metric], r["phase"]) for r in history if metric in r]
    for phase, colour, label in PHASES:
        xs = [p[0] for p in points if p[2] == phase]
        ys = [p[1] for p in points if p[2] == phase]
        if xs:
            ax.plot(xs, ys, marker=".", color=colour, label=label)
    ax.set_ylabel("NLL-oracle" if metric == "nll_oracle" else "NLL-test (held-out text)")
    if has_divergences:
        divergence_ax = axes[0][1]
        for key, style, name in DIVERGENCES:
            for phase, colour, label in PHASES:
                rows = [r for r in history if r["phase"] == phase and r.get(key) is not None]
                if rows:
                    divergence_ax.errorbar([r["epoch"] for r in rows], [r[key] for r in rows],
                                           yerr=[r.get(f"{key}_stderr", 0.0) for r in rows], linestyle=style,
                                           marker=".", color=colour, label=f"{name}, {label}")
        divergence_ax.set_ylabel("nats per token (lower: closer to the oracle)")
    mle_end = max((r["epoch"] for r in history if r["phase"] == "mle"), default=None)
    for axis in axes[0]:
        if mle_end is not None and any(r["phase"] == "adversarial" for r in history):
            axis.axvline(mle_end, color="grey", linestyle="--", linewidth=1)
        axis.set_xlabel("epoch (MLE epochs, then adversarial steps)")
        axis.legend(fontsize=8)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
