"""The D study: held-out accuracy and AUC of learned discriminators against D training compute.

On the paper's oracle, against the ``cpu`` preset's MLE generator (trained once with the
project's own MLE pretraining into ``runs/d-study/generator_mle.pt``), each setting trains a
discriminator for a budget of CPU seconds, single-threaded, and is scored every few rounds
on sequences it never trained on: 2,000 fresh oracle sequences against 2,000 fresh samples
of the generator (:func:`seqgan_env.diagnostics.held_out_metrics`). The Bayes-optimal
discriminator D* on the same sequences is the ceiling. See ``docs/discriminator.md``.

    python -m benchmarks.d_study --prepare                   # the MLE generator (about 5 min)
    python -m benchmarks.d_study --budget 120                # every setting, 2 CPU min each
    python -m benchmarks.d_study --budget 600 --settings ratio-contrastive

At the end a run writes ``results/d_study/settings.json`` (the table docs/discriminator.md and
the README render), replacing the published one: run every setting the table shows, or give
``--no-publish`` for a trial.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import write_result
from seqgan_env.checkpoint import load_model, save_model
from seqgan_env.diagnostics import discriminator_logits, held_out_metrics, spearman
from seqgan_env.factory import resolve_oracle
from seqgan_env.models import Discriminator, Generator, Oracle, PrefixDiscriminator
from seqgan_env.precision import adam
from seqgan_env.presets import SMALL_DISCRIMINATOR, get_preset
from seqgan_env.rewards.density_ratio import DensityRatioDiscriminator, OptimalDiscriminator
from train.config import get_train_config
from train.pretrain import (
    REGULARISED_D,
    DiscriminatorSchedule,
    build_discriminator,
    d_schedule,
    pretrain_generator,
    train_discriminator,
)

DEFAULT_ORACLE = "paper"  # the file `seqgan oracle fetch` writes (seqgan_env.paper_oracle)
DEFAULT_OUT = Path("runs/d-study")


def load_oracle(path: str | Path = DEFAULT_ORACLE) -> Oracle:
    """The paper's oracle, read as ``benchmarks.paper_table`` reads it."""
    return resolve_oracle(str(path), get_preset(get_train_config("cpu").model_preset))


