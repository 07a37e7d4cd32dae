"""Speed of the Monte Carlo reward: the batched engine against the original per-prefix loop.

For the paper's configuration (vocab 5000, length 20, 16 rollouts, the paper's discriminator)
and the smaller ``default`` discriminator, prints:

* env-steps per second of ``gymnasium.make_vec("SeqGAN-v0", num_envs=B)`` with the Monte Carlo
  reward, B = 1, 16, 64, 256 (medians over repeats);
* the same for the original loop (``benchmarks/reference_loop.py``), in the same process on
  the same models, and the ratio;
* the reward computation's achieved GFLOP/s (matrix FLOPs counted by torch's FlopCounterMode)
  beside this machine's dense matmul GFLOP/s in float32 and bfloat16;
* peak resident memory of a process that only runs the engine at that B.

    python -m benchmarks.bench_rewards                # about 5 minutes on 2 CPU cores
    python -m benchmarks.bench_rewards --quick        # fewer sizes and repeats
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
from benchmarks.reference_loop import reference_rewards
from seqgan_env.models import Discriminator, Generator
from seqgan_env.presets import get_preset

warnings.filterwarnings("ignore", message="no (discriminator|rollout policy) given")


def models(preset_name: str):
    preset = get_preset(preset_name)
    torch.manual_seed(0)
    return preset, Generator.from_preset(preset).eval(), Discriminator.from_preset(preset).eval()


def engine_episode_time(preset, gen, disc, num_envs: int, repeats: int, dtype: str = "auto") -> tuple[float, float]:
    """Median seconds of one episode of ``num_envs`` rows, and its matrix FLOPs."""
    envs = gym.make_vec("SeqGAN-v0", num_envs=num_envs, preset=preset, discriminator=disc,
                        rollout_policy=gen, compute_dtype=dtype)
    actions = gen.sample(num_envs, torch.Generator().manual_seed(0)).numpy()

    def episode() -> None:
        envs.reset(seed=0)
        for t in range(preset.seq_len):
            envs.step(actions[:, t])

    episode()  # warm-up: allocator, weight caches
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        episode()
        times.append(time.perf_counter() - start)
    with FlopCounterMode(display=False) as counter:
        episode()
    return statistics.median(times), counter.get_total_flops()


def loop_episode_time(gen, disc, num_envs: int, num_rollouts: int) -> float:
    sequences = gen.sample(num_envs, torch.Generator().manual_seed(0))
    start = time.perf_counter()
    reference_rewards(sequences, gen, disc, num_rollouts, torch.Generator().manual_seed(0))
    return time.perf_counter() - start


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


def peak_memory_mb(preset_name: str, num_envs: int) -> float:
    """Peak RSS of a fresh process that builds the models and runs two episodes."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec from the (large) parent.
    code = (
        "import re, sys; sys.argv=['x'];"
        "from benchmarks.bench_rewards import models, engine_episode_time;"
        f"p,g,d=models({preset_name!r}); engine_episode_time(p,g,d,{num_envs},1);"
        "print(int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)) / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="B = 1 and 64 only, fewer repeats")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()
    sizes = [1, 64] if args.quick else [1, 16, 64, 256]
    loop_sizes = {1, 64} if args.quick else {1, 16, 64}
    repeats = 3 if args.quick else 5
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"dense matmul 2048^3: float32 {fp32:.0f} GFLOP/s, bfloat16 {bf16:.0f} GFLOP/s\n")
    results = {"matmul_gflops": {"float32": fp32, "bfloat16": bf16}, "configs": {}}
    for name in ("paper", "default"):
        preset, gen, disc = models(name)
        print(f"== {name} configuration: vocab {preset.vocab_size}, length {preset.seq_len}, "
              f"{preset.num_rollouts} rollouts, discriminator with {disc.config.feature_dim} filters")
        print(f"{'B':>5} {'engine steps/s':>15} {'loop steps/s':>13} {'ratio':>7} {'GFLOP/s':>8} "
              f"{'% of bf16 mm':>12} {'peak MB':>8}")
        rows = []
        for num_envs in sizes:
            seconds, flops = engine_episode_time(preset, gen, disc, num_envs, repeats)
            steps = num_envs * preset.seq_len
            engine_rate = steps / seconds
            loop_rate = None
            if num_envs in loop_sizes:
                loop_rate = steps / loop_episode_time(gen, disc, num_envs, preset.num_rollouts)
            gflops = flops / seconds / 1e9
            memory = peak_memory_mb(name, num_envs)
            rows.append({"num_envs": num_envs, "engine_steps_per_s": engine_rate, "loop_steps_per_s": loop_rate,
                         "ratio": engine_rate / loop_rate if loop_rate else None, "gflops": gflops,
                         "peak_rss_mb": memory})
            ratio = f"{engine_rate / loop_rate:7.1f}" if loop_rate else f"{'-':>7}"
            loop_text = f"{loop_rate:13.1f}" if loop_rate else f"{'-':>13}"
            print(f"{num_envs:5d} {engine_rate:15.1f} {loop_text} {ratio} {gflops:8.0f} "
                  f"{100 * gflops / bf16:11.1f}% {memory:8.0f}", flush=True)
        results["configs"][name] = rows
        print()
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)


if __name__ == "__main__":
    main()
