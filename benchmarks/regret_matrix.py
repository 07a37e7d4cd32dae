"""The exact-regret matrix: every algorithm, tuned for regret, ranked by it, with the reference lines.

Runs ``seqgan compare`` with a ``regret`` comparison preset (the comparison engine itself, through
:func:`train.experiments.comparison.compare`) and publishes what its regret report wrote
(``regret.csv``, ``regret_pairs.csv``, the runs' curves) as a result file, with the command,
the code version and the machine's matmul rates before and after. See docs/regret.md.

    python -m benchmarks.regret_matrix --preset regret --hparams regret
    python -m benchmarks.regret_matrix --preset regret-paper --oracle paper --hparams regret
    python -m benchmarks.regret_matrix --preset regret --algos reinforce-mean --seeds 1 \\
        --sequences 100000 --name long_seqgan_v0          # one algorithm at 100,000 sequences

Writes ``results/regret/matrix_<preset>.json`` (``--name``). The comparison folder
(``--out``, default ``runs/<preset>``) keeps everything else and resumes an interrupted run.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import rates_before_and_after, write_result
from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import get_preset
from train.config import get_train_config
from train.experiments.comparison import compare, report
from train.experiments.config import CompareConfig, get_compare_config, load_hparams

CURVE_KEYS = ("tokens", "reverse_kl", "reverse_kl_stderr", "forward_kl", "forward_kl_stderr", "nll_oracle", "entropy",
              "wall_time", "train_time")
"""What the result file keeps of each evaluation of each run."""


def _csv(path: Path) -> list[dict[str, Any]]:
    """A CSV's rows, numbers as floats (empty cells as ``None``)."""
    def value(text: str) -> Any:
        try:
            number = float(text)
        except ValueError:
            return text or None
        return None if number != number else number  # NaN: not measured

    with path.open(newline="", encoding="utf-8") as handle:
        return [{key: value(cell) for key, cell in row.items()} for row in csv.DictReader(handle)]


def collect(folder: Path) -> dict[str, Any]:
    """The regret report's tables and every run's curve, from a finished comparison folder."""
    runs = []
    for path in sorted((folder / "runs").glob("*/*/seed*.json")):
        run = json.loads(path.read_text(encoding="utf-8"))
        runs.append({"algo": run["algo"], "seed": run["seed"], "tokens": run["tokens"], "wall_time": run["wall_time"],
                     "curve": [{k: point[k] for k in CURVE_KEYS if k in point} for point in run["curve"]]})
    return {"rows": _csv(folder / "regret.csv"), "pairs": _csv(folder / "regret_pairs.csv"), "runs": runs}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="regret", choices=["regret", "regret-paper"],
                        help="regret: SeqGAN-v0; regret-paper: the paper's oracle (give --oracle paper)")
    parser.add_argument("--oracle", default=None, help="as seqgan compare's --oracle (regret-paper: paper)")
    parser.add_argument("--hparams", default=None, help="a tuned preset (train/hparams/NAME.json) or a .json file")
    parser.add_argument("--algos", default=None, help="comma-separated algorithms (the preset's if unset)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (the preset's if unset)")
    parser.add_argument("--sequences", type=int, default=None, help="sampled sequences per run (preset's if unset)")
    parser.add_argument("--evaluations", type=int, default=None, help="evaluations per run (preset's if unset)")
    parser.add_argument("--cpus", type=int, default=2, help="runs at once (one CPU each)")
    parser.add_argument("--out", default=None, help="the comparison folder (default runs/<preset>)")
    parser.add_argument("--name", default=None, help="the result file: results/regret/NAME.json")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: report the comparison in --out again (its compare.json's settings) and publish")
    parser.add_argument("--no-publish", action="store_true", help="run and report; write no result file")
    parser.add_argument("--note", default=None, help="a note kept in the result file (how it was run)")
    args = parser.parse_args(argv)

    folder = Path(args.out or f"runs/{args.preset}")
    config = get_compare_config(args.preset)
    if args.report_only:  # the finished comparison's own settings, whatever the options say
        config = CompareConfig.from_dict(json.loads((folder / "compare.json").read_text(encoding="utf-8")))
    elif args.hparams is not None:
        config.hparams = load_hparams(args.hparams)
    if args.algos is not None and not args.report_only:
        config.algos = tuple(a for a in args.algos.split(",") if a)
    if args.seeds is not None and not args.report_only:
        config.seeds = tuple(range(args.seeds))
    seq_len = get_preset(get_train_config(config.base_preset).model_preset).seq_len
    if args.sequences is not None and not args.report_only:
        config.token_budget = args.sequences * seq_len
    if args.evaluations is not None and not args.report_only:
        config.evaluations = args.evaluations
    rates_before = machine_rates()
    print(f"machine: dense matmul float32 {rates_before['float32']:.0f}, bfloat16 {rates_before['bfloat16']:.0f} "
          f"GFLOP/s on {torch.get_num_threads()} threads")
    oracle = resolve_oracle(args.oracle, get_preset(get_train_config(config.base_preset).model_preset))
    if args.report_only:
        report(folder, config, oracle)
    else:
        compare(folder, config, oracle, args.oracle, cpus=args.cpus)
    rates_after = machine_rates()
    data = {"preset": args.preset, "oracle": args.oracle or "builtin", "hparams": config.hparams,
            "algos": list(config.algos), "seeds": list(config.seeds), "sequences": config.token_budget // seq_len,
            "batch_size": config.batch_size, "eval_samples": config.eval_samples, "runs_at_once": args.cpus,
            **collect(folder)}
    print((folder / "results.md").read_text(encoding="utf-8").split("\n## ")[0])
    if not args.no_publish:
        name = args.name or f"matrix_{args.preset.replace('-', '_')}"
        write_result("regret", name, data,
                     machine_rates=rates_before_and_after(rates_before, rates_after, torch.get_num_threads()),
                     **({"note": args.note} if args.note else {}))
    return data


if __name__ == "__main__":
    main()
