"""RLlib's PPO against SB3's PPO on the same SeqGAN-v0, in the same process: env-steps per second.

Both train the same generator-shaped actor-critic (token ids through embedding + LSTM) on
the batched twin ``gymnasium.make_vec("SeqGAN-v0", num_envs=B)`` with the Monte Carlo
reward, one episode per env per iteration, 4 epochs of 4 minibatches (the presets of
``agents.sb3.make_ppo`` and ``agents.rllib.ppo_config``). For each, prints the median
env-steps per second of whole iterations (collecting the episodes, the reward's Monte Carlo
rollouts included, and the update), after one warm-up iteration; and this machine's dense
matmul rates, since machines of this project's kind differ several-fold.

    python -m benchmarks.bench_rllib                     # paper models, B = 64, 5 iterations
    python -m benchmarks.bench_rllib --quick             # tiny models, 2 iterations
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
import warnings

import gymnasium as gym
import torch

import seqgan_env  # noqa: F401
from benchmarks.bench_rewards import matmul_gflops, models

warnings.filterwarnings("ignore")


def iteration_rates(step, steps_per_iteration: int, iterations: int) -> list[float]:
    """Env-steps per second of ``iterations`` calls of ``step`` after one warm-up call."""
    step()
    rates = []
    for _ in range(iterations):
        start = time.perf_counter()
        step()
        rates.append(steps_per_iteration / (time.perf_counter() - start))
    return rates


def sb3_rates(env_kwargs: dict, generator, num_envs: int, iterations: int) -> list[float]:
    from agents.sb3 import make_ppo

    envs = gym.make_vec("SeqGAN-v0", num_envs=num_envs, **env_kwargs)
    model = make_ppo(envs, generator=generator, seed=0)
    rollout = model.n_envs * model.n_steps
    rates = iteration_rates(lambda: model.learn(total_timesteps=rollout, reset_num_timesteps=False), rollout,
                            iterations)
    envs.close()
    return rates


def rllib_rates(env_kwargs: dict, generator, num_envs: int, iterations: int) -> list[float]:
    import ray

    from agents.rllib import env_steps, make_ppo

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        algorithm = make_ppo(env_kwargs, generator, num_envs=num_envs, seed=0)
        steps = env_steps(algorithm.train())  # one iteration's env steps; it is also a warm-up
        rates = iteration_rates(algorithm.train, steps, iterations)
        algorithm.stop()
    finally:
        if started:
            ray.shutdown()
    return rates


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="paper", help="model preset (paper, default, tiny)")
    parser.add_argument("--num-envs", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 iterations")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    preset_name, iterations = ("tiny", 2) if args.quick else (args.preset, args.iterations)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread")
    fp32, bf16 = matmul_gflops(torch.float32), matmul_gflops(torch.bfloat16)
    print(f"dense matmul 2048^3: float32 {fp32:.0f} GFLOP/s, bfloat16 {bf16:.0f} GFLOP/s")
    preset, generator, discriminator = models(preset_name)
    env_kwargs = dict(preset=preset, reward="monte_carlo", discriminator=discriminator, rollout_policy=generator)
    print(f"{preset_name} models: vocab {preset.vocab_size}, length {preset.seq_len}, {preset.num_rollouts} rollouts; "
          f"B = {args.num_envs}; median of {iterations} iterations (collect + update)")
    results = {"matmul_gflops": {"float32": fp32, "bfloat16": bf16}, "preset": preset_name,
               "num_envs": args.num_envs}
    for name, measure in (("sb3-ppo", sb3_rates), ("rllib-ppo", rllib_rates)):
        rates = measure(env_kwargs, generator, args.num_envs, iterations)
        results[name] = {"env_steps_per_s": statistics.median(rates), "all": rates}
        print(f"{name:>10}: {statistics.median(rates):8.1f} env-steps/s", flush=True)
    ratio = results["rllib-ppo"]["env_steps_per_s"] / results["sb3-ppo"]["env_steps_per_s"]
    print(f"RLlib / SB3: {ratio:.2f}")
    results["ratio"] = ratio
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(results, handle, indent=1)
    return results


if __name__ == "__main__":
    main()
