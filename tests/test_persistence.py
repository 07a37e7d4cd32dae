"""Nothing lost, nothing silently ignored: durable checkpoints, resume conflicts, logs and RNGs on resume, Ctrl-C."""

from __future__ import annotations

import csv
import os
import shlex
import shutil
import stat

import pytest
import torch

from seqgan_env.checkpoint import atomic_save, load_checkpoint
from seqgan_env.models import Oracle
from seqgan_env.presets import get_preset
from tests.test_trust import _RunsCommand, evil_sb3_archive, no_sb3_archives  # noqa: F401 (a fixture)
from train import algorithms
from train.cli import main
from train.config import get_train_config
from train.pipeline import ALGOS, Run

TIMINGS = ("wall_time", "env_steps_per_s")
"""Columns that measure speed: they differ between two runs of the same training."""


def test_atomic_save_fsyncs_file_and_folder_without_touching_the_umask(tmp_path, monkeypatch):
    umask = os.umask(0o022)
    os.umask(umask)
    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def no_umask(mask):
        raise AssertionError("os.umask changes the mask of the whole process")

    monkeypatch.setattr(os, "fsync", recording_fsync)
    monkeypatch.setattr(os, "umask", no_umask)
    target = tmp_path / "sub" / "ckpt.pt"
    atomic_save({"x": torch.arange(3)}, target)
    assert len(synced) == 2
    assert synced[0].startswith(str(target.parent / ".ckpt.pt.")) and synced[0].endswith(".tmp")  # the data
    assert synced[1] == str(target.parent)  # the rename
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert torch.equal(torch.load(target, weights_only=True)["x"], torch.arange(3))
    assert [p.name for p in target.parent.iterdir()] == ["ckpt.pt"]  # no temporary left


