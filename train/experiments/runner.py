"""Running one run of a comparison from the base, and the Ray Tune trial that does it."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from agents.sequence_level import frozen_copy
from seqgan_env.divergence import ScoredSequences, score_sequences
from seqgan_env.models import Generator, Oracle
from seqgan_env.precision import adam
from seqgan_env.rewards.density_ratio import OptimalDiscriminator
from seqgan_env.rewards.registry import get_reward_kind
from train.adversarial import discriminator_diagnostics, evaluate
from train.algorithms import get_algorithm
from train.experiments.base import base_models, load_reward_discriminator, with_reward_schedule
from train.experiments.config import CompareConfig, check_hparams
from train.experiments.prompted import prompt_env_kwargs, prompted_metrics, prompted_test_scores
from train.experiments.runs import Job, RunSpec, write_json
from train.experiments.steps import StepInputs, generator_step
from train.pretrain import DiscriminatorSchedule, train_discriminator


def _evaluate(generator: Generator, oracle: Oracle, test: torch.Tensor, samples: int, seed: int,
              reference: Generator | None = None, test_scores: ScoredSequences | None = None) -> dict[str, float]:
    """The pipeline's evaluation on a fixed sampling seed, so every evaluation of every run is alike
    (``reverse_kl`` and ``forward_kl`` included; ``test_scores``: the oracle's scores of ``test``, made once
    per run); with ``reference`` (the base generator), ``kl`` and ``kl_stderr`` to it."""
    return evaluate(generator, oracle, test, samples, torch.Generator().manual_seed(seed), reference=reference,
                    test_scores=test_scores)


def reward_arguments(env_reward: str, available: dict[str, Any]) -> dict[str, Any]:
    """The ``make`` arguments of ``env_reward`` (its registry entry's ``arguments``) from the run's
    models: ``discriminator`` (the reward's learned D, if any), ``rollout_policy`` (the base
    generator), ``oracle``, ``num_rollouts``, ``reference`` (D*'s generator). An argument the
    run has no model for stays unset (the env then takes its default)."""
    return {name: available[name] for name in get_reward_kind(env_reward).arguments
            if available.get(name) is not None}


def run_one(folder: str, job: Job | RunSpec, config_data: dict[str, Any], oracle_spec: str | None,
            threads: int = 1, report: Callable[[dict[str, Any]], None] | None = None,
            device: str = "cpu") -> dict[str, Any]:
    """:func:`train_run` from ``folder/base``, its result written in ``folder`` (``runs/.../seedK.json``)."""
    run = job if isinstance(job, RunSpec) else RunSpec.from_job(job)
    result = train_run(folder, run, config_data, oracle_spec, threads, report, device)
    write_json(run.result_path(Path(folder)), result)
    return result


def train_run(folder: str | Path, job: Job | RunSpec, config_data: dict[str, Any], oracle_spec: str | None,
              threads: int = 1, report: Callable[[dict[str, Any]], None] | None = None,
              device: str = "cpu") -> dict[str, Any]:
    """Train one run (a :class:`RunSpec`, or its ``(setting, name, seed)``) from the base in
    ``folder/base``; its result (nothing is written).

    The algorithm takes its ``hparams`` from ``config_data``. ``report(point)`` receives each
    evaluation (tokens, the divergences to the oracle per token ``reverse_kl`` and ``forward_kl`` with their
    standard errors, NLL-oracle, NLL-test, entropy, KL to the base generator ``kl`` with its
    standard error ``kl_stderr``, the rewards' mean and within-batch spread, the reward's D's
    held-out metrics ``d_heldout_*`` where it reads a D, and D's accuracy on its training
    positives ``d_train_accuracy`` where D is retrained, the seconds since the start ``wall_time`` and those
    spent in the updates alone ``train_time``, the evaluations left out) as it is made; a Tune trial passes
    Tune's ``report`` (see :func:`compare_trial`). A caller such as a tuning trial may run a run that its config's
    :meth:`CompareConfig.runs` does not list.
    """
    # Torch's thread count is process-wide, and a run's last digits depend on it (reductions split
    # across threads round differently): set it for this run only, so that a run in the caller's
    # process (a test, a notebook) leaves the process's later training as it found it.
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train_run(folder, job, config_data, oracle_spec, report, device)
    finally:
        torch.set_num_threads(previous_threads)


def _train_run(folder: str | Path, job: Job | RunSpec, config_data: dict[str, Any], oracle_spec: str | None,
               report: Callable[[dict[str, Any]], None] | None, device: str) -> dict[str, Any]:
    """:func:`train_run`'s body, under the run's thread count."""
    from seqgan_env.factory import resolve_oracle

    config = CompareConfig.from_dict(config_data)
    run = job if isinstance(job, RunSpec) else RunSpec.from_job(job)
    check_hparams(config.hparams)
    algorithm, reward = get_algorithm(run.algorithm), run.reward_entry
    env_reward = reward.env_reward_for(algorithm.sequence_level)
    root = Path(folder)
    base = root / "base"
    generator, real, test, preset = base_models(base, device)
    oracle = resolve_oracle(oracle_spec, preset)
    torch.manual_seed(run.seed)
    rng = torch.Generator().manual_seed(1000 + run.seed)

    # The generator a density ratio (learned, or D*) tells real data from: the policy itself in the
    # adversarial setting (trained in place, so D follows it), the base MLE generator in the fixed one.
    reference = generator if run.setting == "adversarial" else copy.deepcopy(generator)
    discriminator = None
    if reward.discriminator_file is not None:
        discriminator = load_reward_discriminator(base, reward, reference, device)
    available = dict(discriminator=discriminator, rollout_policy=generator, oracle=oracle,
                     num_rollouts=config.num_rollouts, reference=reference, reward_form=reward.form)
    kind = get_reward_kind(env_reward)
    # The D whose held-out metrics each evaluation records: the learned one, or D* for its rewards
    # (not for a task defined by its exact reward, such as exact-regret: there is no judge to check).
    reward_d = discriminator if discriminator is not None else (
        OptimalDiscriminator(oracle, reference)
        if {"oracle", "reference"} <= set(kind.arguments) and kind.kl_beta is None else None)
    hparams = dict(config.hparams.get(run.algorithm, {}))
    if kind.kl_beta is not None:  # a task defined with its KL coefficient (exact-regret: beta = 1 to the base G)
        hparams["kl_beta"] = kind.kl_beta
    env_kwargs = dict(preset=preset, reward=env_reward, device=device,
                      **reward_arguments(env_reward, available),
                      **prompt_env_kwargs(config.prompt_length, run.algorithm, config.hparams.get(run.algorithm, {})))
    last_d: dict[str, float] = {}
    # The adversarial setting's D-step, the same for every algorithm (a reward without a learned D has none).
    retrain_d = None
    if run.setting == "adversarial" and discriminator is not None:
        d_config = with_reward_schedule(
            DiscriminatorSchedule(rounds=1, epochs=config.d_epochs, num_negatives=config.d_negatives), reward,
            config.fixed_data)
        d_oracle = None if config.fixed_data else oracle  # fixed data: D cannot draw fresh real sequences
        d_optimizer = adam(discriminator.parameters(), d_config.lr)

        def retrain_d(policy: Generator) -> dict[str, float]:
            discriminator.train()
            stats = train_discriminator(discriminator, policy, real, d_config, rng, d_optimizer, oracle=d_oracle)
            discriminator.eval()
            last_d.update(stats)
            return stats

    reference = frozen_copy(generator)  # the base generator: pi_ref of the KL measured and of kl_beta's penalty
    step = generator_step(algorithm, StepInputs(generator, env_kwargs, config.batch_size, hparams, run.seed,
                                                retrain_d, reference))
    generator = step.generator
    # The oracle's scores of the fixed held-out sets, for every evaluation's forward KL.
    test_scores = score_sequences(oracle, test)
    prompted_scores = prompted_test_scores(oracle, test, config.prompt_length, min(config.eval_samples, 2000))
    started = time.time()
    training = 0.0  # seconds spent in the updates alone (D's retraining included), the evaluations' left out

    def evaluation(tokens: int, **extra: float) -> dict[str, Any]:
        point = {"tokens": tokens,
                 **_evaluate(generator, oracle, test, config.eval_samples, run.seed, reference, test_scores),
                 **extra,
                 **prompted_metrics(generator, reference, oracle, config.prompt_length, min(config.eval_samples, 2000),
                                    run.seed, prompted_scores),
                 "wall_time": time.time() - started, "train_time": training}
        if reward_d is not None:  # on the same fresh sequences at every evaluation (its own seeded stream)
            point.update(discriminator_diagnostics(reward_d, generator, oracle, min(config.eval_samples, 2_000),
                                                   torch.Generator().manual_seed(run.seed)))
        if report is not None:
            report(point)
        return point

    curve = [evaluation(0)]
    eval_every = config.token_budget / config.evaluations
    tokens, next_eval, rewards, spreads = 0, eval_every, [], []
    try:
        while tokens < config.token_budget:
            update_started = time.perf_counter()
            stats = step.update(int(torch.randint(2**31 - 1, (1,), generator=rng)))
            tokens += int(stats["tokens"])
            rewards.append(stats["mean_reward"])
            if "reward_std" in stats:
                spreads.append(stats["reward_std"])
            if retrain_d is not None and not step.retrains_d:
                retrain_d(generator)
                # The agent's env holds D itself; a model swap makes it see the retrained weights.
                step.close.set_discriminator(discriminator)
            training += time.perf_counter() - update_started
            if tokens >= next_eval or tokens >= config.token_budget:
                next_eval += eval_every
                extra = {"mean_reward": stats["mean_reward"]}
                if spreads:  # mean since the last evaluation of each update's within-batch spread
                    extra["reward_std"] = sum(spreads) / len(spreads)
                if retrain_d is not None and "d_accuracy" in last_d:  # on D's training positives: named so
                    extra["d_train_accuracy"] = last_d["d_accuracy"]
                spreads = []
                curve.append(evaluation(tokens, **extra))
    finally:
        step.close()
    result = {"setting": run.setting, "name": run.name, "seed": run.seed, "algo": run.algorithm,
              "reward": run.reward, "tokens": tokens, "updates": len(rewards), "curve": curve,
              "final": {**curve[-1], "mean_reward": rewards[-1]}, "wall_time": time.time() - started}
    return result


RESULT_KEY = "result_json"
"""The metric of a trial's last report that carries its run's whole result (as JSON) back to the driver."""


def compare_trial(trial_config: dict[str, Any], inputs: dict[str, Any] | None = None,
                  written: tuple[str, ...] = ()) -> None:
    """A Tune trial: one run of a comparison, its evaluations reported to Tune as it goes.

    ``inputs`` (:func:`train.experiments.transport.pack_inputs`, through Ray's object store) are
    all it reads; its result goes back in its last report (``RESULT_KEY``), which the driver
    writes: the trial touches no file of the results folder, so it runs on any node. A run
    among ``written`` (keys of the runs whose result the driver holds: a restored session may hold
    a trial that was interrupted after its last report) is not run again.
    """
    from ray import tune

    from train.experiments.transport import unpacked

    trial = trial_config["trial"]
    run = RunSpec.from_job(trial["job"])
    if run.key in written:
        tune.report({"result_written": 1})
        return
    if inputs is None:
        raise ValueError("a comparison trial needs its inputs (tune.with_parameters(compare_trial, inputs=...))")
    with unpacked(inputs) as (folder, oracle_spec):
        result = train_run(folder, run, trial["config"], oracle_spec, trial["threads"], report=tune.report,
                           device=trial.get("device", "cpu"))
    tune.report({**{k: v for k, v in result["final"].items() if isinstance(v, (int, float))},
                 RESULT_KEY: json.dumps(result), "result_written": 1})
