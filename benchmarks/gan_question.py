"""The GAN question, asked fairly: in the fixed-data setting, does the adversarial loop beat MLE?

MLE, every learned D and RL get the same real sequences: the base's, ``--real-samples`` of them
(10,000 by default, the paper's count, whatever the comparison preset's training preset draws).
A comparison with ``fixed_data`` (:attr:`train.experiments.config.CompareConfig.fixed_data`)
runs the adversarial loop from the MLE generator with each learned D paying its ``logit`` form
(``monte_carlo``: the paper's CNN with Monte Carlo completions; ``dense``: the prefix LSTM, no
completions; ``density-ratio``: the learned density ratio, a language model fitted to the real
sequences, with Monte Carlo completions), through the comparison engine itself. Each D answers:
its reverse KL (KL(G || oracle) per token, quality) and forward KL (KL(oracle || G) per token on
held-out oracle sequences, coverage) at the start (the MLE generator) and at the end, mean and
95% interval over seeds; P(improve) on reverse KL against the start; whether the forward KL got
worse (the interval of its change lies above 0); and the MLE cooled to the runs' final entropy
(the comparison's tempered-MLE curve, read at that entropy).

    python -m benchmarks.gan_question --preset tiny --oracle builtin --seeds 3 --tokens 12800 --mle-epochs 10 \
        --d-rounds 5 --evaluations 5 --eval-samples 2000     # what results/gan_question/fixed_data_tiny.json holds
    python -m benchmarks.gan_question --preset short --oracle paper --num-rollouts 4   # the paper's models: slow on a shared 2-core machine

Writes ``results/gan_question/fixed_data_<preset>.json`` (see docs/discriminator.md).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import rates_before_and_after, write_result
from seqgan_env.checkpoint import load_checkpoint
from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import get_preset
from train.config import get_train_config
from train.experiments.comparison import compare
from train.experiments.config import CompareConfig, get_compare_config
from train.experiments.rewards import with_form
from train.experiments.statistics import mean_ci, probability_of_improvement_ci

DS = ("monte_carlo", "dense", "density-ratio")
"""The learned Ds: the paper's CNN, the prefix LSTM, the density ratio."""


def question_config(preset: str, rewards: tuple[str, ...], form: str, algo: str, seeds: int,
                    tokens: int | None, num_rollouts: int | None, real_samples: int,
                    overrides: dict[str, Any] | None = None) -> CompareConfig:
    """The comparison preset ``preset`` in the fixed-data setting on ``real_samples`` real sequences:
    adversarial only, no baselines; ``overrides``: other :class:`CompareConfig` fields."""
    config = get_compare_config(preset)
    changes: dict[str, Any] = dict(algos=(algo,), rewards=rewards, reward_forms=(form,), settings=("adversarial",),
                                   baselines=(), seeds=tuple(range(seeds)), fixed_data=True,
                                   base_real_samples=real_samples, best_of_n=(1, 4),
                                   best_of_n_samples=min(config.best_of_n_samples, 2_048),
                                   # the full tempered-MLE grid: the cooled MLE is read between its points
                                   kl_temperatures=CompareConfig().kl_temperatures, **(overrides or {}))
    if tokens is not None:
        changes["token_budget"] = tokens
    if num_rollouts is not None:
        changes["num_rollouts"] = num_rollouts
    return dataclasses.replace(config, **changes)


def _interval(values: list[float]) -> dict[str, float]:
    mean, half = mean_ci(values)
    return {"mean": mean, "ci": half, "low": mean - half, "high": mean + half}


def tempered_at_entropy(rows: list[dict[str, float]], entropy: float) -> dict[str, float] | None:
    """The tempered MLE's reverse and forward KL at ``entropy`` (linear in entropy between the two
    temperatures around it); ``None`` outside the curve (never extrapolated)."""
    rows = sorted(rows, key=lambda r: r["entropy"])
    for low, high in zip(rows, rows[1:]):
        if low["entropy"] <= entropy <= high["entropy"]:
            share = (entropy - low["entropy"]) / max(high["entropy"] - low["entropy"], 1e-12)
            return {key: low[key] + share * (high[key] - low[key])
                    for key in ("temperature", "reverse_kl", "forward_kl", "entropy")}
    return None