def test_atomic_save_leaves_the_old_file_when_saving_fails(tmp_path):
    target = tmp_path / "ckpt.pt"
    atomic_save({"format": "seqgan-env/1", "kind": "x", "v": 1}, target)
    with pytest.raises(Exception):
        atomic_save({"v": lambda: None}, target)  # torch.save cannot pickle a lambda
    assert load_checkpoint(target)["v"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


KILLED_MID_WRITE = """
import io, os, signal, sys
import torch
from seqgan_env.checkpoint import atomic_save

target = sys.argv[1]
atomic_save({"format": "seqgan-env/1", "kind": "x", "v": torch.arange(5)}, target)
real_save = torch.save


def half_then_killed(payload, out, *args, **kwargs):
    # What a kill -9 mid-write leaves: half of the new file's bytes on disk, then nothing more.
    whole = io.BytesIO()
    real_save(payload, whole, *args, **kwargs)
    out.write(whole.getvalue()[: len(whole.getvalue()) // 2])
    out.flush()
    os.fsync(out.fileno())
    os.kill(os.getpid(), signal.SIGKILL)


torch.save = half_then_killed
atomic_save({"format": "seqgan-env/1", "kind": "x", "v": torch.arange(100_000)}, target)
"""


def test_a_checkpoint_write_killed_midway_leaves_the_old_checkpoint_whole(tmp_path):
    """A process killed (SIGKILL) halfway through writing a checkpoint over an older one: the
    path still holds the whole older checkpoint, not the torn half of the new one (which is
    what a write in place would leave: ``load_checkpoint`` would call it corrupt)."""
    import signal
    import subprocess
    import sys

    from tests.conftest import REPO

    target = tmp_path / "ckpt.pt"
    done = subprocess.run([sys.executable, "-c", KILLED_MID_WRITE, str(target)], cwd=REPO, capture_output=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()[-2000:]
    assert torch.equal(load_checkpoint(target, "x")["v"], torch.arange(5))


# -- the pipeline: interrupted, resumed ----------------------------------------------------


def read_rows(folder):
    with open(folder / "metrics.csv") as handle:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(handle)]


def read_tensorboard(folder):
    """What TensorBoard shows: ``{tag: [(step, value), ...]}``, orphaned events purged as TensorBoard does."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]
            if not tag.endswith(TIMINGS)}


def generator_weights(folder):
    return load_checkpoint(folder / "generator.pt", "generator")["state_dict"]


def interrupt_after_logging(monkeypatch, phase, step):
    """Ctrl-C right after ``phase`` step ``step`` is logged, before its checkpoint."""
    original = Run._log

    def log_then_interrupt(self, logged_phase, logged_step, stats, writer):
        original(self, logged_phase, logged_step, stats, writer)
        if (logged_phase, logged_step) == (phase, step):
            raise KeyboardInterrupt

    monkeypatch.setattr(Run, "_log", log_then_interrupt)


def main_interrupted(argv):
    """``main(argv)``'s exit code; a KeyboardInterrupt escaping it (a traceback for the user) fails the test."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped seqgan's main as a KeyboardInterrupt traceback")


@pytest.mark.parametrize("algo", ALGOS)
def test_ctrl_c_then_the_printed_command_continues_the_run_exactly(
        algo, tmp_path, capsys, no_sb3_archives, whole_run):
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after_logging(patch, "adversarial", 3)
        assert main_interrupted(["train", "--preset", "tiny", "--algo", algo, "--out", str(out)]) == 130
    error = capsys.readouterr().err
    assert "Traceback" not in error and "KeyboardInterrupt" not in error
    assert f"the last checkpoint is {out / 'checkpoint.pt'}" in error and "2 adversarial steps done" in error
    command = error.strip().splitlines()[-1].strip()
    assert command == f"seqgan train --out {out} --resume"
    saved = load_checkpoint(out / "checkpoint.pt", "training-run")
    assert saved["state"]["adversarial_steps"] == 2
    # PPO/A2C state is stored as tensors beside the run's; REINFORCE variants keep theirs in the agent's
    assert (saved["sb3"] is not None) == (algorithms.get_algorithm(algo).family == "sb3") and "sb3_model" not in saved
    assert main(shlex.split(command)[1:]) == 0

    # The session's shared uninterrupted run: runs in one process are deterministic as long as
    # torch's thread count is the same (a test that leaves it changed fails in conftest.py).
    whole = whole_run(algo)
    # The resumed run is the uninterrupted one: every metric, the final weights, and what
    # TensorBoard shows (step 3, logged before the interruption, appears once), to the last digit.
    assert read_rows(out) == read_rows(whole)
    for name, tensor in generator_weights(whole).items():
        assert torch.equal(generator_weights(out)[name], tensor), name
    resumed, uninterrupted = read_tensorboard(out), read_tensorboard(whole)
    assert resumed == uninterrupted
    steps = [step for step, _ in resumed["adversarial/d_loss"]]
    assert len(steps) == 6 and len(set(steps)) == 6


def test_a_run_interrupted_in_d_pretraining_resumes_exactly(tmp_path, capsys, whole_run):
    """Ctrl-C after the second of the tiny preset's two D rounds is logged: the checkpoint holds D,
    its optimiser and the random streams after round 1. The resumed run (to 1 adversarial step,
    to keep it short) logs round 2 and the adversarial step exactly as the uninterrupted run does."""
    out = tmp_path / "run"
    with pytest.MonkeyPatch.context() as patch:
        interrupt_after_logging(patch, "d_pretrain", 2)
        assert main_interrupted(["train", "--preset", "tiny", "--out", str(out)]) == 130
    saved = load_checkpoint(out / "checkpoint.pt", "training-run")["state"]
    assert (saved["phase"], saved["d_rounds"]) == ("d_pretrain", 1)
    assert main(["train", "--resume", "--out", str(out), "--steps", "1"]) == 0
    resumed, whole = read_rows(out), read_rows(whole_run("reinforce"))  # reinforce: train's default
    assert [(r["phase"], r["step"]) for r in resumed][-3:] == [("d_pretrain", "1"), ("d_pretrain", "2"),
                                                               ("adversarial", "1")]
    *before, last = resumed
    assert before == whole[: len(before)]
    # Step 1 is the resumed run's last step, so it is evaluated (the uninterrupted run evaluates
    # every 2nd step): it has the evaluation's columns as well; the training's columns (D's loss
    # and accuracy, the update's statistics, its `policy_kl` and `policy_entropy` among them) must
    # be the same.
    reference = whole[len(before)]
    training = [key for key, value in reference.items() if value]
    assert {"policy_kl", "policy_entropy"} <= set(training) and not reference["entropy"] and not reference["kl"]
    assert len(training) >= 8 and {key: last[key] for key in training} == {key: reference[key] for key in training}


def test_ctrl_c_before_the_first_checkpoint_says_there_is_nothing_to_resume(tmp_path, monkeypatch, capsys):
    interrupt_after_logging(monkeypatch, "mle", 0)
    assert main_interrupted(["train", "--preset", "tiny", "--out", str(tmp_path / "run")]) == 130
    error = capsys.readouterr().err
    assert "before the first checkpoint" in error and "Traceback" not in error


def test_resume_refuses_options_it_would_ignore_and_applies_more_steps(whole_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(whole_run("reinforce"), run)
    before = read_rows(run)
    for options, message in (
        (["--algo", "ppo"], "--algo ppo conflicts with the run's algo reinforce"),
        (["--seed", "5"], "--seed 5 conflicts with the run's seed 0"),
        (["--preset", "cpu"], "--preset cpu conflicts with the run's schedule"),
        (["--data", "x.txt"], "--data x.txt conflicts with the run's data none"),
        (["--steps", "4"], "cannot continue to 4 adversarial steps: the run has already done 6"),
    ):
        assert main(["train", "--resume", "--out", str(run), *options]) == 2, options
        assert message in capsys.readouterr().err
        assert read_rows(run) == before  # nothing ran
    # The run's own settings may be repeated; more steps continue the finished run.
    assert main(["train", "--resume", "--out", str(run), "--preset", "tiny", "--algo", "reinforce", "--seed", "0",
                 "--steps", "8"]) == 0
    rows = read_rows(run)
    assert rows[: len(before)] == before
    assert [int(r["step"]) for r in rows if r["phase"] == "adversarial"] == list(range(1, 9))
    assert load_checkpoint(run / "checkpoint.pt", "training-run")["config"]["adversarial"]["steps"] == 8


def test_how_often_a_run_evaluates_does_not_change_its_training(tmp_path):
    weights = []
    for every in (1, 3):
        config = get_train_config("tiny")
        config.mle_eval_every, config.adversarial.eval_every, config.adversarial.steps = every, every, 3
        run = Run(tmp_path / str(every), config, Oracle.from_preset(get_preset("tiny")), progress=False)
        run.run()
        evaluated = [r["step"] for r in run.state.history if r["phase"] == "adversarial" and "nll_oracle" in r]
        assert evaluated == ([1, 2, 3] if every == 1 else [3])
        weights.append(run.generator.state_dict())
    for name, tensor in weights[0].items():
        assert torch.equal(weights[1][name], tensor), name


def test_a_tampered_run_folder_is_refused_unread(whole_run, tmp_path, capsys):
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    shutil.copytree(whole_run("ppo"), run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    payload["sb3"]["hyperparameters"]["gamma"] = _RunsCommand(os.system, f"touch {marker}")
    torch.save(payload, run / "checkpoint.pt")  # torch.save pickles anything
    assert main(["train", "--resume", "--out", str(run), "--steps", "7"]) == 2
    error = capsys.readouterr().err
    assert "holds pickled Python objects" in error and "posix.system" in error
    assert not marker.exists()



def test_a_run_folder_holding_an_sb3_archive_is_refused_unread(whole_run, tmp_path, capsys):
    """Run folders of the earlier format carried SB3's zip, which ``--resume`` handed to ``PPO.load``."""
    marker = tmp_path / "ran"
    run = tmp_path / "run"
    shutil.copytree(whole_run("ppo"), run)
    payload = torch.load(run / "checkpoint.pt", weights_only=True)
    evil_sb3_archive(tmp_path / "sb3.zip", marker)
    payload["sb3_model"] = (tmp_path / "sb3.zip").read_bytes()
    del payload["sb3"]
    torch.save(payload, run / "checkpoint.pt")
    assert main(["train", "--resume", "--out", str(run), "--steps", "7"]) == 2
    assert "holds SB3's own archive" in capsys.readouterr().err
    assert not marker.exists()
