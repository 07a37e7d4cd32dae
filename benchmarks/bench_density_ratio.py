"""What scoring Monte Carlo completions with a density-ratio D (D*, or a learned one) costs.

A density-ratio D scores a sequence by two LSTM language models' log-likelihoods; over a
5,000-token vocabulary their output layers (a product and a log-softmax per position) are
nearly all of it. For one episode of the paper's preset (64 prefixes, 16 completions each, at
every prefix length) this times, on the same completions and side by side:

* ``plain``: the whole ``(rows, length, vocab)`` log-softmax, then the taken tokens (the path
  that D's training still takes, since it needs gradients, and every scoring took before);
* ``chunked``: the output layer a cache-sized chunk of rows at a time, reduced to the taken
  token's log-probability before the next chunk (:meth:`seqgan_env.models.TokenLSTM.taken_log_probs`,
  what every teacher-forced pass without gradients now takes);
* ``chunked + shared prefix``: the positions of a prefix scored once for its 16 completions
  (what the Monte Carlo engine calls, through ``window_maxima``).

It prints the machine's dense matmul rates beside the timings (machines of this kind differ
several-fold), the median of ``--repeats`` episodes per path and the ratios to ``plain``, and
checks that the three agree (float32 sums: to about 1e-4 nats).

    python -m benchmarks.bench_density_ratio --oracle paper
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.bench_rewards import machine_rates
from seqgan_env.factory import resolve_oracle
from seqgan_env.models import Generator
from seqgan_env.presets import get_preset
from seqgan_env.rewards.density_ratio import sequence_log_likelihood

PATHS = ("plain", "chunked", "chunked + shared prefix")


def episode_completions(generator: Generator, batch: int, rollouts: int, rng: torch.Generator) -> list[tuple[int, torch.Tensor]]:
    """``(prefix length, completions)`` for every step of one episode: ``batch`` prefixes of that
    length, each completed ``rollouts`` times (rows of one prefix consecutive, as the engine has them)."""
    out = []
    for length in range(1, generator.seq_len):
        prefixes = generator.sample(batch, rng).repeat_interleave(rollouts, dim=0)
        completions = generator.sample(batch * rollouts, rng)
        completions[:, :length] = prefixes[:, :length]
        out.append((length, completions))
    return out


def plain_log_likelihood(model: Generator, tokens: torch.Tensor) -> torch.Tensor:
    """The textbook route: the log-softmax of every position over the whole vocabulary at once."""
    log_probs = torch.log_softmax(model(tokens), dim=-1)
    return log_probs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1).sum(1)


@torch.no_grad()
def score(path: str, models: tuple[Generator, ...], completions: list[tuple[int, torch.Tensor]]) -> torch.Tensor:
    """Every completion's log-likelihood under each model, by ``path``, concatenated."""
    out = []
    for model in models:
        for length, tokens in completions:
            if path == "plain":
                out.extend(plain_log_likelihood(model, part) for part in tokens.split(1024))
            else:
                out.append(sequence_log_likelihood(model, tokens, 1024, 0, length if path != "chunked" else 0))
    return torch.cat(out)


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oracle", default=None, help="'builtin' (default) or the paper's .npz")
    parser.add_argument("--batch", type=int, default=64, help="prefixes per step (the vector env's rows)")
    parser.add_argument("--rollouts", type=int, default=16, help="completions per prefix (N)")
    parser.add_argument("--repeats", type=int, default=3, help="episodes timed per path (median)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a comparison's trial has 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    preset = get_preset("paper")
    oracle = resolve_oracle(args.oracle, preset)
    torch.manual_seed(0)
    generator = Generator.from_preset(preset).eval()
    completions = episode_completions(generator, args.batch, args.rollouts, torch.Generator().manual_seed(0))
    rates = machine_rates()
    print(f"machine: dense matmul 2048^3 on {args.threads} thread(s): float32 {rates['float32']:.0f} GFLOP/s, "
          f"bfloat16 {rates['bfloat16']:.0f} GFLOP/s")
    rows = sum(tokens.shape[0] for _, tokens in completions)
    print(f"one episode: {rows:,} completions of {preset.seq_len} tokens, scored by the oracle and the generator "
          f"(vocabulary {preset.vocab_size:,})")
    models = (oracle, generator)
    reference = score("plain", models, completions)
    times = {}
    for path in PATHS:
        scores = score(path, models, completions)  # warm-up, and the agreement check
        worst = float((scores - reference).abs().max())
        if worst > 1e-3:
            raise AssertionError(f"{path}: log-likelihoods differ from the plain path's by {worst:.2e} nats")
        runs = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            score(path, models, completions)
            runs.append(time.perf_counter() - start)
        times[path] = statistics.median(runs)
        print(f"{path:<26} {times[path]:7.2f} s per episode (median of {args.repeats}), "
              f"{times['plain'] / times[path]:5.2f}x the plain path, max |diff| {worst:.1e} nats")
    return times


if __name__ == "__main__":
    main()
