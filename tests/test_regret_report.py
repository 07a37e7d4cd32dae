"""The regret report of exact-regret comparisons: ranking, IQM, P(improve), the cached reference lines, the plot."""

from __future__ import annotations

import csv
import dataclasses
import json
import math

import pytest

import train.experiments.regret_report as regret_report
from seqgan_env.factory import resolve_oracle
from seqgan_env.presets import get_preset
from train.cli import main
from train.experiments.comparison import report
from train.experiments.config import CompareConfig, get_compare_config
from train.experiments.plots import plot_regret
from train.experiments.regret_report import (
    EXACT,
    FRESH_MLE,
    REGRET_COLUMNS,
    REGRET_MARK,
    algorithm_rows,
    curve_rows,
    headline,
    leads_with_regret,
    markdown_lines,
    pair_rows,
    plot_series,
    reference_rows,
    value_at,
    write_regret_report,
)

SEQUENCE_TOKENS = 20
REPS = 300  # bootstrap resamples: enough for the separations below, a fraction of a second each


def _run(name: str, seed: int, final: float, reward: str = "exact-regret", sequences: int = REGRET_MARK,
         setting: str = "fixed") -> dict:
    """A run's result as a comparison writes it: three evaluations, the last at ``sequences``."""
    marks = (0, sequences // 2, sequences + 48)  # the budget is spent in whole batches: a little past it
    start = 0.9
    curve = [{"tokens": s * SEQUENCE_TOKENS, "reverse_kl": start + (final - start) * i / 2, "forward_kl": 1.0 - 0.1 * i,
              "wall_time": 10.0 * i + seed} for i, s in enumerate(marks)]
    return {"setting": setting, "name": f"{name} @ {reward}", "seed": seed, "reward": reward, "curve": curve,
            "final": curve[-1], "wall_time": 20.0 + seed}


GOOD = (0.30, 0.31, 0.29, 0.32, 0.30)
FAIR = (0.60, 0.62, 0.58, 0.61, 0.59)
FAIR_TOO = (0.605, 0.615, 0.585, 0.595, 0.625)  # interleaved with FAIR: no separation


def _results() -> dict:
    results = {}
    for name, finals in (("fair", FAIR), ("good", GOOD), ("fair-too", FAIR_TOO)):
        results[("fixed", f"{name} @ exact-regret")] = [_run(name, seed, v) for seed, v in enumerate(finals)]
    # Neither a control nor a run on another reward is ranked on regret.
    results[("baseline", "reinforce-mean/random")] = [_run("random", 0, 0.1, reward="random", setting="baseline")]
    results[("fixed", "good @ monte_carlo")] = [_run("good", 0, 0.05, reward="monte_carlo")]
    return results


def test_the_clearly_better_algorithm_ranks_first_and_separates_from_both_others():
    rows = algorithm_rows(_results(), SEQUENCE_TOKENS, reps=REPS)
    assert [r["method"] for r in rows] == ["good @ exact-regret", "fair @ exact-regret", "fair-too @ exact-regret"]
    assert [r["rank"] for r in rows] == [1, 2, 3]
    good = rows[0]
    assert good["reverse_kl"] == pytest.approx(sum(GOOD) / 5)
    assert good["reverse_kl_iqm"] == pytest.approx((0.30 + 0.30 + 0.31) / 3)  # 5 seeds: the middle 3
    assert min(GOOD) <= good["reverse_kl_iqm_low"] <= good["reverse_kl_iqm"] <= good["reverse_kl_iqm_high"] <= max(GOOD)
    # read at the first evaluation at or past 10,000 sequences: the last one here
    assert good["reached_mark"] == 5 and good["reverse_kl_at_mark"] == pytest.approx(good["reverse_kl"])
    assert good["sequences_at_mark"] == REGRET_MARK + 48
    assert good["wall_time"] == pytest.approx(22.0) and good["forward_kl"] == pytest.approx(0.8)
    pairs = {(p["method"].split()[0], p["other"].split()[0]): p for p in pair_rows(rows, reps=REPS)}
    assert set(pairs) == {("good", "fair"), ("good", "fair-too"), ("fair", "fair-too")}
    for other in ("fair", "fair-too"):
        assert pairs[("good", other)]["p_improve"] == 1.0 and pairs[("good", other)]["verdict"] == "better"
    close = pairs[("fair", "fair-too")]
    assert close["p_improve_low"] < 0.5 < close["p_improve_high"] and close["verdict"] == "not separated"
    assert "2 of 3 pairs of algorithms separate" in headline(rows, list(pairs.values()))
    assert "**good @ exact-regret**" in headline(rows, list(pairs.values()))


def test_a_run_short_of_the_mark_is_read_as_not_reached():
    short = [_run("short", seed, 0.5, sequences=1_000) for seed in range(2)]
    (row,) = algorithm_rows({("fixed", "short @ exact-regret"): short}, SEQUENCE_TOKENS, reps=REPS)
    assert row["reached_mark"] == 0 and math.isnan(row["reverse_kl_at_mark"])
    assert value_at(short[0]["curve"], "reverse_kl", 500, SEQUENCE_TOKENS) == (short[0]["curve"][1]["reverse_kl"], 500)
    diverged = [_run("diverged", 0, 0.5), _run("diverged", 1, math.inf)]
    (row,) = algorithm_rows({("fixed", "diverged @ exact-regret"): diverged}, SEQUENCE_TOKENS, reps=REPS)
    assert row["seeds"] == 1 and row["reverse_kl"] == 0.5 and "1 of 2 ended with a regret that is not finite" in row["status"]


def _lines() -> dict:
    point = {"reverse_kl": 0.5, "reverse_kl_stderr": 0.01, "forward_kl": 0.4, "forward_kl_stderr": 0.01}
    return {"exact_gradient": [{"sequences": s, **point, "wall_time": s / 100} for s in (0, 5_000, 10_048)],
            "fresh_mle": [{"sequences": s, **point, "wall_time": s / 1000} for s in (0, 5_000, 10_048)],
            "cooled": [{"temperature": t, **point} for t in (0.9, 1.0)],
            "best_of_n": [{"n": n, "sequences": n, "reverse_kl": 0.5 / n} for n in (1, 4)]}


def test_the_regret_plot_is_written_with_both_panels(tmp_path):
    data = plot_series(_results(), _lines(), SEQUENCE_TOKENS)
    labels = [s["label"] for s in data["series"]]
    assert labels == ["fair @ exact-regret", "good @ exact-regret", "fair-too @ exact-regret", EXACT, FRESH_MLE]
    assert data["series"][1]["wall_time"] == [2.0, 12.0, 22.0]  # mean over seeds of each evaluation's
    assert [level["kind"] for level in data["levels"]] == ["cooled", "best-of-n"]  # best-of-1 is the start
    path = tmp_path / "regret.png"
    plot_regret(path, **data)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    plot_regret(path, [], [])
    assert not path.exists()  # no regret runs: no plot left from an earlier report


def test_a_comparison_without_regret_runs_writes_no_regret_report(tmp_path):
    results = {key: runs for key, runs in _results().items() if key[0] == "baseline" or "monte_carlo" in key[1]}
    assert write_regret_report(tmp_path, get_compare_config("tiny"), None, results) is None
    assert list(tmp_path.iterdir()) == []
    assert leads_with_regret(get_compare_config("regret"))
    assert not leads_with_regret(dataclasses.replace(get_compare_config("regret"), rewards=("exact-regret", "dense")))


# -- end to end: a tiny exact-regret comparison ----------------------------------------------
@pytest.fixture(scope="module")
def regret_comparison(tmp_path_factory, ray_local):
    out = tmp_path_factory.mktemp("regret-compare")
    argv = ["compare", "--preset", "tiny", "--out", str(out), "--cpus", "1", "--algos", "reinforce-mean",
            "--rewards", "exact-regret", "--settings", "fixed", "--baselines", "", "--seeds", "2",
            "--tokens", "512"]
    assert main(argv) == 0
    return out


def _csv(path):
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_a_tiny_regret_comparison_ranks_on_regret_beside_the_reference_lines(regret_comparison):
    out = regret_comparison
    config = CompareConfig.from_dict(json.loads((out / "compare.json").read_text()))
    rows = _csv(out / "regret.csv")
    assert list(rows[0]) == list(REGRET_COLUMNS)
    methods = [r["method"] for r in rows]
    assert methods[0] == "reinforce-mean @ exact-regret" and rows[0]["kind"] == "algorithm" and rows[0]["rank"] == "1"
    assert rows[0]["seeds"] == "2" and float(rows[0]["sequences"]) == 512 / 8  # tiny: 8 tokens a sequence
    assert methods[1:3] == [EXACT, FRESH_MLE]
    assert methods[3].startswith("cooled MLE, best T = ")
    assert methods[4:] == [f"best-of-{n} by D*'s logit" for n in config.best_of_n]
    # the trained lines spend the comparison's budget: 64 sequences, in batches of 32
    assert [float(r["sequences"]) for r in rows[1:3]] == [64.0, 64.0]
    assert all(0 < float(r["reverse_kl"]) < 5 for r in rows)
    curves = _csv(out / "regret_curves.csv")
    walls = [float(c["wall_time"]) for c in curves if c["kind"] == "algorithm"]
    assert len(walls) == config.evaluations + 1 and walls == sorted(walls) and walls[-1] > 0  # each evaluation's
    assert (out / "regret.png").stat().st_size > 10_000
    text = (out / "results.md").read_text()
    assert text.startswith("## Regret on the exact-regret task")  # every reward is the task: regret leads
    assert "## Every metric (NLL-oracle statistics)" in text and "## At equal KL" in text


def test_the_reference_lines_are_cached_and_redone_only_for_other_settings(regret_comparison, monkeypatch):
    out = regret_comparison
    cache = out / regret_report.CACHE_FILE
    held = cache.read_bytes()
    config = CompareConfig.from_dict(json.loads((out / "compare.json").read_text()))

    def refuse(*args, **kwargs):
        raise AssertionError("the reference lines were computed again")

    monkeypatch.setattr(regret_report, "exact_gradient_line", refuse)
    oracle = resolve_oracle(None, get_preset("tiny"))
    again = report(out, config, oracle)["regret"]
    assert cache.read_bytes() == held
    assert again["lines"]["exact_gradient"] == json.loads(held)["exact_gradient"]
    with pytest.raises(AssertionError, match="computed again"):
        regret_report.regret_lines(out, dataclasses.replace(config, temperatures=(1.0, 0.8)), oracle)


def test_the_section_lists_the_reference_rows_and_places_the_lines_along_the_budget():
    results = _results()
    rows = algorithm_rows(results, SEQUENCE_TOKENS, reps=REPS)
    pairs = pair_rows(rows, reps=REPS)
    rows += reference_rows(_lines())
    config = dataclasses.replace(get_compare_config("regret"), batch_size=64)
    text = "\n".join(markdown_lines(rows, pairs, curve_rows(results, _lines(), SEQUENCE_TOKENS), config,
                                   SEQUENCE_TOKENS, REPS))
    assert text.startswith("## Regret on the exact-regret task\n\nLowest regret: **good @ exact-regret**")
    # a reference row: one seed, its interval 1.96 standard errors, read at 10,000 sequences
    assert f"| – | {EXACT} | 1 | 10,048 | 0.500 ± 0.020 | – | 0.500 at 10,048 |" in text
    assert "| – | cooled MLE, best T = 0.9 | 1 | 0 |" in text and "| – | best-of-4 by D*'s logit | 1 | 4 | 0.125 |" in text
    # the runs' evaluations at 0, 5,000 and 10,048 sequences are the columns; the lines' fall in them
    assert "| method | 0 | 5,000 | 10,048 |" in text
    assert f"| {EXACT} | 0.500 | 0.500 | 0.500 |" in text
