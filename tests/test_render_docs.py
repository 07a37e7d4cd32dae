"""The published tables are rendered from ``results/``: a page that differs from its result files
fails here, and every result file says where its figures come from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("jinja2", reason="jinja2 comes with mkdocs, in the dev extra: pip install -e '.[dev]'")

from benchmarks import render_docs, results  # noqa: E402
from tests.conftest import REPO  # noqa: E402


def test_every_page_matches_its_result_files():
    diffs = render_docs.stale()
    assert not diffs, "pages differ from results/ (run python -m benchmarks.render_docs):\n" + "\n".join(diffs)


def test_the_headline_tables_are_rendered():
    readme = (REPO / "README.md").read_text()
    for name in ("readme_findings", "readme_paper_table"):
        assert f"<!-- results: {name} -->" in readme
    for page, name in (("status.md", "status_goals"), ("paper_table.md", "paper_table_runs"), ("paper_table.md", "paper_gain"),
                       ("performance.md", "performance_goals"), ("discriminator.md", "d_study_table")):
        assert f"<!-- results: {name} -->" in (REPO / "docs" / page).read_text(), page


def copy_of_the_repository(tmp_path: Path) -> tuple[Path, Path]:
    """README, docs/*.md and results/ copied: pages and files to change without touching the checkout."""
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    shutil.copy(REPO / "README.md", root / "README.md")
    for page in (REPO / "docs").glob("*.md"):
        shutil.copy(page, root / "docs" / page.name)
    shutil.copytree(REPO / "results", root / "results")
    return root, root / "results"


def test_a_changed_number_in_a_result_file_makes_the_page_stale(tmp_path):
    root, results_root = copy_of_the_repository(tmp_path)
    assert render_docs.stale(root, results_root) == []
    seed = results_root / "paper_table" / "seed_1.json"
    result = json.loads(seed.read_text())
    seqgan = next(row for row in result["data"]["rows"] if row["model"] == "SeqGAN")
    before = seqgan["nll_oracle"]
    seqgan["nll_oracle"] = 8.701
    seed.write_text(json.dumps(result))
    diffs = render_docs.stale(root, results_root)
    stale_pages = {diff.splitlines()[0].split()[1] for diff in diffs}
    assert {"README.md", "docs/paper_table.md", "docs/status.md", "docs/performance.md"} <= stale_pages
    readme = next(diff for diff in diffs if diff.splitlines()[0].split()[1] == "README.md")
    assert f"-| SeqGAN (50 adversarial steps) | 8.623 | {before:.3f} |" in readme
    assert "+| SeqGAN (50 adversarial steps) | 8.623 | 8.701 |" in readme
    # 8.701 is below the paper's goal: the verdicts that read it change with it
    status = next(diff for diff in diffs if "status.md" in diff.splitlines()[0])
    assert "+| the paper's table: SeqGAN at or below 8.74 (the paper: 8.736) | 8.623, 8.701, 8.782 |" in status


def test_a_page_edited_by_hand_is_stale(tmp_path):
    root, results_root = copy_of_the_repository(tmp_path)
    page = root / "docs" / "status.md"
    page.write_text(page.read_text().replace("| 1.37x on 2 threads |", "| 2.10x on 2 threads |"))
    diffs = render_docs.stale(root, results_root)
    assert len(diffs) == 1 and "2.10x" in diffs[0] and "1.37x" in diffs[0]


def test_the_check_command_fails_on_a_stale_page(tmp_path, monkeypatch, capsys):
    root, results_root = copy_of_the_repository(tmp_path)
    page = root / "docs" / "paper_table.md"
    page.write_text(page.read_text().replace("**8.777**", "**8.677**"))
    monkeypatch.setattr(render_docs, "ROOT", root)
    monkeypatch.setattr(render_docs, "RESULTS", results_root)
    assert render_docs.main(["--check"]) == 1
    assert "docs/paper_table.md" in capsys.readouterr().out
    assert render_docs.main([]) == 0  # rewrites the page from the files
    assert "**8.777**" in page.read_text() and render_docs.main(["--check"]) == 0


def test_a_block_without_a_template_is_an_error(tmp_path):
    root, results_root = copy_of_the_repository(tmp_path)
    (root / "docs" / "new.md").write_text("# New\n\n<!-- results: no_such_table -->\n<!-- /results -->\n")
    with pytest.raises(ValueError, match="no_such_table"):
        render_docs.render(root, results_root)


def test_every_template_is_used_on_a_page():
    used = {match["name"] for page in render_docs.pages() for match in render_docs.BLOCK.finditer(page.read_text())}
    templates = {path.name.removesuffix(".md.j2") for path in render_docs.TEMPLATES.glob("*.md.j2")}
    assert templates == used


def test_every_result_file_says_where_it_comes_from():
    loaded = results.load_all()
    assert {"paper_table", "equal_kl", "kl_frontier", "d_study", "performance"} <= set(loaded)
    for study, files in loaded.items():
        for name, result in files.items():
            assert result["study"] == study, f"{study}/{name}"
            assert result["command"] and result["code_version"] and result["date"], f"{study}/{name}"
            if result["provenance"] == "transcribed":
                assert result["raw_output_kept"] is False and result["transcribed_from"], f"{study}/{name}"
            if "figure_code_versions" in result:  # figures of several commits: each names its own
                assert set(result["figure_code_versions"]) == set(result["data"]["figures"]), f"{study}/{name}"


def test_a_result_file_missing_its_metadata_is_refused(tmp_path):
    (tmp_path / "study").mkdir()
    (tmp_path / "study" / "bare.json").write_text(json.dumps({"data": {"x": 1}}))
    with pytest.raises(ValueError, match="code_version"):
        results.load_all(tmp_path)


def test_write_result_records_what_made_it(tmp_path):
    path = results.write_result("study", "figure", {"x": 1.5}, machine_rates={"float32": 100.0, "bfloat16": 300.0},
                                command="python -m benchmarks.something --seed 1", root=tmp_path)
    loaded = results.load_result("study", "figure", tmp_path)
    assert path == tmp_path / "study" / "figure.json"
    assert loaded["provenance"] == "measured" and loaded["data"] == {"x": 1.5}
    assert loaded["command"] == "python -m benchmarks.something --seed 1"
    assert loaded["machine_rates"]["float32"] == 100.0
    assert loaded["code_version"].split("+")[0] == results.code_version().split("+")[0] != "unknown"
    results.write_result("study", "figure", {"x": 2.0}, machine_rates=None, root=tmp_path)  # a rerun replaces it
    assert results.load_result("study", "figure", tmp_path)["data"] == {"x": 2.0}


@pytest.mark.parametrize("value, digits, text", [(156.5, 0, "157"), (0.0245, 3, "0.025"), (2886, 0, "2,886"),
                                                 (None, 2, "n/a"), (-0.024, 3, "-0.024")])
def test_numbers_are_rounded_as_a_reader_rounds(value, digits, text):
    assert render_docs.number(value, digits) == text


def test_a_comparison_folder_is_published_with_its_tables(tmp_path, monkeypatch):
    from benchmarks import publish_comparison

    folder = tmp_path / "compare"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps({"algos": ["rloo"], "seeds": [0, 1]}))
    (folder / "results.csv").write_text("method,nll_oracle,status\nrloo,9.031,ok\nrandom/rloo,,1 of 2 failed\n")
    (folder / "kl_budgets.csv").write_text("method,budget,iqm\nrloo,1.0,9.02\n")
    monkeypatch.setattr(publish_comparison, "machine_rates", lambda: {"float32": 300.0, "bfloat16": 900.0})
    assert publish_comparison.main([str(folder), "--study", "regret", "--name", "matrix", "--command",
                                    "seqgan compare --preset tiny", "--results", str(tmp_path / "results")]) == 0
    result = results.load_result("regret", "matrix", tmp_path / "results")
    assert result["command"] == "seqgan compare --preset tiny" and result["machine_rates"]["float32"] == 300.0
    assert result["data"]["config"] == {"algos": ["rloo"], "seeds": [0, 1]}
    assert result["data"]["results"] == [{"method": "rloo", "nll_oracle": 9.031, "status": "ok"},
                                         {"method": "random/rloo", "nll_oracle": None, "status": "1 of 2 failed"}]
    assert result["data"]["kl_budgets"] == [{"method": "rloo", "budget": 1.0, "iqm": 9.02}]
    with pytest.raises(FileNotFoundError, match="not a finished seqgan compare folder"):
        publish_comparison.comparison_data(tmp_path)


def test_a_rerun_of_the_paper_table_replaces_its_seed_and_renders(tmp_path, monkeypatch):
    # what benchmarks.paper_table writes at the end of a run is what the templates read
    from benchmarks import paper_table

    root, results_root = copy_of_the_repository(tmp_path)
    monkeypatch.setattr(paper_table, "write_result", lambda *args, **kwargs: results.write_result(
        *args, root=results_root, **kwargs))
    rows = [{"model": "untrained", "epoch": 0, "nll_oracle": 11.43, "nll_test": 8.52, "wall_time": 0.0},
            {"model": "MLE", "epoch": 30, "nll_oracle": 9.031, "nll_test": 8.52, "wall_time": 90.0},
            {"model": "SeqGAN", "step": 50, "nll_oracle": 8.702, "nll_test": 8.71, "wall_time": 450.0},
            {"model": "SeqGAN (best evaluation)", "step": 40, "nll_oracle": 8.69, "nll_test": 8.7, "wall_time": 400.0}]
    rates = {when: {"float32": 330.0, "bfloat16": 2100.0, "threads": 2} for when in ("before", "after")}
    paper_table.publish(0, rows, {"adversarial": {"d_heldout_accuracy": 0.54, "d_heldout_auc": 0.61}}, 460.0, rates)
    assert results.load_result("paper_table", "seed_0", results_root)["provenance"] == "measured"
    pages = {page.name: rendered for page, (_, rendered) in render_docs.render(root, results_root).items()}
    assert "| SeqGAN (50 adversarial steps) | 8.702 | 8.777 | 8.782 | 8.736 |" in pages["README.md"]
    assert "| D held out after pretraining: accuracy / AUC | n/a |" in pages["README.md"]  # not in this run
    assert "| whole pipeline, wall time | 7.7 min |" in pages["README.md"]
    assert "measured by code version" in pages["paper_table.md"]


def render_one(template: str, study: str, name: str, results_root: Path) -> str:
    """One template rendered from one result file (the other pages need files a fake run lacks)."""
    loaded = {study: {name: results.load_result(study, name, results_root)}}
    return render_docs.environment().get_template(f"{template}.md.j2").render(results=loaded)


def test_a_d_study_run_writes_the_table_it_publishes(tmp_path, monkeypatch):
    from benchmarks import d_study

    rows = [{"setting": "paper", "round": 1, "cpu_s": 94.7, "wall_s": 533.0, "d_train_accuracy": 0.56,
             "accuracy": 0.519, "auc": 0.527, "brier": 0.282, "log_ratio_spearman": 0.05},
            {"setting": "ratio-mle", "round": 3, "cpu_s": 10.9, "wall_s": 11.0, "d_train_accuracy": float("nan"),
             "accuracy": 0.904, "auc": 0.971, "brier": 0.07, "log_ratio_spearman": 0.8}]
    run = {"rows": rows, "budget_cpu_s": 90.0, "optimal": {"accuracy": 0.999, "auc": 1.0, "brier": 0.001}}
    data = d_study.study_result(run, {"nll_oracle": 9.019, "nll_test": 8.529}, 2_000)
    results.write_result("d_study", "settings", data, machine_rates={"float32": 90.0, "bfloat16": 200.0, "threads": 1},
                         root=tmp_path)
    table = render_one("d_study_table", "d_study", "settings", tmp_path)
    assert "| `paper` | 1 | 94.7 | 533 | 0.519 | 0.527 | 0.282 | 0.050 | 0.560 |" in table
    assert "| `ratio-mle` | 3 | 10.9 | 11 | 0.904 | 0.971 | 0.070 | 0.800 | - |" in table  # NaN: no figure
    assert "| D* (`OptimalDiscriminator`, no training) | - | 0 | - | 0.999 | 1.000 | 0.001 | 1 | - |" in table
    assert "measured by code version" in table


def test_a_bench_rewards_run_writes_the_sweep_it_publishes(tmp_path, monkeypatch):
    from benchmarks import bench_rewards

    def row(num_envs, engine, baseline, loop):
        return {"num_envs": num_envs, "engine_steps_per_s": engine, "baseline_steps_per_s": baseline,
                "ratio": engine / baseline, "cpu_time_ratio": 1.2, "loop_steps_per_s": loop,
                "loop_ratio": engine / loop if loop else None, "gflops": 300.0, "peak_rss_mb": 630.0,
                "baseline_peak_rss_mb": 650.0, "times": {"current": {"wall": 1.0}}}

    run = {"matmul_gflops": {"float32": 180.0, "bfloat16": 410.0}, "matmul_gflops_end": {"float32": 175.0, "bfloat16": 400.0},
           "configs": {"paper": [row(1, 60.0, 50.0, 10.0), row(64, 731.0, 535.0, None)]}}
    monkeypatch.setattr(bench_rewards, "write_result", lambda *args, **kwargs: results.write_result(
        *args, root=tmp_path, **kwargs))
    bench_rewards.publish(run, threads=2)
    written = results.load_result("engine", "b_sweep", tmp_path)
    assert "times" not in written["data"]["configs"]["paper"][0] and written["machine_rates"]["threads"] == 2
    table = render_one("engine_b_sweep", "engine", "b_sweep", tmp_path)
    assert "| paper configuration (vocab 5000, length 20, 16 rollouts, the paper's D) | B = 1 | B = 64 |" in table
    assert "| engine before, env-steps/s | 50 | 535 |" in table and "| ratio | 1.20 | 1.37 |" in table
    assert "| original loop, env-steps/s | 10.0 | - |" in table
    bench_rewards.publish({**run, "configs": {"default": run["configs"]["paper"]}}, threads=2)
    assert results.load_result("engine", "b_sweep", tmp_path)["data"] == written["data"]  # not the paper's: kept


@pytest.mark.parametrize("study, name, path, page", [
    ("performance", "phase_budget", ("data", "figures", "one_thread_run_cpu_s"), "docs/performance.md"),
    ("engine", "b_sweep", ("data", "configs", "paper", 2, "engine_steps_per_s"), "docs/engine.md"),
    ("scaling", "one_trial", ("data", "figures"), "docs/scaling.md"),
    ("tuning", "plateau_preset", ("data", "figures"), "docs/tuning.md"),
    ("text", "sotu", ("data", "figures"), "docs/text.md"),
    ("reference_scores", "tiny", ("data", "figures"), "docs/reference_scores.md"),
    ("plateau", "summary_table", ("data", "figures"), "docs/comparison_results.md"),
    ("kl_penalty", "tiny", ("data", "figures"), "docs/comparing.md"),
])
def test_the_transcribed_prose_figures_render_from_their_files(tmp_path, study, name, path, page):
    # each page's prose figures are read from their file: change one and the page is stale
    root, results_root = copy_of_the_repository(tmp_path)
    file = results_root / study / f"{name}.json"
    result = json.loads(file.read_text())
    holder = result
    for key in path[:-1]:
        holder = holder[key]
    last = path[-1]
    if last == "figures":  # the first figure of the file
        holder, last = holder["figures"], next(iter(holder["figures"]))
    holder[last] = holder[last] + 1 if isinstance(holder[last], (int, float)) else "99:99"
    file.write_text(json.dumps(result))
    stale_pages = {diff.splitlines()[0].split()[1] for diff in render_docs.stale(root, results_root)}
    assert page in stale_pages
