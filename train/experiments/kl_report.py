"""The comparison's report at equal KL: best-of-n rows, Gao et al.'s fits, the KL-budget table and the curves.

:func:`write_kl_report` is what :func:`train.experiments.comparison.report` calls after the
results table: it computes the reference points on the base
(:mod:`train.experiments.reference_points`), adds best-of-n rows to the results table's rows,
and writes

* ``best_of_n.csv``: every best-of-n point (mean and 95% CI over seeds), both KLs;
* ``tempered_mle.csv``: the tempered MLE generator's reverse and forward KL to the oracle, NLL-oracle,
  NLL-test, entropy and KL;
* ``gao_fits.csv``: Gao et al.'s fit per reward and algorithm and where its gold turns;
* ``kl_budgets.csv``: reverse KL, forward KL, NLL-oracle, NLL-test and entropy at each KL budget, with the
  IQM and the probabilities of improvement over the random control and the tempered MLE at the same KL;
* ``overoptimisation.png``: gold and proxy against ``sqrt(KL)`` per reward;
* ``divergences.png``: every method's reverse KL against its forward KL to the oracle, beside the
  MLE generator at each temperature of ``config.kl_temperatures``;
* a section "At equal KL" appended to ``results.md`` with the fits and the budget table.

The reading of all of it is in ``docs/comparing.md`` ("Over-optimisation and the KL budget").
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqgan_env.models import Oracle
from train.experiments.config import CompareConfig
from train.experiments.overoptimisation import (
    best_of_n_gains,
    by_seed,
    cooled,
    fit_gao,
    has_kl,
    run_gains,
    sqrt_kl,
    value_at_kl,
)
from train.experiments.plots import plot_divergences, plot_overoptimisation
from train.experiments.reference_points import as_float, reference_points
from train.experiments.reporting import controls_for
from train.experiments.runs import method_label
from train.experiments.statistics import BOOTSTRAP_REPS, BOOTSTRAP_SEED, iqm_ci, mean_ci, probability_of_improvement_ci

BUDGET_KEYS = ("reverse_kl", "forward_kl", "nll_oracle", "nll_test", "entropy")
"""What the KL-budget table reads off each curve: the divergences to the oracle first (n/a for runs from
before they were logged, and forward KL for best-of-n), NLL-oracle beside them."""
TEMPERED = "tempered MLE"
"""The KL-budget table's name of the MLE generator cooled to the budget's KL."""
NO_KL_NOTE = ("The runs' evaluations carry no KL to the MLE generator (no `kl` in their curves): runs are "
              "left out of the fits, the curves and the KL-budget table (NaN), which hold only best-of-n and "
              "the tempered MLE.")


def _stats(values: Sequence[float]) -> tuple[float, float]:
    finite = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return mean_ci(finite) if finite else (math.nan, math.nan)


def best_of_n_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per reward and n: the mean and 95% CI over seeds of every quantity of the points."""
    rows = []
    for reward in dict.fromkeys(p["reward"] for p in points):
        mine = [p for p in points if p["reward"] == reward]
        for n in sorted({int(p["n"]) for p in mine}):
            at_n = [p for p in mine if int(p["n"]) == n]
            row: dict[str, Any] = {"reward": reward, "label": at_n[0]["label"], "n": n, "seeds": len(at_n),
                                   "kl_bound": float(at_n[0]["kl_bound"])}
            for key in ("kl", "reverse_kl", "nll_oracle", "entropy", "proxy"):
                row[key], row[f"{key}_ci"] = _stats([as_float(p.get(key)) for p in at_n])
            row["nll_test"] = math.nan
            rows.append(row)
    return rows


