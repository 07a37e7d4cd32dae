"""Publish a finished ``seqgan compare`` folder as a result file: ``results/<study>/<name>.json``.

A comparison writes its tables into its own folder (``runs/`` is not committed). This copies
what the docs' tables read (``results.csv``, and at equal KL ``kl_budgets.csv``, ``best_of_n.csv``
and ``gao_fits.csv`` when present; the comparison's ``compare.json``) into one result file with
the command, the code version and the machine's matmul rates, so that a template of
``benchmarks/templates/`` can render it (``python -m benchmarks.render_docs``). Run it on the
machine that ran the comparison, alone, right after it: the rates are measured now.

    python -m benchmarks.publish_comparison runs/equal-kl --study equal_kl --name fixed \\
        --command "seqgan compare --preset short --oracle paper --out runs/equal-kl ..."
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path
from typing import Any

import torch

from benchmarks.bench_rewards import machine_rates
from benchmarks.results import RESULTS, write_result

TABLES = ("results.csv", "kl_budgets.csv", "best_of_n.csv", "gao_fits.csv")
"""The comparison's CSV tables a result file keeps (each as a list of rows), when the folder has them."""


def read_table(path: Path) -> list[dict[str, Any]]:
    """A CSV table as rows, numbers as numbers (empty cells as None)."""
    def value(text: str) -> Any:
        if text == "":
            return None
        try:
            return int(text)
        except ValueError:
            try:
                return float(text)
            except ValueError:
                return text

    with path.open(newline="", encoding="utf-8") as handle:
        return [{key: value(cell) for key, cell in row.items()} for row in csv.DictReader(handle)]


def comparison_data(folder: Path) -> dict[str, Any]:
    """What a result file keeps of a finished comparison folder."""
    if not (folder / "compare.json").is_file() or not (folder / "results.csv").is_file():
        raise FileNotFoundError(f"{folder} is not a finished seqgan compare folder (no compare.json or results.csv)")
    data: dict[str, Any] = {"config": json.loads((folder / "compare.json").read_text(encoding="utf-8"))}
    for table in TABLES:
        if (folder / table).is_file():
            data[table.removesuffix(".csv")] = read_table(folder / table)
    return data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", help="a finished seqgan compare folder")
    parser.add_argument("--study", required=True, help="results/STUDY/ (letters, digits, _)")
    parser.add_argument("--name", required=True, help="results/STUDY/NAME.json")
    parser.add_argument("--command", required=True, help="the seqgan compare command that made the folder, as run")
    parser.add_argument("--results", default=str(RESULTS), help="the results folder (default: this checkout's)")
    args = parser.parse_args(argv)
    for part in (args.study, args.name):
        if not part.replace("_", "").replace("-", "").isalnum():
            parser.error(f"{part!r}: letters, digits, '-' and '_' only")
    data = comparison_data(Path(args.folder))
    rates = {**machine_rates(), "threads": torch.get_num_threads(), "measured": "when the result was published"}
    write_result(args.study, args.name, data, machine_rates=rates, command=args.command, root=Path(args.results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
