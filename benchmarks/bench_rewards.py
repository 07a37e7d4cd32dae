"""Speed of the Monte Carlo reward: the engine against its previous version and the original loop.

For the paper's configuration (vocab 5000, length 20, 16 rollouts, the paper's discriminator)
and the smaller ``default`` discriminator, prints:

* env-steps per second of ``gymnasium.make_vec("SeqGAN-v0", num_envs=B)`` with the Monte Carlo
  reward, B = 1, 16, 64, 256, for this engine and for the engine before issue 15 (a frozen
  copy in ``benchmarks/baseline_engine.py``), their episodes alternating in one process
  (A, B, A, B, ...) so that both see the same machine load; medians over repeats, from wall
  time and from the process's CPU time (which other processes' load disturbs less);
* the same for the original loop (``seqgan_env/reference.py``), in the same process on
  the same models, and the engine's ratio to it;
* the reward computation's achieved matrix GFLOP/s (FLOPs of matrix products counted by
  torch's FlopCounterMode; the convolutions' table look-ups count none) beside this
  machine's dense matmul GFLOP/s in float32 and bfloat16, measured at the start and the end;
* peak resident memory of a process that only runs the engine at that B (tables included).

    python -m benchmarks.bench_rewards                # about 10 minutes on 2 CPU cores
    python -m benchmarks.bench_rewards --quick        # B = 1 and 64, fewer repeats
    python -m benchmarks.bench_rewards --quick --threads 1

At the end it writes ``results/engine/b_sweep.json`` (the table docs/engine.md renders) when the
paper configuration ran; ``--no-publish`` leaves it alone.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
import warnings

import gymnasium as gym
import torch
from torch.utils.flop_counter import FlopCounterMode

import seqgan_env  # noqa: F401
from benchmarks.baseline_engine import BaselineMonteCarloReward
from benchmarks.results import write_result
from seqgan_env.models import Discriminator, Generator
from seqgan_env.presets import get_preset
from seqgan_env.reference import reference_rewards

warnings.filterwarnings("ignore", message="no (discriminator|rollout policy) given")


def models(preset_name: str):
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    return preset, Generator.from_preset(preset).eval(), Discriminator.from_preset(preset).eval()


def make_envs(preset, gen, disc, num_envs: int, engine: str = "current", dtype: str = "auto"):
    """The vector env with the Monte Carlo reward of ``engine`` (``current`` or ``baseline``)."""
    envs = gym.make_vec("SeqGAN-v0", num_envs=num_envs, preset=preset, discriminator=disc,
                        rollout_policy=gen, compute_dtype=dtype)
    if engine == "baseline":
        envs.reward_model = BaselineMonteCarloReward(disc, gen, preset.num_rollouts, compute_dtype=dtype)
    return envs


def engine_episode_times(preset, gen, disc, num_envs: int, repeats: int,
                         engines: tuple[str, ...] = ("current", "baseline")) -> dict[str, dict[str, float]]:
    """Per engine: median wall and CPU seconds of one episode of ``num_envs`` rows, and its
    matrix FLOPs. The engines' episodes alternate."""
    actions = gen.sample(num_envs, torch.Generator().manual_seed(0)).numpy()
    envs = {name: make_envs(preset, gen, disc, num_envs, name) for name in engines}
    out = alternating_episode_times(envs, actions, preset.seq_len, repeats)
    for name in engines:
        with FlopCounterMode(display=False) as counter:
            run_episode(envs[name], actions, preset.seq_len)
        out[name]["flops"] = counter.get_total_flops()
    return out


def run_episode(envs, actions, seq_len: int) -> None:
    """One episode of every row of ``envs`` with the fixed ``actions`` (rows x seq_len)."""
    envs.reset(seed=0)
    for t in range(seq_len):
        envs.step(actions[:, t])


