"""Speed of the dense reward against the Monte Carlo reward on the same batch.

Both rewards score the same episode: ``gymnasium.make_vec("SeqGAN-v0", num_envs=B)`` replaying
one fixed batch of generator samples, the Monte Carlo reward with the preset's discriminator
and rollouts (16 for ``paper``), the dense reward with a
:class:`~seqgan_env.models.PrefixDiscriminator` of the preset's size (one LSTM step per row and
step, no rollouts). Their episodes alternate (MC, dense, MC, dense, ...) so both see the same
machine load; it prints the median wall and CPU seconds of one episode of each, their ratio,
and this machine's dense matmul rates (float32 and bfloat16, as the other benchmarks print).

    python -m benchmarks.bench_dense --quick --threads 1     # paper preset, B = 64: about a minute
    python -m benchmarks.bench_dense --preset default --batch 256
"""

from __future__ import annotations

import argparse
import warnings

import gymnasium as gym
import torch

import seqgan_env  # noqa: F401
from benchmarks.bench_rewards import alternating_episode_times, matmul_gflops, models
from benchmarks.results import write_result
from seqgan_env.models import PrefixDiscriminator
from seqgan_env.presets import get_preset

warnings.filterwarnings("ignore", message="no (discriminator|rollout policy) given")


def episode_times(preset_name: str, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Median wall and CPU seconds of one episode of ``batch`` rows, per reward, on the same actions."""
    preset, gen, disc = models(preset_name)
    torch.manual_seed(0)
    prefix = PrefixDiscriminator.from_preset(preset).eval()
    actions = gen.sample(batch, torch.Generator().manual_seed(0)).numpy()
    envs = {
        "monte_carlo": gym.make_vec("SeqGAN-v0", num_envs=batch, preset=preset, discriminator=disc,
                                    rollout_policy=gen),
        "dense": gym.make_vec("SeqGAN-v0", num_envs=batch, preset=preset, reward="dense", discriminator=prefix),
    }

    return alternating_episode_times(envs, actions, preset.seq_len, repeats)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", choices=["paper", "default", "tiny"])
    parser.add_argument("--batch", type=int, default=64, help="rows of the vector env (B)")
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 7")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-publish", action="store_true",
                        help="do not write results/dense_reward/speed.json (written for the paper preset, B = 64)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"dense matmul 2048^3: float32 {fp32:.0f} GFLOP/s, bfloat16 {bf16:.0f} GFLOP/s\n")
    times = episode_times(args.preset, args.batch, 3 if args.quick else 7)
    steps = args.batch * get_preset(args.preset).seq_len
    print(f"{args.preset} preset, B = {args.batch}: one episode ({steps} env steps), median")
    print(f"{'reward':<12} {'wall s':>8} {'cpu s':>8} {'steps/s':>9}")
    for name, t in times.items():
        print(f"{name:<12} {t['wall']:8.3f} {t['cpu']:8.3f} {steps / t['wall']:9.0f}")
    print(f"dense is {times['monte_carlo']['wall'] / times['dense']['wall']:.0f}x faster in wall time, "
          f"{times['monte_carlo']['cpu'] / times['dense']['cpu']:.0f}x in CPU time")
    fp32_end, bf16_end = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"dense matmul at the end: float32 {fp32_end:.0f} GFLOP/s, bfloat16 {bf16_end:.0f} GFLOP/s")
    if args.preset == "paper" and args.batch == 64 and not args.no_publish:  # the configuration docs/comparing.md quotes
        write_result("dense_reward", "speed", {
            "preset": args.preset, "rows": args.batch, "env_steps": steps,
            **{name: {"wall_s": t["wall"], "cpu_s": t["cpu"]} for name, t in times.items()},
        }, machine_rates={"float32": [fp32, fp32_end], "bfloat16": [bf16, bf16_end], "threads": torch.get_num_threads()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
