"""Compare generator-training algorithms on the same reward: seeds, tables, plots, baselines.

Every run of a comparison starts from the same MLE-pretrained generator and the same
pretrained discriminator (the *base*, trained once by the ordinary pipeline), and spends the
same budget, counted in generated tokens (episode tokens the agent writes; the Monte Carlo
completions inside the reward are the reward's cost, not the agent's). Settings:

* ``fixed``: D is frozen, so the Monte Carlo reward is stationary: a plain RL problem;
* ``adversarial``: D is retrained after every generator update, as in SeqGAN.

Baselines keep the comparison honest (see ``docs/comparing.md``):

* ``mle``: the base generator with no RL, sampled at temperatures ``config.temperatures``:
  lower temperature lowers NLL-oracle and raises NLL-test; RL results are points on the same
  NLL-oracle vs NLL-test plot;
* ``constant`` and ``random``: the paper's REINFORCE with a constant reward and with an
  independent uniform reward instead of D;
* ``oracle``: REINFORCE on the oracle's log-likelihood (reward-to-go, mean baseline): what
  maximising the true likelihood does to diversity.

Every run is a Ray Tune trial (:mod:`train.tune_engine`): one CPU each (or a GPU fraction),
its evaluations reported to Tune as it goes, on a local Ray the comparison starts itself or
on a cluster (``address``). Tune's state lives in the comparison's folder (``tune/``).
Each finished run writes ``runs/<setting>/<name>/seed<k>.json`` atomically; a comparison
started again in the same folder continues Tune's experiment (finished trials are not run
again) and submits only runs without a result file. A run that fails is reported in the
table as failed, with its error; the others finish.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

import seqgan_env
from agents.base import Agent, collect_episodes
from agents.reinforce import ReinforceAgent, ReinforceConfig
from seqgan_env.checkpoint import load_checkpoint, load_model
from seqgan_env.devices import resolve_device
from seqgan_env.factory import REWARD_ARGUMENTS
from seqgan_env.models import Generator, Oracle, TokenLSTM
from seqgan_env.precision import adam
from seqgan_env.presets import Preset, get_preset
from seqgan_env.rewards import MonteCarloReward
from train.adversarial import evaluate, sb3_step
from train.config import get_train_config
from train.pretrain import DiscriminatorSchedule, train_discriminator
from train.reporting import mean_ci, write_report

BUILTIN_AGENTS = ("reinforce", "reinforce-mean", "reinforce-value", "ppo", "a2c", "rllib-ppo")
REINFORCE_BASELINES = {"reinforce": "none", "reinforce-mean": "mean", "reinforce-value": "value"}
"""The REINFORCE variants and the baseline (``ReinforceConfig.baseline``) of each."""
DEFAULT_AGENTS = ("reinforce", "ppo", "a2c")
BASELINES = ("constant", "random", "oracle")
SETTINGS = ("fixed", "adversarial")


@dataclass
class CompareConfig:
    """What a comparison runs; saved in ``compare.json`` so a restarted comparison matches."""

    algos: tuple[str, ...] = DEFAULT_AGENTS
    """Agents: ``reinforce``, ``ppo``, ``a2c`` (SB3), ``rllib-ppo`` (RLlib), or ``module:function`` where
    ``function(generator, envs, seed) -> agents.Agent`` builds any agent of the interface
    whose ``generator`` attribute is the policy it trains (what the evaluations measure)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the RL runs (the base is shared)."""
    settings: tuple[str, ...] = SETTINGS
    """``fixed`` (stationary reward) and/or ``adversarial`` (D retrained between updates)."""
    baselines: tuple[str, ...] = BASELINES
    """REINFORCE on uninformative (``constant``, ``random``) and oracle rewards."""
    temperatures: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    """Sampling temperatures of the MLE-only curve."""
    base_preset: str = "cpu"
    """Training preset of the shared pretraining (MLE and D)."""
    base_mle_epochs: int | None = 30
    """MLE epochs of the base (``None``: the preset's)."""
    base_d_rounds: int | None = 5
    """D pretraining rounds of the base (``None``: the preset's)."""
    token_budget: int = 64 * 20 * 20
    """Generated tokens per run (64 sequences of 20 tokens per update: 20 updates)."""
    batch_size: int = 64
    """Sequences per generator update (the vector env's ``num_envs``)."""
    num_rollouts: int = 16
    """Monte Carlo completions per step of the reward."""
    d_negatives: int = 1_000
    """Adversarial setting: fresh generator samples D is retrained on after each update."""
    d_epochs: int = 1
    """Adversarial setting: epochs over them."""
    evaluations: int = 4
    """Evaluations along the budget (plus one at the start)."""
    eval_samples: int = 5_000
    """Samples for NLL-oracle at each evaluation."""
    seed: int = 0
    """Seed of the base pretraining."""
    hparams: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Per agent name, hyperparameter overrides: ``ReinforceConfig`` fields for the REINFORCE
    variants, ``PPO``/``A2C`` keyword arguments for ``ppo``/``a2c`` (e.g. a tuned preset of
    :mod:`train.tuning`)."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})

    def jobs(self) -> list[tuple[str, str, int]]:
        """``(setting, name, seed)`` of every run; baselines run once (their reward ignores D)."""
        out = [(s, a, seed) for s in self.settings for a in self.algos for seed in self.seeds]
        out += [("baseline", b, seed) for b in self.baselines for seed in self.seeds]
        return out


COMPARE_PRESETS: dict[str, CompareConfig] = {
    # The paper's models and oracle on 2 CPU cores: 20 updates of 64 sequences per run.
    "cpu": CompareConfig(),
    # Seconds per run, for tests and trying the command out.
    "tiny": CompareConfig(seeds=(0, 1), temperatures=(1.0, 0.7), base_preset="tiny", base_mle_epochs=None,
                          base_d_rounds=None, token_budget=32 * 8 * 4, batch_size=32, num_rollouts=4,
                          d_negatives=200, evaluations=2, eval_samples=500),
}


def get_compare_config(name: str) -> CompareConfig:
    """A copy of the named comparison preset."""
    try:
        return dataclasses.replace(COMPARE_PRESETS[name])
    except KeyError:
        raise ValueError(f"unknown comparison preset {name!r}; choose one of {sorted(COMPARE_PRESETS)}") from None


def _check(config: CompareConfig) -> None:
    for setting in config.settings:
        if setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}; choose from {list(SETTINGS)}")
    for baseline in config.baselines:
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; choose from {list(BASELINES)}")
    for algo in config.algos:
        if algo not in BUILTIN_AGENTS and ":" not in algo:
            raise ValueError(f"unknown agent {algo!r}: one of {list(BUILTIN_AGENTS)} or 'module:function'")
    if not config.seeds:
        raise ValueError("a comparison needs at least one seed")
    check_hparams(config.hparams)


