"""The command line as people type it: ``--checkpoint`` given a run folder or its
``checkpoint.pt``, and ``seqgan train --device``."""

from __future__ import annotations

import json

import pytest
import torch

from seqgan_env.checkpoint import load_checkpoint
from tests.test_text import grammar_sentences
from train.cli import main

CPU_ONLY = not torch.cuda.is_available()


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    """One adversarial step of the tiny pipeline, on the CPU named explicitly."""
    out = tmp_path_factory.mktemp("short_run")
    assert main(["train", "--preset", "tiny", "--steps", "1", "--device", "cpu", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def short_text_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("short_text_run")
    (folder / "sentences.txt").write_text("\n".join(grammar_sentences(300)) + "\n")
    out = folder / "run"
    assert main(["train", "--preset", "tiny", "--steps", "1", "--data", str(folder / "sentences.txt"),
                 "--max-length", "9", "--out", str(out)]) == 0
    return out


def samples(capsys, checkpoint, *extra):
    assert main(["sample", "--checkpoint", str(checkpoint), "--num", "6", "--seed", "4", *extra]) == 0
    return capsys.readouterr().out


def test_device_cpu_goes_into_the_run_config(short_run):
    assert load_checkpoint(short_run / "checkpoint.pt", "training-run")["config"]["device"] == "cpu"


def test_sample_takes_a_run_folder_or_its_checkpoint(short_run, capsys):
    reference = samples(capsys, short_run / "generator.pt")
    assert len(reference.splitlines()) == 6
    assert samples(capsys, short_run / "checkpoint.pt") == reference  # the run's current generator
    assert samples(capsys, short_run) == reference


def test_evaluate_takes_a_run_folder_or_its_checkpoint(short_run, capsys):
    outputs = []
    for checkpoint in (short_run / "generator.pt", short_run / "checkpoint.pt", short_run):
        assert main(["evaluate", "--checkpoint", str(checkpoint), "--preset", "tiny", "--num", "200"]) == 0
        outputs.append(json.loads(capsys.readouterr().out))
    assert outputs[0]["nll_oracle"] > 0 and outputs[0] == outputs[1] == outputs[2]


def test_a_folder_without_the_latest_checkpoint_uses_generator_pt(short_run, tmp_path, capsys):
    (tmp_path / "generator.pt").write_bytes((short_run / "generator.pt").read_bytes())
    assert samples(capsys, tmp_path) == samples(capsys, short_run)


def test_what_is_not_a_generator_is_named(short_run, tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path)]) == 2
    assert "without checkpoint.pt or generator.pt" in capsys.readouterr().err
    assert main(["sample", "--checkpoint", str(short_run / "discriminator.pt")]) == 2
    assert "holds a 'discriminator', expected a generator" in capsys.readouterr().err


def test_a_text_run_folder_decodes_with_its_vocabulary(short_text_run, capsys):
    reference = samples(capsys, short_text_run / "generator.pt", "--decode")
    assert samples(capsys, short_text_run, "--decode") == reference
    assert samples(capsys, short_text_run / "checkpoint.pt", "--decode") == reference
    words = set(reference.split())
    assert words and not any(word.isdigit() for word in words)


@pytest.mark.skipif(not CPU_ONLY, reason="checks the message on a machine without CUDA")
def test_train_device_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "--device='cuda' was asked for but torch.cuda.is_available() is False" in err
    assert not (tmp_path / "run").exists()
    assert main(["compare", "--preset", "tiny", "--device", "cuda", "--out", str(tmp_path / "compare")]) == 2
    assert "--device='cuda' was asked for but torch.cuda.is_available() is False" in capsys.readouterr().err
    assert not (tmp_path / "compare").exists()


@pytest.mark.cuda
@pytest.mark.skipif(CPU_ONLY, reason="needs a CUDA device")
def test_train_runs_on_cuda(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--steps", "2", "--device", "cuda", "--out", str(out)]) == 0
    assert load_checkpoint(out / "checkpoint.pt", "training-run")["config"]["device"] == "cuda"
    assert main(["train", "--preset", "tiny", "--steps", "1", "--algo", "ppo", "--device", "cuda",
                 "--out", str(tmp_path / "ppo")]) == 0
    assert samples(capsys, out)
    assert main(["compare", "--preset", "tiny", "--device", "cuda", "--algos", "reinforce,ppo", "--seeds", "1",
                 "--settings", "adversarial", "--baselines", "random", "--workers", "1",
                 "--out", str(tmp_path / "compare")]) == 0
