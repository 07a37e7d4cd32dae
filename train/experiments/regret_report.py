"""The comparison's report on the exact-regret task: algorithms ranked by their regret, beside the reference lines.

On the reward ``exact-regret`` (docs/regret.md) the objective is ``-KL(pi || p_oracle)``, so an
algorithm's regret is its reverse KL per token to the oracle, which every evaluation measures
(``reverse_kl``). :func:`write_regret_report`, called by :func:`train.experiments.comparison.report`
after the other tables, writes for the comparison's runs on that reward

* ``regret.csv``: one row per algorithm (final regret and forward KL, mean and 95% CI over seeds;
  the IQM of the final regret with its stratified-bootstrap interval; the regret where the runs
  reach :data:`REGRET_MARK` sequences; wall time; the rank) and one per reference line;
* ``regret_pairs.csv``: P(regret of a run of one algorithm < that of a run of another) for every pair;
* ``regret_curves.csv``: every evaluation's mean regret against sequences and time (its ``wall_time``
  column: seconds spent training, the evaluations left out, where the runs and lines recorded it);
* ``regret_lines.json``: the reference lines (:mod:`train.experiments.regret_lines`) computed on the
  base generator at the comparison's own budget of sequences, once per comparison folder;
* ``regret.png``: regret against sampled sequences and against wall time, with the lines;
* a section of ``results.md``: first, when every reward of the comparison is ``exact-regret``
  (its headline leads with regret), else appended after the other tables.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import math
import statistics
import time
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

import torch

from seqgan_env.models import Oracle
from seqgan_env.rewards.registry import EXACT_REGRET
from train.experiments.base import base_models
from train.experiments.config import CompareConfig
from train.experiments.plots import plot_regret
from train.experiments.regret_lines import (
    RegretLineConfig,
    best_of_n_points_by_log_ratio,
    cooled_points,
    exact_gradient_line,
    fresh_mle_line,
)
from train.experiments.reporting import verdict
from train.experiments.rewards import get_comparison_reward
from train.experiments.runs import method_label, write_json
from train.experiments.statistics import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    iqm_ci,
    mean_ci,
    mean_curve,
    probability_of_improvement_ci,
)

CACHE_FILE = "regret_lines.json"
LINES_VERSION = 1
"""What the cached lines hold; a cache of another version (or made with other settings) is redone."""
REGRET_MARK = 10_000
"""Sampled sequences at which every curve is read: the budget of the ``regret`` presets."""
Z95 = 1.96
"""A reference line is one seed: its interval is the evaluation's sampling error, 1.96 standard errors."""
EXACT, FRESH_MLE = "exact per-state gradient", "MLE on fresh oracle sequences"

REGRET_COLUMNS = ("kind", "method", "seeds", "rank", "sequences", "reverse_kl", "reverse_kl_ci", "forward_kl",
                  "forward_kl_ci", "reverse_kl_iqm", "reverse_kl_iqm_low", "reverse_kl_iqm_high",
                  "reverse_kl_at_mark", "reverse_kl_at_mark_ci", "sequences_at_mark", "reached_mark", "wall_time",
                  "wall_time_ci", "status")
"""Columns of ``regret.csv``. ``kind``: ``algorithm`` or ``reference``; ``sequences``: sampled per run
(mean over seeds) at the final evaluation; ``*_at_mark``: read at :data:`REGRET_MARK` sequences
(``reached_mark`` runs got there; empty where none did); ``*_ci``: half-width of the 95% interval."""
PAIR_COLUMNS = ("method", "other", "p_improve", "p_improve_low", "p_improve_high", "verdict")
CURVE_COLUMNS = ("method", "kind", "sequences", "wall_time", "reverse_kl", "reverse_kl_ci", "forward_kl",
                 "forward_kl_ci")


def is_regret_run(setting: str, name: str, runs: list[dict[str, Any]]) -> bool:
    """A method's runs are on the exact-regret task (the controls of a comparison are not)."""
    if setting == "baseline" or not runs:
        return False
    return get_comparison_reward(runs[0]["reward"]).env_reward == EXACT_REGRET


def leads_with_regret(config: CompareConfig) -> bool:
    """Every reward of the comparison is the exact-regret task: its report leads with regret."""
    return all(get_comparison_reward(reward).env_reward == EXACT_REGRET for reward in config.rewards)