def hparam_names(algo: str) -> set[str]:
    """The hyperparameters ``CompareConfig.hparams[algo]`` may set."""
    if algo in REINFORCE_BASELINES:
        # the baseline is what tells the variants apart, not a hyperparameter of one
        return {f.name for f in dataclasses.fields(ReinforceConfig)} - {"baseline"}
    if algo in ("ppo", "a2c"):
        import inspect

        from stable_baselines3 import A2C, PPO

        return set(inspect.signature((PPO if algo == "ppo" else A2C).__init__).parameters) - {
            "self", "policy", "env", "seed", "device", "_init_setup_model"}  # the comparison sets these
    raise ValueError(f"hyperparameters given for {algo!r}, which takes none; "
                     f"choose from {sorted(REINFORCE_BASELINES) + ['a2c', 'ppo']}")


def check_hparams(hparams: dict[str, dict[str, Any]]) -> None:
    """ValueError naming any agent or hyperparameter of ``hparams`` that does not exist."""
    for algo, values in hparams.items():
        unknown = sorted(set(values) - hparam_names(algo))
        if unknown:
            raise ValueError(f"unknown hyperparameters {unknown} for {algo!r}; it takes {sorted(hparam_names(algo))}")


# -- the shared base ---------------------------------------------------------------------
def prepare_base(folder: Path, config: CompareConfig, oracle: Oracle, progress: bool = True,
                 device: str = "cpu") -> Path:
    """MLE generator and pretrained D shared by every run (``folder/base``), trained once, resumable."""
    from train.pipeline import Run

    base = folder / "base"
    if (base / "summary.json").exists():
        return base
    train_config = get_train_config(config.base_preset)
    if config.base_mle_epochs is not None:
        train_config.mle.epochs = config.base_mle_epochs
    if config.base_d_rounds is not None:
        train_config.d_pretrain.rounds = config.base_d_rounds
    train_config.adversarial.steps = 0
    train_config.adversarial.eval_samples = config.eval_samples
    train_config.seed = config.seed
    train_config.device = device
    resume = (base / "checkpoint.pt").exists()
    Run(base, train_config, oracle, resume=resume, progress=progress).run()
    return base