def table_rows(rows: list[dict[str, Any]], ns: Sequence[int]) -> list[dict[str, Any]]:
    """Best-of-n rows for the results table (at ``ns``), in its row format: setting ``best-of-n``,
    the proxy as the mean reward, the sampled KL as ``kl``; NLL-test stays empty (n/a)."""
    out = []
    still = {row["reward"] for row in rows} - set(moving_rewards(rows))
    largest = {reward: max(r["n"] for r in rows if r["reward"] == reward) for reward in still}
    for row in rows:
        # A control's best-of-n is the generator at every n: its largest n alone says so.
        if row["n"] not in ns or (row["reward"] in still and row["n"] != largest[row["reward"]]):
            continue
        out.append({"setting": "best-of-n", "method": f"best-of-{row['n']} @ {row['reward']}", "seeds": row["seeds"],
                    "reverse_kl": row["reverse_kl"], "reverse_kl_ci": row["reverse_kl_ci"],
                    "nll_oracle": row["nll_oracle"], "nll_oracle_ci": row["nll_oracle_ci"],
                    "entropy": row["entropy"], "entropy_ci": row["entropy_ci"],
                    "mean_reward": row["proxy"], "mean_reward_ci": row["proxy_ci"],
                    "kl": row["kl"], "kl_ci": row["kl_ci"], "status": "ok",
                    "error": "", "kl_bound": row["kl_bound"]})
    return out


