"""The commands of one training run behind ``seqgan train``, ``seqgan sample`` and ``seqgan evaluate``
(parsed by :mod:`train.cli`)."""

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
from seqgan_env.divergence import NO_ORACLE, kl_to_reference
from seqgan_env.factory import resolve_oracle
from seqgan_env.metrics import bleu, self_bleu
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset
from seqgan_env.text import BOS, EOS, Corpus, Vocabulary, build_corpus, encode_lines, load_corpus, read_lines
from train.adversarial import evaluate
from train.config import TrainConfig, get_train_config, with_d_schedule, with_train_reward
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
    for key in ("seed", "algo", "data", "device", "kl_beta"):
        schedule.pop(key, None)
    schedule["adversarial"].pop("steps")
    schedule["text"].pop("max_length")
    return schedule


def check_resume_options(args: argparse.Namespace, config: TrainConfig) -> None:
    """Refuse options that a resumed run cannot honour, naming the conflict (``--steps`` is applied instead)."""
    given = {"--algo": (args.algo, config.algo), "--seed": (args.seed, config.seed),
             "--kl-beta": (args.kl_beta, config.kl_beta),
             "--data": (args.data, config.data), "--max-length": (args.max_length, config.text.max_length),
             "--d-schedule": (args.d_schedule, config.d_schedule), "--reward": (args.reward, config.reward),
             "--reward-form": (args.reward_form, config.reward_form)}
    for option, (value, runs) in given.items():
        if value is not None and value != runs:
            raise ValueError(f"{option} {value} conflicts with the run's {option[2:].replace('-', ' ')} "
                             f"{'none' if runs is None else runs}: "
                             f"a resumed run keeps it; leave {option} out, or start a new run in another --out")
    preset = get_train_config(args.preset) if args.preset is not None else None
    if preset is not None and _schedule(with_d_schedule(preset, config.d_schedule)) != _schedule(config):
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
        if args.d_schedule is not None:
            with_d_schedule(config, args.d_schedule)
        if args.kl_beta is not None:
            if not args.kl_beta >= 0.0:
                raise ValueError(f"--kl-beta must be >= 0, got {args.kl_beta}")
            config.kl_beta = args.kl_beta
        with_train_reward(config, args.reward, args.reward_form)
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
                   (("reverse_kl", "reverse KL"), ("forward_kl", "forward KL"), ("nll_oracle", "NLL-oracle"),
                    ("nll_test", "NLL-test"), ("bleu3", "BLEU-3"), ("self_bleu3", "self-BLEU-3"))
                   if key in final and key in start]
        if run.oracle is None:
            changes.append(f"reverse and forward KL {NO_ORACLE}")
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


def load_reference(path: str, generator: Generator) -> Generator:
    """pi_ref of ``seqgan evaluate --reference``: a generator file, or a run folder's MLE generator
    (``generator_mle.pt``, what its adversarial phase started from); shaped as ``generator``."""
    folder = Path(path)
    if folder.is_dir():
        if not (folder / "generator_mle.pt").is_file():
            raise CheckpointError(f"{path!r} is a folder without generator_mle.pt: not a run that finished MLE")
        path = str(folder / "generator_mle.pt")
    reference, _ = load_generator(path)
    if (reference.vocab_size, reference.seq_len) != (generator.vocab_size, generator.seq_len):
        raise ValueError(f"the reference writes vocab {reference.vocab_size} x length {reference.seq_len}, "
                         f"the generator vocab {generator.vocab_size} x length {generator.seq_len}")
    return reference.eval()