# -- one run -----------------------------------------------------------------------------
def load_agent_factory(spec: str) -> Callable[..., Agent]:
    """``module:function`` -> the function (``function(generator, envs, seed) -> Agent``)."""
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load agent {spec!r}: {exc}") from None
    if not callable(factory):
        raise ValueError(f"agent {spec!r} is not callable")
    return factory


def _evaluate(generator: Generator, oracle: Oracle, test: torch.Tensor, samples: int, seed: int) -> dict[str, float]:
    """The pipeline's evaluation on a fixed sampling seed, so every evaluation of every run is alike."""
    return evaluate(generator, oracle, test, samples, torch.Generator().manual_seed(seed))


def run_one(folder: str, job: tuple[str, str, int], config_data: dict[str, Any], oracle_spec: str | None,
            threads: int = 1, report: Callable[[dict[str, Any]], None] | None = None,
            device: str = "cpu") -> dict[str, Any]:
    """Train one (setting, agent, seed) from the base and write its result file.

    ``report(point)`` receives each evaluation (tokens, NLL-oracle, NLL-test, ...) as it is
    made; a Tune trial passes Tune's ``report`` (see :func:`compare_trial`).
    """
    from seqgan_env.factory import resolve_oracle

    torch.set_num_threads(threads)
    config = CompareConfig.from_dict(config_data)
    setting, name, seed = job
    root = Path(folder)
    base = root / "base"
    generator = load_model(base / "generator.pt", "generator", device=device)
    discriminator = load_model(base / "discriminator.pt", "discriminator", device=device).eval()
    payload = load_checkpoint(base / "checkpoint.pt", "training-run")
    real, test = payload["real"], payload["test"]
    preset: Preset = get_preset(payload["config"]["model_preset"]).replace(
        vocab_size=generator.vocab_size, seq_len=generator.seq_len, start_token=generator.start_token)
    oracle = resolve_oracle(oracle_spec, preset)
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(1000 + seed)

    reward = name if setting == "baseline" else "monte_carlo"  # baselines are named after their reward kind
    models = dict(discriminator=discriminator, rollout_policy=generator, oracle=oracle, num_rollouts=config.num_rollouts)
    env_kwargs = dict(preset=preset, reward=reward, device=device,
                      **{key: value for key, value in models.items() if key in REWARD_ARGUMENTS[reward]})
    d_optimizer = adam(discriminator.parameters(), 1e-4)
    d_config = DiscriminatorSchedule(rounds=1, epochs=config.d_epochs, num_negatives=config.d_negatives)

    def retrain_d(policy: Generator) -> dict[str, float]:
        """The adversarial setting's D-step, the same for every algorithm."""
        discriminator.train()
        stats = train_discriminator(discriminator, policy, real, d_config, rng, d_optimizer)
        discriminator.eval()
        return stats

    step, generator, close, retrains_d = _generator_step(
        name, setting, generator, env_kwargs, config.batch_size, seed, retrain_d if setting == "adversarial" else None,
        config.hparams.get(name, {}))

    started = time.time()

    def evaluation(tokens: int, **extra: float) -> dict[str, Any]:
        point = {"tokens": tokens, **_evaluate(generator, oracle, test, config.eval_samples, seed), **extra,
                 "wall_time": time.time() - started}
        if report is not None:
            report(point)
        return point

    curve = [evaluation(0)]
    eval_every = config.token_budget / config.evaluations
    tokens, next_eval, rewards = 0, eval_every, []
    try:
        while tokens < config.token_budget:
            stats = step(int(torch.randint(2**31 - 1, (1,), generator=rng)))
            tokens += int(stats["tokens"])
            rewards.append(stats["mean_reward"])
            if setting == "adversarial" and not retrains_d:
                retrain_d(generator)
                # The agent's env holds D itself; a model swap makes it see the retrained weights.
                close.set_discriminator(discriminator)
            if tokens >= next_eval or tokens >= config.token_budget:
                next_eval += eval_every
                curve.append(evaluation(tokens, mean_reward=stats["mean_reward"]))
    finally:
        close()
    result = {"setting": setting, "name": name, "seed": seed, "tokens": tokens, "updates": len(rewards),
              "curve": curve, "final": {**curve[-1], "mean_reward": rewards[-1]},
              "wall_time": time.time() - started}
    _write_json(_result_path(root, job), result)
    return result


