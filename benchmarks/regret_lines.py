"""The exact-regret task's reference lines on ``SeqGAN-v0``: what a budget of sampled sequences buys
without black-box RL (the exact per-state gradient, MLE on fresh oracle data), and what the MLE
generator reaches untrained (cooled, best-of-n by D*'s logit). See docs/regret.md.

    python -m benchmarks.regret_lines                       # 10,000 sequences, the embedded default
    python -m benchmarks.regret_lines --sequences 1000 --no-publish   # a quick look
    python -m benchmarks.regret_lines --sequences 100000 --name lines_seqgan_v0_100k

Prints each line's reverse KL (the regret, nats per token) and forward KL along the budget, and
writes ``results/regret/lines_seqgan_v0.json`` (``--name``) with the machine's matmul rates (measured before
and after). The lines are measured alone: nothing else should run on the machine meanwhile.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import rates_before_and_after, write_result
from seqgan_env.models import Oracle
from seqgan_env.presets import get_preset
from seqgan_env.rewards.registry import resolve_rollout_policy
from train.experiments.regret_lines import (
    RegretLineConfig,
    best_of_n_points_by_log_ratio,
    cooled_points,
    exact_gradient_line,
    fresh_mle_line,
    gain,
)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sequences", type=int, default=10_000, help="sampled sequences per trained line")
    parser.add_argument("--eval-samples", type=int, default=3_000, help="samples behind each reverse KL")
    parser.add_argument("--test", type=int, default=5_000, help="held-out oracle sequences for the forward KL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--name", default="lines_seqgan_v0", help="the result file: results/regret/NAME.json")
    parser.add_argument("--no-publish", action="store_true", help="print only; write no result file")
    parser.add_argument("--note", default=None, help="a note kept in the result file (how it was run)")
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    rates_before = machine_rates()
    print(f"machine: dense matmul float32 {rates_before['float32']:.0f}, bfloat16 {rates_before['bfloat16']:.0f} "
          f"GFLOP/s on {torch.get_num_threads()} threads")
    preset = get_preset("default")
    oracle = Oracle.from_preset(preset).eval()
    generator = resolve_rollout_policy(None, preset).eval()  # the shipped MLE generator of SeqGAN-v0
    test = oracle.sample(args.test, torch.Generator().manual_seed(50_000 + args.seed))
    config = RegretLineConfig(sequences=args.sequences, eval_samples=args.eval_samples, seed=args.seed)
    data: dict = {"preset": "default", "oracle": "builtin", "generator": "the shipped MLE generator",
                  "config": vars(config).copy()}
    timings = {}
    for name, line in (("exact_gradient", exact_gradient_line), ("fresh_mle", fresh_mle_line)):
        started = time.perf_counter()
        data[name] = line(generator, oracle, test, config)
        timings[name] = time.perf_counter() - started
        start, end = data[name][0], data[name][-1]
        print(f"{name}: reverse KL {start['reverse_kl']:.3f} -> {end['reverse_kl']:.3f} after {end['sequences']} "
              f"sequences (gain {gain(data[name]):.3f}); forward KL {start['forward_kl']:.3f} -> "
              f"{end['forward_kl']:.3f}; {timings[name]:.0f} s")
    data["cooled"] = cooled_points(generator, oracle, test, (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1), args.eval_samples,
                                   args.seed)
    best = min(data["cooled"], key=lambda p: p["reverse_kl"])
    print(f"cooled MLE: least reverse KL {best['reverse_kl']:.3f} at T = {best['temperature']:g}")
    data["best_of_n"] = best_of_n_points_by_log_ratio(generator, oracle, (1, 4, 16, 64, 256, 1024), 16_384, args.seed)
    for point in data["best_of_n"]:
        print(f"best-of-{point['n']} by D*'s logit: reverse KL {point['reverse_kl']:.3f}")
    data["wall_time_s"] = timings
    rates_after = machine_rates()
    if not args.no_publish:
        write_result("regret", args.name, data,
                     machine_rates=rates_before_and_after(rates_before, rates_after, torch.get_num_threads()),
                     **({"note": args.note} if args.note else {}))
    return data


if __name__ == "__main__":
    main()
