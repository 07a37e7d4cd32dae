"""The learning-curve figure of a ``seqgan train`` run (the paper's figure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def plot_learning_curve(history: list[dict[str, Any]], path: Path) -> None:
    """NLL-oracle (NLL-test for text) against epochs, MLE and adversarial phases marked (the paper's figure)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "nll_oracle" if any("nll_oracle" in r for r in history) else "nll_test"
    points = [(r["epoch"], r[metric], r["phase"]) for r in history if metric in r]
    fig, ax = plt.subplots(figsize=(6, 4))
    for phase, colour, label in (("mle", "tab:blue", "MLE pretraining"), ("adversarial", "tab:red", "SeqGAN")):
        xs = [p[0] for p in points if p[2] == phase]
        ys = [p[1] for p in points if p[2] == phase]
        if xs:
            ax.plot(xs, ys, marker=".", color=colour, label=label)
    mle_end = max((r["epoch"] for r in history if r["phase"] == "mle"), default=None)
    if mle_end is not None and any(p[2] == "adversarial" for p in points):
        ax.axvline(mle_end, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("epoch (MLE epochs, then adversarial steps)")
    ax.set_ylabel("NLL-oracle" if metric == "nll_oracle" else "NLL-test (held-out text)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