def alternating_episode_times(envs: dict, actions, seq_len: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of one episode per named vector env, the envs' episodes
    alternating (so that a change in the machine's load falls on all of them alike)."""
    for name in envs:
        run_episode(envs[name], actions, seq_len)  # warm-up: allocator, weight caches and tables
    wall: dict[str, list[float]] = {name: [] for name in envs}
    cpu: dict[str, list[float]] = {name: [] for name in envs}
    for _ in range(repeats):
        for name in envs:
            start, start_cpu = time.perf_counter(), time.process_time()
            run_episode(envs[name], actions, seq_len)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    return {name: {"wall": statistics.median(wall[name]), "cpu": statistics.median(cpu[name])} for name in envs}


def loop_episode_time(gen, disc, num_envs: int, num_rollouts: int) -> float:
    sequences = gen.sample(num_envs, torch.Generator().manual_seed(0))
    start = time.perf_counter()
    reference_rewards(sequences, gen, disc, num_rollouts, torch.Generator().manual_seed(0))
    return time.perf_counter() - start


def median_seconds(function, repeats: int = 3) -> float:
    """Median wall seconds of ``repeats`` calls of ``function``, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(dtype: torch.dtype, size: int = 2048, repeats: int = 10) -> float:
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)
    with torch.inference_mode():
        a @ b
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times) / 1e9


def machine_rates() -> dict[str, float]:
    """Dense matmul GFLOP/s of this machine now, in float32 and bfloat16 (torch's threads)."""
    return {"float32": matmul_gflops(torch.float32), "bfloat16": matmul_gflops(torch.bfloat16)}


def peak_memory_mb(preset_name: str, num_envs: int, threads: int | None, engine: str = "current") -> float:
    """Peak RSS of a fresh process that builds the models and runs two episodes of ``engine``."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent.
    code = (
        "import re, sys, torch; sys.argv=['x'];"
        + (f"torch.set_num_threads({threads});" if threads else "")
        + "from benchmarks.bench_rewards import models, engine_episode_times;"
        f"p,g,d=models({preset_name!r}); engine_episode_times(p,g,d,{num_envs},1,({engine!r},));"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


SWEEP_FIELDS = ("num_envs", "engine_steps_per_s", "baseline_steps_per_s", "ratio", "loop_steps_per_s", "loop_ratio",
                "gflops", "peak_rss_mb", "baseline_peak_rss_mb")
"""What a row of the published sweep keeps (the episode times stay in ``--json``)."""


def sweep_result(results: dict, threads: int | None) -> tuple[dict, dict]:
    """``(data, machine_rates)`` of ``results/engine/b_sweep.json`` from what :func:`main` measured."""
    data = {"threads": threads, "configs": {name: [{field: row[field] for field in SWEEP_FIELDS} for row in rows]
                                            for name, rows in results["configs"].items()}}
    rates = {**results["matmul_gflops"], "threads": threads or torch.get_num_threads(),
             "at_the_end": results["matmul_gflops_end"]}
    return data, rates


def publish(results: dict, threads: int | None) -> None:
    """Write the sweep's result file (the paper configuration is the one docs/engine.md shows)."""
    if "paper" not in results["configs"]:
        print("result file: not written (docs/engine.md shows the paper configuration; run it with --configs paper)")
        return
    data, rates = sweep_result(results, threads)
    write_result("engine", "b_sweep", data, machine_rates=rates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="B = 1 and 64 only, fewer repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--configs", nargs="+", default=["paper", "default"], choices=["paper", "default"])
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--no-publish", action="store_true", help="do not write results/engine/b_sweep.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [1, 64] if args.quick else [1, 16, 64, 256]
    loop_sizes = {1, 64} if args.quick else {1, 16, 64}
    repeats = 3 if args.quick else 5
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"dense matmul 2048^3: float32 {fp32:.0f} GFLOP/s, bfloat16 {bf16:.0f} GFLOP/s\n")
    results = {"matmul_gflops": {"float32": fp32, "bfloat16": bf16}, "configs": {}}
    for name in args.configs:
        preset, gen, disc = models(name)
        print(f"== {name} configuration: vocab {preset.vocab_size}, length {preset.seq_len}, "
              f"{preset.num_rollouts} rollouts, discriminator with {disc.config.feature_dim} filters")
        print(f"{'B':>5} {'steps/s':>9} {'baseline':>9} {'ratio':>6} {'cpu ratio':>9} {'loop':>7} "
              f"{'x loop':>7} {'GFLOP/s':>8} {'% bf16':>7} {'peak MB':>8} {'baseline MB':>11}")
        rows = []
        for num_envs in sizes:
            times = engine_episode_times(preset, gen, disc, num_envs, repeats)
            steps = num_envs * preset.seq_len
            rate = {engine: steps / t["wall"] for engine, t in times.items()}
            cpu_ratio = times["baseline"]["cpu"] / times["current"]["cpu"]
            loop_rate = None
            if num_envs in loop_sizes:
                loop_rate = steps / loop_episode_time(gen, disc, num_envs, preset.num_rollouts)
            gflops = times["current"]["flops"] / times["current"]["wall"] / 1e9
            memory = peak_memory_mb(name, num_envs, args.threads)
            baseline_memory = peak_memory_mb(name, num_envs, args.threads, "baseline")
            rows.append({"num_envs": num_envs, "engine_steps_per_s": rate["current"],
                         "baseline_steps_per_s": rate["baseline"], "ratio": rate["current"] / rate["baseline"],
                         "cpu_time_ratio": cpu_ratio, "loop_steps_per_s": loop_rate,
                         "loop_ratio": rate["current"] / loop_rate if loop_rate else None, "gflops": gflops,
                         "peak_rss_mb": memory, "baseline_peak_rss_mb": baseline_memory, "times": times})
            loop_text = f"{loop_rate:7.1f} {rate['current'] / loop_rate:7.1f}" if loop_rate else f"{'-':>7} {'-':>7}"
            print(f"{num_envs:5d} {rate['current']:9.1f} {rate['baseline']:9.1f} "
                  f"{rate['current'] / rate['baseline']:6.2f} {cpu_ratio:9.2f} {loop_text} {gflops:8.0f} "
                  f"{100 * gflops / bf16:6.1f}% {memory:8.0f} {baseline_memory:11.0f}", flush=True)
        results["configs"][name] = rows
        print()
    fp32_end, bf16_end = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"dense matmul at the end: float32 {fp32_end:.0f} GFLOP/s, bfloat16 {bf16_end:.0f} GFLOP/s")
    results["matmul_gflops_end"] = {"float32": fp32_end, "bfloat16": bf16_end}
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    if not args.no_publish:
        publish(results, args.threads)


if __name__ == "__main__":
    main()
