"""Hand-made mutants of the guarantees the docs state: does a test fail for each?

Each mutant is a small, deliberate bug (a string replaced in one or more source files). For
each, the tree is copied to a temporary folder (the working tree is never touched), the
mutant is applied there, and the tests that should catch it are run in that copy. First the
same tests run on the unmutated copy (the *baseline*, once per distinct selection of tests): a
mutant is *killed* only when its tests pass unmutated and fail mutated, *survived* when they
pass mutated; a baseline that fails is a run error, not a kill. A survivor is a guarantee that
no test holds. See CONTRIBUTING.md, "Tests that can fail, and the mutation check".

    python scripts/mutation_check.py --list        # what each mutant breaks, and its tests
    python scripts/mutation_check.py --ci          # the fast subset that .ci/run runs (a few minutes)
    python scripts/mutation_check.py --record results/mutation/full.json   # every mutant, recorded
    python scripts/mutation_check.py --only mc-cache-key-identity-only resume-no-d-optimizer

Exit status: 0 when every mutant run was killed, 1 when one survived, 2 on a run error
(a mutant that no longer applies to the code, a baseline that fails, a test run that timed
out or could not start).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", ".pytest_cache", "runs", "site",
                                     "build", "dist", "*.egg-info")


@dataclass(frozen=True)
class Mutant:
    """A deliberate bug: ``edits`` are ``(file, original, replacement)``; ``tests`` the pytest
    arguments; ``fast``: in the subset that CI runs (``--ci``), whose tests take seconds."""

    name: str
    breaks: str
    edits: tuple[tuple[str, str, str], ...]
    tests: tuple[str, ...]
    fast: bool = False


MUTANTS = (
    # -- the reward engine -------------------------------------------------------------------
    Mutant("mc-cache-key-identity-only",
           "the Monte Carlo reward keys D's cached pooled prefixes on id(D) alone, so D retrained in place "
           "mid-episode is read with stale prefix features",
           (("seqgan_env/rewards/discriminator.py", "key = (id(disc), disc.weights_key(dtype))", "key = (id(disc),)"),),
           ("tests/test_env.py", "-k", "retrained_in_place"), fast=True),
    Mutant("rollout-uniform-completions",
           "completions are drawn uniformly instead of from the rollout policy",
           (("seqgan_env/rollout.py", "linear = isinstance(policy, TokenLSTM)", "linear = False"),
            ("seqgan_env/rollout.py", "return sample_categorical(out, generator)",
             "return sample_categorical(torch.zeros_like(out), generator)"),
            ("seqgan_env/rollout.py", "token = sample_categorical(prefix_logits, generator, num_samples=num_rollouts)",
             "token = sample_categorical(torch.zeros_like(prefix_logits), generator, num_samples=num_rollouts)")),
           ("tests/test_vector_env.py", "-k", "original_loop_in_expectation")),
    Mutant("rollout-prefix-features-dropped",
           "D scores the completions without the windows that lie inside the prefix",
           (("seqgan_env/rollout.py",
             "pooled = torch.maximum(suffix_max, prefix_max.repeat_interleave(num_rollouts, dim=0))",
             "pooled = suffix_max"),),
           ("tests/test_vector_env.py", "-k", "original_loop_in_expectation or mixed_prefix")),
    Mutant("rollout-rows-mixed-up",
           "the completions' scores are averaged across the wrong rows (rollout-major instead of row-major)",
           (("seqgan_env/rollout.py", "return scores.view(batch, num_rollouts).mean(dim=1)",
             "return scores.view(num_rollouts, batch).mean(dim=0)"),),
           ("tests/test_vector_env.py", "-k", "original_loop_in_expectation or mixed_prefix")),
    Mutant("rollout-reset-ignored",
           "rows that start a new episode keep the rollout policy's state from the previous one",
           (("seqgan_env/rollout.py", "self._fresh = rows.clone() if self._fresh is None else self._fresh | rows",
             "return"),),
           ("tests/test_prefix_states.py",), fast=True),
    Mutant("mc-policy-swap-not-rebuilt",
           "after set_rollout_policy the prefix states of the old policy are kept",
           (("seqgan_env/rewards/discriminator.py", "        self.rollout_policy = self._on_device(policy)\n        self._stale = True",
             "        self.rollout_policy = self._on_device(policy)\n        self._stale = False"),),
           ("tests/test_env.py", "-k", "swap_rollout_policy_mid_episode"), fast=True),
    # -- the comparison's D-step ---------------------------------------------------------------
    Mutant("compare-fixed-d-retrained",
           "the comparison retrains D in the fixed setting too",
           (("train/experiments/runner.py", 'if run.setting == "adversarial" and discriminator is not None:',
             "if discriminator is not None:"),),
           ("tests/test_compare.py", "-k", "d_stays_fixed")),
    Mutant("compare-adversarial-d-frozen",
           "the comparison never retrains D, even in the adversarial setting",
           (("train/experiments/runner.py", 'if run.setting == "adversarial" and discriminator is not None:',
             "if False:"),),
           ("tests/test_compare.py", "-k", "d_stays_fixed")),
    # -- the resume path ---------------------------------------------------------------------
    Mutant("resume-no-d-optimizer",
           "a resumed run starts D's Adam afresh instead of from the checkpoint's state",
           (("train/pipeline.py", '            self.d_optimizer.load_state_dict(payload["d_optimizer"])\n', ""),),
           ("tests/test_persistence.py", "-k", "interrupted_in_d_pretraining"), fast=True),
    Mutant("resume-no-data-rng",
           "a resumed run does not restore the random stream of its data shuffles and negatives",
           (("train/pipeline.py", '            self.rng.set_state(payload["rng"])\n', ""),),
           ("tests/test_persistence.py", "-k", "interrupted_in_d_pretraining"), fast=True),
    Mutant("resume-sb3-from-scratch",
           "a resumed PPO/A2C run builds a fresh SB3 model instead of the checkpoint's",
           (("train/pipeline.py", "        if self.sb3_state is not None:  # resuming",
             "        if False:  # resuming"),),
           ("tests/test_cli.py", "-k", "sb3_algorithms_train_in_the_pipeline_and_resume and ppo")),
    Mutant("checkpoint-numpy-rng-not-restored",
           "set_global_rng_state restores torch's and Python's random states but not NumPy's",
           (("seqgan_env/checkpoint.py", "    np.random.set_state((numpy[\"kind\"], numpy[\"keys\"].numpy().astype(np.uint32), "
             "numpy[\"position\"],\n                         numpy[\"has_gauss\"], numpy[\"gauss\"]))\n", ""),),
           ("tests/test_persistence.py", "-k", "ctrl_c_then and ppo")),
    Mutant("checkpoint-not-atomic",
           "atomic_save writes the checkpoint in place: a kill mid-write leaves a torn file where the old one was",
           (("seqgan_env/checkpoint.py", "    temp = path.parent / f\".{path.name}.{secrets.token_hex(8)}.tmp\"",
             "    temp = path"),
            ("seqgan_env/checkpoint.py", "os.O_WRONLY | os.O_CREAT | os.O_EXCL", "os.O_WRONLY | os.O_CREAT | os.O_TRUNC")),
           ("tests/test_persistence.py", "-k", "killed_midway"), fast=True),
    # -- the KL penalty (agents/kl_penalty.py, agents/sb3, the reference-penalty wrapper) -------
    Mutant("kl-penalty-sign",
           "the policy's half of the KL penalty is added (+ beta log pi) instead of subtracted",
           (("agents/kl_penalty.py", "policy_terms = -beta * np.asarray(log_probs, dtype=np.float64)",
             "policy_terms = beta * np.asarray(log_probs, dtype=np.float64)"),),
           ("tests/test_kl_penalty.py", "-k", "additive_rewards or outcome_rewards"), fast=True),
    Mutant("kl-penalty-scale",
           "the policy's half of the KL penalty is paid twice over (2 beta log pi)",
           (("agents/kl_penalty.py", "policy_terms = -beta * np.asarray(log_probs, dtype=np.float64)",
             "policy_terms = -2 * beta * np.asarray(log_probs, dtype=np.float64)"),),
           ("tests/test_kl_penalty.py", "-k", "additive_rewards or outcome_rewards"), fast=True),
    Mutant("sb3-kl-callback-beta-ignored",
           "PPO/A2C's KL callback rewrites the rollout's rewards with beta = 1 whatever kl_beta says",
           (("agents/sb3/callbacks.py", "kl_regularised_rewards(buffer.rewards, buffer.log_probs, self.beta,",
             "kl_regularised_rewards(buffer.rewards, buffer.log_probs, 1.0,"),),
           ("tests/test_kl_penalty.py", "-k", "ppo_callback_rewrites"), fast=True),
    Mutant("reference-penalty-sign",
           "the reference-penalty wrapper subtracts beta log pi_ref instead of adding it",
           (("seqgan_env/rewards/reference_penalty.py",
             "term = self.beta * log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)",
             "term = -self.beta * log_probs.gather(1, tokens.unsqueeze(1)).squeeze(1)"),),
           ("tests/test_reference_penalty.py",), fast=True),
    # -- the group methods' advantages ----------------------------------------------------------
    Mutant("rloo-baseline-includes-itself",
           "RLOO's baseline is the mean of the whole group, the sample itself included (not leave-one-out)",
           (("agents/rloo.py", "others = (groups.sum(dim=1, keepdim=True) - groups) / (group_size - 1)",
             "others = groups.mean(dim=1, keepdim=True)"),),
           ("tests/test_rloo.py", "-k", "by_hand or enumeration"), fast=True),
    Mutant("grpo-not-normalised",
           "GRPO's advantages are centred on the group mean but not divided by the group's spread",
           (("agents/grpo.py", "mean, std = groups.mean(dim=1, keepdim=True), groups.std(dim=1, keepdim=True)",
             "mean, std = groups.mean(dim=1, keepdim=True), torch.ones_like(groups[:, :1])"),),
           ("tests/test_grpo.py", "-k", "by_hand"), fast=True),
    # -- D*, best-of-n, the KL-budget table -----------------------------------------------------
    Mutant("d-star-ratio-inverted",
           "D* (and every density-ratio D) scores log p_reference - log p_numerator: the ratio upside down",
           (("seqgan_env/rewards/density_ratio.py",
             "return sequence_log_likelihood(self.numerator, tokens.to(self.device), self.batch_size, k, shared) "
             "- reference",
             "return reference - sequence_log_likelihood(self.numerator, tokens.to(self.device), self.batch_size, k, "
             "shared)"),),
           ("tests/test_optimal.py", "-k", "exact_posterior"), fast=True),
    Mutant("best-of-n-keeps-the-worst",
           "best-of-n keeps each group's lowest-scoring sequence",
           (("seqgan_env/best_of_n.py", "best = scores.view(draws, n).argmax(dim=1)",
             "best = scores.view(draws, n).argmin(dim=1)"),),
           ("tests/test_best_of_n.py", "-k", "keeps_the_best"), fast=True),
    Mutant("kl-budget-reads-the-next-evaluation",
           "the KL-budget table reads the first evaluation past the budget instead of interpolating to it",
           (("train/experiments/overoptimisation.py", "return previous[1] + fraction * (value - previous[1])",
             "return value"),),
           ("tests/test_overoptimisation.py", "-k", "interpolate or hand_computation"), fast=True),
    Mutant("kl-budget-table-reads-one-budget",
           "every row of the KL-budget table reads the runs at the first budget",
           (("train/experiments/kl_report.py", "[value_at_kl(c, k, budget) for c in g[\"curves\"]]",
             "[value_at_kl(c, k, budgets[0]) for c in g[\"curves\"]]"),),
           ("tests/test_overoptimisation.py", "-k", "hand_computation"), fast=True),
    # -- each update's direction: the learning tests on the oracle reward -----------------------
    Mutant("reinforce-update-reversed",
           "REINFORCE (every variant) climbs its loss: the policy gradient's sign flipped",
           (("agents/reinforce.py", "loss = -(taken * advantage * mask).sum() / sequences.shape[0]",
             "loss = (taken * advantage * mask).sum() / sequences.shape[0]"),),
           ("tests/test_learning.py", "-k", "reinforce"), fast=True),
    Mutant("rloo-update-reversed",
           "RLOO climbs its loss: the policy gradient's sign flipped",
           (("agents/rloo.py", "loss = -(advantages * sequence_log_probs).mean()",
             "loss = (advantages * sequence_log_probs).mean()"),),
           ("tests/test_learning.py", "-k", "rloo"), fast=True),
    Mutant("grpo-update-reversed",
           "GRPO descends its clipped surrogate instead of ascending it",
           (("agents/grpo.py", "loss = -((per_token * mask[index]).sum(dim=1) / lengths[index]).mean()",
             "loss = ((per_token * mask[index]).sum(dim=1) / lengths[index]).mean()"),),
           ("tests/test_learning.py", "-k", "grpo"), fast=True),
    # -- prompts reaching the comparison's runs --------------------------------------------------
    Mutant("compare-prompts-not-in-the-env",
           "seqgan compare --prompt-length trains every run on unprompted episodes",
           (("train/experiments/runner.py",
             "                      **prompt_env_kwargs(config.prompt_length, run.algorithm, "
             "config.hparams.get(run.algorithm, {})))",
             "                      )"),),
           ("tests/test_compare_prompts.py",)),
    Mutant("compare-prompts-not-evaluated",
           "seqgan compare --prompt-length evaluates its runs without the prompts (no prompted gold or KL)",
           (("train/experiments/runner.py", "**prompted_metrics(generator, reference, oracle, config.prompt_length,",
             "**prompted_metrics(generator, reference, oracle, 0,"),),
           ("tests/test_compare_prompts.py",)),
)


def apply(mutant: Mutant, tree: Path) -> None:
    """Apply ``mutant`` to the copy in ``tree``; each original must occur exactly once."""
    for file, original, replacement in mutant.edits:
        path = tree / file
        text = path.read_text()
        count = text.count(original)
        if count != 1:
            raise LookupError(f"{mutant.name}: {original!r} occurs {count} times in {file} (update the mutant)")
        path.write_text(text.replace(original, replacement))


def run_tests(tree: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    """pytest's exit status on ``tests`` in ``tree`` (``None``: timed out) and the last lines it printed."""
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1")
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, ""
    return done.returncode, "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])


