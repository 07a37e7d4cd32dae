"""RLlib's PPO on SeqGAN-v0, starting from an MLE generator, with D retrained between iterations.

    python examples/rllib_ppo.py             # the tiny preset: a minute on one core
    python examples/rllib_ppo.py --quick     # two iterations (what the test suite runs)

Steps: sample "real" data from an oracle, pretrain the generator by maximum likelihood and
the discriminator against it (the project's pipeline functions), then let RLlib's PPO
improve the generator on the Monte Carlo discriminator reward. Prints NLL-oracle before and
after, and RLlib's env-steps per iteration.
"""

from __future__ import annotations

import argparse
import logging
import warnings

import ray
import torch

from agents.rllib import env_steps, make_ppo, mean_step_reward
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.presets import get_preset
from train.pretrain import DiscriminatorSchedule, MLEConfig, pretrain_generator, train_discriminator


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="two iterations")
    args = parser.parse_args(argv)
    iterations = 2 if args.quick else args.iterations
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    torch.set_num_threads(1)

    preset = get_preset("tiny")
    torch.manual_seed(0)
    rng = torch.Generator().manual_seed(0)
    oracle = Oracle.from_preset(preset)
    real = oracle.sample(2000, rng)
    generator = Generator.from_preset(preset)
    pretrain_generator(generator, real, MLEConfig(epochs=3), rng, progress=False)
    discriminator = Discriminator.from_preset(preset)
    train_discriminator(discriminator, generator, real, DiscriminatorSchedule(rounds=3, epochs=2, num_negatives=1000, lr=1e-3),
                        rng)
    discriminator.eval()

    started_ray = not ray.is_initialized()
    if started_ray:  # a small local Ray; on a cluster, ray.init(address=...) first
        ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING)
    env_kwargs = dict(preset=preset, reward="monte_carlo", discriminator=discriminator,
                      rollout_policy=generator, num_rollouts=4)
    algorithm = make_ppo(env_kwargs, generator, num_envs=32, seed=0, discriminator=discriminator, real=real,
                         num_negatives=500)
    before = oracle.nll(generator.sample(2000, torch.Generator().manual_seed(1)))
    try:
        for iteration in range(1, iterations + 1):
            result = algorithm.train()
            print(f"iteration {iteration}: {env_steps(result)} env steps, mean reward {mean_step_reward(result):.3f}, "
                  f"D accuracy {result['discriminator']['d_accuracy']:.3f}")
    finally:
        algorithm.stop()
        if started_ray:
            ray.shutdown()
    after = oracle.nll(generator.sample(2000, torch.Generator().manual_seed(1)))
    print(f"NLL-oracle {before:.3f} -> {after:.3f} after {iterations} PPO iterations")
    return {"nll_oracle_before": before, "nll_oracle_after": after, "env_steps": env_steps(result)}


if __name__ == "__main__":
    main()
