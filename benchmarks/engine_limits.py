"""What bounds the Monte Carlo engine on a CPU: three ideas that would cut it further, measured.

After issue 15 one generator step of the paper's configuration is mostly the discriminator's
highway product (already at the CPU's bfloat16 rate) and the 5000-way softmax of every
completion token. This script measures the three remaining ways around them, on the paper's
models (trained ones from a ``paper_table`` run folder with ``--run``, else freshly
initialised ones):

1. **An int8 highway.** The highway's ``(1024, 1720) x (1720, 3440)`` product through
   ``torch._int_mm`` (AVX-512 VNNI) against bfloat16, with the features quantised per row and
   the weights per column, and the error of D's P(real) against float32 for both.
2. **Exact rejection sampling without per-token exponentials.** Propose a token from a fixed
   distribution q, accept it with ``exp(s_i - max s)`` where ``s = logits - log q``: exact
   for any q, and it needs the logits and their row maximum but no exponentials or running
   sums. Printed: the acceptance rate per proposal for q proportional to ``exp(bias)`` (the
   output layer's bias) and for q = the batch's mean next-token distribution.
3. **Two threads of half a batch each** (one intra-op thread each) against one call over the
   whole batch with two intra-op threads: does the engine leave the second core idle?

    python -m benchmarks.engine_limits --run runs/paper-table
    python -m benchmarks.engine_limits
"""

from __future__ import annotations

import argparse
import statistics
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from benchmarks.bench_rewards import matmul_gflops, median_seconds, models
from seqgan_env.checkpoint import load_model
from seqgan_env.models import Discriminator, Generator
from seqgan_env.rewards import resolve_dtype
from seqgan_env.rollout import PrefixStates, monte_carlo_rewards


def load_models(run: str | None) -> tuple[Generator, Discriminator]:
    if run is None:
        _, gen, disc = models("paper")
        return gen, disc
    folder = Path(run)
    return load_model(folder / "generator.pt", "generator"), load_model(folder / "discriminator.pt", "discriminator")


