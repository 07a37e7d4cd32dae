"""``seqgan train`` logs D's held-out metrics per evaluation; training-epoch accuracy only by its own name."""

from __future__ import annotations

import csv

from train.cli import main

HELD_OUT = ("d_heldout_accuracy", "d_heldout_auc", "d_heldout_brier", "d_heldout_log_ratio_spearman")


def test_train_logs_held_out_discriminator_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--steps", "2"]) == 0
    with open(out / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert "d_accuracy" not in rows[0], "an accuracy on D's training positives must say so (d_train_accuracy)"
    pretrain = [r for r in rows if r["phase"] == "d_pretrain"]
    assert all(r["d_train_accuracy"] for r in pretrain)
    assert all(r[key] for key in HELD_OUT for r in pretrain[-1:])  # the pretrained D, held out
    evaluated = [r for r in rows if r["phase"] == "adversarial" and r.get("nll_oracle")]
    assert evaluated
    # Recomputed at every evaluation (D is retrained at every adversarial step), not the pretrained
    # D's figures carried over. (Their values are checked against a direct computation in
    # tests/test_diagnostics.py.)
    pretrained = {key: pretrain[-1][key] for key in HELD_OUT}
    for row in evaluated:
        assert {key: row[key] for key in HELD_OUT} != pretrained, row["step"]
    assert all(not r.get("d_heldout_auc") for r in rows if r["phase"] == "mle")  # D untrained there: not logged
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert {f"adversarial/{key}" for key in HELD_OUT} <= set(events.Tags()["scalars"])
