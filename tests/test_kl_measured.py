"""KL to the MLE generator, measured at every evaluation: ``evaluate(reference=)``, ``seqgan train``'s
metrics.csv and TensorBoard, ``seqgan evaluate --reference``, and ``seqgan train --kl-beta``."""

from __future__ import annotations

import copy
import csv
import json

import pytest
import torch

from seqgan_env.divergence import kl_to_reference
from seqgan_env.models import Generator, Oracle
from seqgan_env.presets import get_preset
from train.adversarial import evaluate
from train.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def models() -> tuple[Generator, Generator, Oracle]:
    preset = get_preset("tiny")
    torch.manual_seed(2)
    reference = Generator.from_preset(preset).eval()
    moved = copy.deepcopy(reference)
    with torch.no_grad():
        moved.output.bias.add_(torch.randn_like(moved.output.bias))
    return moved, reference, Oracle.from_preset(preset)


def test_evaluation_measures_kl_on_its_own_samples():
    generator, reference, oracle = models()
    test = oracle.sample(200, torch.Generator().manual_seed(0))
    plain = evaluate(generator, oracle, test, 500, torch.Generator().manual_seed(4))
    measured, samples = evaluate(generator, oracle, test, 500, torch.Generator().manual_seed(4), return_samples=True,
                                 reference=reference)
    assert "kl" not in plain and "kl_stderr" not in plain
    # The same samples as the evaluation's NLL-oracle, the same draw as without a reference.
    assert measured["nll_oracle"] == plain["nll_oracle"] and measured["nll_test"] == plain["nll_test"]
    independent = kl_to_reference(generator, reference, samples=samples)
    assert measured["kl"] == pytest.approx(independent.kl, rel=1e-12)
    assert measured["kl_stderr"] == pytest.approx(independent.kl_stderr, rel=1e-12)
    assert measured["entropy"] == pytest.approx(plain["entropy"], rel=1e-5)
    assert measured["kl"] > 5 * measured["kl_stderr"] > 0  # the shifted output layer is far from the reference
    itself = evaluate(reference, oracle, test, 500, torch.Generator().manual_seed(4), reference=reference)
    assert itself["kl"] == 0.0 and itself["kl_stderr"] == 0.0


def rows(folder, phase=None):
    with open(folder / "metrics.csv") as handle:
        return [row for row in csv.DictReader(handle) if phase is None or row["phase"] == phase]


def test_train_logs_kl_to_its_mle_generator_at_every_adversarial_evaluation(whole_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = whole_run("reinforce")
    evaluated = [r for r in rows(out, "adversarial") if r["nll_oracle"]]
    assert evaluated and all(float(r["kl"]) > 0 and float(r["kl_stderr"]) > 0 for r in evaluated)
    assert all(r["policy_kl"] and r["policy_entropy"] for r in rows(out, "adversarial"))
    assert not any(r["kl"] for r in rows(out) if r["phase"] != "adversarial")  # before, G is the MLE generator
    events = EventAccumulator(str(out / "tb"))
    events.Reload()
    assert {"adversarial/kl", "adversarial/kl_stderr", "adversarial/policy_kl"} <= set(events.Tags()["scalars"])


def test_evaluate_reference_prints_kl_and_its_standard_error(whole_run, capsys):
    out = whole_run("reinforce")
    args = ["evaluate", "--checkpoint", str(out / "generator.pt"), "--preset", "tiny", "--num", "300"]
    assert main(args + ["--reference", str(out)]) == 0  # a run folder: its generator_mle.pt
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["kl"] > 0 and metrics["kl_stderr"] > 0
    assert "KL(generator || reference) = " in captured.err and "nats per sequence" in captured.err
    assert main(args + ["--reference", str(out / "generator.pt")]) == 0
    assert json.loads(capsys.readouterr().out)["kl"] == 0.0
    assert main(args + ["--reference", str(out / "tb")]) == 2
    assert "without generator_mle.pt" in capsys.readouterr().err


def test_train_kl_beta_is_kept_by_the_run_and_checked(tmp_path, capsys):
    out = tmp_path / "held"
    assert main(["train", "--preset", "tiny", "--out", str(out), "--steps", "2", "--kl-beta", "0.5"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["kl_beta"] == 0.5 and summary["final"]["kl"] > 0
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--steps", "3", "--kl-beta", "0.1"]) == 2
    assert "--kl-beta 0.1 conflicts with the run's kl beta 0.5" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "bad"), "--kl-beta", "-1"]) == 2
    assert "--kl-beta must be >= 0" in capsys.readouterr().err
