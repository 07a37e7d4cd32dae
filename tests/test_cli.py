"""The ``seqgan`` command: the pipeline end to end, kill-and-resume, sampling, evaluation, errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO
from train.cli import main

TIMINGS = ("wall_time", "env_steps_per_s")
"""Columns that measure speed: they differ between two runs of the same training."""


def read_metrics(folder):
    with open(folder / "metrics.csv") as handle:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(handle)]


def assert_same_metrics(resumed, whole):
    """Rows of two ``metrics.csv`` files (from :func:`read_metrics`): the same rows and columns,
    every value the same to the last digit. Both runs train at the same torch thread count (the
    killed one is started with the test process's, see :func:`same_threads_env`): a different
    count rounds reductions differently, the one cause of last-digit differences found."""
    assert [(r["phase"], r["step"], r["epoch"]) for r in resumed] == [(r["phase"], r["step"], r["epoch"]) for r in whole]
    for row, reference in zip(resumed, whole):
        assert row == reference, (reference["phase"], reference["step"])


def same_threads_env():
    """The environment of a ``seqgan`` subprocess that trains at this process's torch thread count."""
    import torch

    return dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(torch.get_num_threads()))


@pytest.fixture(scope="module")
def tiny_run(whole_run):
    """The uninterrupted tiny REINFORCE run (shared with tests/test_persistence.py; read, never changed)."""
    return whole_run("reinforce")


def test_train_writes_models_logs_curve_and_summary(tiny_run):
    for name in ("generator.pt", "discriminator.pt", "checkpoint.pt", "learning_curve.png", "summary.json"):
        assert (tiny_run / name).is_file(), name
    assert list((tiny_run / "tb").glob("events.out.tfevents.*")), "TensorBoard log"
    rows = read_metrics(tiny_run)
    phases = [r["phase"] for r in rows]
    assert phases[0] == "mle" and "d_pretrain" in phases and phases[-1] == "adversarial"
    assert [int(r["step"]) for r in rows if r["phase"] == "adversarial"] == [1, 2, 3, 4, 5, 6]
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["final"]["phase"] == "adversarial" and summary["final"]["nll_oracle"] > 0
    # MLE lowered NLL-oracle from the untrained generator's.
    evaluated = [float(r["nll_oracle"]) for r in rows if r["phase"] == "mle" and r["nll_oracle"]]
    assert evaluated[-1] < evaluated[0] - 0.1


def test_a_killed_run_resumes_and_loses_nothing(tiny_run, tmp_path):
    out = tmp_path / "killed"
    env = same_threads_env()
    proc = subprocess.Popen([sys.executable, "-m", "train.cli", "train", "--preset", "tiny", "--out", str(out)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "checkpoint.pt").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (out / "summary.json").exists()
    assert main(["train", "--resume", "--out", str(out)]) == 0
    # The resumed run is the uninterrupted one, metric for metric.
    assert_same_metrics(read_metrics(out), read_metrics(tiny_run))


def test_sample_writes_one_sequence_per_line(tiny_run, tmp_path):
    out = tmp_path / "samples.txt"
    assert main(["sample", "--checkpoint", str(tiny_run / "generator.pt"), "--num", "7", "--out", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert len(lines) == 7
    assert all(len(line.split()) == 8 and all(0 <= int(t) < 64 for t in line.split()) for line in lines)


def test_evaluate_prints_metrics(tiny_run, capsys):
    assert main(["evaluate", "--checkpoint", str(tiny_run / "generator.pt"), "--preset", "tiny", "--num", "300"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) >= {"nll_oracle", "nll_test", "entropy"}


def test_errors_are_reported_not_raised(tiny_run, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "checkpoint.pt").write_bytes(b"\x00" * 100)
    assert main(["train", "--resume", "--out", str(tmp_path / "corrupt")]) == 2
    assert "corrupt" in capsys.readouterr().err
    assert main(["train", "--preset", "tiny", "--out", str(tiny_run)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    np.savez(tmp_path / "wrong.npz", embedding=np.zeros((3, 2), np.float32))
    assert main(["train", "--preset", "tiny", "--oracle", str(tmp_path / "wrong.npz"), "--out", str(tmp_path / "x")]) == 2
    assert "missing arrays" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "huge"])


@pytest.mark.parametrize("algo", ["ppo", "a2c"])
def test_sb3_algorithms_train_in_the_pipeline_and_resume(algo, tmp_path, whole_run):
    """Killed (SIGKILL) after an adversarial step is saved, resumed: every metric and the final
    generator are the uninterrupted run's."""
    import torch

    from seqgan_env.checkpoint import load_checkpoint

    out = tmp_path / algo
    env = same_threads_env()
    proc = subprocess.Popen([sys.executable, "-m", "train.cli", "train", "--preset", "tiny", "--algo", algo,
                             "--out", str(out)], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline:  # kill once an adversarial step is saved
        if (out / "checkpoint.pt").exists():
            state = load_checkpoint(out / "checkpoint.pt", "training-run")["state"]
            if state["phase"] == "adversarial" and state["adversarial_steps"] >= 1:
                break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert main(["train", "--resume", "--out", str(out)]) == 0
    rows = read_metrics(out)
    assert [int(r["step"]) for r in rows if r["phase"] == "adversarial"] == [1, 2, 3, 4, 5, 6]
    final = json.loads((out / "summary.json").read_text())["final"]
    assert final["phase"] == "adversarial" and final["nll_oracle"] > 0
    whole = whole_run(algo)
    assert_same_metrics(rows, read_metrics(whole))  # every column but the timings, every row
    weights = {name: load_checkpoint(folder / "generator.pt", "generator")["state_dict"] for name, folder in
               (("resumed", out), ("whole", whole))}
    for name, tensor in weights["whole"].items():
        assert torch.equal(weights["resumed"][name], tensor), name


def test_benchmark_reports_read_a_finished_run(tiny_run, tmp_path, capsys):
    from benchmarks import d_schedule, paper_table

    figure = tmp_path / "d.png"
    assert d_schedule.main([f"{tiny_run}:tiny", "--out", str(figure)]) == 0
    printed = capsys.readouterr().out
    # Evaluations every 2 of the 6 adversarial steps, printed per run.
    assert printed.startswith("tiny: 2: ") and ", 6: " in printed
    assert figure.stat().st_size > 10_000
    with pytest.raises(FileNotFoundError, match="metrics.csv"):
        d_schedule.main([str(tmp_path / "nowhere")])
    assert paper_table.main(["--out", str(tiny_run), "--report-only"]) == 0
    table = capsys.readouterr().out
    assert "untrained" in table and "SeqGAN (best evaluation)" in table
    # D's held-out figures beside the table: those of each phase's last logged row, as metrics.csv has them.
    held_out = json.loads((tiny_run / "paper_table.json").read_text())["held_out_d"]
    with open(tiny_run / "metrics.csv") as handle:
        logged = [r for r in csv.DictReader(handle) if r.get("d_heldout_auc")]
    for phase, label in (("d_pretrain", "after D pretraining"), ("adversarial", "after the adversarial phase")):
        last = [r for r in logged if r["phase"] == phase][-1]
        assert held_out[phase]["d_heldout_auc"] == pytest.approx(float(last["d_heldout_auc"]))
        assert (f"D on held-out data, {label}: accuracy {float(last['d_heldout_accuracy']):.3f}, "
                f"ROC-AUC {float(last['d_heldout_auc']):.3f}") in table
