"""The ``seqgan`` command: a tiny end-to-end run, sampling, evaluation, and its errors."""

from __future__ import annotations

import csv
import json

import pytest

from train.cli import main


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    code = main(["train", "--pretrain", "--preset", "tiny", "--steps", "4", "--mle-epochs", "2",
                 "--d-pretrain-rounds", "1", "--eval-every", "2", "--eval-samples", "500", "--out", str(out)])
    assert code == 0
    return out


def test_train_writes_models_logs_and_summary(tiny_run):
    assert (tiny_run / "generator.pt").is_file() and (tiny_run / "discriminator.pt").is_file()
    with open(tiny_run / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    assert rows[1]["nll_oracle"] and float(rows[1]["nll_oracle"]) > 0
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["steps"] == 4 and "nll_oracle" in summary["after"]


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


def test_errors_are_reported_not_raised(tmp_path, capsys):
    assert main(["sample", "--checkpoint", str(tmp_path / "missing.pt")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert main(["evaluate", "--checkpoint", str(tmp_path / "bad.pt")]) == 2
    assert "corrupt" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--preset", "huge"])