def check(mutant: Mutant | None, tests: tuple[str, ...], timeout: float) -> tuple[str, float, str]:
    """Run ``tests`` on a fresh copy of the tree, mutated by ``mutant`` (``None``: unmutated)."""
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="seqgan-mutant-") as folder:
        tree = Path(folder) / REPO.name  # same folder name: tests that look beside the repo for ../shared
        shutil.copytree(REPO, tree, ignore=COPY_IGNORE)
        if mutant is not None:
            try:
                apply(mutant, tree)
            except LookupError as exc:
                return "stale", 0.0, str(exc)
        status, tail = run_tests(tree, tests, timeout)
    outcome = {None: "timeout", 0: "passed" if mutant is None else "SURVIVED", 1: "killed"}.get(status, f"error {status}")
    return outcome, time.time() - started, tail


def grouped_baselines(selections: list[tuple[str, ...]], timeout: float) -> dict[tuple[str, ...], tuple[str, float]]:
    """The baseline of every selection, one pytest run per test file instead of one per selection
    (each run pays for pytest's start and the file's fixtures): a file's ``-k`` selections are
    joined by ``or`` (a superset of each; a selection of the whole file takes the whole file).
    A file whose run does not pass is left out: its selections then get baselines of their own."""
    done: dict[tuple[str, ...], tuple[str, float]] = {}
    by_file: dict[str, list[tuple[str, ...]]] = {}
    for tests in dict.fromkeys(selections):
        by_file.setdefault(tests[0], []).append(tests)
    for file, members in by_file.items():
        if len(members) < 2 or any(len(t) != 1 and (len(t) != 3 or t[1] != "-k") for t in members):
            continue
        whole = any(len(t) == 1 for t in members)
        tests = (file,) if whole else (file, "-k", " or ".join(f"({t[2]})" for t in members))
        outcome, seconds, tail = check(None, tests, timeout)
        print(f"baseline {' '.join(tests)}: {outcome} ({seconds:.0f} s)", flush=True)
        if outcome == "passed":
            done.update({t: (outcome, seconds) for t in members})
        else:
            print(f"    {tail}", flush=True)
    return done


