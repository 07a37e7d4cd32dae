"""The exact-regret task and the reward forms in the comparison, the tuner and ``seqgan train``."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import train.experiments.runner as runner
from seqgan_env.models import Oracle
from seqgan_env.presets import get_preset
from seqgan_env.rewards.registry import EXACT_REGRET
from train.cli import main
from train.config import TrainConfig, check_train_reward, get_train_config, with_train_reward
from train.experiments.base import prepare_base
from train.experiments.config import check_config, get_compare_config
from train.experiments.rewards import get_comparison_reward, with_form
from train.experiments.runs import RunSpec

pytestmark = pytest.mark.usefixtures("one_thread")


def test_reward_forms_cross_the_rewards_and_name_each_run():
    config = dataclasses.replace(get_compare_config("tiny"), rewards=("monte_carlo", "optimal"),
                                 reward_forms=("probability", "logit"), algos=("reinforce-mean",), seeds=(0,),
                                 baselines=())
    check_config(config)
    names = [run.name for run in config.runs()]
    assert names == ["reinforce-mean @ monte_carlo+probability", "reinforce-mean @ monte_carlo+logit",
                     "reinforce-mean @ optimal+probability", "reinforce-mean @ optimal+logit"] * 2
    entry = get_comparison_reward("optimal+logit")
    assert (entry.env_reward, entry.form, entry.sequence_env_reward) == ("optimal", "logit", "optimal-terminal")
    assert RunSpec.from_job(("fixed", "grpo @ monte_carlo+log", 3)).reward_entry.form == "log"
    assert with_form("dense", None) == "dense"


@pytest.mark.parametrize("change, message", [
    ({"reward_forms": ("logits",)}, "unknown reward form 'logits'"),
    ({"rewards": (EXACT_REGRET,), "reward_forms": ("probability",)}, "cannot pay reward_form='probability'"),
    ({"rewards": (EXACT_REGRET,), "settings": ("fixed", "adversarial")}, "fixed setting only"),
    ({"reward_forms": ("logit", "logit")}, "reward_forms names 'logit' more than once"),
])
def test_bad_forms_and_regret_settings_are_named_before_any_training(change, message):
    config = dataclasses.replace(get_compare_config("tiny"), **change)
    with pytest.raises(ValueError, match=message):
        check_config(config)


def test_a_regret_run_trains_with_kl_beta_one_to_the_base_generator(tmp_path, monkeypatch):
    config = dataclasses.replace(get_compare_config("tiny"), rewards=(EXACT_REGRET,), settings=("fixed",),
                                 algos=("reinforce-mean",), seeds=(0,), baselines=(), token_budget=32 * 8,
                                 evaluations=1, hparams={"reinforce-mean": {"kl_beta": 0.25}})
    check_config(config)
    preset = get_preset("tiny")
    torch.manual_seed(0)
    prepare_base(tmp_path, config, Oracle.from_preset(preset), progress=False)
    seen = []
    build = runner.generator_step

    def recording(algorithm, inputs):
        seen.append(inputs)
        return build(algorithm, inputs)

    monkeypatch.setattr(runner, "generator_step", recording)
    result = runner.run_one(str(tmp_path), ("fixed", f"reinforce-mean @ {EXACT_REGRET}", 0), config.to_dict(), None)
    (inputs,) = seen
    assert inputs.kl_beta == 1.0  # the task's coefficient, whatever the algorithm's hparams say
    assert inputs.env_kwargs["reward"] == EXACT_REGRET
    base = inputs.env_kwargs["reference"]
    assert all(torch.equal(a, b) for a, b in zip(base.state_dict().values(), inputs.reference.state_dict().values()))
    assert result["tokens"] >= config.token_budget
    # The proxy is D*'s logit of a sequence (no saturation: finite, and well away from P(real)'s (0, 1)).
    assert torch.isfinite(torch.tensor(result["final"]["mean_reward"]))


def test_seqgan_train_takes_the_regret_task_and_the_forms():
    config = with_train_reward(get_train_config("default"), EXACT_REGRET)
    assert (config.kl_beta, config.d_pretrain.rounds, config.adversarial.d_target_accuracy) == (1.0, 0, None)
    assert with_train_reward(get_train_config("default"), None, "logit").reward_form == "logit"
    for bad, message in ((dict(reward=EXACT_REGRET, reward_form="probability"), "cannot pay"),
                         (dict(reward=EXACT_REGRET, kl_beta=0.5), "defined with kl_beta = 1"),
                         (dict(reward=EXACT_REGRET, data="sotu"), "real text has none"),
                         (dict(reward="terminal"), "unknown reward 'terminal'")):
        with pytest.raises(ValueError, match=message):
            check_train_reward(dataclasses.replace(TrainConfig(), **bad))


def test_the_commands_refuse_a_form_a_reward_cannot_give(tmp_path, capsys):
    assert main(["train", "--reward", EXACT_REGRET, "--reward-form", "log", "--out", str(tmp_path / "t")]) == 2
    assert "cannot pay reward_form='log'" in capsys.readouterr().err
    assert main(["compare", "--preset", "tiny", "--rewards", "monte_carlo", "--reward-forms", "odds",
                 "--out", str(tmp_path / "c")]) == 2
    assert "unknown reward form 'odds'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["regret", "regret-paper"])
def test_the_regret_presets_rank_every_algorithm_on_the_task_alone(name):
    from train.algorithms import names

    config = get_compare_config(name)
    check_config(config)
    assert config.rewards == (EXACT_REGRET,) and config.settings == ("fixed",) and not config.baselines
    shipped = {a for a in names(compare=True) if ":" not in a}
    assert set(config.algos) == shipped  # a new algorithm joins the matrix
    assert config.token_budget == 10_000 * get_preset("default").seq_len and len(config.seeds) == 5


def test_the_matrix_benchmark_publishes_the_reports_tables(tmp_path):
    """benchmarks.regret_matrix.collect reads regret.csv / regret_pairs.csv (NaN: not measured) and the runs."""
    import json

    from benchmarks.regret_matrix import collect

    (tmp_path / "regret.csv").write_text("kind,method,rank,reverse_kl,reverse_kl_at_mark\n"
                                         "algorithm,rloo @ exact-regret,1,1.25,nan\nreference,exact,,1.2,\n")
    (tmp_path / "regret_pairs.csv").write_text("method,other,p_improve,verdict\na,b,0.9,better\n")
    run = tmp_path / "runs" / "fixed" / "rloo@exact-regret" / "seed0.json"
    run.parent.mkdir(parents=True)
    run.write_text(json.dumps({"algo": "rloo", "seed": 0, "tokens": 40, "wall_time": 3.0,
                               "curve": [{"tokens": 0, "reverse_kl": 1.3, "d_heldout_auc": 0.5, "train_time": 0.0}]}))
    data = collect(tmp_path)
    assert data["rows"][0] == {"kind": "algorithm", "method": "rloo @ exact-regret", "rank": 1.0, "reverse_kl": 1.25,
                               "reverse_kl_at_mark": None}
    assert data["rows"][1]["rank"] is None and data["pairs"][0]["verdict"] == "better"
    assert data["runs"] == [{"algo": "rloo", "seed": 0, "tokens": 40, "wall_time": 3.0,
                             "curve": [{"tokens": 0, "reverse_kl": 1.3, "train_time": 0.0}]}]
