"""How the discriminator's schedule shapes SeqGAN on the paper's oracle: a figure from runs.

Give it finished or partial ``seqgan train`` folders that share their pretraining and differ
in the adversarial phase's D schedule; it plots NLL-oracle and D's accuracy against the
adversarial step, one line per run, and prints the evaluations side by side. D's accuracy is
that of its training epoch, or for runs with ``d_target_accuracy`` the accuracy on fresh
samples measured before each decision to retrain it::

    python -m benchmarks.d_schedule runs/neg5000:"5,000 negatives" runs/neg500:"500 negatives" \\
        --out docs/figures/d_schedule.png

Each run is ``FOLDER`` or ``FOLDER:LABEL``. The README's figure came from four runs of the
``cpu`` preset's pretraining that differ only in the adversarial D schedule: 5,000, 1,000
and 500 fresh negatives after every update, and 500 with ``d_target_accuracy=0.9`` (the
preset).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def adversarial_rows(folder: Path) -> list[dict[str, float]]:
    """The adversarial-phase rows of a run's ``metrics.csv`` with numbers parsed."""
    path = folder / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: is {folder} a seqgan train folder?")
    with path.open() as handle:
        rows = [r for r in csv.DictReader(handle) if r["phase"] == "adversarial"]
    return [{k: float(v) for k, v in r.items() if k != "phase" and v != ""} for r in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="FOLDER or FOLDER:LABEL")
    parser.add_argument("--out", default="d_schedule.png")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(6.5, 6), sharex=True)
    for spec in args.runs:
        folder, _, label = spec.partition(":")
        rows = adversarial_rows(Path(folder))
        evaluated = [r for r in rows if "nll_oracle" in r]
        line, = top.plot([r["step"] for r in evaluated], [r["nll_oracle"] for r in evaluated], marker=".",
                         label=label or folder)
        # A gated run measures D on held-out sequences every step; others log their training epoch's
        # accuracy (``d_train_accuracy``; ``d_accuracy`` in runs logged before it was named so).
        key = next((k for k in ("d_accuracy_fresh", "d_train_accuracy", "d_accuracy") if any(k in r for r in rows)),
                   "d_accuracy_fresh")
        measured = [r for r in rows if key in r]
        bottom.plot([r["step"] for r in measured], [r[key] for r in measured], color=line.get_color(), linewidth=1)
        print(f"{label or folder}: " + ", ".join(f"{int(r['step'])}: {r['nll_oracle']:.3f}" for r in evaluated))
    top.axhline(8.736, color="grey", linestyle="--", linewidth=1, label="paper's SeqGAN (8.736)")
    top.set_ylabel("NLL-oracle")
    top.legend(fontsize=8)
    top.grid(alpha=0.3)
    bottom.set_ylabel("D accuracy")
    bottom.set_xlabel("adversarial step (generator updates)")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    plt.close(fig)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
