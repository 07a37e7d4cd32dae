"""Reporting of a comparison: the rows, the results table and their labels.

Kept apart from running trials (:mod:`train.experiments.runner`): everything here reads finished
results (plain dicts, as the runs' JSON files hold them) and writes files; nothing trains. A
row's label and whether it is a control are read from its run (:class:`train.experiments.runs.RunSpec`).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from train.experiments.plots import (
    plot_iqm,
    plot_learning_curves,
    plot_probability_of_improvement,
    plot_quality_diversity,
    plot_reward_spread,
)
from train.experiments.runs import is_control, method_label, row_label  # noqa: F401 (re-exported)
from train.experiments.statistics import (
    BOOTSTRAP_REPS,
    BOOTSTRAP_SEED,
    COOLED_MLE_CONTROL,
    MLE_CONTROL,
    curve_position,
    iqm_ci,
    mean_ci,
    mle_start_values,
    nll_oracle_at_same_diversity,
    probability_of_improvement_ci,
)


def controls_for(name: str, controls: Sequence[str]) -> list[str]:
    """The controls (baseline names) that the method ``name`` is compared with.

    A control is named after its reward, alone (``constant``, as older comparisons name it) or
    with the update it runs under (``constant/reinforce-mean``). A method is compared with the
    controls that run under its own update, the update being one ``/``-separated part of its
    name before any `` @ reward`` (``reinforce-mean`` and ``reinforce-mean @ dense`` both match ``constant/reinforce-mean``,
    ``reinforce`` does not); a method no control shares an update with (``ppo``, or any method
    when the controls carry no update) is compared with every control.
    """
    parts = set(name.split(" @ ", 1)[0].split("/"))  # "reinforce-mean @ dense": the update is before " @ "
    same_update = [c for c in controls if "/" in c and c.split("/", 1)[1] in parts]
    return same_update or list(controls)


METRICS = (("reverse_kl", "reverse KL (nats/token)"), ("forward_kl", "forward KL (nats/token)"),
           ("nll_oracle", "NLL-oracle"), ("nll_test", "NLL-test"), ("entropy", "entropy (nats/token)"),
           ("kl", "KL to MLE (nats/seq)"),
           ("vs_temperature", "NLL-oracle vs cooled MLE"),
           ("mean_reward", "final mean reward"), ("wall_time", "wall time (s)"))

DIVERGENCE_KEYS = ("reverse_kl", "forward_kl")
"""The generator's divergences to the oracle per token (:func:`train.adversarial.evaluate`): the measures
the table leads with. Runs from before they were logged leave them empty."""

D_METRICS = (("d_heldout_auc", "D's held-out AUC"), ("d_heldout_accuracy", "D's held-out accuracy"))
"""The reward's D at the last evaluation, on fresh oracle sequences against fresh samples of the
run's generator (:func:`train.adversarial.discriminator_diagnostics`): how much its reward can
tell the generator. Rows of rewards without a D leave them empty."""



def write_report(root: Path, jobs: list[tuple[str, str, int]], results: dict[tuple[str, str], list[dict[str, Any]]],
                 errors: dict[tuple[str, str], list[str]], curve: list[dict[str, float]], seeds: tuple[int, ...],
                 token_budget: int, *, bootstrap_reps: int = BOOTSTRAP_REPS,
                 bootstrap_seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """Write ``results.md``, ``results.csv`` and the plots; return the rows.

    ``results`` maps ``(setting, name)`` to the result files of its finished seeds,
    ``errors`` to the errors of its failed seeds (its row's ``status`` says so; the
    statistics are over the seeds that finished), ``curve`` is the MLE temperature curve.
    Besides mean ± 95% CI, each row has the interquartile mean of the final NLL-oracle with its
    stratified-bootstrap interval, where its curve ends relative to its best point
    (:func:`curve_position`) and, for every method that is not a control, its probability of
    improvement over each control (:func:`controls_for`), over the MLE generator and over the
    cooled MLE (``row["p_improve"]``). Plots: ``learning_curves.png``, ``quality_diversity.png``,
    ``iqm.png``, ``probability_of_improvement.png`` and, when the runs recorded them,
    ``reward_spread.png``.
    """
    bootstrap = {"reps": bootstrap_reps, "seed": bootstrap_seed}
    rows = []
    starts = mle_start_values(results)
    mle = curve[0] if curve and curve[0]["temperature"] == 1.0 else None
    if mle is not None:
        row = {"setting": "-", "method": MLE_CONTROL, "seeds": len(seeds),
               "nll_oracle": mle["nll_oracle"], "nll_oracle_ci": mle["nll_oracle_ci"],
               "nll_test": mle["nll_test"], "nll_test_ci": 0.0, "status": "ok", "error": ""}
        for key in (*DIVERGENCE_KEYS, "entropy"):  # the base generator's, from the runs' first evaluations
            values = mle_start_values(results, key)
            if values:
                row[key], row[f"{key}_ci"] = mean_ci(values)
        if starts:
            row.update(_iqm_fields(starts, bootstrap))
        rows.append(row)
    controls = {name: [float(r["final"]["nll_oracle"]) for r in runs]
                for (setting, name), runs in results.items() if is_control(setting, name) and runs}
    methods = list(dict.fromkeys((job[0], job[1]) for job in jobs))
    for setting, name in methods:
        runs, failed = results.get((setting, name), []), errors.get((setting, name), [])
        if not runs and not failed:
            continue  # not run yet
        row = {"setting": setting, "method": method_label(setting, name), "seeds": len(runs),
               "status": f"{len(failed)} of {len(runs) + len(failed)} failed" if failed else "ok",
               "error": "; ".join(failed)}
        for key, _ in (*METRICS, *D_METRICS):
            if not runs:
                break
            if key == "vs_temperature":
                values = [r["final"]["nll_oracle"] - nll_oracle_at_same_diversity(curve, r["final"]["nll_test"])
                          for r in runs] if curve else []
            else:
                values = [r["wall_time"] if key == "wall_time" else r["final"][key] for r in runs
                          if key == "wall_time" or key in r["final"]]
            if values:
                row[key], row[f"{key}_ci"] = mean_ci([float(v) for v in values])
        if runs:
            finals = [float(r["final"]["nll_oracle"]) for r in runs]
            row.update(_iqm_fields(finals, bootstrap))
            row.update(curve_position(runs))
            if not is_control(setting, name):
                references = {control: controls[control] for control in controls_for(name, list(controls))}
                if starts:
                    references[MLE_CONTROL] = starts
                if curve:
                    references[COOLED_MLE_CONTROL] = [nll_oracle_at_same_diversity(curve, r["final"]["nll_test"])
                                                      for r in runs]
                row["p_improve"] = [dict(zip(("control", "p", "low", "high"),
                                             (control, *probability_of_improvement_ci(finals, values, **bootstrap))))
                                    for control, values in references.items()]
        rows.append(row)
    write_table(root, rows, token_budget, bootstrap_reps)
    plot_learning_curves(root / "learning_curves.png", results)
    plot_quality_diversity(root / "quality_diversity.png", curve, results)
    plot_iqm(root / "iqm.png", rows)
    plot_probability_of_improvement(root / "probability_of_improvement.png", rows)
    plot_reward_spread(root / "reward_spread.png", results)
    return rows


def _iqm_fields(values: list[float], bootstrap: dict[str, int]) -> dict[str, float]:
    iqm, low, high = iqm_ci(values, **bootstrap)
    return {"nll_oracle_iqm": iqm, "nll_oracle_iqm_low": low, "nll_oracle_iqm_high": high}


STATISTICS_COLUMNS = ("nll_oracle_iqm", "nll_oracle_iqm_low", "nll_oracle_iqm_high", "final_minus_best",
                      "best_tokens", "last_change")
"""Columns of ``results.csv`` after :data:`METRICS`' and before the :func:`improvement_column` ones."""


