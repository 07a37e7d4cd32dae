"""Wall time of one generator update of each agent on the paper configuration, batch 64.

One update = one episode in each of 64 rows of ``make_vec("SeqGAN-v0", preset="paper")`` with
the Monte Carlo reward (16 rollouts, the paper's discriminator), plus the agent's learning
step. Untrained models of the paper's shapes: the time does not depend on the weights.

    python -m benchmarks.bench_agents
"""

from __future__ import annotations

import argparse
import warnings

import gymnasium as gym
import torch

import seqgan_env  # noqa: F401
from agents import ReinforceAgent, collect_episodes
from agents.sb3 import make_a2c, make_ppo
from benchmarks.bench_rewards import machine_rates, median_seconds
from benchmarks.results import write_result
from seqgan_env.models import Discriminator, Generator
from seqgan_env.presets import get_preset

warnings.filterwarnings("ignore", message="no (discriminator|rollout policy) given")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-publish", action="store_true", help="do not write results/agents/update_times.json")
    args = parser.parse_args()
    rates = {**machine_rates(), "threads": torch.get_num_threads()}
    preset = get_preset("paper")
    torch.manual_seed(0)
    disc = Discriminator.from_preset(preset).eval()
    results = {}

    gen = Generator.from_preset(preset)
    envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset=preset, discriminator=disc, rollout_policy=gen)
    agent = ReinforceAgent(gen)
    results["REINFORCE"] = median_seconds(lambda: agent.learn(collect_episodes(envs, agent)))

    for name, make in (("PPO", make_ppo), ("A2C", make_a2c)):
        gen = Generator.from_preset(preset)
        envs = gym.make_vec("SeqGAN-v0", num_envs=64, preset=preset, discriminator=disc, rollout_policy=gen)
        model = make(envs, generator=gen, seed=0)
        steps = 64 * preset.seq_len
        model.learn(steps)  # builds the logger and buffers
        results[name] = median_seconds(lambda model=model, steps=steps: model.learn(steps, reset_num_timesteps=False))

    print("per generator update (64 sequences x 20 tokens, 16 rollouts, paper D), median of 3:")
    for name, seconds in results.items():
        print(f"  {name:10s} {seconds:6.2f} s")
    if not args.no_publish:
        write_result("agents", "update_times", {
            "configuration": "paper: 64 sequences x 20 tokens, 16 rollouts, the paper's discriminator",
            "seconds_per_update": results}, machine_rates=rates)


if __name__ == "__main__":
    main()
