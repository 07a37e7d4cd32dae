"""Time each phase of the ``cpu`` training preset on short slices, optionally against another checkout.

One slice of each phase of ``python -m benchmarks.paper_table`` on the paper's oracle, with
the preset's own sizes: one MLE epoch (10,000 sequences), one evaluation (10,000 samples for
NLL-oracle, NLL-test on 5,000, entropy), one round of D pretraining (5,000 fresh negatives,
2 epochs), and of the adversarial phase a generator step (a batch of 64 episodes with the
Monte Carlo reward, and REINFORCE's update), D's accuracy gate on 500 fresh samples and one
retraining of D (500 negatives, 1 epoch).

Each slice runs in a fresh worker process. With ``--compare DIR`` (a checkout of another
commit: ``mkdir -p /tmp/base && git archive 93e92e8 | tar -x -C /tmp/base``) the workers of both trees alternate,
A, B, A, B, so that both see the same machine load, and the script prints the medians and
their ratio. Times are CPU seconds of the worker (``time.process_time``), which load from
other processes disturbs much less than wall time; run with ``--threads 1`` on a shared
machine.

    python -m benchmarks.bench_phases --threads 1
    python -m benchmarks.bench_phases --threads 1 --compare /tmp/base --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ORACLE = "paper"  # the file `seqgan oracle fetch` writes (seqgan_env.paper_oracle)
PHASES = ("mle_epoch", "evaluate", "d_pretrain_round", "g_step", "d_gate", "d_retrain")


def worker(oracle_path: str, threads: int, quick: bool) -> dict[str, float]:
    """Run one slice of every phase with whatever ``seqgan_env``/``train`` is importable."""
    import dataclasses
    import warnings

    import gymnasium as gym
    import torch

    import seqgan_env
    from agents.reinforce import ReinforceAgent, ReinforceConfig
    from seqgan_env.factory import resolve_oracle
    from seqgan_env.models import Discriminator, Generator
    from seqgan_env.presets import get_preset
    from train.adversarial import evaluate, fresh_accuracy, reinforce_step
    from train.config import get_train_config
    from train.pretrain import mle_epoch, train_discriminator

    try:  # the optimiser each tree's pipeline builds
        from seqgan_env.precision import adam
    except ImportError:
        def adam(params, lr):
            return torch.optim.Adam(params, lr=lr)

    warnings.filterwarnings("ignore")
    torch.set_num_threads(threads)
    config = get_train_config("cpu")
    preset = get_preset(config.model_preset)
    oracle = resolve_oracle(oracle_path, preset)
    rng = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    generator, discriminator = Generator.from_preset(preset), Discriminator.from_preset(preset)
    real = oracle.sample(config.real_samples, rng)
    test = oracle.sample(config.test_samples, rng)
    g_optimizer = adam(generator.parameters(), config.mle.lr)
    d_optimizer = adam(discriminator.parameters(), config.d_pretrain.lr)
    scale = 10 if quick else 1
    times: dict[str, float] = {}

    def clock(name, run):
        start = time.process_time()
        run()
        times[name] = time.process_time() - start

    clock("mle_epoch", lambda: mle_epoch(generator, real[: len(real) // scale], g_optimizer, config.mle.batch_size,
                                         config.mle.grad_clip, rng))
    clock("evaluate", lambda: evaluate(generator, oracle, test, config.adversarial.eval_samples // scale, rng))
    d_round = dataclasses.replace(config.d_pretrain, rounds=1, num_negatives=config.d_pretrain.num_negatives // scale)
    clock("d_pretrain_round", lambda: train_discriminator(discriminator, generator, real, d_round, rng, d_optimizer))
    adversarial = config.adversarial
    envs = gym.make_vec("SeqGAN-v0", num_envs=adversarial.batch_size, preset=preset, discriminator=discriminator,
                        rollout_policy=generator, num_rollouts=adversarial.num_rollouts)
    agent = ReinforceAgent(generator, ReinforceConfig(), seed=0)
    seqgan_env.set_rollout_policy(envs, agent.rollout_policy)
    step = reinforce_step(agent, envs)
    step(0)  # warm-up: D's inference caches, allocator
    clock("g_step", lambda: step(1))
    # The gate draws its real sequences from the oracle (held out); a tree from before that took
    # D's training data there, so the source follows the signature of the tree being measured.
    import inspect

    gate_real = oracle if "held_out" in inspect.signature(fresh_accuracy).parameters else real
    clock("d_gate", lambda: fresh_accuracy(discriminator, generator, gate_real, adversarial.d_negatives, rng))
    retrain = dataclasses.replace(config.d_pretrain, rounds=adversarial.d_rounds, epochs=adversarial.d_epochs,
                                  num_negatives=adversarial.d_negatives)
    clock("d_retrain", lambda: train_discriminator(discriminator, generator, real, retrain, rng, d_optimizer))
    return times


def run_worker(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(args.threads)}
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--oracle", args.oracle,
               "--threads", str(args.threads)] + (["--quick"] if args.quick else [])
    out = subprocess.run(command, env=env, cwd=tree, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oracle", default=str(DEFAULT_ORACLE))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=1, help="worker runs per tree")
    parser.add_argument("--compare", type=Path, help="another checkout to time alternately (the baseline)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the MLE epoch, evaluation and D round")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.oracle, args.threads, args.quick)))
        return
    from seqgan_env import paper_oracle  # here, not at the top: workers may run an older checkout's seqgan_env

    args.oracle = str(paper_oracle.resolve(args.oracle))  # a path the baseline's older code also reads
    trees = {"this": ROOT} | ({"baseline": args.compare.resolve()} if args.compare else {})
    results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            results[name].append(run_worker(tree, args))
    medians = {name: {phase: statistics.median(r[phase] for r in runs) for phase in PHASES}
               for name, runs in results.items()}
    header = f"{'phase (CPU s, ' + str(args.threads) + ' thread)':<34}" + "".join(f"{name:>10}" for name in trees)
    print(header + (f"{'ratio':>8}" if args.compare else ""))
    for phase in PHASES:
        line = f"{phase:<34}" + "".join(f"{medians[name][phase]:10.2f}" for name in trees)
        if args.compare:
            line += f"{medians['baseline'][phase] / medians['this'][phase]:8.2f}"
        print(line)
    if args.json:
        Path(args.json).write_text(json.dumps({"medians": medians, "runs": results}, indent=1))


if __name__ == "__main__":
    main()
