"""Regenerate the embedded default of ``gymnasium.make("SeqGAN-v0")``.

Trains, on the built-in oracle of the ``default`` preset, a generator by MLE and a
discriminator against it, and writes both into ``seqgan_env/assets/``. Everything comes from
the project's own code; the run is seeded, so it reproduces the shipped files' quality.

    python scripts/make_default_assets.py            # about 10 minutes on 2 CPU cores

The built-in oracle can draw unlimited real data, so both models see a large pool (50,000
sequences) rather than the paper's fixed 10,000: the default is meant to pay a reward that
generalises, not to reproduce the paper's table (``benchmarks/`` does that). For the same
reason a quarter of the discriminator's negatives are uniformly random sequences: a D that
has only ever seen the generator's samples has no opinion about random text, and would pay
an agent starting from scratch as much as real data.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from seqgan_env.checkpoint import load_model, save_model
from seqgan_env.factory import DEFAULT_DISCRIMINATOR_FILE, DEFAULT_GENERATOR_FILE, asset_path
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.presets import get_preset
from train.pretrain import DiscriminatorSchedule, MLEConfig, pretrain_generator, train_discriminator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=50_000)
    parser.add_argument("--mle-epochs", type=int, default=8)
    parser.add_argument("--d-rounds", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--d-lr", type=float, default=1e-3)
    parser.add_argument("--random-negatives", type=float, default=0.25,
                        help="share of D's negatives that are uniformly random sequences")
    parser.add_argument("--generator", type=Path, help="reuse this saved generator instead of training one")
    parser.add_argument("--out", type=Path, default=asset_path("").parent / "assets")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    rng = torch.Generator().manual_seed(args.seed)
    preset = get_preset("default")
    oracle = Oracle.from_preset(preset)
    real = oracle.sample(args.train_size, rng)
    test = oracle.sample(2_000, rng)
    generator = Generator.from_preset(preset)
    start = time.time()

    def report(epoch: int, loss: float) -> None:
        if epoch % 2 == 0 or epoch == args.mle_epochs:
            nll_oracle = oracle.nll(generator.sample(2_000, rng))
            print(f"epoch {epoch}: train NLL {loss:.3f}, NLL-oracle {nll_oracle:.3f}, "
                  f"NLL-test {generator.nll(test):.3f}, {time.time() - start:.0f}s", flush=True)

    if args.generator is not None:
        generator = load_model(args.generator, "generator")
    else:
        pretrain_generator(generator, real, MLEConfig(epochs=args.mle_epochs), rng, on_epoch=report, progress=False)
    discriminator = Discriminator.from_preset(preset)
    stats = train_discriminator(discriminator, generator, real, DiscriminatorSchedule(
        rounds=args.d_rounds, epochs=2, num_negatives=5_000, lr=args.d_lr,
        random_negatives=args.random_negatives), rng)
    summary = {
        "train_size": args.train_size, "mle_epochs": args.mle_epochs, "d_rounds": args.d_rounds,
        "d_lr": args.d_lr, "random_negatives": args.random_negatives, "seed": args.seed,
        "nll_oracle": oracle.nll(generator.sample(10_000, rng)), "nll_test": generator.nll(test),
        "d_real_fresh": float(discriminator.score(oracle.sample(2_000, rng)).mean()),
        "d_generated_fresh": float(discriminator.score(generator.sample(2_000, rng)).mean()),
        "d_random": float(discriminator.score(torch.randint(0, preset.vocab_size, (2_000, preset.seq_len),
                                                            generator=rng)).mean()),
        **stats, "seconds": round(time.time() - start, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    save_model(generator, args.out / DEFAULT_GENERATOR_FILE, summary=json.dumps(summary))
    save_model(discriminator, args.out / DEFAULT_DISCRIMINATOR_FILE, summary=json.dumps(summary))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
