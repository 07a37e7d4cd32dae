"""Does regularising D keep its Monte Carlo reward informative? A small experiment.

Under a schedule that over-trains the paper's CNN discriminator against a fixed generator
(many rounds of fresh negatives, several epochs each), D saturates: P(real) of every
generated sequence falls towards 0 and the Monte Carlo rewards of a batch become nearly the
same number, so they tell the generator little. For each D setting this trains D from the
same start under the same schedule and measures, on one fixed batch of generator samples
scored by the Monte Carlo reward:

* ``reward_std``: the spread (standard deviation) of the rewards within the batch, mean over steps;
* ``mean_reward``: the mean reward;
* ``d_accuracy``: D's accuracy in its last training epoch.

The values of :data:`train.pretrain.REGULARISED_D` were chosen from these two tables::

    python -m benchmarks.d_regularisation --vocab 512        # tiny preset, vocabulary 512: about 80 s on 1 thread
    python -m benchmarks.d_regularisation --preset default --lr 1e-3 --rounds 5 --epochs 5 --real 1000 --mle-epochs 3
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import gymnasium as gym
import torch

import seqgan_env  # noqa: F401
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.presets import Preset, get_preset
from train.pretrain import DiscriminatorSchedule, MLEConfig, pretrain_generator, train_discriminator

SETTINGS: dict[str, dict[str, float]] = {
    "plain (paper)": {},
    "label smoothing 0.1": {"label_smoothing": 0.1},
    "label smoothing 0.3": {"label_smoothing": 0.3},
    "weight decay 1e-3": {"weight_decay": 1e-3},
    "weight decay 3e-3": {"weight_decay": 3e-3},
    "smoothing 0.2 + decay 1e-3": {"label_smoothing": 0.2, "weight_decay": 1e-3},
}
"""The D settings compared (DiscriminatorSchedule fields)."""


def fixed_generator(preset: Preset, seed: int = 0, real_count: int = 2000,
                    mle_epochs: int = 3) -> dict[str, Any]:
    """A generator MLE-trained for ``mle_epochs`` (0: untrained) on ``real_count`` samples of the
    preset's oracle, and those samples."""
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(seed)
    oracle = Oracle.from_preset(preset)
    real = oracle.sample(real_count, rng)
    generator = Generator.from_preset(preset)
    if mle_epochs:
        pretrain_generator(generator, real, MLEConfig(epochs=mle_epochs), rng, progress=False)
    return {"generator": generator.eval(), "real": real}


def overtrained_discriminator(preset: Preset, generator: Generator, real: torch.Tensor, rounds: int,
                              epochs: int, lr: float, seed: int = 0,
                              **regularisation: float) -> tuple[Discriminator, dict[str, float]]:
    """A fresh D (the same initialisation for every setting) over-trained against the fixed
    ``generator``: ``rounds`` draws of as many fresh negatives as real sequences, ``epochs``
    epochs each, Adam with learning rate ``lr``."""
    torch.manual_seed(seed)
    discriminator = Discriminator.from_preset(preset)
    schedule = DiscriminatorSchedule(rounds=rounds, epochs=epochs, num_negatives=real.shape[0], lr=lr,
                                     **regularisation)
    stats = train_discriminator(discriminator, generator, real, schedule, torch.Generator().manual_seed(seed))
    return discriminator.eval(), stats


def reward_statistics(preset: Preset, discriminator: Discriminator, generator: Generator, batch_size: int = 64,
                      seed: int = 0) -> dict[str, float]:
    """The Monte Carlo rewards of one fixed batch of ``generator`` samples: their within-batch
    standard deviation (mean over steps) and their mean."""
    envs = gym.make_vec("SeqGAN-v0", num_envs=batch_size, preset=preset, discriminator=discriminator,
                        rollout_policy=generator, compute_dtype="float32")
    actions = generator.sample(batch_size, torch.Generator().manual_seed(seed))
    envs.reset(seed=seed)
    rewards = torch.stack([torch.as_tensor(envs.step(actions[:, t].numpy())[1]) for t in range(preset.seq_len)], 1)
    envs.close()
    return {"reward_std": float(rewards.std(dim=0).mean()), "mean_reward": float(rewards.mean())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="tiny", choices=["tiny", "default"])
    parser.add_argument("--vocab", type=int, default=None, help="override the preset's vocabulary size")
    parser.add_argument("--rounds", type=int, default=4, help="D rounds (fresh negatives each)")
    parser.add_argument("--epochs", type=int, default=10, help="D epochs per round")
    parser.add_argument("--lr", type=float, default=3e-2, help="D's Adam learning rate")
    parser.add_argument("--real", type=int, default=500, help="real sequences (and negatives per round)")
    parser.add_argument("--mle-epochs", type=int, default=0, help="MLE epochs of the fixed generator (0: untrained)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = get_preset(args.preset)
    if args.vocab:
        preset = preset.replace(vocab_size=args.vocab)
    start = time.time()
    setup = fixed_generator(preset, real_count=args.real, mle_epochs=args.mle_epochs)
    print(f"{args.preset} preset (vocab {preset.vocab_size}), D over-trained {args.rounds} rounds x {args.epochs} "
          f"epochs (Adam lr {args.lr:g}, {args.real} real + {args.real} fresh negatives) against a fixed generator "
          f"({args.mle_epochs} MLE epochs); Monte Carlo rewards of 64 samples")
    print(f"{'setting':<28} {'reward std':>10} {'mean reward':>11} {'D accuracy':>10}")
    for name, regularisation in SETTINGS.items():
        disc, stats = overtrained_discriminator(preset, setup["generator"], setup["real"], args.rounds, args.epochs,
                                                args.lr, **regularisation)
        row = {**reward_statistics(preset, disc, setup["generator"]), **stats}
        print(f"{name:<28} {row['reward_std']:10.4f} {row['mean_reward']:11.4f} {row['d_accuracy']:10.3f}",
              flush=True)
    print(f"{time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