class _Closer:
    """What a generator step leaves to clean up, and how to hand its env a retrained D."""

    def __init__(self, envs: Any = None, algorithm: Any = None) -> None:
        self.envs, self.algorithm = envs, algorithm

    def set_discriminator(self, discriminator: Any) -> None:
        seqgan_env.set_discriminator(self.envs, discriminator)

    def __call__(self) -> None:
        if self.envs is not None:
            self.envs.close()
        if self.algorithm is not None:
            self.algorithm.stop()


def _generator_step(name: str, setting: str, generator: Generator, env_kwargs: dict[str, Any], batch_size: int,
                    seed: int, retrain_d: Callable[[Generator], dict[str, float]] | None,
                    hparams: dict[str, Any] | None = None,
                    ) -> tuple[Callable[[int], dict], Generator, _Closer, bool]:
    """One generator update of agent ``name`` (its stats, with the tokens it generated), the
    generator that evaluations measure, what to close afterwards, and whether the agent
    retrains D itself (RLlib's PPO does, in its callback, with ``retrain_d``). ``hparams``
    overrides the agent's hyperparameters (``CompareConfig.hparams[name]``)."""
    hparams = hparams or {}
    if name == "rllib-ppo":
        from agents.rllib import env_steps, make_ppo, mean_step_reward

        algorithm = make_ppo(env_kwargs, generator, num_envs=batch_size, seed=seed,
                             discriminator=env_kwargs["discriminator"] if retrain_d else None, retrain=retrain_d)

        def iteration(episode_seed: int) -> dict[str, float]:
            result = algorithm.train()
            return {"tokens": env_steps(result), "mean_reward": mean_step_reward(result)}

        return iteration, generator, _Closer(algorithm=algorithm), True
    envs = gym.make_vec("SeqGAN-v0", num_envs=batch_size, **env_kwargs)
    if name in ("ppo", "a2c"):
        from agents.sb3 import make_a2c, make_ppo

        model = (make_ppo if name == "ppo" else make_a2c)(envs, generator=generator, seed=seed,
                                                          device=generator.device, **hparams)
        update, rollout = sb3_step(model, generator), model.n_envs * model.n_steps
        return (lambda episode_seed: {**update(episode_seed), "tokens": rollout}), generator, _Closer(envs), False
    if name in REINFORCE_BASELINES or setting == "baseline":
        if name == "oracle":
            config = ReinforceConfig(reward_to_go=True, baseline="mean")
        else:
            config = ReinforceConfig(**{**hparams, "baseline": REINFORCE_BASELINES.get(name, "none")})
        agent: Agent = ReinforceAgent(generator, config, seed=seed)
    else:
        agent = load_agent_factory(name)(generator, envs, seed)
        if not isinstance(agent, Agent):
            raise TypeError(f"agent {name!r} built a {type(agent).__name__}, not an agents.Agent")
        if not isinstance(getattr(agent, "generator", None), TokenLSTM):
            raise TypeError(f"agent {name!r} has no `generator` (a TokenLSTM policy): a comparison measures "
                            "NLL-oracle and NLL-test of the generator each agent trains")
    if agent.rollout_policy is not None and isinstance(seqgan_env.reward_wrapper(envs).reward_model, MonteCarloReward):
        seqgan_env.set_rollout_policy(envs, agent.rollout_policy)

    def episodes(episode_seed: int) -> dict[str, float]:
        batch = collect_episodes(envs, agent, seed=episode_seed)
        stats = agent.learn(batch)
        stats.setdefault("mean_reward", float((batch.rewards * batch.mask).sum() / batch.mask.sum()))
        return {**stats, "tokens": int(batch.lengths.sum())}

    return episodes, getattr(agent, "generator", generator), _Closer(envs), False


