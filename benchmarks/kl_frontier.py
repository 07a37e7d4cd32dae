"""Does a KL penalty move the gold-versus-KL frontier, or only where a run ends on it?

Gao, Schulman and Hilton ("Scaling Laws for Reward Model Overoptimization", ICML 2023) found
that a KL penalty in the reward acts like early stopping: runs with a penalty end at a
smaller KL from the initial policy, on the same gold-versus-KL curve as runs without one.
Here the gold is exact (the oracle's NLL), so the question has a direct test:

* every run of one algorithm on one reward of a comparison's base (``--base``: a ``seqgan
  compare`` folder, whose ``base/`` and ``compare.json`` it reads) is trained with each
  ``--betas`` (its ``kl_beta``) and ``--seeds``, with ``--evaluations`` evaluations along the
  budget (the comparison's own run, :func:`train.experiments.runner.train_run`);
* the **frontier** of ``beta = 0``: at a KL ``k``, the mean over its seeds of each seed's
  NLL-oracle where its KL first reaches ``k`` (linear between evaluations);
* for every evaluation of a ``beta > 0`` run whose KL lies within what every ``beta = 0`` seed
  reached, the **gap**: its NLL-oracle minus the frontier's at its KL (negative: better gold
  at the same KL, the penalty moved the frontier). Per beta: the mean gap over its seeds
  (each seed's mean gap one sample) with its standard error, and where the runs end (KL,
  NLL-oracle).

Runs go ``--workers`` at a time, one torch thread each; each run's result is written to
``OUT/beta<B>/seed<S>.json`` as it finishes, and a run already there is not trained again
(an interrupted study resumes). The summary goes to ``OUT/frontier.json`` and the curves to
``OUT/frontier.png``.

    python -m benchmarks.kl_frontier --base runs/equal-kl --algo rloo --reward optimal --betas 0,0.1,0.3
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import write_result
from train.experiments.config import CompareConfig
from train.experiments.overoptimisation import value_at_kl
from train.experiments.runner import train_run
from train.experiments.runs import RunSpec, write_json


def frontier_at(curves: list[list[dict[str, Any]]], kl: float) -> float:
    """Mean over the curves of NLL-oracle where each first reaches ``kl`` (NaN if one never does)."""
    values = [value_at_kl(curve, "nll_oracle", kl) for curve in curves]
    return math.nan if any(math.isnan(v) for v in values) else statistics.fmean(values)


def gaps(run: dict[str, Any], frontier: list[list[dict[str, Any]]]) -> list[float]:
    """NLL-oracle minus the frontier's at the same KL, for each evaluation of ``run`` past its start
    whose KL every frontier curve reached."""
    out = []
    for point in run["curve"][1:]:
        at = frontier_at(frontier, max(float(point["kl"]), 0.0))
        if not math.isnan(at):
            out.append(float(point["nll_oracle"]) - at)
    return out


def summarise(results: dict[float, list[dict[str, Any]]]) -> dict[str, Any]:
    """Per beta: where its runs end and, for ``beta > 0``, the gap to ``beta = 0``'s frontier."""
    if 0.0 not in results:
        raise ValueError("the frontier is that of beta = 0: include 0 in --betas")
    frontier = [run["curve"] for run in results[0.0]]
    out = {}
    for beta, runs in sorted(results.items()):
        row: dict[str, Any] = {
            "seeds": len(runs),
            "final_kl": statistics.fmean(float(r["final"]["kl"]) for r in runs),
            "final_nll_oracle": statistics.fmean(float(r["final"]["nll_oracle"]) for r in runs),
            "final_entropy": statistics.fmean(float(r["final"]["entropy"]) for r in runs),
        }
        if beta:
            run_gaps = [gaps(r, frontier) for r in runs]
            per_seed = [statistics.fmean(g) for g in run_gaps if g]
            row["points_on_frontier"] = sum(len(g) for g in run_gaps)
            row["gap"] = statistics.fmean(per_seed) if per_seed else math.nan
            row["gap_stderr"] = (statistics.stdev(per_seed) / math.sqrt(len(per_seed))
                                 if len(per_seed) > 1 else math.nan)
        out[str(beta)] = row
    return out


