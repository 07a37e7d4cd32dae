"""The ``seqgan`` command.

    seqgan train                      # a short SeqGAN run on the embedded default
    seqgan train --preset cpu --oracle ../shared/oracle/seqgan_paper_oracle.npz --out runs/paper
    seqgan train --out runs/paper --resume
    seqgan sample --checkpoint DIR/generator.pt --num 100 --out samples.txt
    seqgan evaluate --checkpoint DIR/generator.pt [--oracle PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from seqgan_env.checkpoint import CheckpointError, load_model
from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import PRESETS, get_preset
from train.adversarial import evaluate
from train.config import TRAIN_PRESETS, TrainConfig, get_train_config
from train.pipeline import Run


def cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    payload = None
    if args.resume:
        payload = Run.load_payload(out)  # read once: its config picks the oracle, then Run resumes from it
        config = TrainConfig.from_dict(payload["config"])
    else:
        config = get_train_config(args.preset)
        if args.steps is not None:
            config.adversarial.steps = args.steps
        if args.seed is not None:
            config.seed = args.seed
        config.algo = args.algo
    if config.start_from_shipped and args.oracle not in (None, "builtin"):
        raise ValueError("the embedded default was trained on the built-in oracle; with --oracle, "
                         "choose a preset that pretrains (--preset cpu or --preset paper)")
    oracle = resolve_oracle(args.oracle, get_preset(config.model_preset))
    run = Run(out, config, oracle, resume=args.resume, payload=payload)
    summary = run.run()
    start, final = summary["after_mle"], summary["final"]
    if start and final:
        print(f"NLL-oracle {start['nll_oracle']:.3f} after MLE -> {final['nll_oracle']:.3f} after "
              f"{run.state.adversarial_steps} adversarial steps; NLL-test {start['nll_test']:.3f} -> "
              f"{final['nll_test']:.3f}; {summary['wall_time_s']} s in all; files in {out}/")
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
    if (oracle.vocab_size, oracle.seq_len) != (generator.vocab_size, generator.seq_len):
        raise ValueError(f"the generator writes vocab {generator.vocab_size} x length {generator.seq_len}, "
                         f"the oracle vocab {oracle.vocab_size} x length {oracle.seq_len}")
    rng = torch.Generator().manual_seed(args.seed)
    test = oracle.sample(args.num, rng)
    metrics = evaluate(generator, oracle, test, args.num, rng)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan", description="SeqGAN as a Gymnasium environment")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="run SeqGAN: data, MLE, D pretraining, adversarial steps")
    train.add_argument("--preset", default="default", choices=sorted(TRAIN_PRESETS),
                       help="default: a few minutes from the embedded default; cpu, paper: the whole pipeline")
    train.add_argument("--oracle", default=None, help="'builtin' (default), a seed, or an .npz / original pickle")
    train.add_argument("--algo", default="reinforce", choices=["reinforce", "ppo", "a2c"])
    train.add_argument("--steps", type=int, default=None, help="adversarial generator updates (preset's if unset)")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--out", default="runs/seqgan")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
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
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as exc:
        print(f"seqgan: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
