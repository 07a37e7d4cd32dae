"""The SeqGAN paper's synthetic-data table, reproduced on its oracle.

Runs the whole pipeline (MLE, D pretraining, adversarial steps) on the paper's oracle with a
training preset (``cpu`` by default: the paper's models and generator updates, a lighter D
schedule; see ``train/config.py``) and prints, for the untrained, MLE and SeqGAN generators, the
divergences to the oracle per token that judge a generator (reverse KL(G || oracle) and forward
KL(oracle || G), ± their standard errors; ``-`` for a run from before they were logged), then
NLL-oracle and NLL-test beside the paper's numbers, with the wall time of each phase, and beside
them the discriminator's held-out accuracy and ROC-AUC (fresh oracle sequences against fresh
samples of the generator: ``d_heldout_*``, see ``docs/discriminator.md``) at the last evaluation
of D pretraining and of the adversarial phase, where the run logged them.

The run is an ordinary ``seqgan train`` folder: if it exists, the script finishes it (resume)
or, when finished, only prints its table.

    python -m benchmarks.paper_table                       # about 8.5 min on 2 CPU cores
    python -m benchmarks.paper_table --seed 1 --out runs/paper-table-seed1   # a replicate
    python -m benchmarks.paper_table --out runs/paper-table --oracle path/to/seqgan_paper_oracle.npz
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import write_result
from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import get_preset
from train.config import get_train_config
from train.pipeline import Run
from train.run_plots import plot_learning_curve

DEFAULT_ORACLE = "paper"  # the file `seqgan oracle fetch` writes (seqgan_env.paper_oracle)

# Yu et al. (2017), Table 1 (NLL-oracle), and the original code's MLE log; the paper reports
# no NLL-test.
PAPER = {"untrained": None, "MLE": 9.038, "SeqGAN": 8.736}
GOALS = {"MLE": 9.07, "SeqGAN": 8.74}


def table_rows(history: list[dict]) -> list[dict]:
    """Untrained, after-MLE and final rows of a run's evaluated history."""
    evaluated = [r for r in history if r.get("nll_oracle") is not None]
    mle = [r for r in evaluated if r["phase"] == "mle"]
    adversarial = [r for r in evaluated if r["phase"] == "adversarial"]
    d_end = max((r.get("wall_time", 0.0) for r in history if r["phase"] == "d_pretrain"), default=None)
    rows = [{"model": "untrained", **mle[0], "wall_time": 0.0}, {"model": "MLE", **mle[-1]}]
    if adversarial:
        best = min(adversarial, key=lambda r: r["nll_oracle"])
        rows.append({"model": "SeqGAN", **adversarial[-1]})
        rows.append({"model": "SeqGAN (best evaluation)", **best})
    for row in rows:
        row["d_pretrain_end"] = d_end
    return rows


D_COLUMNS = ("d_heldout_accuracy", "d_heldout_auc")
"""D's held-out figures printed beside the table and written into ``paper_table.json``."""


def held_out_d(history: list[dict]) -> dict[str, dict[str, float]]:
    """Per phase (``d_pretrain``, ``adversarial``), :data:`D_COLUMNS` of its last row that logged them."""
    out = {}
    for phase in ("d_pretrain", "adversarial"):
        logged = [r for r in history if r["phase"] == phase and r.get("d_heldout_auc") is not None]
        if logged:
            out[phase] = {key: logged[-1][key] for key in D_COLUMNS if logged[-1].get(key) is not None}
    return out


def print_held_out_d(d_rows: dict[str, dict[str, float]]) -> None:
    """D's held-out accuracy and AUC after pretraining and at the end (none: a run from before they were logged)."""
    if not d_rows:
        print("D on held-out data: not logged by this run")
        return
    for phase, label in (("d_pretrain", "after D pretraining"), ("adversarial", "after the adversarial phase")):
        if phase in d_rows:
            row = d_rows[phase]
            print(f"D on held-out data, {label}: accuracy {row.get('d_heldout_accuracy', float('nan')):.3f}, "
                  f"ROC-AUC {row.get('d_heldout_auc', float('nan')):.3f}")


def _divergence(row: dict, key: str) -> str:
    value, stderr = row.get(key), row.get(f"{key}_stderr")
    return "-" if value is None else f"{value:.3f}±{stderr:.3f}"