def prepare_generator(oracle: Oracle, out: Path, seed: int = 0) -> Generator:
    """The ``cpu`` preset's MLE generator: its real data (10,000 oracle samples) and its 30 MLE
    epochs, as ``seqgan train --preset cpu`` builds them (``train.pipeline.Run``), without the
    evaluations. Cached in ``out/generator_mle.pt``."""
    path = out / "generator_mle.pt"
    if path.exists():
        return load_model(path, "generator")
    config = get_train_config("cpu")
    preset = get_preset(config.model_preset).replace(vocab_size=oracle.vocab_size, seq_len=oracle.seq_len,
                                                     start_token=oracle.start_token)
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    generator = Generator.from_preset(preset)
    real = oracle.sample(config.real_samples, rng)
    started = time.process_time()
    pretrain_generator(generator, real, config.mle, rng, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    save_model(generator, path)
    (out / "generator_mle.json").write_text(json.dumps({
        "seed": seed, "epochs": config.mle.epochs, "cpu_s": time.process_time() - started,
        "nll_oracle": oracle.nll(generator.sample(10_000, torch.Generator().manual_seed(1))),
        "nll_test": generator.nll(oracle.sample(5_000, torch.Generator().manual_seed(2))),
    }, indent=1))
    return generator


PAPER_D = DiscriminatorSchedule(epochs=3, num_negatives=10_000)
"""The paper's D step: fresh 10,000 negatives, 3 epochs, Adam 1e-4, the fixed 10,000 positives."""


@dataclasses.dataclass
class Setting:
    """One line of the study: how D is built and trained, one round at a time."""

    build: Callable[[Generator], Any]
    schedule: DiscriminatorSchedule


def _cnn(config=None):
    return lambda generator: Discriminator(generator.vocab_size, generator.seq_len, config)


def _prefix(width: int):
    return lambda generator: PrefixDiscriminator(generator.vocab_size, generator.seq_len, width, width)


def _ratio(generator: Generator) -> DensityRatioDiscriminator:
    """log p_M - log p_G with M starting as a copy of G: the log ratio starts at 0 everywhere."""
    return build_discriminator(d_schedule("density-ratio"), None, generator)


FRESH = dataclasses.replace(PAPER_D, fresh_real=True, epochs=1, num_negatives=5_000)
"""Fresh oracle positives every round; rounds of 5,000 + 5,000 sequences and 1 epoch (a sixth of the
paper's round), so that short budgets see several rounds."""
SETTINGS: dict[str, Setting] = {
    "paper": Setting(_cnn(), PAPER_D),
    "fresh": Setting(_cnn(), FRESH),
    "fresh-lr1e-3": Setting(_cnn(), dataclasses.replace(FRESH, lr=1e-3)),
    "fresh-lr1e-2": Setting(_cnn(), dataclasses.replace(FRESH, lr=1e-2)),
    "fresh-lr1e-3-reg": Setting(_cnn(), dataclasses.replace(FRESH, lr=1e-3, **REGULARISED_D)),
    "small-cnn-lr1e-3": Setting(_cnn(SMALL_DISCRIMINATOR), dataclasses.replace(FRESH, lr=1e-3)),
    "prefix64-lr1e-3": Setting(_prefix(64), dataclasses.replace(FRESH, lr=1e-3)),
    "prefix256-lr1e-3": Setting(_prefix(256), dataclasses.replace(FRESH, lr=1e-3)),
    "ratio-mle": Setting(_ratio, d_schedule("density-ratio")),
    "ratio-contrastive": Setting(_ratio, dataclasses.replace(FRESH, lr=1e-3)),
}


def train_and_score(name: str, setting: Setting, oracle: Oracle, generator: Generator, real: torch.Tensor,
                    held_out: tuple[torch.Tensor, torch.Tensor], truth: torch.Tensor, budget_cpu_s: float,
                    seed: int = 0, eval_every_s: float = 20.0) -> list[dict[str, float]]:
    """Train ``setting``'s D one round at a time until ``budget_cpu_s`` CPU seconds of training
    (evaluations not counted), scoring it on ``held_out`` after the first round and then every
    ``eval_every_s`` CPU seconds, and at the end."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    model = setting.build(generator)
    one_round = dataclasses.replace(setting.schedule, rounds=1)
    trainable = model.numerator if isinstance(model, DensityRatioDiscriminator) else model
    optimizer = adam(trainable.parameters(), one_round.lr)
    rows: list[dict[str, float]] = []
    cpu = wall = 0.0
    rounds, last_eval = 0, -float("inf")
    while cpu < budget_cpu_s:
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        stats = train_discriminator(model, generator, real, one_round, rng, optimizer, oracle=oracle)
        cpu += time.process_time() - cpu_start
        wall += time.perf_counter() - wall_start
        rounds += 1
        if cpu - last_eval >= eval_every_s or cpu >= budget_cpu_s:
            last_eval = cpu
            metrics = held_out_metrics(model, *held_out)
            logits = torch.cat([discriminator_logits(model, part) for part in held_out])
            rows.append({"setting": name, "round": rounds, "cpu_s": round(cpu, 1), "wall_s": round(wall, 1),
                         "d_train_accuracy": stats.get("d_accuracy", float("nan")),
                         **metrics, "log_ratio_spearman": spearman(logits, truth)})
            print(f"{name:<20} round {rounds:>4} cpu {cpu:7.1f}s wall {wall:7.1f}s  held-out acc "
                  f"{metrics['accuracy']:.3f} AUC {metrics['auc']:.3f} Brier {metrics['brier']:.3f}  "
                  f"train acc {rows[-1]['d_train_accuracy']:.3f}", flush=True)
    return rows


def _finite(value: Any) -> Any:
    """``None`` for a figure a setting does not have (NaN: the density-ratio D's MLE reports no accuracy)."""
    return None if value is None or value != value else value


def study_result(results: dict[str, Any], generator_info: dict[str, Any], count: int) -> dict[str, Any]:
    """The ``data`` of ``results/d_study/settings.json`` from a run's results: every evaluation of
    every setting, then D*'s ceiling, as the table on docs/discriminator.md reads them."""
    rows = [{"setting": row["setting"], "label": f"`{row['setting']}`", "rounds": row["round"],
             "cpu_s": row["cpu_s"], "wall_s": row["wall_s"], "accuracy": row["accuracy"], "auc": row["auc"],
             "brier": row["brier"], "spearman": _finite(row.get("log_ratio_spearman")),
             "train_accuracy": _finite(row.get("d_train_accuracy"))} for row in results["rows"]]
    optimal = results["optimal"]
    rows.append({"setting": "D* (OptimalDiscriminator, no training)", "label": "D* (`OptimalDiscriminator`, no training)",
                 "rounds": None, "cpu_s": 0.0, "wall_s": None, "accuracy": optimal["accuracy"], "auc": optimal["auc"],
                 "brier": optimal["brier"], "spearman": 1.0, "train_accuracy": None})
    return {"generator": {"nll_oracle": generator_info.get("nll_oracle"), "nll_test": generator_info.get("nll_test"),
                          "train_nll": generator_info.get("train_nll")},
            "held_out_sequences": {"real": count, "generated": count},
            "budget_cpu_s": results["budget_cpu_s"], "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oracle", default=str(DEFAULT_ORACLE))
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument("--prepare", action="store_true", help="only train (or load) the MLE generator")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--budget", type=float, default=120.0, help="CPU seconds of D training per setting")
    parser.add_argument("--eval-every", type=float, default=20.0, help="CPU seconds of training between evaluations")
    parser.add_argument("--count", type=int, default=2_000, help="held-out real and generated sequences, each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="study", help="results go to OUT/TAG.json")
    parser.add_argument("--no-publish", action="store_true", help="do not write results/d_study/settings.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # a shared machine: one thread, CPU seconds reported beside wall seconds
    out = Path(args.out)
    oracle = load_oracle(args.oracle)
    generator = prepare_generator(oracle, out)
    if args.prepare:
        print((out / "generator_mle.json").read_text())
        return 0
    generator.eval()
    rates = machine_rates()
    print(f"dense matmul 2048^3 on 1 thread: float32 {rates['float32']:.0f} GFLOP/s, "
          f"bfloat16 {rates['bfloat16']:.0f} GFLOP/s; load average {os.getloadavg()[0]:.2f}")
    # Real data the way the cpu preset draws it; held-out sequences from their own streams.
    real = oracle.sample(get_train_config("cpu").real_samples, torch.Generator().manual_seed(1000 + args.seed))
    held_out = (oracle.sample(args.count, torch.Generator().manual_seed(2000 + args.seed)),
                generator.sample(args.count, torch.Generator().manual_seed(3000 + args.seed)))
    optimal = OptimalDiscriminator(oracle, generator)
    truth = torch.cat([optimal.log_ratio(part) for part in held_out])
    ceiling = held_out_metrics(optimal, *held_out)
    print(f"D* (Bayes-optimal): held-out accuracy {ceiling['accuracy']:.4f}, AUC {ceiling['auc']:.4f}")
    results: dict[str, Any] = {"matmul_gflops_1_thread": rates, "load_average_start": os.getloadavg(),
                               "budget_cpu_s": args.budget, "optimal": ceiling, "rows": []}
    for name in args.settings:
        results["rows"] += train_and_score(name, SETTINGS[name], oracle, generator, real, held_out, truth,
                                           args.budget, args.seed, args.eval_every)
    results["load_average_end"] = os.getloadavg()
    (out / f"{args.tag}.json").write_text(json.dumps(results, indent=1))
    print(f"{'setting':<20}{'CPU s':>8}{'wall s':>8}{'acc':>7}{'AUC':>7}{'Brier':>7}{'rho':>7}{'train acc':>10}")
    for name in args.settings:
        last = [r for r in results["rows"] if r["setting"] == name][-1]
        print(f"{name:<20}{last['cpu_s']:>8.0f}{last['wall_s']:>8.0f}{last['accuracy']:>7.3f}{last['auc']:>7.3f}"
              f"{last['brier']:>7.3f}{last['log_ratio_spearman']:>7.3f}{last['d_train_accuracy']:>10.3f}")
    if not args.no_publish:
        generator_info = json.loads((out / "generator_mle.json").read_text())
        write_result("d_study", "settings", study_result(results, generator_info, args.count),
                     machine_rates={**rates, "threads": 1})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