@torch.inference_mode()
def int8_highway(gen: Generator, disc: Discriminator, rows: int = 4096) -> None:
    sequences = gen.sample(rows, torch.Generator().manual_seed(0))
    bias = torch.cat([conv.bias for conv in disc.convs])
    features = (disc.window_maxima(sequences, 0, torch.float32) + bias).clamp(min=0.0)
    weight = torch.cat([disc.highway_transform.weight, disc.highway_gate.weight]).T.contiguous()
    highway_bias = torch.cat([disc.highway_transform.bias, disc.highway_gate.bias])
    out_weight = disc.output.weight[1] - disc.output.weight[0]
    out_bias = disc.output.bias[1] - disc.output.bias[0]
    column_scale = weight.abs().amax(dim=0).clamp(min=1e-12) / 127.0
    # _int_mm is fastest with its right operand column-major.
    weight_int8 = torch.round(weight / column_scale).to(torch.int8).T.contiguous().T

    def quantise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale = x.amax(dim=1, keepdim=True).clamp(min=1e-12) / 127.0
        return torch.round(x / scale).to(torch.int8), scale

    def int8_mixed(x: torch.Tensor) -> torch.Tensor:
        quantised, scale = quantise(x)
        return torch._int_mm(quantised, weight_int8).float().mul_(scale).mul_(column_scale)

    def p_real(mixed: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        width = x.shape[1]
        gate = torch.sigmoid(mixed[:, width:] + highway_bias[width:])
        transform = torch.relu(mixed[:, :width] + highway_bias[:width])
        return torch.sigmoid((gate * transform + (1 - gate) * x) @ out_weight + out_bias)

    exact = p_real(features @ weight, features)
    bf16 = p_real((features.bfloat16() @ weight.bfloat16()).float(), features)
    int8 = p_real(int8_mixed(features), features)
    block = features[:1024]
    block_bf16, weight_bf16 = block.bfloat16(), weight.bfloat16()
    time_bf16 = median_seconds(lambda: block_bf16 @ weight_bf16, 7)
    time_int8 = median_seconds(lambda: torch._int_mm(quantise(block)[0], weight_int8), 7)
    print("1. highway product (1024, 1720) x (1720, 3440), one call:")
    print(f"   bfloat16 {1e3 * time_bf16:.1f} ms, int8 {1e3 * time_int8:.1f} ms with the features' "
          f"quantisation ({time_bf16 / time_int8:.2f}x)")
    for name, value in (("bfloat16", bf16), ("int8", int8)):
        error = (value - exact).abs()
        print(f"   P(real) against float32 over {rows} samples, {name}: "
              f"mean error {float(error.mean()):.1e}, largest {float(error.max()):.1e}")


def acceptance_per_proposal(logits: torch.Tensor, log_proposal: torch.Tensor) -> torch.Tensor:
    """Per row of ``logits`` ``(rows, V)``: the probability that one proposal from
    ``q = exp(log_proposal)`` is accepted by the exact rejection sampler that accepts token i
    with ``exp(s_i - max s)``, ``s = logits - log q``. It is ``sum_i q_i exp(s_i - max s)``
    ``= Z / exp(max s)`` with ``Z = sum_i exp(logits_i)``."""
    return torch.exp(torch.logsumexp(logits, dim=1) - (logits - log_proposal).amax(dim=1))


@torch.inference_mode()
def rejection_acceptance(gen: Generator, rows: int = 1024) -> None:
    sequences = gen.sample(rows, torch.Generator().manual_seed(1))
    hidden = gen.hidden_states(sequences).reshape(-1, gen.hidden_dim)
    logits = hidden @ gen.output.weight.T + gen.output.bias
    entropy = -(torch.softmax(logits, 1) * torch.log_softmax(logits, 1)).sum(1).mean()
    log_marginal = torch.log(torch.softmax(logits, 1).mean(0))
    print(f"2. exact rejection sampling, {hidden.shape[0]} next-token distributions "
          f"(mean entropy {float(entropy):.2f} nats):")
    for name, log_q in (("exp(bias)", torch.log_softmax(gen.output.bias, 0)), ("batch marginal", log_marginal)):
        acceptance = acceptance_per_proposal(logits, log_q)
        print(f"   proposal {name}: acceptance per proposal mean {float(acceptance.mean()):.4f}, "
              f"median {float(acceptance.median()):.4f}")


def split_threads(gen: Generator, disc: Discriminator, batch: int = 64, repeats: int = 9) -> None:
    dtype = resolve_dtype("auto", torch.device("cpu"))
    sequences = gen.sample(batch, torch.Generator().manual_seed(2))
    prefix_lengths = (2, 6, 10, 14, 18)
    cases = []
    for length in prefix_lengths:
        lengths = torch.full((batch,), length)
        prefixes = PrefixStates(gen, batch)
        prefixes.rebuild(sequences, lengths)
        cases.append((prefixes.logits, prefixes.state, lengths, disc.prefix_maxima(sequences, lengths, dtype)))
    threads = torch.get_num_threads()
    pool = ThreadPoolExecutor(2, initializer=torch.set_num_threads, initargs=(1,))

    def rewards(rows: slice, case: tuple, seed: int) -> torch.Tensor:
        logits, state, lengths, prefix_max = case
        return monte_carlo_rewards(disc, gen, logits[rows], tuple(part[rows] for part in state), sequences[rows],
                                   lengths[rows], 16, torch.Generator().manual_seed(seed), dtype,
                                   prefix_max=prefix_max[rows])

    def whole() -> None:
        for case in cases:
            rewards(slice(None), case, 0)

    def halves() -> None:
        for case in cases:
            parts = [pool.submit(rewards, rows, case, seed)
                     for seed, rows in enumerate((slice(0, batch // 2), slice(batch // 2, batch)))]
            for part in parts:
                part.result()

    timings: dict[str, list[float]] = {"whole": [], "halves": []}
    for _ in range(repeats):  # alternating
        timings["whole"].append(median_seconds(whole, 1))
        timings["halves"].append(median_seconds(halves, 1))
    pool.shutdown()
    whole_s, halves_s = statistics.median(timings["whole"]), statistics.median(timings["halves"])
    print(f"3. rewards of {batch} prefixes at lengths {prefix_lengths}, {dtype}:")
    print(f"   one call, {threads} intra-op threads: {whole_s:.3f} s; two threads of {batch // 2} rows, "
          f"1 intra-op thread each: {halves_s:.3f} s ({whole_s / halves_s:.2f}x)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a paper_table / seqgan train folder whose generator.pt and "
                                      "discriminator.pt to use (default: freshly initialised paper models)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; dense matmul 2048^3: "
          f"float32 {matmul_gflops(torch.float32):.0f} GFLOP/s, bfloat16 {matmul_gflops(torch.bfloat16):.0f} GFLOP/s")
    gen, disc = load_models(args.run)
    gen.eval()
    disc.eval()
    int8_highway(gen, disc)
    rejection_acceptance(gen)
    split_threads(gen, disc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