def improvement_column(control: str) -> str:
    """The ``results.csv`` column of the probability of improvement over ``control``."""
    return "p_improve_vs_" + control.replace(" ", "_")


def verdict(low: float, high: float, undecided: str = "not shown to differ") -> str:
    """What a P(improve) interval says: ``better`` or ``worse`` where it excludes 0.5, else ``undecided``."""
    if low > 0.5:
        return "better"
    if high < 0.5:
        return "worse"
    return undecided


def write_table(root: Path, rows: list[dict[str, Any]], token_budget: int,
                bootstrap_reps: int = BOOTSTRAP_REPS) -> None:
    """``results.csv`` and ``results.md`` from the rows of :func:`write_report`.

    The CSV has one ``p_improve_vs_<control>`` column (with ``_low`` and ``_high``) per
    control any row was compared with; ``results.md`` lists those comparisons in a second table.
    """
    controls = list(dict.fromkeys(entry["control"] for row in rows for entry in row.get("p_improve", [])))
    improvement_fields = [f"{improvement_column(c)}{end}" for c in controls for end in ("", "_low", "_high")]
    fields = (["setting", "method", "seeds"] + [k for key, _ in (*METRICS, *D_METRICS) for k in (key, f"{key}_ci")]
              + list(STATISTICS_COLUMNS) + improvement_fields + ["status", "error"])
    with (root / "results.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = dict(row)
            for entry in row.get("p_improve", []):
                for end, key in (("", "p"), ("_low", "low"), ("_high", "high")):
                    flat[f"{improvement_column(entry['control'])}{end}"] = entry[key]
            writer.writerow(flat)
    labels = dict(METRICS)
    labels.update(D_METRICS)
    columns = ["reverse_kl", "forward_kl", "nll_oracle", "iqm", "nll_test", "entropy", "kl", "vs_temperature", "mean_reward", "wall_time", "curve"]
    columns += [key for key, _ in D_METRICS]
    titles = {**labels, "iqm": "IQM NLL-oracle [95% CI]", "curve": "final − best (best at tokens; last change)"}
    header = "| setting | method | seeds | " + " | ".join(titles[c] for c in columns) + " | status |"
    lines = [f"Budget: {token_budget:,} generated tokens per run; mean ± 95% CI over seeds (Student's t). "
             "IQM: interquartile mean over seeds with a 95% stratified-bootstrap interval "
             f"({bootstrap_reps:,} resamples). "
             "Reverse KL: KL(generator || oracle) per token on the evaluation's samples (NLL-oracle minus "
             "the entropy on the same samples): what the generator writes that the data would not. "
             "Forward KL: KL(oracle || generator) per token on held-out oracle sequences (NLL-test minus "
             "the oracle's entropy on them): what the data writes that the generator has lost. Both are 0 "
             "only at the oracle; NLL-oracle alone also falls when a generator merely gets sharper. "
             "NLL-oracle vs cooled MLE: the run's NLL-oracle minus that of the MLE generator "
             "sampled at the temperature giving the same NLL-test; negative is better than cooling. "
             "KL to MLE: KL(run's generator || base generator) per sequence, on the evaluation's samples. "
             "final − best: the mean curve's last NLL-oracle minus its lowest (0: still at its best), "
             "the tokens where the lowest was, and the change over the last evaluation interval "
             "(clearly negative: still falling). D's held-out AUC and accuracy: the reward's "
             "discriminator at the last evaluation, on fresh oracle sequences against fresh samples of "
             "the run's generator (0.5: a coin; D* is the ceiling).", "",
             header, "|" + "---|" * (4 + len(columns))]
    for row in rows:
        cells = []
        for key in columns:
            if key == "iqm" and "nll_oracle_iqm" in row:
                cells.append(f"{row['nll_oracle_iqm']:.3f} [{row['nll_oracle_iqm_low']:.3f}, "
                             f"{row['nll_oracle_iqm_high']:.3f}]")
            elif key == "curve" and "final_minus_best" in row:
                cells.append(f"{row['final_minus_best']:+.3f} ({row['best_tokens']:,.0f}; {row['last_change']:+.3f})")
            elif key in row:
                digits = 1 if key == "wall_time" else 3
                cells.append(f"{row[key]:.{digits}f} ± {row[f'{key}_ci']:.{digits}f}")
            else:
                cells.append("–")
        status = row["status"] + (f": {row['error']}" if row.get("error") else "")
        lines.append(f"| {row['setting']} | {row['method']} | {row['seeds']} | " + " | ".join(cells)
                     + f" | {status.replace('|', '/')} |")
    if controls:
        lines += ["", "Probability of improvement: P(NLL-oracle of a run of the method < that of a run of "
                  "the control), ties counting half, with its 95% stratified-bootstrap interval. 0.5: no "
                  f"difference. Controls: the constant- and random-reward runs under the method's own update "
                  f"(all of them where none shares it), {MLE_CONTROL} (the base generator, per seed) and "
                  f"{COOLED_MLE_CONTROL} (the MLE generator cooled to each run's NLL-test). \"better\": the "
                  "whole interval is above 0.5.", "",
                  "| setting | method | control | P(improve) [95% CI] | verdict |", "|---|---|---|---|---|"]
        for row in rows:
            for entry in row.get("p_improve", []):
                lines.append(f"| {row['setting']} | {row['method']} | {entry['control']} | {entry['p']:.2f} "
                             f"[{entry['low']:.2f}, {entry['high']:.2f}] | {verdict(entry['low'], entry['high'])} |")
    (root / "results.md").write_text("\n".join(lines) + "\n")