def code_version() -> str:
    """The commit of the tree under test, ``+dirty`` when it has uncommitted changes (``unknown`` without git)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def record(path: Path, argv: list[str], rows: list[dict[str, object]], started: float,
           version: str | None = None, planned: int | None = None) -> None:
    """Write the run's result to ``path`` (JSON): command, code version (``version``, read when the
    run began; else now), the date it began, machine, each mutant's outcome."""
    payload = {  # the schema of every file in results/ (benchmarks/results.py)
        "study": path.parent.name,
        "provenance": "measured",
        "command": " ".join(["python", "scripts/mutation_check.py", *argv]),
        "code_version": code_version() if version is None else version,
        "date": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine_rates": None,  # no timing is published from it: seconds are what it took, on whatever machine
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
        "data": {
            "total_seconds": round(time.time() - started, 1),
            "killed": sum(row["outcome"] == "killed" for row in rows),
            "run": len(rows),
            "planned": len(rows) if planned is None else planned,
            "mutants": rows,
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(temp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--ci", action="store_true", help="only the fast subset (the mutants marked fast), as CI runs")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the unmutated runs (then any failure counts as a kill: for a quick look only)")
    parser.add_argument("--record", type=Path, metavar="FILE",
                        help="write the result (command, code version, date, each mutant's outcome and time) as JSON")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run (default 600)")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTANTS}
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        parser.error(f"unknown mutants {unknown}; choose from {sorted(known)}")
    chosen = [known[name] for name in args.only] if args.only else list(MUTANTS)
    if args.ci:
        chosen = [m for m in chosen if m.fast]
    chosen.sort(key=lambda m: not m.fast)  # the fast subset first: a run cut short has checked it
    if args.list:
        for m in chosen:
            print(f"{m.name}{' (fast)' if m.fast else ''}: {m.breaks}\n    tests: {' '.join(m.tests)}")
        return 0
    started, version = time.time(), code_version()  # the tree each mutant copies is the one of now
    baselines: dict[tuple[str, ...], tuple[str, float]] = {}
    if not args.no_baseline:
        baselines = grouped_baselines([m.tests for m in chosen], args.timeout)
    rows: list[dict[str, object]] = []
    for m in chosen:
        row: dict[str, object] = {"name": m.name, "breaks": m.breaks, "files": sorted({e[0] for e in m.edits}),
                                  "tests": " ".join(m.tests)}
        if not args.no_baseline:
            if m.tests not in baselines:
                outcome, seconds, tail = check(None, m.tests, args.timeout)
                baselines[m.tests] = (outcome, seconds)
                print(f"baseline {' '.join(m.tests)}: {outcome} ({seconds:.0f} s)", flush=True)
                if outcome != "passed":
                    print(f"    {tail}", flush=True)
            row["baseline"], row["baseline_seconds"] = baselines[m.tests][0], round(baselines[m.tests][1], 1)
            if row["baseline"] != "passed":  # a failure on unmutated code kills nothing
                row.update(outcome="baseline failed", seconds=0.0)
                rows.append(row)
                print(f"{m.name}: not run (its tests fail unmutated)", flush=True)
                continue
        outcome, seconds, tail = check(m, m.tests, args.timeout)
        row.update(outcome=outcome, seconds=round(seconds, 1))
        rows.append(row)
        print(f"{m.name}: {outcome} ({seconds:.0f} s) - {m.breaks}", flush=True)
        if args.record:  # after every mutant: a run cut short still leaves what it found
            record(args.record, argv, rows, started, version, len(chosen))
        if outcome != "killed":
            print(f"    {tail}", flush=True)
    outcomes = [row["outcome"] for row in rows]
    survivors = [row["name"] for row in rows if row["outcome"] == "SURVIVED"]
    print(f"{outcomes.count('killed')} of {len(chosen)} killed; survivors: {', '.join(survivors) or 'none'}; "
          f"{time.time() - started:.0f} s in all")
    if args.record:
        record(args.record, argv, rows, started, version, len(chosen))
    if any(o not in ("killed", "SURVIVED") for o in outcomes):
        return 2
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
