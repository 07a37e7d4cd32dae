"""The ``seqgan`` command.

    seqgan train                      # a short SeqGAN run on the embedded default
    seqgan sample --checkpoint DIR/generator.pt --num 100 --out samples.txt
    seqgan evaluate --checkpoint DIR/generator.pt [--oracle PATH]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import gymnasium as gym
import torch

import seqgan_env  # noqa: F401  (registers SeqGAN-v0)
from agents.reinforce import ReinforceAgent, ReinforceConfig
from seqgan_env.checkpoint import CheckpointError, load_model, save_model
from seqgan_env.factory import resolve_discriminator, resolve_oracle, resolve_rollout_policy
from seqgan_env.models import Discriminator, Generator, Oracle
from seqgan_env.presets import PRESETS, get_preset
from train.adversarial import AdversarialConfig, adversarial_train, evaluate
from train.pretrain import DiscriminatorConfig, MLEConfig, pretrain_generator, train_discriminator


def _data(oracle: Oracle, rng: torch.Generator, train_size: int = 10_000, test_size: int = 2_000):
    return oracle.sample(train_size, rng), oracle.sample(test_size, rng)


def cmd_train(args: argparse.Namespace) -> int:
    preset = get_preset(args.preset)
    torch.manual_seed(args.seed)
    rng = torch.Generator().manual_seed(args.seed)
    oracle = resolve_oracle(args.oracle, preset)
    if (oracle.vocab_size, oracle.seq_len) != (preset.vocab_size, preset.seq_len):
        preset = preset.replace(vocab_size=oracle.vocab_size, seq_len=oracle.seq_len)
    real, test = _data(oracle, rng)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.time()
    embedded = preset.name == "default" and args.oracle in (None, "builtin") and not args.pretrain
    if embedded:  # the shipped MLE generator and discriminator of the built-in oracle
        generator = resolve_rollout_policy(None, preset)
        discriminator = resolve_discriminator(None, preset)
        print("starting from the embedded default generator and discriminator")
    else:
        generator = Generator.from_preset(preset)
        pretrain_generator(generator, real, MLEConfig(epochs=args.mle_epochs), rng)
        discriminator = Discriminator.from_preset(preset)
        train_discriminator(discriminator, generator, real,
                            DiscriminatorConfig(rounds=args.d_pretrain_rounds, num_negatives=5_000), rng,
                            progress=True, desc="D pretraining")
    before = evaluate(generator, oracle, test, args.eval_samples, rng)
    print(f"after MLE: NLL-oracle {before['nll_oracle']:.3f}, NLL-test {before['nll_test']:.3f}")
    config = AdversarialConfig(steps=args.steps, batch_size=64, num_rollouts=preset.num_rollouts,
                               d_rounds=1, d_epochs=1, d_negatives=5_000, eval_every=args.eval_every,
                               eval_samples=args.eval_samples)
    envs = gym.make_vec("SeqGAN-v0", num_envs=config.batch_size, preset=preset, discriminator=discriminator,
                        rollout_policy=generator, num_rollouts=config.num_rollouts)
    agent = ReinforceAgent(generator, ReinforceConfig(), seed=args.seed)
    log_path = out / "metrics.csv"
    rows: list[dict[str, float]] = []

    def on_step(step: int, stats: dict[str, float]) -> None:
        rows.append({"step": step, **stats})

    adversarial_train(agent, generator, envs, discriminator, real, config, rng, oracle, test, on_step=on_step)
    fields = sorted({key for row in rows for key in row}, key=lambda k: (k != "step", k))
    with log_path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    after = evaluate(generator, oracle, test, args.eval_samples, rng)
    save_model(generator, out / "generator.pt")
    save_model(discriminator, out / "discriminator.pt")
    summary = {"preset": preset.name, "steps": args.steps, "before": before, "after": after,
               "wall_time_s": round(time.time() - start, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"after SeqGAN ({args.steps} steps): NLL-oracle {after['nll_oracle']:.3f} "
          f"(was {before['nll_oracle']:.3f}), NLL-test {after['nll_test']:.3f}; "
          f"{summary['wall_time_s']} s; files in {out}/")
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    generator = load_model(args.checkpoint, "generator")
    samples = generator.sample(args.num, torch.Generator().manual_seed(args.seed), temperature=args.temperature)
    lines = "\n".join(" ".join(map(str, row)) for row in samples.tolist()) + "\n"
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        Path(args.out).write_text(lines)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    generator = load_model(args.checkpoint, "generator")
    preset = get_preset(args.preset).replace(vocab_size=generator.vocab_size, seq_len=generator.seq_len)
    oracle = resolve_oracle(args.oracle, preset)
    rng = torch.Generator().manual_seed(args.seed)
    _, test = _data(oracle, rng, train_size=0)
    metrics = evaluate(generator, oracle, test, args.num, rng)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan", description="SeqGAN as a Gymnasium environment")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="pretrain (if needed) and run SeqGAN's adversarial phase")
    train.add_argument("--preset", default="default", choices=sorted(PRESETS))
    train.add_argument("--oracle", default=None, help="'builtin' (default), a seed, or an .npz / original pickle")
    train.add_argument("--steps", type=int, default=20, help="adversarial generator updates")
    train.add_argument("--pretrain", action="store_true", help="pretrain G and D instead of using the shipped ones")
    train.add_argument("--mle-epochs", type=int, default=50)
    train.add_argument("--d-pretrain-rounds", type=int, default=10)
    train.add_argument("--eval-every", type=int, default=5)
    train.add_argument("--eval-samples", type=int, default=10_000)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", default="runs/seqgan")
    train.set_defaults(func=cmd_train)
    sample = sub.add_parser("sample", help="write generated sequences, one per line")
    sample.add_argument("--checkpoint", required=True)
    sample.add_argument("--num", type=int, default=100)
    sample.add_argument("--out", default="-")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.set_defaults(func=cmd_sample)
    ev = sub.add_parser("evaluate", help="print NLL-oracle, NLL-test and entropy of a generator")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--oracle", default=None)
    ev.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ev.add_argument("--num", type=int, default=10_000)
    ev.add_argument("--seed", type=int, default=1)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, FileNotFoundError, ValueError) as exc:
        print(f"seqgan: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