def summarise(root: Path, config: CompareConfig) -> dict[str, Any]:
    """Per D: the start and end of its runs, the changes, P(improve) and the verdict."""
    tempered_file = root / "tempered_mle.csv"
    tempered = [{k: float(v) for k, v in row.items() if v not in ("", "nan")}
                for row in csv.DictReader(tempered_file.open())] if tempered_file.exists() else []
    answers = {}
    for reward in config.rewards:
        name = with_form(reward, config.reward_forms[0])
        runs = [json.loads(run.result_path(root).read_text()) for run in config.runs()
                if run.reward == name and run.result_path(root).exists()]
        if not runs:
            answers[name] = {"runs": 0, "note": "no run finished (see failures.json of the comparison)"}
            continue
        start = {k: [r["curve"][0][k] for r in runs] for k in ("reverse_kl", "forward_kl", "entropy")}
        end = {k: [r["curve"][-1][k] for r in runs] for k in ("reverse_kl", "forward_kl", "entropy")}
        change = {k: [e - s for s, e in zip(start[k], end[k])] for k in start}
        p, p_low, p_high = probability_of_improvement_ci(end["reverse_kl"], start["reverse_kl"])
        reverse_change, forward_change = _interval(change["reverse_kl"]), _interval(change["forward_kl"])
        answer = {
            "runs": len(runs), "seeds": [r["seed"] for r in runs], "updates": runs[0]["updates"],
            "tokens": runs[0]["tokens"],
            **{f"start_{k}": _interval(v) for k, v in start.items()},
            **{f"end_{k}": _interval(v) for k, v in end.items()},
            **{f"change_{k}": _interval(v) for k, v in change.items()},
            "p_improve_reverse_kl": {"p": p, "low": p_low, "high": p_high},
            "reverse_kl_better": reverse_change["high"] < 0,
            "forward_kl_worse": forward_change["low"] > 0,
            "per_seed": [{"seed": r["seed"], **{f"{when}_{k}": r["curve"][i][k] for when, i in (("start", 0), ("end", -1))
                                                for k in ("reverse_kl", "forward_kl", "entropy")},
                          "d_heldout_auc_end": r["curve"][-1].get("d_heldout_auc"),
                          "d_train_accuracy_end": r["curve"][-1].get("d_train_accuracy")} for r in runs],
        }
        answer["beats_mle"] = answer["reverse_kl_better"] and not answer["forward_kl_worse"]
        cooled = tempered_at_entropy(tempered, float(np.mean(end["entropy"]))) if tempered else None
        answer["mle_cooled_to_end_entropy"] = cooled
        answers[name] = answer
    return {"answers": answers, "tempered_mle": tempered}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="short", help="comparison preset whose base and budget it runs")
    parser.add_argument("--oracle", default="paper",
                        help="oracle: paper (the paper's, see `seqgan oracle`), builtin (the preset's own) or a file")
    parser.add_argument("--out", default="runs/gan-question", help="the comparison's folder (run again to finish it)")
    parser.add_argument("--rewards", default=",".join(DS), help="comma-separated learned-D rewards")
    parser.add_argument("--form", default="logit", help="the reward form every D pays")
    parser.add_argument("--algo", default="reinforce-mean")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=None, help="generated tokens per run (the preset's if unset)")
    parser.add_argument("--num-rollouts", type=int, default=None, help="Monte Carlo completions (the preset's if unset)")
    parser.add_argument("--real-samples", type=int, default=10_000,
                        help="real sequences of the base, which MLE, every D and RL share (the paper's 10,000)")
    parser.add_argument("--mle-epochs", type=int, default=None, help="the base's MLE epochs (the preset's if unset)")
    parser.add_argument("--d-rounds", type=int, default=None, help="the base's D pretraining rounds (the preset's if unset)")
    parser.add_argument("--evaluations", type=int, default=None, help="evaluations along a run (the preset's if unset)")
    parser.add_argument("--eval-samples", type=int, default=None, help="samples per evaluation (the preset's if unset)")
    parser.add_argument("--cpus", type=int, default=1, help="Ray CPUs: runs at once (1: one heavy job)")
    parser.add_argument("--no-publish", action="store_true", help="print only; write no result file")
    parser.add_argument("--note", default=None, help="a note kept in the result file (how it was run)")
    args = parser.parse_args(argv)

    overrides = {field: value for field, value in (("base_mle_epochs", args.mle_epochs), ("base_d_rounds", args.d_rounds),
                                                   ("evaluations", args.evaluations), ("eval_samples", args.eval_samples))
                 if value is not None}
    config = question_config(args.preset, tuple(r for r in args.rewards.split(",") if r), args.form, args.algo,
                             args.seeds, args.tokens, args.num_rollouts, args.real_samples, overrides)
    oracle_spec = None if args.oracle in ("", "builtin") else args.oracle
    oracle = resolve_oracle(oracle_spec, get_preset(get_train_config(config.base_preset).model_preset))
    before = machine_rates()
    compare(args.out, config, oracle, oracle_spec, cpus=args.cpus, progress=False)
    after = machine_rates()
    root = Path(args.out)
    real = load_checkpoint(root / "base" / "checkpoint.pt", "training-run")["real"]
    data = {"question": "In the fixed-data setting (MLE, D and RL see the same real sequences), does the adversarial "
                        "loop with each learned D in logit form beat MLE on reverse KL without losing forward KL?",
            "oracle": args.oracle, "preset": args.preset, "real_sequences": int(real.shape[0]),
            "config": config.to_dict(), **summarise(root, config)}
    for name, answer in data["answers"].items():
        if "start_reverse_kl" in answer:
            print(f"{name}: reverse KL {answer['start_reverse_kl']['mean']:.4f} -> {answer['end_reverse_kl']['mean']:.4f} "
                  f"(change {answer['change_reverse_kl']['mean']:+.4f} ± {answer['change_reverse_kl']['ci']:.4f}), "
                  f"forward KL {answer['start_forward_kl']['mean']:.4f} -> {answer['end_forward_kl']['mean']:.4f} "
                  f"(change {answer['change_forward_kl']['mean']:+.4f} ± {answer['change_forward_kl']['ci']:.4f}), "
                  f"P(improve) {answer['p_improve_reverse_kl']['p']:.2f}, beats MLE: {answer['beats_mle']}")
        else:
            print(f"{name}: {answer['note']}")
    if not args.no_publish:
        path = write_result("gan_question", f"fixed_data_{args.preset}", data,
                            machine_rates=rates_before_and_after(before, after, 1),
                            **({"note": args.note} if args.note else {}))
        print(f"wrote {path}")
    return data


if __name__ == "__main__":
    main()
