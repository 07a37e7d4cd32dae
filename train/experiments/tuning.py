"""Fair hyperparameter tuning of every algorithm of a comparison, with Optuna on Ray Tune.

An untuned PPO that barely moves says nothing about PPO. Before a comparison, each of its
algorithms gets the *same* search budget: ``trials`` trials of Optuna's TPE sampler (the
sampler SB3's rl-zoo tunes with), each trial training the algorithm from the comparison's
shared base (the same pretrained G and D, :func:`train.experiments.base.prepare_base`) for
``token_budget`` generated tokens on every tuning seed, so every algorithm spends
``trials x len(tuning_seeds) x token_budget`` tokens. The objective is the final
NLL-oracle (lower is better), averaged over the tuning seeds, which must be disjoint from
the comparison's evaluation seeds: the settings are chosen on other seeds than the ones
they are judged on.

A trial is :func:`train.experiments.runner.train_run` with a ``CompareConfig`` whose ``hparams`` hold
the trial's values, run as a Ray Tune trial (:func:`train.experiments.tune_engine.run_experiment`,
Tune's ``OptunaSearch``). The best values are saved as a named preset
(``train/hparams/NAME.json``, written atomically), which ``seqgan compare --hparams NAME``
applies. Each algorithm's search is finished and recorded (``folder/searched/<algo>.json``)
before the next starts, so an interrupted tuning run started again skips the algorithms it
finished and only redoes the one it was in.

The search spaces are the algorithms' entries' ``search_space`` (:data:`train.algorithms.ALGORITHMS`;
:data:`SEARCH_SPACES` is a view of them), documented in ``docs/tuning.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqgan_env.models import Oracle
from seqgan_env.rewards.registry import get_reward_kind
from train import algorithms
from train.experiments import rewards as comparison_rewards
from train.experiments.base import prepare_base
from train.experiments.comparison import absolute_oracle_spec
from train.experiments.config import HPARAMS_DIR, CompareConfig

# A preset written here is read back by the same loader.
from train.experiments.config import load_hparams as load_hparams
from train.experiments.rewards import DEFAULT_REWARD
from train.experiments.runner import train_run
from train.experiments.runs import SETTINGS, RunSpec, write_json

METRIC = "objective"
"""What the search minimises: the trial's final ``OBJECTIVES[objective]``, averaged over the tuning seeds."""

OBJECTIVES = ("nll_oracle+nll_test", "nll_oracle", "reverse_kl", "reverse_kl+forward_kl")
"""``nll_oracle+nll_test`` (default): quality plus diversity, so that a generator that collapses onto a
few sequences the oracle likes (NLL-oracle falls, NLL-test soars) does not win the search, as it does
on NLL-oracle alone (measured: REINFORCE with a mean baseline on the dense reward, lr 0.017, reached
NLL-oracle 3.4 from 9.0 over 40 updates). ``nll_oracle``: quality alone, as the comparison's headline.
``reverse_kl``: the per-token KL(G || oracle), the regret of the exact-regret task, which sharpening
cannot win (it rises when G drops the oracle's entropy); ``reverse_kl+forward_kl``: that plus the
per-token KL(oracle || G), coverage."""


def objective_value(final: dict[str, float], objective: str) -> float:
    """The objective of one run's final evaluation."""
    return sum(final[name] for name in objective.split("+"))

DEFAULT_TUNING_SEEDS = (100, 101)
"""Tuning seeds, far from the comparisons' evaluation seeds (0, 1, 2, ...)."""



