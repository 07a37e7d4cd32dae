"""What one trial of the ``short`` comparison preset costs on one core: the measurement behind docs/scaling.md.

A trial's cost depends on the models, the token budget, the reward's rollouts, the D
schedule and the evaluations, not on how well the shared base was trained, so the base
here is a quick one (1 MLE epoch, 1 D round). The trials run through Ray Tune one at a
time on a one-CPU local Ray, each with one torch thread; the wall time of each (from its
result file: training and evaluations, not Ray's start-up) is printed.

    python -m benchmarks.trial_cost --oracle paper
    python -m benchmarks.trial_cost --algos reinforce --settings fixed,adversarial --out runs/trial-cost
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import get_preset
from train.config import get_train_config
from train.experiments.comparison import compare
from train.experiments.config import get_compare_config


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oracle", default=None, help="'builtin' (default) or the paper's .npz")
    parser.add_argument("--algos", default="reinforce,ppo,rllib-ppo")
    parser.add_argument("--settings", default="fixed")
    parser.add_argument("--out", default="runs/trial-cost")
    args = parser.parse_args(argv)
    config = get_compare_config("short")
    config.algos = tuple(args.algos.split(","))
    config.settings = tuple(args.settings.split(","))
    config.seeds, config.baselines, config.temperatures = (0,), (), (1.0,)
    config.base_mle_epochs, config.base_d_rounds = 1, 1
    oracle = resolve_oracle(args.oracle, get_preset(get_train_config(config.base_preset).model_preset))
    torch.set_num_threads(1)
    started = time.time()
    compare(args.out, config, oracle, args.oracle, cpus=1, progress=False)
    print(f"{time.time() - started:.0f} s in all, the base and Ray's start included")
    costs = {}
    for job in config.jobs():
        result = json.loads(Path(args.out, "runs", job[0], job[1], f"seed{job[2]}.json").read_text())
        costs[f"{job[0]}/{job[1]}"] = result["wall_time"]
        print(f"{job[0]:>12} {job[1]:>10}: {result['wall_time']:6.1f} s for {result['tokens']:,} generated tokens "
              f"({result['updates']} updates, {len(result['curve'])} evaluations)")
    return costs


if __name__ == "__main__":
    main()
