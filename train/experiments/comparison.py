"""A comparison as a Ray Tune experiment: every run a trial, resumable, then the report.

Every run of a comparison starts from the same MLE-pretrained generator and the same
pretrained discriminators (the *base*, :mod:`train.experiments.base`), and spends the same
budget, counted in generated tokens (episode tokens the agent writes; the Monte Carlo
completions inside the reward are the reward's cost, not the agent's). Settings:

* ``fixed``: D is frozen, so the Monte Carlo reward is stationary: a plain RL problem;
* ``adversarial``: D is retrained after every generator update, as in SeqGAN.

Baselines keep the comparison honest (see ``docs/comparing.md``): ``mle`` (the base generator
sampled at temperatures ``config.temperatures``), the controls ``constant`` and ``random`` (a
reward without information, under every algorithm that runs controls) and ``oracle``
(REINFORCE on the oracle's log-likelihood).

Every run is a Ray Tune trial (:mod:`train.experiments.tune_engine`): one CPU each (or a GPU
fraction), its evaluations reported to Tune as it goes, on a local Ray the comparison starts
itself or on a cluster (``address``). A trial shares no disk with the driver: the base and
the oracle reach it through Ray's object store (:mod:`train.experiments.transport`), and its
result comes back in its last Tune report, which the driver writes atomically
(:meth:`train.experiments.runs.RunSpec.result_path`). Tune's state lives in the comparison's
folder (``tune/``) or in ``storage`` (shared storage, ``s3://...``); a comparison started again in the same
folder continues Tune's experiment (finished trials are not run again) and submits only runs
without a result file. A run that fails is reported in the table as failed, with its error;
the others finish.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

from seqgan_env.checkpoint import load_checkpoint, load_model
from seqgan_env.devices import resolve_device
from seqgan_env.models import Oracle
from train.experiments.base import prepare_base
from train.experiments.config import CompareConfig, check_config
from train.experiments.kl_report import write_kl_report
from train.experiments.reference_points import tempered_points
from train.experiments.regret_report import write_regret_report
from train.experiments.reporting import write_report
from train.experiments.runner import RESULT_KEY, compare_trial
from train.experiments.runs import RunSpec, write_json
from train.experiments.statistics import mean_ci


def absolute_oracle_spec(oracle_spec: str | None) -> str | None:
    """An oracle file given by a relative path, made absolute: trials run in their own working folders."""
    if oracle_spec is not None and Path(oracle_spec).is_file():
        return str(Path(oracle_spec).resolve())
    return oracle_spec


def compare(folder: str | Path, config: CompareConfig, oracle: Oracle, oracle_spec: str | None,
            cpus: int | None = None, address: str | None = None, gpus_per_trial: float = 0.0,
            progress: bool = True, threads: int = 1, stop: Any = None, device: str = "cpu",
            storage: str | None = None) -> dict[str, Any]:
    """Run (or finish) a comparison in ``folder`` as a Ray Tune experiment; write the table and the plots.

    Ray: the one already initialised in this process, else the cluster at ``address`` (or
    ``RAY_ADDRESS``), else a local instance with ``cpus`` CPUs that lives as long as the
    call. Each run is a trial asking for one CPU (and ``gpus_per_trial`` of a GPU) and
    running ``threads`` torch threads. ``stop`` is a Tune stopping
    condition for this session (e.g. to end it after some trials; run again to continue).
    ``device`` is where models, rewards and agents run (not part of the comparison's
    settings: a comparison started on one device can be finished on another); on a GPU each
    run asks Ray for a whole one unless ``gpus_per_trial`` says what fraction. ``storage``:
    where Tune keeps its state (default ``folder/tune``; a shared path or a URI such as ``s3://...``).
    """
    from train.experiments.transport import pack_inputs
    from train.experiments.tune_engine import (
        check_address,
        check_cluster_fits,
        ray_session,
        run_experiment,
        trial_resources,
    )

    check_config(config)
    if resolve_device(device, "--device").type == "cuda" and not gpus_per_trial:
        gpus_per_trial = 1.0
    oracle_spec = absolute_oracle_spec(oracle_spec)
    resources = trial_resources(gpus_per_trial)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_address(address)  # before minutes of pretraining, not after
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    saved = root / "compare.json"
    if saved.exists():
        previous = json.loads(saved.read_text())
        # An older compare.json lacks the fields added since: they take their defaults.
        held, wanted = CompareConfig.from_dict(previous).to_dict(), config.to_dict()
        if held != wanted:
            differing = ", ".join(f"{key} {held[key]!r} there, {wanted[key]!r} now" for key in wanted
                                  if held[key] != wanted[key])
            raise ValueError(f"{root} holds a comparison with other settings ({saved}: {differing}); use another "
                             "--out or the same settings to finish it")
    else:
        write_json(saved, config.to_dict())
    runs = config.runs()
    if (address or gpus_per_trial) and any(not run.result_path(root).exists() for run in runs):
        with ray_session(address, cpus):  # a cluster without room for a trial: say so before the base is trained
            check_cluster_fits(resources)
    prepare_base(root, config, oracle, progress, device)
    inputs = pack_inputs(root / "base", oracle_spec)

    failures_file = root / "failures.json"
    failures: dict[str, str] = json.loads(failures_file.read_text()) if failures_file.exists() else {}
    failed_now: set[str] = set()
    # A restored session runs what it held; runs it did not hold (or that it stopped
    # without a result) then go to a new session. Two sessions at most per call.
    for _ in range(2):
        pending = [run for run in runs if not run.result_path(root).exists() and run.key not in failed_now]
        if not pending:
            break
        trials = [{"job": list(run.job), "config": config.to_dict(), "threads": threads, "device": device}
                  for run in pending]
        with ray_session(address, cpus):
            session = run_experiment(compare_trial, trials, storage or root / "tune", resources, progress=progress,
                                     stop=stop, trial_name=lambda trial: RunSpec.from_job(trial["job"]).trial_name,
                                     parameters={"inputs": inputs, "written": tuple(
                                         run.key for run in runs if run.result_path(root).exists())},
                                     on_result=functools.partial(write_reported_result, str(root)))
        for outcome in session.outcomes:
            if "job" not in outcome.config:
                continue  # a trial the session never started
            key = RunSpec.from_job(outcome.config["job"]).key
            if outcome.error is None:  # also a result a restored session held from before
                write_reported_result(str(root), outcome.config, outcome.metrics)
                failures.pop(key, None)
            else:
                failures[key] = outcome.error
                failed_now.add(key)
        if not session.restored or not session.finished:
            break
    # A run that has its result now has not failed, whatever an earlier session said.
    failures = {k: v for k, v in failures.items()
                if not any(run.key == k and run.result_path(root).exists() for run in runs)}
    write_json(failures_file, failures)
    return report(root, config, oracle, failures, threads)


def write_reported_result(root: str, trial: dict[str, Any], result: dict[str, Any]) -> None:
    """Write the run result a comparison trial reported (its last report), unless already written.

    Called in the driver for every report (:class:`train.experiments.result_hook.ResultHook`) and
    for the outcomes of a session: the only place a run's result file is written."""
    if RESULT_KEY not in result or "job" not in trial:
        return
    run = RunSpec.from_job(trial["job"])
    path = run.result_path(Path(root))
    if path.exists():
        return
    data = json.loads(result[RESULT_KEY])
    if (data.get("setting"), data.get("name"), data.get("seed")) != run.job:
        raise RuntimeError(f"trial {run.trial_name} returned the result of another run")
    write_json(path, data)


def temperature_curve(base: Path, oracle: Oracle, temperatures: tuple[float, ...], samples: int,
                      seeds: tuple[int, ...]) -> list[dict[str, float]]:
    """NLL-oracle and NLL-test of the MLE generator sampled at each temperature (mean over seeds)."""
    generator = load_model(base / "generator.pt", "generator")
    test = load_checkpoint(base / "checkpoint.pt", "training-run")["test"]
    points = [tempered_points(generator, oracle, test, temperatures, samples, s, kl=False) for s in seeds]
    rows = []
    for i, temperature in enumerate(temperatures):
        mean, half = mean_ci([per_seed[i]["nll_oracle"] for per_seed in points])
        rows.append({"temperature": temperature, "nll_oracle": mean, "nll_oracle_ci": half,
                     "nll_test": points[0][i]["nll_test"]})
    return rows


def report(root: Path, config: CompareConfig, oracle: Oracle, failures: dict[str, str] | None = None,
           threads: int = 1) -> dict[str, Any]:
    """Collect the finished runs and write ``results.md``, ``results.csv`` and the plots
    (:mod:`train.experiments.reporting`), the report at equal KL (:mod:`train.experiments.kl_report`) and,
    for runs on the exact-regret task, the regret report (:mod:`train.experiments.regret_report`).

    ``failures`` maps ``setting/name/seed<k>`` to the error of a run that failed: its
    method's row says so in the ``status`` column (and carries the error), the statistics
    are over the seeds that finished. ``threads``: torch threads of the regret report's reference lines
    (as many as each run had).
    """
    failures = failures or {}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], list[str]] = {}
    for run in config.runs():
        path = run.result_path(root)
        if path.exists():
            results.setdefault((run.setting, run.name), []).append(json.loads(path.read_text()))
        elif run.key in failures:
            errors.setdefault((run.setting, run.name), []).append(f"seed {run.seed}: {failures[run.key]}")
    curve = temperature_curve(root / "base", oracle, config.temperatures, config.eval_samples, config.seeds)
    rows = write_report(root, config.jobs(), results, errors, curve, config.seeds, config.token_budget)
    rows = write_kl_report(root, config, oracle, results, rows)  # best-of-n rows, fits, KL budgets
    # Runs on the exact-regret task: ranked by their regret, beside the reference lines (None without such runs).
    regret = write_regret_report(root, config, oracle, results, errors, threads=threads)
    return {"rows": rows, "temperature_curve": curve, "regret": regret}