def __getattr__(name: str) -> Any:
    """``SEARCH_SPACES``: per tunable algorithm, the hyperparameters searched and their ranges (a view
    of the registry's entries: a dimension is ``("loguniform"|"uniform"|"int", low, high)`` or
    ``("choice", [values])``)."""
    if name == "SEARCH_SPACES":
        return {name: dict(algorithms.ALGORITHMS[name].search_space) for name in algorithms.tunable()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def search_space(algo: str, reward: str | None = None) -> dict[str, tuple]:
    """The search space of ``algo`` (its registry entry's), fitted to ``reward`` when one is given.

    A reward that fixes ``kl_beta`` (the exact-regret task: beta = 1 is part of its objective)
    leaves it out of the space, and one without Monte Carlo completions leaves out ``rollout_beta``. A per-token reward puts the discount in it, for the algorithms
    that weight each token by its return: ``discount`` of the REINFORCE variants, ``gamma`` and
    ``gae_lambda`` of SB3's. The undiscounted return is the objective; a lower discount is an
    estimate with less variance and some bias (at 0, each token's own reward: the per-state
    gradient, see docs/regret.md), a trade a search should be free to make. A reward whose every
    step estimates the final outcome (the Monte Carlo reward) already has its discount fixed at 0.
    """
    entry = algorithms.get_algorithm(algo)
    if entry.search_space is None:
        raise ValueError(f"no search space for {algo!r}; tunable algorithms: {sorted(algorithms.tunable())}")
    space = dict(entry.search_space)
    if reward is None:
        return space
    kind = get_reward_kind(comparison_rewards.get_comparison_reward(reward).env_reward_for(entry.sequence_level))
    if kind.kl_beta is not None:
        space.pop("kl_beta", None)
    if not kind.uses_rollout_policy:  # no Monte Carlo completions: the rollout copy's delay does nothing
        space.pop("rollout_beta", None)
    if kind.per_token and not entry.sequence_level:
        if entry.family == "reinforce":
            space["discount"] = ("uniform", 0.0, 1.0)
        elif entry.family == "sb3":
            space.update(gamma=("uniform", 0.0, 1.0), gae_lambda=("uniform", 0.0, 1.0))
    return space


def _tune_domain(spec: tuple) -> Any:
    """A Tune search-space domain (which Tune's ``OptunaSearch`` turns into Optuna's)."""
    from ray import tune

    kind = spec[0]
    if kind == "loguniform":
        return tune.loguniform(spec[1], spec[2])
    if kind == "uniform":
        return tune.uniform(spec[1], spec[2])
    if kind == "int":
        return tune.randint(spec[1], spec[2] + 1)  # Tune's upper bound is exclusive
    if kind == "choice":
        return tune.choice(list(spec[1]))
    raise ValueError(f"unknown kind of search dimension {kind!r}")


def in_space(algo: str, values: dict[str, Any], reward: str | None = None) -> bool:
    """Whether ``values`` sets exactly the hyperparameters of ``algo``'s space for ``reward``, each within its range."""
    space = search_space(algo, reward)
    if set(values) != set(space):
        return False
    for name, spec in space.items():
        value = values[name]
        if spec[0] == "choice":
            if value not in spec[1]:
                return False
        elif not spec[1] <= value <= spec[2] or (spec[0] == "int" and value != int(value)):
            return False
    return True


def check_algos(algos: Sequence[str]) -> None:
    """ValueError naming any algorithm that has no search space."""
    unknown = [a for a in algos if a not in algorithms.tunable()
               and not (":" in a and algorithms.get_algorithm(a).search_space is not None)]
    if unknown:
        raise ValueError(f"no search space for {unknown}; tunable algorithms: {sorted(algorithms.tunable())}")
    if not algos:
        raise ValueError("name at least one algorithm to tune")


def check_seeds(tuning_seeds: Sequence[int], evaluation_seeds: Sequence[int]) -> None:
    """ValueError if a tuning seed is also an evaluation seed of the comparison (or none is given)."""
    if not tuning_seeds:
        raise ValueError("tuning needs at least one tuning seed")
    overlap = sorted(set(tuning_seeds) & set(evaluation_seeds))
    if overlap:
        raise ValueError(f"tuning seeds {overlap} are also evaluation seeds of the comparison "
                         f"({list(evaluation_seeds)}); tune on other seeds")


def _plain(value: Any) -> Any:
    """A JSON-native value (Optuna and NumPy hand back NumPy scalars)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if hasattr(value, "item"):
        value = value.item()
    return value


def tuning_trial(trial_config: dict[str, Any], inputs: dict[str, Any] | None = None) -> None:
    """A Tune trial: one algorithm at one point of its space, trained on every tuning seed.

    Like a comparison's trial it reads only ``inputs`` (the base and the oracle, through Ray's
    object store, :mod:`train.experiments.transport`) and writes no file: its scores go back to
    the driver as its Tune report."""
    from ray import tune

    from train.experiments.transport import unpacked

    if inputs is None:
        raise ValueError("a tuning trial needs its inputs (tune.with_parameters(tuning_trial, inputs=...))")
    trial = trial_config["trial"]
    algo, values = trial["algo"], {k: _plain(v) for k, v in trial["hparams"].items()}
    config = {**trial["config"], "hparams": {algo: values}}
    finals, oracle_nll, test_nll, tokens = [], [], [], 0
    with unpacked(inputs) as (folder, oracle_spec):
        results = [train_run(folder, RunSpec(trial["setting"], algo, trial.get("reward", DEFAULT_REWARD), int(seed)),
                             config, oracle_spec, trial["threads"], device=trial["device"]) for seed in trial["seeds"]]
    for result in results:
        finals.append(objective_value(result["final"], trial.get("objective", OBJECTIVES[0])))
        oracle_nll.append(result["final"]["nll_oracle"])
        test_nll.append(result["final"]["nll_test"])
        tokens += int(result["tokens"])
    tune.report({METRIC: sum(finals) / len(finals), f"{METRIC}_per_seed": finals, "tokens": tokens,
                 "nll_oracle": sum(oracle_nll) / len(oracle_nll), "nll_test": sum(test_nll) / len(test_nll)})


def tune_algorithms(folder: str | Path, compare_config: CompareConfig, algos: Sequence[str], trials: int,
                    tuning_seeds: Sequence[int], oracle: Oracle, oracle_spec: str | None, setting: str = "fixed",
                    sampler_seed: int = 0, cpus: int | None = 1, address: str | None = None, threads: int = 1,
                    device: str = "cpu", progress: bool = True, reward: str = DEFAULT_REWARD,
                    objective: str = OBJECTIVES[0], storage: str | None = None) -> dict[str, Any]:
    """Tune each of ``algos`` with the same budget; the preset of the best values, with its metadata.

    Every algorithm gets ``trials`` Optuna (TPE) trials; a trial trains it from the shared
    base in ``folder`` (:func:`train.experiments.base.prepare_base` of ``compare_config``) for
    ``compare_config.token_budget`` tokens on each of ``tuning_seeds`` in ``setting``
    (``fixed``: D frozen) on ``reward`` (a comparison reward every algorithm runs on: ``monte_carlo``,
    ``monte_carlo-reg`` or ``dense``, which has no Monte Carlo rollouts and so tunes a long budget
    cheaply), and scores
    the mean final NLL-oracle. ``tuning_seeds`` must be
    disjoint from ``compare_config.seeds`` (the seeds the comparison evaluates on).

    Returns ``{"hparams": {algo: {name: value}}, "objective": ..., "budget": ..., ...}``
    (see :func:`save_preset`). An algorithm whose search finished is recorded in
    ``folder/searched/<algo>.json`` and not searched again when the call is repeated. Tune's
    state goes to ``storage/<algo>`` (default ``folder/tune/<algo>``; a shared path or a URI such as
    ``s3://...``); trials read the base through Ray's object store and write nothing.
    """
    from seqgan_env.devices import resolve_device
    from train.experiments.tune_engine import ray_session

    check_algos(algos)
    check_seeds(tuning_seeds, compare_config.seeds)
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    if setting not in SETTINGS:
        raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
    if comparison_rewards.get_comparison_reward(reward).role != "axis":  # unknown names fail in the lookup
        raise ValueError(f"reward {reward!r} is a baseline; choose from {list(comparison_rewards.names('axis'))}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}; choose from {list(OBJECTIVES)}")

    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    # Only the final evaluation is scored: the intermediate ones would be spent for nothing.
    config = dataclasses.replace(compare_config, hparams={}, evaluations=1, rewards=(reward,))
    saved = root / "tuning.json"
    request = {"config": config.to_dict(), "setting": setting, "reward": reward, "objective": objective, "tuning_seeds": list(tuning_seeds), "trials": trials,
               "sampler_seed": sampler_seed}
    if saved.exists() and json.loads(saved.read_text()) != request:
        raise ValueError(f"{root} holds a tuning run with other settings ({saved}); use another folder "
                         "or the same settings to finish it")
    write_json(saved, request)
    oracle_spec = absolute_oracle_spec(oracle_spec)
    gpus = 1.0 if resolve_device(device, "--device").type == "cuda" else 0.0
    if (address or gpus) and any(not (root / "searched" / f"{algo}.json").exists() for algo in algos):
        from train.experiments.tune_engine import check_cluster_fits, trial_resources

        with ray_session(address, cpus):  # a cluster without room for a trial: say so before the base is trained
            check_cluster_fits(trial_resources(gpus))
    prepare_base(root, config, oracle, progress, device)
    from train.experiments.transport import pack_inputs

    inputs = pack_inputs(root / "base", oracle_spec)
    state = str(storage).rstrip("/") if storage else str(root / "tune")

    searched = {algo: json.loads(record.read_text()) for algo in algos
                if (record := root / "searched" / f"{algo}.json").exists()}
    pending = [algo for algo in algos if algo not in searched]
    with contextlib.ExitStack() as stack:
        if pending:  # one Ray for all the searches
            stack.enter_context(ray_session(address, cpus))
        for algo in pending:
            searched[algo] = _search(algo, root, config, trials, tuning_seeds, setting, sampler_seed, inputs,
                                     threads, device, gpus, progress, reward, objective, state)

    tokens_per_trial = config.token_budget * len(tuning_seeds)
    return {
        "hparams": {algo: searched[algo]["trials"][0]["hparams"] for algo in algos},
        "objective": {algo: searched[algo]["trials"][0][METRIC] for algo in algos},
        "trials": {algo: searched[algo]["trials"] for algo in algos},
        "budget": {"trials_per_algo": trials, "tokens_per_trial": tokens_per_trial,
                   "tokens_per_algo": trials * tokens_per_trial, "tuning_seeds": list(tuning_seeds),
                   "setting": setting, "reward": reward, "metric": f"final {objective}, mean over the tuning seeds (minimised)",
                   "sampler": f"optuna TPESampler(seed={sampler_seed})"},
        "search_spaces": {algo: {k: list(v) for k, v in search_space(algo, reward).items()} for algo in algos},
        "compare_config": config.to_dict(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _search(algo: str, root: Path, config: CompareConfig, trials: int, tuning_seeds: Sequence[int], setting: str,
            sampler_seed: int, inputs: dict[str, Any], threads: int, device: str, gpus: float,
            progress: bool, reward: str, objective: str, state: str) -> dict[str, Any]:
    """One algorithm's Optuna search, recorded in ``root/searched/<algo>.json``; its trials, best first."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    from train.experiments.tune_engine import run_experiment, trial_resources

    space = {name: _tune_domain(spec) for name, spec in search_space(algo, reward).items()}
    trial = {"algo": algo, "hparams": space, "config": config.to_dict(), "setting": setting,
             "reward": reward, "objective": objective, "seeds": list(tuning_seeds), "threads": threads, "device": device}
    # TPE after a few random trials (Optuna's default waits for 10, more than a small budget has).
    sampler = optuna.samplers.TPESampler(seed=sampler_seed, n_startup_trials=max(1, min(10, trials // 2)))
    search = OptunaSearch(metric=METRIC, mode="min", sampler=sampler)
    session = run_experiment(tuning_trial, [trial], f"{state}/{algo}", trial_resources(gpus), progress=progress,
                             search_alg=search, num_samples=trials, metric=METRIC, mode="min",
                             parameters={"inputs": inputs})
    if not session.finished:
        raise RuntimeError(f"the search for {algo} was interrupted; run the same command again to finish it")
    done = [o for o in session.outcomes if o.error is None and METRIC in o.metrics]
    if not done:
        errors = sorted({o.error for o in session.outcomes if o.error})
        raise RuntimeError(f"every trial of {algo} failed: {errors}")
    rows = [{"hparams": {k: _plain(v) for k, v in o.config["hparams"].items()}, METRIC: o.metrics[METRIC],
             "nll_oracle": o.metrics["nll_oracle"], "nll_test": o.metrics["nll_test"],
             "tokens": int(o.metrics["tokens"])} for o in done]
    rows.sort(key=lambda r: r[METRIC])
    record = {"trials": rows, "failed": len(session.outcomes) - len(done)}
    write_json(root / "searched" / f"{algo}.json", record)
    return record


# -- presets -----------------------------------------------------------------------------
def preset_path(name: str) -> Path:
    """``train/hparams/NAME.json`` of a shipped preset name, or ``name`` itself if it is a ``.json`` file path."""
    if name.endswith(".json"):
        return Path(name)
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ValueError(f"preset name {name!r}: letters, digits, '-' and '_' only (or give a .json file)")
    return HPARAMS_DIR / f"{name}.json"


def save_preset(preset: dict[str, Any], path: str | Path) -> Path:
    """Write a tuned preset atomically (a temporary file and a rename: never half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(preset, indent=1) + "\n")
    os.replace(temp, path)
    return path