def tempered_rows(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tempered MLE per temperature: mean and 95% CI over seeds."""
    rows = []
    for temperature in sorted({float(p["temperature"]) for p in points}):
        at_t = [p for p in points if float(p["temperature"]) == temperature]
        row: dict[str, Any] = {"temperature": temperature, "seeds": len(at_t)}
        for key in ("kl", "reverse_kl", "forward_kl", "nll_oracle", "nll_test", "entropy"):
            row[key], row[f"{key}_ci"] = _stats([as_float(p.get(key)) for p in at_t])
        rows.append(row)
    return rows


def fit_rows(results: dict[tuple[str, str], list[dict[str, Any]]], best_of_n: list[dict[str, Any]]) -> list[dict]:
    """Gao et al.'s fit for every method whose runs carry KL (RL form) and every best-of-n reward."""
    rows = []
    for (setting, name), runs in results.items():
        if runs and any(has_kl(r) for r in runs):
            fit = fit_gao(*run_gains(runs), "rl")
            rows.append({"setting": setting, "method": method_label(setting, name), "form": fit.form,
                         **_fit_fields(fit)})
    for reward in moving_rewards(best_of_n):
        fit = fit_gao(*best_of_n_gains([p for p in best_of_n if p["reward"] == reward]), "best-of-n")
        rows.append({"setting": "best-of-n", "method": f"best-of-n @ {reward}", "reward": reward, "form": fit.form,
                     **_fit_fields(fit)})
    return rows


def _fit_fields(fit: Any) -> dict[str, Any]:
    return {"alpha": fit.alpha, "beta": fit.beta, "d_star": fit.d_star, "kl_star": fit.d_star**2,
            "gain_star": fit.gain_star, "d_max": fit.d_max, "points": fit.points, "note": fit.reason}


def _curves(results: dict[tuple[str, str], list[dict[str, Any]]], references: dict[str, Any]) -> dict[str, dict]:
    """Per method (and per best-of-n reward, and the tempered MLE): a list of per-seed curves of dicts with
    the budget keys and ``kl``: what the KL-budget table interpolates."""
    groups: dict[str, dict[str, Any]] = {}
    for (setting, name), runs in results.items():
        if runs:
            groups[f"{setting}\t{name}"] = {"setting": setting, "method": method_label(setting, name), "name": name,
                                            "curves": [r["curve"] if has_kl(r) else [] for r in runs]}
    for reward in moving_rewards(references["best_of_n"]):
        seeds = by_seed([p for p in references["best_of_n"] if p["reward"] == reward], "n")
        curves = list(seeds.values())
        groups[f"best-of-n\t{reward}"] = {"setting": "best-of-n", "method": f"best-of-n @ {reward}", "name": reward,
                                          "curves": curves, "ceiling": bool(curves[0][0].get("ceiling"))}
    groups["tempered"] = {"setting": "-", "method": TEMPERED, "name": TEMPERED,
                          "curves": list(cooled(references["tempered"]).values())}
    return {key: g for key, g in groups.items() if any(g["curves"])}  # runs without KL: left out, with a note


def moving_rewards(points: list[dict[str, Any]]) -> list[str]:
    """The best-of-n rewards whose selection moves off the generator (KL > 0 somewhere): not the
    controls, whose best-of-n is the generator itself."""
    return list(dict.fromkeys(p["reward"] for p in points if as_float(p["kl"]) > 0))


def budget_rows(results: dict[tuple[str, str], list[dict[str, Any]]], references: dict[str, Any],
                budgets: Sequence[float], bootstrap_reps: int = BOOTSTRAP_REPS,
                bootstrap_seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """Reverse KL, forward KL, NLL-oracle, NLL-test and entropy of every method at each KL budget (:func:`value_at_kl` of each
    run's curve), the IQM of NLL-oracle over the runs that reached it and P(improve) over the random
    control (the one under the method's update, :func:`controls_for`) and the tempered MLE at the same KL."""
    groups = _curves(results, references)
    randoms = [g["name"] for g in groups.values() if g["setting"] == "baseline" and g["name"].split("/")[0] == "random"]
    bootstrap = {"reps": bootstrap_reps, "seed": bootstrap_seed}
    rows = []
    for budget in budgets:
        at = {key: {k: [value_at_kl(c, k, budget) for c in g["curves"]] for k in BUDGET_KEYS}
              for key, g in groups.items()}
        reached = {key: [v for v in values["nll_oracle"] if math.isfinite(v)] for key, values in at.items()}
        for key, group in groups.items():
            row: dict[str, Any] = {"budget": budget, "setting": group["setting"], "method": group["method"],
                                   "runs": len(group["curves"]), "reached": len(reached[key]),
                                   "ceiling": group.get("ceiling", False)}
            for k in BUDGET_KEYS:
                row[k], row[f"{k}_ci"] = _stats(at[key][k])
            if reached[key]:
                row["nll_oracle_iqm"], row["nll_oracle_iqm_low"], row["nll_oracle_iqm_high"] = iqm_ci(
                    reached[key], **bootstrap)
            is_random = group["setting"] == "baseline" and group["name"].split("/")[0] == "random"
            references_of = {} if key == "tempered" else {TEMPERED: "tempered"}
            if group["setting"] not in ("best-of-n", "-") and not is_random:
                for control in controls_for(group["name"], randoms):
                    references_of[control] = f"baseline\t{control}"
            for label, other in references_of.items():
                if key == other or other not in reached:
                    continue
                p = (probability_of_improvement_ci(reached[key], reached[other], **bootstrap)
                     if reached[key] and reached[other] else (math.nan, math.nan, math.nan))
                row[f"p_vs_{label}"] = p
            rows.append(row)
    return rows


def answer_lines(budgets: list[dict[str, Any]], fits: list[dict[str, Any]]) -> list[str]:
    """The comparison's answer in a few lines: at each KL budget, the method (and reward) with the best
    gold among those every seed of which reached it, against the MLE cooled to that KL; then where
    the fitted gold turns."""
    lines = []
    for budget in dict.fromkeys(r["budget"] for r in budgets):
        at = [r for r in budgets if r["budget"] == budget]
        candidates = [r for r in at if r["setting"] not in ("-", "baseline") and 0 < r["reached"] == r["runs"]
                      and not r.get("ceiling")]
        if not candidates:
            lines.append(f"- KL {budget:g}: no method reached it in every seed.")
            continue
        best = min(candidates, key=lambda r: r["nll_oracle"])
        tempered = next((r for r in at if r["method"] == TEMPERED and r["reached"]), None)
        divergences = "".join(f"{words} {_cell(best[key], best[f'{key}_ci'])}, " for key, words in
                              (("reverse_kl", "reverse KL"), ("forward_kl", "forward KL"))
                              if math.isfinite(best.get(key, math.nan)))
        text = (f"- KL {budget:g}: best gold {best['method']} ({best['setting']}), {divergences}"
                f"NLL-oracle {best['nll_oracle']:.3f}; ")
        if tempered is None:
            lines.append(text + "the tempered MLE does not reach this KL.")
            continue
        beats = [r["method"] for r in candidates if r.get(f"p_vs_{TEMPERED}", (math.nan,) * 3)[1] > 0.5]
        cooled_divergence = (f" (reverse KL {tempered['reverse_kl']:.3f})" if math.isfinite(tempered.get("reverse_kl", math.nan))
                             else "")
        lines.append(text + f"the MLE cooled to this KL {tempered['nll_oracle']:.3f}{cooled_divergence}; beating it (P(improve) "
                     f"interval above 0.5): {', '.join(beats) or 'none'}.")
    turns = sorted((f for f in fits if math.isfinite(f["d_star"])), key=lambda f: f["kl_star"])
    if turns:
        named = [(f["method"] if f["setting"] == "best-of-n" else f"{f['method']} ({f['setting']})",
                  f"{f['kl_star']:.3g}" + (" (extrapolated)" if f["note"] else "")) for f in turns]
        lines.append("- Gold turns (fitted) at KL: " + "; ".join(f"{name} {kl}" for name, kl in named) + ".")
    flat = [f"{f['method']} ({f['setting']})" for f in fits if not math.isfinite(f["d_star"]) and math.isfinite(f["beta"])]
    if flat:
        lines.append(f"- No turn in the fitted gold: {', '.join(flat)}.")
    return lines


def _cell(mean: float, half: float) -> str:
    return "n/a" if not math.isfinite(mean) else f"{mean:.3f} ± {half:.3f}"


def write_budgets(root: Path, rows: list[dict[str, Any]]) -> list[str]:
    """``kl_budgets.csv``, and the markdown lines of the budget table."""
    comparisons = list(dict.fromkeys(k for row in rows for k in row if k.startswith("p_vs_")))
    fields = ["budget", "setting", "method", "runs", "reached", *[f"{k}{e}" for k in BUDGET_KEYS for e in ("", "_ci")],
              "nll_oracle_iqm", "nll_oracle_iqm_low", "nll_oracle_iqm_high",
              *[f"{c}{e}" for c in comparisons for e in ("", "_low", "_high")]]
    with (root / "kl_budgets.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[f.replace(" ", "_") for f in fields], extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            flat = {k.replace(" ", "_"): v for k, v in row.items() if not k.startswith("p_vs_")}
            for c in comparisons:
                for end, value in zip(("", "_low", "_high"), row.get(c, (math.nan,) * 3)):
                    flat[f"{c}{end}".replace(" ", "_")] = value
            writer.writerow(flat)
    lines = ["| KL budget | setting | method | reached | reverse KL | forward KL | NLL-oracle | NLL-test | entropy "
             "| IQM NLL-oracle [95% CI] | P(improve) [95% CI] |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        iqm = (f"{row['nll_oracle_iqm']:.3f} [{row['nll_oracle_iqm_low']:.3f}, {row['nll_oracle_iqm_high']:.3f}]"
               if "nll_oracle_iqm" in row else "n/a")
        versus = "; ".join(f"vs {c[5:]}: " + ("n/a" if not math.isfinite(row[c][0]) else
                                              f"{row[c][0]:.2f} [{row[c][1]:.2f}, {row[c][2]:.2f}]")
                           for c in comparisons if c in row) or "–"
        lines.append(f"| {row['budget']:g} | {row['setting']} | {row['method']} | {row['reached']} of {row['runs']} | "
                     + " | ".join(_cell(row[k], row[f"{k}_ci"]) for k in BUDGET_KEYS) + f" | {iqm} | {versus} |")
    return lines


def _mean_series(curves: list[list[dict[str, Any]]], key: str) -> tuple[list[float], list[tuple[float, float]]]:
    """Mean ``d`` over the curves at each of their common positions, and the mean and 95% CI of ``key``."""
    curves = [c for c in curves if c]
    if not curves:
        return [], []
    steps = min(len(c) for c in curves)
    xs, ys = [], []
    for i in range(steps):
        values = [float(c[i][key]) for c in curves if c[i].get(key) is not None]
        if len(values) == len(curves) and all(math.isfinite(v) for v in values):
            xs.append(sum(sqrt_kl(c[i]["kl"]) for c in curves) / len(curves))
            ys.append(mean_ci(values))
    return xs, ys


def _fitted(fit: dict[str, Any], start: float, d_max: float) -> tuple[list[float], list[float]] | None:
    """The fitted gold ``start - R(d)`` on ``[0, d_max]``, or ``None`` without a fit."""
    import numpy as np

    from train.experiments.overoptimisation import gao_gain

    if not math.isfinite(fit["alpha"]) or not math.isfinite(start) or not d_max > 0:
        return None
    d = np.linspace(0.0, d_max, 60)
    return d.tolist(), (start - gao_gain(fit["form"], d, fit["alpha"], fit["beta"])).tolist()


def plot_panels(results: dict[tuple[str, str], list[dict[str, Any]]], references: dict[str, Any],
                fits: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What :func:`train.experiments.plots.plot_overoptimisation` draws: one panel per reward, each with
    its runs (mean over seeds at each evaluation), its best-of-n and the tempered MLE, and the fits."""
    fit_of = {(f["setting"], f["method"]): f for f in fits}
    tempered = list(cooled(references["tempered"]).values())
    heated = list(by_seed([p for p in references["tempered"] if float(p["temperature"]) >= 1.0],
                          "temperature").values())
    panels: dict[str, list[dict[str, Any]]] = {}
    for (setting, name), runs in sorted(results.items()):
        curves = [r["curve"] for r in runs if has_kl(r)]
        if not curves:
            continue
        d, gold = _mean_series(curves, "nll_oracle")
        proxy_d, proxy = _mean_series([c[1:] for c in curves], "mean_reward")  # the start has no reward
        series = {"label": f"{method_label(setting, name)} ({setting})", "kind": "run", "d": d, "gold": gold,
                  "proxy_d": proxy_d, "proxy": proxy}
        fit = fit_of.get((setting, method_label(setting, name)))
        if fit is not None and d:
            series["fit"] = _fitted(fit, gold[0][0], max(d))
        panels.setdefault(runs[0].get("reward", name), []).append(series)
    for reward in moving_rewards(references["best_of_n"]):
        curves = list(by_seed([p for p in references["best_of_n"] if p["reward"] == reward], "n").values())
        d, gold = _mean_series(curves, "nll_oracle")
        proxy_d, proxy = _mean_series(curves, "proxy")
        bound = [math.sqrt(float(p["kl_bound"])) for p in curves[0]][: len(d)]
        series = {"label": f"best-of-n, n = 1..{curves[0][-1]['n']}", "kind": "best-of-n", "d": d, "gold": gold,
                  "proxy_d": proxy_d, "proxy": proxy, "d_bound": bound}
        fit = fit_of.get(("best-of-n", f"best-of-n @ {reward}"))
        if fit is not None and d:
            series["fit"] = _fitted(fit, gold[0][0], max(d))
        panels.setdefault(reward, []).append(series)
    for series_list in panels.values():
        for curves, label in ((tempered, "MLE cooled (T <= 1)"), (heated, "MLE heated (T >= 1)")):
            d, gold = _mean_series(curves, "nll_oracle")
            if d:
                series_list.append({"label": label, "kind": "tempered", "d": d, "gold": gold,
                                    "proxy_d": [], "proxy": []})
    return [{"title": reward, "series": series} for reward, series in panels.items()]


def fits_lines(fits: list[dict[str, Any]]) -> list[str]:
    """The markdown table of Gao et al.'s fits."""
    lines = ["| setting | method | form | alpha | beta | turn d* (KL*) | gold gain at the turn | points | note |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in fits:
        turn = "n/a" if not math.isfinite(f["d_star"]) else f"{f['d_star']:.3g} ({f['kl_star']:.3g} nats)"
        gain = "n/a" if not math.isfinite(f["gain_star"]) else f"{f['gain_star']:+.3f}"
        lines.append(f"| {f['setting']} | {f['method']} | {f['form']} | {f['alpha']:.3g} | {f['beta']:.3g} | {turn} | "
                     f"{gain} | {f['points']} | {f['note'] or '–'} |")
    return lines


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)


def write_kl_report(root: Path, config: CompareConfig, oracle: Oracle,
                    results: dict[tuple[str, str], list[dict[str, Any]]], rows: list[dict[str, Any]],
                    device: str = "cpu") -> list[dict[str, Any]]:
    """Everything of the module's docstring, written in ``root``; the results table's rows with the
    best-of-n rows added (the table is written again with them)."""
    from train.experiments.reporting import write_table

    references = reference_points(root, config, oracle, device)
    bon = best_of_n_rows(references["best_of_n"])
    shown = {n for n in config.best_of_n if n > 1 and math.log(n, 4).is_integer()} or set(config.best_of_n[-1:])
    rows = rows + table_rows(bon, sorted(shown))
    write_table(root, rows, config.token_budget)
    _write_csv(root / "best_of_n.csv", bon)
    tempered = tempered_rows(references["tempered"])
    _write_csv(root / "tempered_mle.csv", tempered)
    fits = fit_rows(results, references["best_of_n"])
    _write_csv(root / "gao_fits.csv", fits)
    budgets = budget_rows(results, references, config.kl_budgets)
    lines = ["", "## At equal KL: over-optimisation", "",
             "KL: KL(policy || MLE generator) in nats per sequence (best-of-n: the sampled estimate over "
             f"{config.best_of_n_samples:,} draws per seed; the analytic bound log n - (n-1)/n is in best_of_n.csv). "
             "Best-of-n rows above: the base generator's best of n draws by each reward's whole-sequence score "
             "(the D's P(real); D* = optimal); their NLL-test and forward KL are n/a (best-of-n has no model to score "
             "the test set with), their reverse KL is NLL-oracle minus their entropy (biased low, as the sampled KL "
             "is, when n nears the pool) and their mean reward is the proxy, the kept sequences' mean score. Curves: overoptimisation.png.",
             ""]
    if not any(has_kl(r) for runs in results.values() for r in runs):
        lines += [NO_KL_NOTE, ""]
    else:
        missing = [method_label(s, n) for (s, n), runs in results.items() if runs and not all(has_kl(r) for r in runs)]
        if missing:
            lines += [f"Runs without KL in their evaluations, left out at equal KL: {', '.join(missing)}.", ""]
    notes = references.get("notes", [])
    lines += [*(f"Left out of best-of-n: {note}." for note in notes), *([""] if notes else []),
              "Gao et al.'s fits of the gain in gold R = NLL-oracle at the start - NLL-oracle against d = sqrt(KL) "
              "(best-of-n: R = d (alpha - beta d); RL: R = d (alpha - beta log d)); d*: where the fitted gold "
              "turns (over-optimisation sets in).", "", *fits_lines(fits), "",
              "In short (best gold among the RL runs and best-of-n every seed of which reached the KL; best-of-n on the "
              "oracle's own likelihood is a ceiling, left out):",
              "", *answer_lines(budgets, fits), "",
              "KL budgets: each run's curve read where its KL first reaches the budget (linear between the "
              "evaluations around it); a run that never reaches it counts as not reached (n/a), never "
              "extrapolated. IQM over the runs that reached it. P(improve): P(NLL-oracle of a run < that of a "
              "run of the random control under the same update, or of the MLE cooled to the same KL), 95% "
              "stratified-bootstrap interval. Written to kl_budgets.csv.", "", *write_budgets(root, budgets)]
    with (root / "results.md").open("a") as handle:
        handle.write("\n".join(lines) + "\n")
    plot_overoptimisation(root / "overoptimisation.png", plot_panels(results, references, fits))
    plot_divergences(root / "divergences.png", tempered, results)
    return rows