def print_table(rows: list[dict], total_wall: float) -> None:
    print(f"{'model':<26}{'epoch':>6}{'reverse KL':>14}{'forward KL':>14}{'NLL-oracle':>12}{'paper':>8}{'goal':>7}"
          f"{'NLL-test':>10}{'wall (min)':>12}")
    for row in rows:
        key = "SeqGAN" if row["model"].startswith("SeqGAN") else row["model"]
        paper = PAPER.get(key)
        goal = GOALS.get(key)
        print(f"{row['model']:<26}{row['epoch']:>6}{_divergence(row, 'reverse_kl'):>14}"
              f"{_divergence(row, 'forward_kl'):>14}{row['nll_oracle']:>12.3f}"
              f"{(f'{paper:.3f}' if paper else '-'):>8}{(f'≤{goal}' if goal else '-'):>7}"
              f"{row.get('nll_test', float('nan')):>10.3f}{row.get('wall_time', 0.0) / 60:>12.1f}")
    print("reverse KL, forward KL: nats per token ± standard error (the paper reports neither); "
          "NLL-oracle alone also falls when a generator merely gets sharper")
    print(f"whole pipeline: {total_wall / 60:.1f} min")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--oracle", default=str(DEFAULT_ORACLE))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--out", default="runs/paper-table")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=None, help="seed of data, models and sampling (default: the preset's)")
    parser.add_argument("--report-only", action="store_true",
                        help="print the table of the run in --out as far as it got, without training")
    parser.add_argument("--no-publish", action="store_true",
                        help="do not write results/paper_table/seed_N.json (a run of the cpu preset writes it: "
                             "the README's table is rendered from those files)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    config = get_train_config(args.preset)
    if args.seed is not None:
        config.seed = args.seed
    rates: dict[str, dict[str, float]] = {}
    trained_now = not (out / "summary.json").exists() and not args.report_only
    if trained_now:
        oracle = resolve_oracle(args.oracle, get_preset(config.model_preset))
        resume = (out / "checkpoint.pt").exists()
        # Machines of this kind differ several-fold: the wall time means little without them.
        rates["before"] = {**machine_rates(), "threads": torch.get_num_threads()}
        run = Run(out, config, oracle, resume=resume)
        run.run()
        rates["after"] = {**machine_rates(), "threads": torch.get_num_threads()}
        history, wall = run.state.history, run.state.wall_time
    else:
        payload = Run.load_payload(out)
        history, wall = payload["state"]["history"], payload["state"]["wall_time"]
        saved = out / "paper_table.json"
        rates = json.loads(saved.read_text()).get("matmul_gflops", {}) if saved.exists() else {}
    rows, d_rows = table_rows(history), held_out_d(history)
    print_table(rows, wall)
    print_held_out_d(d_rows)
    for when, rate in rates.items():
        print(f"dense matmul 2048^3 {when} the run: float32 {rate['float32']:.0f} GFLOP/s, "
              f"bfloat16 {rate['bfloat16']:.0f} GFLOP/s ({rate['threads']} threads)")
    (out / "paper_table.json").write_text(json.dumps({"rows": rows, "held_out_d": d_rows, "wall_time_s": wall,
                                                      "matmul_gflops": rates}, indent=1))
    plot_learning_curve(history, out / "learning_curve.png")
    if trained_now and args.preset == "cpu" and not args.no_publish:  # a report of an old run publishes nothing
        publish(config.seed, rows, d_rows, wall, rates)
    return 0


def publish(seed: int, rows: list[dict], d_rows: dict[str, dict[str, float]], wall: float,
            rates: dict[str, dict[str, float]]) -> None:
    """``results/paper_table/seed_N.json``: what the README's table reads (benchmarks.render_docs)."""
    keep = ("model", "epoch", "step", "nll_oracle", "nll_test", "wall_time")
    trimmed = [{key: row[key] for key in keep if key in row} for row in rows]
    machine = {dtype: [rates[when][dtype] for when in ("before", "after") if when in rates]
               for dtype in ("float32", "bfloat16")}
    machine["threads"] = rates.get("before", rates.get("after", {})).get("threads")
    write_result("paper_table", f"seed_{seed}", {"seed": seed, "preset": "cpu", "rows": trimmed,
                                                 "held_out_d": d_rows, "wall_time_s": wall}, machine_rates=machine)


if __name__ == "__main__":
    raise SystemExit(main())
