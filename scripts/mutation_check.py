"""Hand-made mutants of the reward engine and the resume path: does a test fail for each?

Each mutant is a small, deliberate bug (a string replaced in one or more source files). For
each, the tree is copied to a temporary folder (the working tree is never touched), the
mutant is applied there, and the tests that should catch it are run in that copy. A mutant
is *killed* when those tests fail (pytest exit status 1), *survived* when they pass: a
survivor is a guarantee that no test holds. See CONTRIBUTING.md, "Tests that can fail, and
the mutation check".

    python scripts/mutation_check.py               # every mutant (CPU heavy: about 10-20 minutes)
    python scripts/mutation_check.py --list        # what each mutant breaks, and its tests
    python scripts/mutation_check.py --only mc-cache-key-identity-only resume-no-d-optimizer
    python scripts/mutation_check.py --baseline    # the same tests on the unmutated tree first

Exit status: 0 when every mutant run was killed, 1 when one survived, 2 on a run error
(a mutant that no longer applies to the code, a test run that timed out or could not start).
"""

from __future__ import annotations

import argparse
import os
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
    """A deliberate bug: ``edits`` are ``(file, original, replacement)``; ``tests`` the pytest arguments."""

    name: str
    breaks: str
    edits: tuple[tuple[str, str, str], ...]
    tests: tuple[str, ...]


MUTANTS = (
    # -- the reward engine -------------------------------------------------------------------
    Mutant("mc-cache-key-identity-only",
           "the Monte Carlo reward keys D's cached pooled prefixes on id(D) alone, so D retrained in place "
           "mid-episode is read with stale prefix features",
           (("seqgan_env/rewards/discriminator.py", "key = (id(disc), disc.weights_key(dtype))", "key = (id(disc),)"),),
           ("tests/test_env.py", "-k", "retrained_in_place")),
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
           ("tests/test_prefix_states.py",)),
    Mutant("mc-policy-swap-not-rebuilt",
           "after set_rollout_policy the prefix states of the old policy are kept",
           (("seqgan_env/rewards/discriminator.py", "        self.rollout_policy = self._on_device(policy)\n        self._stale = True",
             "        self.rollout_policy = self._on_device(policy)\n        self._stale = False"),),
           ("tests/test_env.py", "-k", "swap_rollout_policy_mid_episode")),
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
           ("tests/test_persistence.py", "-k", "interrupted_in_d_pretraining")),
    Mutant("resume-no-data-rng",
           "a resumed run does not restore the random stream of its data shuffles and negatives",
           (("train/pipeline.py", '            self.rng.set_state(payload["rng"])\n', ""),),
           ("tests/test_persistence.py", "-k", "interrupted_in_d_pretraining")),
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
           "atomic_save writes the checkpoint in place (a kill mid-write leaves a torn file)",
           (("seqgan_env/checkpoint.py", "    temp = path.parent / f\".{path.name}.{secrets.token_hex(8)}.tmp\"",
             "    temp = path"),),
           ("tests/test_persistence.py", "-k", "atomic")),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument("--baseline", action="store_true", help="first run each mutant's tests unmutated")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per test run (default 600)")
    args = parser.parse_args(argv)
    known = {m.name: m for m in MUTANTS}
    unknown = sorted(set(args.only or ()) - set(known))
    if unknown:
        parser.error(f"unknown mutants {unknown}; choose from {sorted(known)}")
    chosen = [known[name] for name in args.only] if args.only else list(MUTANTS)
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.breaks}\n    tests: {' '.join(m.tests)}")
        return 0
    outcomes = []
    for m in chosen:
        if args.baseline:
            outcome, seconds, tail = check(None, m.tests, args.timeout)
            print(f"baseline for {m.name}: {outcome} ({seconds:.0f} s)", flush=True)
            if outcome != "passed":
                print(f"    {tail}", flush=True)
        outcome, seconds, tail = check(m, m.tests, args.timeout)
        outcomes.append(outcome)
        print(f"{m.name}: {outcome} ({seconds:.0f} s) - {m.breaks}", flush=True)
        if outcome != "killed":
            print(f"    {tail}", flush=True)
    survivors = [m.name for m, o in zip(chosen, outcomes) if o == "SURVIVED"]
    print(f"{outcomes.count('killed')} of {len(chosen)} killed; survivors: {', '.join(survivors) or 'none'}")
    if any(o not in ("killed", "SURVIVED") for o in outcomes):
        return 2
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