def _sequences(tokens: float, sequence_tokens: int) -> float:
    return float(tokens) / sequence_tokens


def line_config(config: CompareConfig, sequence_tokens: int) -> RegretLineConfig:
    """The trained lines' budget: the comparison's sequences per run, in whole batches as its runs spend them."""
    budget = math.ceil(config.token_budget / sequence_tokens)
    return RegretLineConfig(sequences=max(math.ceil(budget / config.batch_size), 1) * config.batch_size,
                            batch_size=config.batch_size, evaluations=config.evaluations,
                            eval_samples=config.eval_samples, seed=config.seed)


def line_settings(config: CompareConfig, sequence_tokens: int) -> dict[str, Any]:
    """What the lines depend on: a cache made with other settings is redone."""
    return {"version": LINES_VERSION, "line": vars(line_config(config, sequence_tokens)),
            "temperatures": list(config.temperatures), "best_of_n": list(config.best_of_n),
            "best_of_n_samples": config.best_of_n_samples, "sequence_tokens": sequence_tokens}


@contextlib.contextmanager
def _torch_threads(threads: int) -> Iterator[None]:
    """Torch's (process-wide) thread count for the block, restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def regret_lines(root: Path, config: CompareConfig, oracle: Oracle, device: str = "cpu",
                 threads: int = 1) -> dict[str, Any]:
    """The reference lines of the base generator in ``root/base`` at the comparison's budget, cached in
    ``root/regret_lines.json`` (written atomically; reused while the settings match).

    Returns ``{"settings", "exact_gradient", "fresh_mle", "cooled", "best_of_n"}``: the two trained lines'
    points (``sequences``, ``wall_time`` since the line started, both KLs with standard errors), the
    generator at each of ``config.temperatures`` and best-of-n by D*'s logit at each of ``config.best_of_n``.
    On ``threads`` torch threads (each run's, ``seqgan compare --threads``, 1 by default) and on ``device``
    (the comparison's report passes none: the CPU), so that the lines' wall times read like those of CPU runs.
    """
    generator, _, test, preset = base_models(root / "base", device)
    sequence_tokens = preset.seq_len - config.prompt_length  # what an episode's agent writes
    settings = line_settings(config, sequence_tokens)
    cache = root / CACHE_FILE
    if cache.exists():
        held = _json(cache)
        if held.get("settings") == settings:
            return held
    generator.eval()
    if oracle.device != torch.device(device):
        oracle = copy.deepcopy(oracle).to(device)  # the caller's oracle stays where it is
    oracle.eval()
    line = line_config(config, sequence_tokens)
    with _torch_threads(threads):
        out = {"settings": settings, "exact_gradient": exact_gradient_line(generator, oracle, test, line),
               "fresh_mle": fresh_mle_line(generator, oracle, test, line),
               "cooled": cooled_points(generator, oracle, test, config.temperatures, config.eval_samples,
                                       config.seed),
               "best_of_n": best_of_n_points_by_log_ratio(generator, oracle, config.best_of_n,
                                                          config.best_of_n_samples, config.seed)
               if config.best_of_n else [],
               "threads": threads, "made": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    write_json(cache, out)
    return out


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except ValueError:
        return {}  # a damaged cache is made again


def value_at(curve: list[dict[str, Any]], key: str, sequences: float, sequence_tokens: int) -> tuple[float, float]:
    """``key`` at the first evaluation at or past ``sequences`` sampled sequences, and where it was read
    (NaN, NaN where the curve never got there)."""
    for point in curve:
        seen = _sequences(point.get("tokens", 0), sequence_tokens) if "tokens" in point else point["sequences"]
        if seen >= sequences and point.get(key) is not None:
            return float(point[key]), seen
    return math.nan, math.nan


def _stats(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if math.isfinite(v)]
    return mean_ci(finite) if finite else (math.nan, math.nan)


def algorithm_rows(results: dict[tuple[str, str], list[dict[str, Any]]], sequence_tokens: int,
                   errors: dict[tuple[str, str], list[str]] | None = None, *, reps: int = BOOTSTRAP_REPS,
                   seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """One row per method on the exact-regret task (:data:`REGRET_COLUMNS`), ranked by the IQM of the final
    regret (lowest first; ties by the mean). ``row["finals"]`` keeps each seed's final regret for the pairs."""
    errors = errors or {}
    rows = []
    for (setting, name), runs in results.items():
        if not is_regret_run(setting, name, runs):
            continue
        # A diverged run's regret (inf or NaN) is left out of the statistics, and its row says so.
        finals = [v for v in (float(r["final"]["reverse_kl"]) for r in runs) if math.isfinite(v)]
        if not finals:
            continue
        row: dict[str, Any] = {"kind": "algorithm", "setting": setting, "method": method_label(setting, name),
                               "seeds": len(finals), "finals": finals}
        row["sequences"] = statistics.fmean(_sequences(r["final"]["tokens"], sequence_tokens) for r in runs)
        row["reverse_kl"], row["reverse_kl_ci"] = mean_ci(finals)
        row["forward_kl"], row["forward_kl_ci"] = _stats([float(r["final"].get("forward_kl", math.nan)) for r in runs])
        row["reverse_kl_iqm"], row["reverse_kl_iqm_low"], row["reverse_kl_iqm_high"] = iqm_ci(finals, reps=reps,
                                                                                             seed=seed)
        at_mark = [value_at(r["curve"], "reverse_kl", REGRET_MARK, sequence_tokens) for r in runs]
        row["reverse_kl_at_mark"], row["reverse_kl_at_mark_ci"] = _stats([v for v, _ in at_mark])
        row["sequences_at_mark"] = _stats([s for _, s in at_mark])[0]
        row["reached_mark"] = sum(math.isfinite(v) for v, _ in at_mark)
        row["wall_time"], row["wall_time_ci"] = mean_ci([float(r["wall_time"]) for r in runs])
        failed = errors.get((setting, name), [])
        notes = [f"{len(failed)} of {len(runs) + len(failed)} failed"] if failed else []
        if len(finals) < len(runs):
            notes.append(f"{len(runs) - len(finals)} of {len(runs)} ended with a regret that is not finite")
        row["status"] = "; ".join(notes) or "ok"
        rows.append(row)
    rows.sort(key=lambda r: (r["reverse_kl_iqm"], r["reverse_kl"]))
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank
    return rows


def _point_row(method: str, point: dict[str, Any], sequences: float, at_mark: tuple[float, float] | None = None,
               ) -> dict[str, Any]:
    """A reference row from one point of :mod:`train.experiments.regret_lines` (one seed)."""
    row: dict[str, Any] = {"kind": "reference", "setting": "reference", "method": method, "seeds": 1,
                           "sequences": sequences, "status": "ok"}
    for key in ("reverse_kl", "forward_kl"):
        value = point.get(key)
        row[key] = math.nan if value is None else float(value)
        error = point.get(f"{key}_stderr")
        row[f"{key}_ci"] = math.nan if error is None else Z95 * float(error)
    if at_mark is not None:
        row["reverse_kl_at_mark"], row["sequences_at_mark"] = at_mark
        row["reached_mark"] = int(math.isfinite(at_mark[0]))
    if point.get("wall_time") is not None:
        row["wall_time"] = float(point["wall_time"])
    return row


def reference_rows(lines: dict[str, Any]) -> list[dict[str, Any]]:
    """The reference lines as rows of the regret table: each trained line at its last point (the budget),
    the best of the cooled MLE's temperatures, and best-of-n by D*'s logit at each n."""
    rows = []
    for key, method in (("exact_gradient", EXACT), ("fresh_mle", FRESH_MLE)):
        curve = lines[key]
        at_mark = value_at(curve, "reverse_kl", REGRET_MARK, 1)
        rows.append(_point_row(method, curve[-1], curve[-1]["sequences"], at_mark))
    if lines["cooled"]:
        best = min(lines["cooled"], key=lambda p: p["reverse_kl"])
        rows.append(_point_row(f"cooled MLE, best T = {best['temperature']:g}", best, 0))
    for point in lines["best_of_n"]:
        rows.append(_point_row(f"best-of-{point['n']} by D*'s logit", point, point["n"]))
    return rows


def pair_rows(rows: list[dict[str, Any]], *, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
              ) -> list[dict[str, Any]]:
    """P(final regret of a run of ``method`` < that of a run of ``other``), ties counting half, with its 95%
    stratified-bootstrap interval, for every pair of algorithm rows (in rank order: ``method`` ranked higher).
    ``verdict``: ``better`` / ``worse`` where the interval excludes 0.5, else ``not separated``."""
    ranked = [r for r in rows if r["kind"] == "algorithm"]
    pairs = []
    for first, second in combinations(ranked, 2):
        p, low, high = probability_of_improvement_ci(first["finals"], second["finals"], reps=reps, seed=seed)
        pairs.append({"method": first["method"], "other": second["method"], "p_improve": p, "p_improve_low": low,
                      "p_improve_high": high, "verdict": verdict(low, high, "not separated")})
    return pairs


def curve_rows(results: dict[tuple[str, str], list[dict[str, Any]]], lines: dict[str, Any] | None,
               sequence_tokens: int) -> list[dict[str, Any]]:
    """Every evaluation of every method on the task (mean over seeds) and of the trained lines (:data:`CURVE_COLUMNS`)."""
    out = []
    for (setting, name), runs in results.items():
        if not is_regret_run(setting, name, runs):
            continue
        xs, regret = mean_curve(runs, "reverse_kl")
        # the time axis: seconds in the updates alone where the runs recorded it (evaluations left out)
        clock = "train_time" if all("train_time" in p for r in runs for p in r["curve"]) else "wall_time"
        walls = mean_curve(runs, clock)[1] if all(clock in r["curve"][0] for r in runs) else []
        forward = dict(zip(*mean_curve(runs, "forward_kl")))
        for i, (tokens, (value, half)) in enumerate(zip(xs, regret)):
            out.append({"method": method_label(setting, name), "kind": "algorithm",
                        "sequences": _sequences(tokens, sequence_tokens),
                        "wall_time": walls[i][0] if i < len(walls) else math.nan, "reverse_kl": value,
                        "reverse_kl_ci": half, "forward_kl": forward.get(tokens, (math.nan,))[0],
                        "forward_kl_ci": forward.get(tokens, (math.nan, math.nan))[1]})
    for key, method in (("exact_gradient", EXACT), ("fresh_mle", FRESH_MLE)):
        for point in (lines or {}).get(key, []):
            row = _point_row(method, point, point["sequences"])
            out.append({"method": method, "kind": "reference", "sequences": point["sequences"],
                        "wall_time": point.get("train_time", row.get("wall_time", math.nan)),
                        **{k: row[k] for k in ("reverse_kl", "reverse_kl_ci", "forward_kl", "forward_kl_ci")}})
    return out


def _write_csv(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def _cell(row: dict[str, Any], key: str, digits: int = 3) -> str:
    value, half = row.get(key, math.nan), row.get(f"{key}_ci", math.nan)
    if not math.isfinite(value):
        return "–"
    return f"{value:.{digits}f}" + (f" ± {half:.{digits}f}" if math.isfinite(half) else "")


def _iqm_cell(row: dict[str, Any]) -> str:
    if "reverse_kl_iqm" not in row:
        return "–"
    return f"{row['reverse_kl_iqm']:.3f} [{row['reverse_kl_iqm_low']:.3f}, {row['reverse_kl_iqm_high']:.3f}]"


def _mark_cell(row: dict[str, Any]) -> str:
    value = row.get("reverse_kl_at_mark", math.nan)
    if not math.isfinite(value):
        return "not reached" if row["kind"] == "algorithm" or "reached_mark" in row else "–"
    seeds = f" ({row['reached_mark']} of {row['seeds']} seeds)" if row.get("reached_mark", 0) < row["seeds"] else ""
    return _cell(row, "reverse_kl_at_mark") + f" at {row['sequences_at_mark']:,.0f}{seeds}"


def _column(sequences: float, marks: list[int], tolerance: int) -> int | None:
    """The column of the mark nearest ``sequences``, if within ``tolerance`` of it."""
    nearest = min(range(len(marks)), key=lambda i: abs(marks[i] - sequences))
    return nearest if abs(marks[nearest] - sequences) <= tolerance else None


def headline(rows: list[dict[str, Any]], pairs: list[dict[str, Any]]) -> str:
    """The section's first sentence: the lowest regret, and how many pairs of algorithms separate."""
    ranked = [r for r in rows if r["kind"] == "algorithm"]
    if not ranked:
        return "No run on the exact-regret task has finished."
    best = ranked[0]
    exact = next((r for r in rows if r["method"] == EXACT), None)
    versus = (f"; the exact per-state gradient reaches {exact['reverse_kl']:.3f} at {exact['sequences']:,.0f} "
              "sequences" if exact is not None else "")
    separated = sum(p["verdict"] != "not separated" for p in pairs)
    pairs_text = (f"{separated} of {len(pairs)} pairs of algorithms separate (P(improve) interval excluding 0.5)."
                  if pairs else "One algorithm: no pairs to separate.")
    return (f"Lowest regret: **{best['method']}**, IQM of the final reverse KL {_iqm_cell(best)} nats per token"
            f"{versus}. {pairs_text}")


def markdown_lines(rows: list[dict[str, Any]], pairs: list[dict[str, Any]], curves: list[dict[str, Any]],
                   config: CompareConfig, sequence_tokens: int, reps: int = BOOTSTRAP_REPS) -> list[str]:
    """The regret section of ``results.md``."""
    budget = config.token_budget / sequence_tokens
    lines = ["## Regret on the exact-regret task", "", headline(rows, pairs), "",
             f"Regret: KL(generator || oracle) per token on each evaluation's {config.eval_samples:,} samples, the "
             f"negated objective of the task (0 only at the oracle). Budget: {config.token_budget:,} generated tokens "
             f"per run ({budget:,.0f} sequences of {sequence_tokens} tokens). Algorithms: mean ± 95% CI over seeds "
             "(Student's t), ranked by the IQM of the final regret over seeds with its 95% stratified-bootstrap "
             f"interval ({reps:,} resamples). At {REGRET_MARK:,}: each run's curve read at its first evaluation at or "
             "past that many sampled sequences (mean sequences where read). Reference rows (one seed, on the base "
             "generator, `regret_lines.json`): ± 1.96 standard errors of the evaluation's samples; the exact "
             "per-state gradient (reads every probability of the oracle: not black-box, the limit a policy gradient "
             "estimates) and MLE on the same number of fresh oracle sequences at the comparison's budget in whole "
             "batches, the MLE generator at its best temperature, and best-of-n by D*'s logit (n sequences per "
             "output; its reverse KL is that of a finite pool, biased low as n nears it; no forward KL). Wall "
             "time: a run's, in its trial; a line's, in the driver. Plots: regret.png.", "",
             f"| rank | method | seeds | sequences | final regret (reverse KL) | IQM regret [95% CI] | "
             f"regret at {REGRET_MARK:,} sequences | forward KL | wall time (s) | status |",
             "|---:|---|---:|---:|---|---|---|---|---|---|"]
    for row in rows:
        rank = str(row["rank"]) if "rank" in row else "–"
        lines.append(f"| {rank} | {row['method']} | {row['seeds']} | {row['sequences']:,.0f} | "
                     f"{_cell(row, 'reverse_kl')} | {_iqm_cell(row)} | {_mark_cell(row)} | {_cell(row, 'forward_kl')} "
                     f"| {_cell(row, 'wall_time', 1)} | {row['status']} |")
    if pairs:
        lines += ["", "P(improve): P(final regret of a run of the method < that of a run of the other), ties "
                  "counting half, with its 95% stratified-bootstrap interval; \"better\"/\"worse\": the interval "
                  "excludes 0.5. Written to regret_pairs.csv.", "",
                  "| method | other | P(improve) [95% CI] | verdict |", "|---|---|---|---|"]
        lines += [f"| {p['method']} | {p['other']} | {p['p_improve']:.2f} [{p['p_improve_low']:.2f}, "
                  f"{p['p_improve_high']:.2f}] | {p['verdict']} |" for p in pairs]
    marks = sorted({round(c["sequences"]) for c in curves if c["kind"] == "algorithm"})
    if curves and marks:
        lines += ["", "Along the budget (sampled sequences; mean regret of the algorithms at each evaluation, the "
                  f"reference lines at theirs, each in the column within a batch ({config.batch_size}) of it; "
                  "regret_curves.csv):", "", "| method | " + " | ".join(
                      f"{s:,}" for s in marks) + " |", "|---|" + "---:|" * len(marks)]
        for method in dict.fromkeys(c["method"] for c in curves):
            cells, extra = [""] * len(marks), ""
            for c in (c for c in curves if c["method"] == method):
                column = _column(c["sequences"], marks, config.batch_size)
                if column is None:
                    extra += f" ({c['reverse_kl']:.3f} at {c['sequences']:,.0f})"
                else:
                    cells[column] = f"{c['reverse_kl']:.3f}"
            lines.append(f"| {method}{extra} | " + " | ".join(cells) + " |")
    return lines


def plot_series(results: dict[tuple[str, str], list[dict[str, Any]]], lines: dict[str, Any] | None,
                sequence_tokens: int) -> dict[str, list[dict[str, Any]]]:
    """What :func:`train.experiments.plots.plot_regret` draws: each algorithm's mean curve with its band,
    the trained lines as curves, the cooled MLE and best-of-n as levels."""
    curves = curve_rows(results, lines, sequence_tokens)
    series = []
    for method in dict.fromkeys(c["method"] for c in curves):
        own = [c for c in curves if c["method"] == method]
        series.append({"label": method, "kind": own[0]["kind"], "sequences": [c["sequences"] for c in own],
                       "wall_time": [c["wall_time"] for c in own], "mean": [c["reverse_kl"] for c in own],
                       "half": [c["reverse_kl_ci"] for c in own]})
    levels = []
    if lines and lines["cooled"]:
        best = min(lines["cooled"], key=lambda p: p["reverse_kl"])
        levels.append({"label": f"cooled MLE, best T = {best['temperature']:g}", "value": best["reverse_kl"],
                       "kind": "cooled"})
    for point in (lines or {}).get("best_of_n", []):
        if point["n"] > 1:  # best-of-1 is the generator itself: every curve's start
            levels.append({"label": f"best-of-{point['n']} (D*'s logit)", "value": point["reverse_kl"],
                           "kind": "best-of-n", "n": point["n"]})
    return {"series": series, "levels": levels}


def write_regret_report(root: Path, config: CompareConfig, oracle: Oracle,
                        results: dict[tuple[str, str], list[dict[str, Any]]],
                        errors: dict[tuple[str, str], list[str]] | None = None, device: str = "cpu",
                        threads: int = 1, *, reps: int = BOOTSTRAP_REPS, seed: int = BOOTSTRAP_SEED,
                        ) -> dict[str, Any] | None:
    """Everything of the module's docstring, written in ``root``, where any run is on the exact-regret task
    (``None`` and nothing written otherwise). Returns ``{"rows", "pairs", "curves", "lines"}``."""
    if not any(is_regret_run(setting, name, runs) for (setting, name), runs in results.items()):
        return None
    lines = regret_lines(root, config, oracle, device, threads)
    sequence_tokens = lines["settings"]["sequence_tokens"]
    rows = algorithm_rows(results, sequence_tokens, errors, reps=reps, seed=seed)
    pairs = pair_rows(rows, reps=reps, seed=seed)
    rows += reference_rows(lines)
    curves = curve_rows(results, lines, sequence_tokens)
    _write_csv(root / "regret.csv", rows, REGRET_COLUMNS)
    _write_csv(root / "regret_pairs.csv", pairs, PAIR_COLUMNS)
    _write_csv(root / "regret_curves.csv", curves, CURVE_COLUMNS)
    plot_regret(root / "regret.png", **plot_series(results, lines, sequence_tokens))
    section = markdown_lines(rows, pairs, curves, config, sequence_tokens, reps)
    table = root / "results.md"
    rest = table.read_text() if table.exists() else ""
    if leads_with_regret(config):
        text = "\n".join(section) + "\n\n## Every metric (NLL-oracle statistics)\n\n" + rest
    else:
        text = rest + "\n" + "\n".join(section) + "\n"
    table.write_text(text)
    return {"rows": rows, "pairs": pairs, "curves": curves, "lines": lines}


__all__ = ["CACHE_FILE", "REGRET_COLUMNS", "REGRET_MARK", "algorithm_rows", "is_regret_run", "leads_with_regret",
           "pair_rows", "reference_rows", "regret_lines", "value_at", "write_regret_report"]