def print_metrics(metrics: dict[str, float | None]) -> None:
    """The metrics as JSON on stdout (``null``: does not exist for this data); the divergences to the
    data and the KL to a reference, ± their standard errors, also in words on stderr."""
    print(json.dumps({k: None if v is None else round(v, 4) for k, v in metrics.items()}, indent=1))
    for key, words in (("reverse_kl", "reverse KL(generator || oracle)"), ("forward_kl", "forward KL(oracle || generator)")):
        if metrics.get(key) is not None:
            print(f"{words} = {metrics[key]:.4f} ± {metrics[f'{key}_stderr']:.4f} nats per token", file=sys.stderr)
        elif key in metrics:
            print(f"{key}: {NO_ORACLE}", file=sys.stderr)
    if metrics.get("kl") is not None:
        print(f"KL(generator || reference) = {metrics['kl']:.3f} ± {metrics['kl_stderr']:.3f} nats per sequence",
              file=sys.stderr)


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
        from train.experiments.commands import evaluate_agent

        return evaluate_agent(args)
    generator, vocab = load_generator(args.checkpoint)
    reference = load_reference(args.reference, generator) if args.reference is not None else None
    rng = torch.Generator().manual_seed(args.seed)
    if vocab is not None or args.data is not None:
        return evaluate_text(args, generator, vocab, rng, reference)
    preset = get_preset(args.preset).replace(vocab_size=generator.vocab_size, seq_len=generator.seq_len)
    oracle = resolve_oracle(args.oracle, preset)
    if (oracle.vocab_size, oracle.seq_len) != (generator.vocab_size, generator.seq_len):
        raise ValueError(f"the generator writes vocab {generator.vocab_size} x length {generator.seq_len}, "
                         f"the oracle vocab {oracle.vocab_size} x length {oracle.seq_len}")
    test = oracle.sample(args.num, rng)
    metrics = evaluate(generator, oracle, test, args.num, rng, reference=reference)
    metrics.update(discriminator_metrics(args, generator, oracle=oracle))
    print_metrics(metrics)
    return 0


def discriminator_metrics(args: argparse.Namespace, generator: Generator, oracle: Any = None,
                          held_out: torch.Tensor | None = None) -> dict[str, float]:
    """``--discriminator``'s held-out metrics against ``generator`` (nothing without the option):
    ``--d-samples`` fresh oracle sequences (or held-out text) against as many of its samples."""
    if args.discriminator is None:
        return {}
    from train.diagnostics import evaluate_discriminator

    metrics = evaluate_discriminator(args.discriminator, generator, oracle=oracle, held_out=held_out,
                                     count=args.d_samples, seed=args.seed)
    metrics["d_heldout_count"] = metrics.pop("count")
    return metrics


def evaluate_text(args: argparse.Namespace, generator: Generator, vocab: Vocabulary | None,
                  rng: torch.Generator, reference: Generator | None = None) -> int:
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
    # None: real text has no oracle, so the divergences to the data do not exist (print_metrics says so).
    metrics: dict[str, float | None] = {"reverse_kl": None, "forward_kl": None,
                                        "nll_test": generator.nll(test), "entropy": generator.nll(samples)}
    if reference is not None:
        estimate = kl_to_reference(generator, reference, samples=samples)
        metrics.update(kl=estimate.kl, kl_stderr=estimate.kl_stderr)
    metrics.update({f"bleu{n}": v for n, v in bleu(hypotheses, [vocab.tokenize(x) for x in lines]).items()})
    metrics.update({f"self_bleu{n}": v for n, v in self_bleu(hypotheses, (2, 3, 4)).items()})
    metrics.update(discriminator_metrics(args, generator, held_out=test))
    print_metrics(metrics)
    return 0


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


def cmd_oracle_fetch(args: argparse.Namespace) -> int:
    """``seqgan oracle fetch``: the paper's oracle downloaded (or ``--from`` a file), checked, converted."""
    from seqgan_env import paper_oracle

    if args.source is None:
        print(f"downloading {paper_oracle.URL}", file=sys.stderr)
    path = paper_oracle.fetch(out=args.out, source=args.source)
    print(f"the paper's oracle (SHA-256 {paper_oracle.SHA256[:12]}... checked): {path}")
    if args.out is None:
        print("commands read it as --oracle paper")
    return 0