def plot(results: dict[float, list[dict[str, Any]]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for index, (beta, runs) in enumerate(sorted(results.items())):
        color = f"C{index}"
        for i, run in enumerate(runs):
            ax.plot([math.sqrt(max(float(p["kl"]), 0.0)) for p in run["curve"]],
                    [float(p["nll_oracle"]) for p in run["curve"]], "o-", color=color, alpha=0.6, markersize=3,
                    label=f"kl_beta = {beta:g}" if i == 0 else None)
    ax.set_xlabel("sqrt(KL to the MLE generator), sqrt(nats per sequence)")
    ax.set_ylabel("NLL-oracle (gold; lower is better)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _run(base: str, spec: tuple, config: dict[str, Any], oracle: str | None, path: str) -> str:
    result = train_run(base, RunSpec(*spec), config, oracle, threads=1)
    write_json(Path(path), result)
    return path


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", required=True, help="a seqgan compare folder (its base/ and compare.json are read)")
    parser.add_argument("--oracle", default=None, help="the oracle the base was trained on ('builtin' by default)")
    parser.add_argument("--algo", default="rloo", help="algorithm (one that takes kl_beta)")
    parser.add_argument("--reward", default="optimal", help="comparison reward (default optimal: D*)")
    parser.add_argument("--betas", default="0,0.1,0.3", help="comma-separated kl_beta values; 0 must be among them")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=None, help="generated tokens per run (the base's if unset)")
    parser.add_argument("--evaluations", type=int, default=8, help="evaluations along the budget")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (one torch thread each)")
    parser.add_argument("--out", default="runs/kl-frontier")
    parser.add_argument("--no-publish", action="store_true",
                        help="do not write results/kl_frontier/ALGO_REWARD.json (the docs' table reads it)")
    args = parser.parse_args(argv)
    try:
        betas = sorted({float(b) for b in args.betas.split(",") if b})
    except ValueError:
        parser.error(f"--betas must be comma-separated numbers, got {args.betas!r}")
    if 0.0 not in betas or any(b < 0 for b in betas):
        parser.error(f"--betas must include 0 (the frontier) and be >= 0, got {args.betas!r}")
    base = Path(args.base)
    if not (base / "compare.json").is_file() or not (base / "base" / "summary.json").is_file():
        parser.error(f"--base {base} is not a finished seqgan compare folder (no compare.json or base/summary.json)")
    compare = CompareConfig.from_dict(json.loads((base / "compare.json").read_text()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rates = machine_rates()
    print(f"machine: dense matmul 2048^3: float32 {rates['float32']:.0f} GFLOP/s, bfloat16 "
          f"{rates['bfloat16']:.0f} GFLOP/s; {args.workers} run(s) at once, one thread each")
    jobs, paths = [], {}
    for beta in betas:
        config = dataclasses.replace(compare, hparams={args.algo: {"kl_beta": beta}}, evaluations=args.evaluations,
                                     token_budget=args.tokens or compare.token_budget).to_dict()
        for seed in range(args.seeds):
            path = out / f"beta{beta:g}" / f"seed{seed}.json"
            paths.setdefault(beta, []).append(path)
            if not path.exists():
                jobs.append((str(base), ("fixed", args.algo, args.reward, seed), config, args.oracle, str(path)))
    started = time.time()
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        for done in pool.map(_run, *zip(*jobs)) if jobs else ():
            print(f"  {done} ({time.time() - started:.0f} s)", flush=True)
    results = {beta: [json.loads(p.read_text()) for p in ps] for beta, ps in paths.items()}
    summary = {"algo": args.algo, "reward": args.reward, "tokens": results[0.0][0]["tokens"],
               "evaluations": args.evaluations, "machine_rates": rates, "wall_s": time.time() - started,
               "runs_trained": len(jobs), "betas": summarise(results)}
    write_json(out / "frontier.json", summary)
    if not args.no_publish:
        name = f"{args.algo}_{args.reward}".replace("-", "_").replace(":", "_")
        write_result("kl_frontier", name, {k: v for k, v in summary.items() if k != "machine_rates"},
                     machine_rates={**rates, "runs_at_once": args.workers})
    plot(results, out / "frontier.png", f"{args.algo} on {args.reward}: gold against sqrt(KL), {args.seeds} seeds")
    print(f"{'kl_beta':>8} {'end KL':>8} {'end NLL-oracle':>15} {'entropy':>8}  gap to beta=0's frontier")
    for beta, row in summary["betas"].items():
        gap = (f"{row['gap']:+.3f} ± {row['gap_stderr']:.3f} nats ({row['points_on_frontier']} points)"
               if "gap" in row else "(the frontier)")
        print(f"{float(beta):>8g} {row['final_kl']:>8.2f} {row['final_nll_oracle']:>15.3f} {row['final_entropy']:>8.3f}  {gap}")
    print(f"{len(jobs)} runs trained in {summary['wall_s']:.0f} s; {out / 'frontier.json'}, {out / 'frontier.png'}")
    return summary


if __name__ == "__main__":
    main()