def compare_trial(trial_config: dict[str, Any]) -> None:
    """A Tune trial: one run of a comparison, its evaluations reported to Tune as it goes."""
    from ray import tune

    trial = trial_config["trial"]
    setting, name, seed = trial["job"]
    job = (setting, name, int(seed))
    path = _result_path(Path(trial["folder"]), job)
    if path.exists():  # a trial interrupted after writing its result (restored as unfinished): not redone
        result = json.loads(path.read_text())
    else:
        result = run_one(trial["folder"], job, trial["config"], trial["oracle"], trial["threads"], report=tune.report,
                         device=trial.get("device", "cpu"))
    # The last report comes after the result file is written: whoever watches the trial
    # (a stop condition, a search) may take it as finished from here on.
    tune.report({**{k: v for k, v in result["final"].items() if isinstance(v, (int, float))}, "result_written": 1})


def _result_path(root: Path, job: tuple[str, str, int]) -> Path:
    setting, name, seed = job
    return root / "runs" / setting / name.replace(":", "_").replace("/", "_") / f"seed{seed}.json"


def _write_json(path: Path, data: Any) -> None:
    """Write JSON through a temporary file and a rename, so a killed run leaves no half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(json.dumps(data, indent=1))
    os.replace(temp, path)


# -- the comparison ----------------------------------------------------------------------
def _job_key(job: tuple[str, str, int]) -> str:
    return f"{job[0]}/{job[1]}/seed{job[2]}"


def _trial_name(trial: dict[str, Any]) -> str:
    setting, name, seed = trial["job"]
    return f"{setting}_{name.replace(':', '_').replace('/', '_')}_seed{seed}"


def compare(folder: str | Path, config: CompareConfig, oracle: Oracle, oracle_spec: str | None,
            cpus: int | None = None, address: str | None = None, gpus_per_trial: float = 0.0,
            progress: bool = True, threads: int = 1, stop: Any = None, device: str = "cpu") -> dict[str, Any]:
    """Run (or finish) a comparison in ``folder`` as a Ray Tune experiment; write the table and the plots.

    Ray: the one already initialised in this process, else the cluster at ``address`` (or
    ``RAY_ADDRESS``), else a local instance with ``cpus`` CPUs that lives as long as the
    call. Each run is a trial asking for one CPU (and ``gpus_per_trial`` of a GPU) and
    running ``threads`` torch threads. ``stop`` is a Tune stopping
    condition for this session (e.g. to end it after some trials; run again to continue).
    ``device`` is where models, rewards and agents run (not part of the comparison's
    settings: a comparison started on one device can be finished on another); on a GPU each
    run asks Ray for a whole one unless ``gpus_per_trial`` says what fraction.
    """
    from train.tune_engine import check_address, ray_session, run_experiment, trial_resources

    _check(config)
    if resolve_device(device, "--device").type == "cuda" and not gpus_per_trial:
        gpus_per_trial = 1.0
    if oracle_spec is not None and Path(oracle_spec).is_file():
        oracle_spec = str(Path(oracle_spec).resolve())  # trials run in their own working folders
    resources = trial_resources(gpus_per_trial)
    address = address or os.environ.get("RAY_ADDRESS") or None
    if address:
        check_address(address)  # before minutes of pretraining, not after
    root = Path(folder).resolve()
    root.mkdir(parents=True, exist_ok=True)
    saved = root / "compare.json"
    if saved.exists():
        previous = json.loads(saved.read_text())
        if previous != config.to_dict():
            raise ValueError(f"{root} holds a comparison with other settings ({saved}); use another --out "
                             "or the same settings to finish it")
    else:
        _write_json(saved, config.to_dict())
    prepare_base(root, config, oracle, progress, device)

    failures_file = root / "failures.json"
    failures: dict[str, str] = json.loads(failures_file.read_text()) if failures_file.exists() else {}
    failed_now: set[str] = set()
    # A restored session runs what it held; runs it did not hold (or that it stopped
    # without a result) then go to a new session. Two sessions at most per call.
    for _ in range(2):
        pending = [job for job in config.jobs()
                   if not _result_path(root, job).exists() and _job_key(job) not in failed_now]
        if not pending:
            break
        trials = [{"job": list(job), "folder": str(root), "config": config.to_dict(), "oracle": oracle_spec,
                   "threads": threads, "device": device} for job in pending]
        with ray_session(address, cpus):
            session = run_experiment(compare_trial, trials, root / "tune", resources, progress=progress, stop=stop,
                                     trial_name=_trial_name)
        for outcome in session.outcomes:
            if "job" not in outcome.config:
                continue  # a trial the session never started
            key = _job_key(tuple(outcome.config["job"]))
            if outcome.error is not None:
                failures[key] = outcome.error
                failed_now.add(key)
            else:
                failures.pop(key, None)
        if not session.restored or not session.finished:
            break
    # A run that has its result now has not failed, whatever an earlier session said.
    failures = {k: v for k, v in failures.items() if not any(_job_key(j) == k and _result_path(root, j).exists()
                                                             for j in config.jobs())}
    _write_json(failures_file, failures)
    return report(root, config, oracle, failures)


# -- the report --------------------------------------------------------------------------
def temperature_curve(base: Path, oracle: Oracle, temperatures: tuple[float, ...], samples: int,
                      seeds: tuple[int, ...]) -> list[dict[str, float]]:
    """NLL-oracle and NLL-test of the MLE generator sampled at each temperature (mean over seeds)."""
    generator = load_model(base / "generator.pt", "generator")
    test = load_checkpoint(base / "checkpoint.pt", "training-run")["test"]
    rows = []
    for temperature in temperatures:
        nll_oracle = [oracle.nll(generator.sample(samples, torch.Generator().manual_seed(s), temperature=temperature))
                      for s in seeds]
        mean, half = mean_ci(nll_oracle)
        rows.append({"temperature": temperature, "nll_oracle": mean, "nll_oracle_ci": half,
                     "nll_test": generator.nll(test, temperature=temperature)})
    return rows


def report(root: Path, config: CompareConfig, oracle: Oracle, failures: dict[str, str] | None = None) -> dict[str, Any]:
    """Collect the finished runs and write ``results.md``, ``results.csv`` and the plots (:mod:`train.reporting`).

    ``failures`` maps ``setting/name/seed<k>`` to the error of a run that failed: its
    method's row says so in the ``status`` column (and carries the error), the statistics
    are over the seeds that finished.
    """
    failures = failures or {}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], list[str]] = {}
    for job in config.jobs():
        path = _result_path(root, job)
        if path.exists():
            results.setdefault((job[0], job[1]), []).append(json.loads(path.read_text()))
        elif _job_key(job) in failures:
            errors.setdefault((job[0], job[1]), []).append(f"seed {job[2]}: {failures[_job_key(job)]}")
    curve = temperature_curve(root / "base", oracle, config.temperatures, config.eval_samples, config.seeds)
    rows = write_report(root, config.jobs(), results, errors, curve, config.seeds, config.token_budget)
    return {"rows": rows, "temperature_curve": curve}
