"""Black-box algorithms on the exact-regret task of ``SeqGAN-v0``, at equal sampled sequences.

Each algorithm starts from the shipped MLE generator and trains on ``reward="exact-regret"``
(D*'s logit per token, ``kl_beta = 1`` to the same generator: the objective is
``-KL(pi || p_oracle)``) through the comparison's own update builder, with the hyperparameters
given; its regret (reverse KL per token) and forward KL are measured along the budget. Read it
beside ``python -m benchmarks.regret_lines`` (the exact per-state gradient and the other
reference lines). See docs/regret.md.

    python -m benchmarks.regret_budget --algos reinforce-mean --lrs 0.001,0.003 --seeds 0,1
    python -m benchmarks.regret_budget --sequences 640 --no-publish   # a quick look

Writes ``results/regret/black_box_seqgan_v0.json`` (every run's curve, the command, the code
version, the machine's matmul rates before and after).
"""

from __future__ import annotations

import argparse
import copy
import time
from typing import Any

import torch

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import rates_before_and_after, write_result
from seqgan_env.divergence import ScoredSequences, score_sequences
from seqgan_env.models import Oracle
from seqgan_env.presets import get_preset
from seqgan_env.rewards.registry import EXACT_REGRET, get_reward_kind, resolve_rollout_policy
from train.algorithms import get_algorithm
from train.experiments.regret_lines import regret_point
from train.experiments.steps import StepInputs, generator_step

LEARNING_RATE = {"reinforce": "lr", "sb3": "learning_rate", "rllib": "lr"}
"""The hyperparameter that holds each family's learning rate."""


def run(algo: str, hparams: dict[str, Any], generator: Any, oracle: Oracle, test: ScoredSequences, sequences: int,
        batch_size: int, evaluations: int, eval_samples: int, seed: int) -> dict[str, Any]:
    """One run: its curve of regret points against sampled sequences, and its wall time."""
    algorithm = get_algorithm(algo)
    policy = copy.deepcopy(generator)
    reference = copy.deepcopy(generator).requires_grad_(False)
    env_kwargs = dict(preset=get_preset("default"), reward=EXACT_REGRET, oracle=oracle, reference=reference)
    hparams = {**hparams, "kl_beta": get_reward_kind(EXACT_REGRET).kl_beta}
    torch.manual_seed(seed)
    step = generator_step(algorithm, StepInputs(policy, env_kwargs, batch_size, hparams, seed, None, reference))
    rng = torch.Generator().manual_seed(1_000 + seed)
    seq_len = get_preset("default").seq_len
    curve = [{"sequences": 0, **regret_point(step.generator, oracle, test, eval_samples, seed)}]
    every = sequences / evaluations
    tokens, next_eval, started = 0, every, time.perf_counter()
    try:
        while tokens < sequences * seq_len:
            stats = step.update(int(torch.randint(2**31 - 1, (1,), generator=rng)))
            tokens += int(stats["tokens"])
            if tokens >= next_eval * seq_len:
                next_eval += every
                curve.append({"sequences": tokens // seq_len, "mean_reward": float(stats["mean_reward"]),
                              **regret_point(step.generator, oracle, test, eval_samples, seed)})
    finally:
        step.close()
    return {"algo": algo, "hparams": hparams, "seed": seed, "curve": curve,
            "wall_time_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--algos", default="reinforce-mean,rloo,grpo", help="comma-separated comparison algorithms")
    parser.add_argument("--lrs", default="0.001,0.003", help="comma-separated learning rates, each run per algorithm")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds")
    parser.add_argument("--sequences", type=int, default=10_000, help="sampled sequences per run")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--evaluations", type=int, default=4)
    parser.add_argument("--eval-samples", type=int, default=3_000)
    parser.add_argument("--test", type=int, default=5_000, help="held-out oracle sequences for the forward KL")
    parser.add_argument("--no-publish", action="store_true", help="print only; write no result file")
    parser.add_argument("--note", default=None, help="a note kept in the result file (how it was run)")
    args = parser.parse_args(argv)

    rates_before = machine_rates()
    print(f"machine: dense matmul float32 {rates_before['float32']:.0f}, bfloat16 {rates_before['bfloat16']:.0f} "
          f"GFLOP/s on {torch.get_num_threads()} threads")
    preset = get_preset("default")
    oracle = Oracle.from_preset(preset).eval()
    generator = resolve_rollout_policy(None, preset).eval()
    test = score_sequences(oracle, oracle.sample(args.test, torch.Generator().manual_seed(50_000)))  # scored once
    runs = []
    for algo in [a for a in args.algos.split(",") if a]:
        key = LEARNING_RATE[get_algorithm(algo).family]
        for lr in [float(v) for v in args.lrs.split(",") if v]:
            for seed in [int(s) for s in args.seeds.split(",") if s]:
                result = run(algo, {key: lr}, generator, oracle, test, args.sequences, args.batch_size,
                             args.evaluations, args.eval_samples, seed)
                start, end = result["curve"][0], result["curve"][-1]
                print(f"{algo} {key}={lr:g} seed {seed}: reverse KL {start['reverse_kl']:.3f} -> "
                      f"{end['reverse_kl']:.3f} (± {end['reverse_kl_stderr']:.3f}) after {end['sequences']} "
                      f"sequences; forward KL {start['forward_kl']:.3f} -> {end['forward_kl']:.3f}; "
                      f"{result['wall_time_s']:.0f} s")
                runs.append(result)
    rates_after = machine_rates()
    data = {"preset": "default", "oracle": "builtin", "generator": "the shipped MLE generator",
            "reward": EXACT_REGRET, "sequences": args.sequences, "batch_size": args.batch_size, "runs": runs}
    if not args.no_publish:
        write_result("regret", "black_box_seqgan_v0", data,
                     machine_rates=rates_before_and_after(rates_before, rates_after, torch.get_num_threads()),
                     **({"note": args.note} if args.note else {}))
    return data


if __name__ == "__main__":
    main()
