"""The fixed-data setting of a comparison (``--fixed-data``): every learned D, pretrained and
retrained, reads only the base's real sequences; the setting is saved in ``compare.json``."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest

import train.experiments.comparison
from benchmarks.gan_question import tempered_at_entropy
from seqgan_env.factory import resolve_oracle
from seqgan_env.models import Oracle
from seqgan_env.presets import get_preset
from train.cli import build_parser
from train.experiments.base import prepare_base
from train.experiments.comparison import compare
from train.experiments.config import check_config, get_compare_config
from train.experiments.runner import train_run
from train.experiments.runs import RunSpec

LEARNED_DS = ("monte_carlo", "dense", "density-ratio")


def _config(fixed_data: bool):
    """``tiny`` at its smallest: the three learned Ds in logit form, adversarial, one seed, one update."""
    return dataclasses.replace(get_compare_config("tiny"), algos=("reinforce-mean",), rewards=LEARNED_DS,
                               reward_forms=("logit",), settings=("adversarial",), baselines=(), seeds=(0,),
                               base_real_samples=300, base_mle_epochs=1, base_d_rounds=1, d_negatives=100,
                               token_budget=32 * 8, evaluations=1, eval_samples=100, fixed_data=fixed_data)


@pytest.mark.parametrize("fixed_data", [False, True])
def test_with_fixed_data_no_d_draws_fresh_oracle_sequences(tmp_path, monkeypatch, fixed_data):
    """Every draw from the oracle is recorded with the module that asked for it. D's training
    (``train.pretrain``) draws fresh positives for the density-ratio D unless the data is fixed;
    with fixed data it never does, in the base's pretraining of every D nor in the adversarial
    retraining of the density ratio's run. The pipeline's real and test sets and the evaluations
    still draw from it."""
    oracle = resolve_oracle(None, get_preset("tiny"))
    callers: list[str] = []
    original = Oracle.sample

    def watched(self, *args, **kwargs):
        callers.append(sys._getframe(1).f_globals["__name__"])
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Oracle, "sample", watched)
    config = _config(fixed_data)
    prepare_base(tmp_path, config, oracle, progress=False)
    base_callers = list(callers)
    train_run(tmp_path, RunSpec("adversarial", "reinforce-mean", "density-ratio+logit", 0), config.to_dict(), None)
    assert "train.pipeline" in base_callers, "the base drew no real data: the watch sees nothing"
    if fixed_data:
        assert "train.pretrain" not in callers, "a D drew fresh oracle sequences in the fixed-data setting"
    else:
        assert "train.pretrain" in base_callers, "the density-ratio D's schedule no longer draws fresh positives"
        assert callers[len(base_callers):].count("train.pretrain") >= 1, "its retraining drew no fresh positives"


class _Stop(Exception):
    pass


def test_fixed_data_is_saved_in_compare_json_and_a_mismatching_resume_is_refused(tmp_path, monkeypatch):
    def stop(*args, **kwargs):
        raise _Stop

    monkeypatch.setattr(train.experiments.comparison, "prepare_base", stop)  # compare.json is written before it
    oracle = resolve_oracle(None, get_preset("tiny"))
    with pytest.raises(_Stop):
        compare(tmp_path, _config(True), oracle, None, progress=False)
    assert json.loads((tmp_path / "compare.json").read_text())["fixed_data"] is True
    with pytest.raises(_Stop):  # the same settings: resumed
        compare(tmp_path, _config(True), oracle, None, progress=False)
    with pytest.raises(ValueError, match=r"fixed_data True there, False now"):
        compare(tmp_path, _config(False), oracle, None, progress=False)


def test_fixed_data_flag_and_what_it_refuses():
    assert build_parser().parse_args(["compare", "--fixed-data"]).fixed_data is True
    assert build_parser().parse_args(["compare"]).fixed_data is False
    check_config(_config(True))
    with pytest.raises(ValueError, match=r"'optimal\+logit' reads the oracle's density"):
        check_config(dataclasses.replace(_config(True), rewards=("optimal",)))
    with pytest.raises(ValueError, match="prompted episodes"):
        check_config(dataclasses.replace(_config(True), prompt_length=3))
    check_config(dataclasses.replace(_config(False), rewards=("optimal",)))  # outside the setting: allowed


def test_tempered_mle_is_read_at_an_entropy_between_two_temperatures_and_never_extrapolated():
    rows = [{"temperature": 0.5, "entropy": 1.0, "reverse_kl": 2.0, "forward_kl": 5.0},
            {"temperature": 1.0, "entropy": 3.0, "reverse_kl": 1.0, "forward_kl": 1.0}]
    point = tempered_at_entropy(rows, 2.5)
    assert point["temperature"] == pytest.approx(0.875)
    assert point["reverse_kl"] == pytest.approx(1.25) and point["forward_kl"] == pytest.approx(2.0)
    assert tempered_at_entropy(rows, 3.5) is None
