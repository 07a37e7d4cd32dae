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
* ``constant`` and ``random`` (the *controls*): a constant reward and an independent uniform
  reward instead of D, each trained by the same update as every REINFORCE variant in
  ``algos`` (job ``constant/reinforce-mean``, ...): under a baseline a constant reward gives
  no gradient at all, without one it still sharpens G, which is not learning;
* ``oracle``: REINFORCE on the oracle's log-likelihood (reward-to-go, mean baseline): what
  maximising the true likelihood does to diversity.

Rewards (``CompareConfig.rewards``; every algorithm runs on each): ``monte_carlo`` (the
paper's D and Monte Carlo reward), ``monte_carlo-reg`` (the same reward from a D pretrained
and retrained with :data:`train.pretrain.REGULARISED_D`), ``dense`` (a
:class:`~seqgan_env.models.PrefixDiscriminator` scoring every prefix, no rollouts). A run's
name is the algorithm's, with `` @ <reward>`` for the rewards other than ``monte_carlo``
(:func:`job_name`). ``CompareConfig.hparams`` holds per-algorithm hyperparameters
(:func:`load_hparams` reads them from JSON).

Every run is a Ray Tune trial (:mod:`train.tune_engine`): one CPU each (or a GPU fraction),
its evaluations reported to Tune as it goes, on a local Ray the comparison starts itself or
on a cluster (``address``). Tune's state lives in the comparison's folder (``tune/``).
Each finished run writes ``runs/<setting>/<name>/seed<k>.json`` atomically (the paper
REINFORCE's controls keep the folder of the plain ``constant`` / ``random`` of older
comparisons, which they are, so older folders still report); a comparison
started again in the same folder continues Tune's experiment (finished trials are not run
again) and submits only runs without a result file. A run that fails is reported in the
table as failed, with its error; the others finish.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
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

REINFORCE_VARIANTS: dict[str, str] = {"reinforce": "none", "reinforce-mean": "mean", "reinforce-value": "value"}
"""The REINFORCE variants and their :attr:`ReinforceConfig.baseline`: the paper's (none), batch mean, learned value."""
SB3_AGENTS = ("ppo", "a2c")
BUILTIN_AGENTS = (*REINFORCE_VARIANTS, *SB3_AGENTS, "rllib-ppo")
DEFAULT_AGENTS = ("reinforce", "ppo", "a2c")
CONTROLS = ("constant", "random")
"""Baselines whose reward carries no information; each runs under every REINFORCE variant in ``algos``."""
BASELINES = (*CONTROLS, "oracle")
SETTINGS = ("fixed", "adversarial")
REWARDS = ("monte_carlo", "monte_carlo-reg", "dense")
"""Discriminator rewards of a comparison: the paper's, with a regularised D, and the dense prefix reward."""
DEFAULT_REWARD = "monte_carlo"
_D_FILES = {"monte_carlo": ("discriminator.pt", "discriminator"),
            "monte_carlo-reg": ("discriminator-reg.pt", "discriminator"),
            "dense": ("prefix-discriminator.pt", "prefix-discriminator")}
"""The base's D of each reward: file name and checkpoint kind."""
_ENV_REWARD = {"monte_carlo": "monte_carlo", "monte_carlo-reg": "monte_carlo", "dense": "dense"}
"""The env's reward kind of each comparison reward."""
_SB3_SET_HERE = {"policy": "the comparison's generator policy", "env": "the comparison's env",
                 "seed": "the run's seed", "device": "--device",
                 "n_steps": "one episode per env per update: the batch is `batch_size` sequences",
                 "_init_setup_model": "internal"}
"""PPO/A2C arguments a comparison sets itself, so ``hparams`` may not."""
HPARAMS_DIR = Path(__file__).resolve().parent / "hparams"
"""Shipped hyperparameter presets: ``train/hparams/<name>.json``."""


def job_name(algo: str, reward: str = DEFAULT_REWARD) -> str:
    """The run name of ``algo`` on ``reward``: ``algo`` on the paper's reward, else ``"algo @ reward"``."""
    return algo if reward == DEFAULT_REWARD else f"{algo} @ {reward}"


def split_job_name(name: str) -> tuple[str, str]:
    """``(algo, reward)`` of a run name of the fixed or adversarial setting (inverse of :func:`job_name`)."""
    algo, separator, reward = name.rpartition(" @ ")
    return (algo, reward) if separator else (name, DEFAULT_REWARD)


def control_update(name: str) -> str:
    """The REINFORCE variant a control baseline (``constant/reinforce-mean``, or plain ``constant`` of
    older comparisons: the paper's update) runs under."""
    return name.partition("/")[2] or "reinforce"


@dataclass
class CompareConfig:
    """What a comparison runs; saved in ``compare.json`` so a restarted comparison matches."""

    algos: tuple[str, ...] = DEFAULT_AGENTS
    """Agents: ``reinforce`` (the paper's update, no baseline), ``reinforce-mean`` (batch-mean
    baseline), ``reinforce-value`` (learned value baseline), ``ppo``, ``a2c`` (SB3),
    ``rllib-ppo`` (RLlib), or ``module:function`` where ``function(generator, envs, seed) ->
    agents.Agent`` builds any agent of the interface whose ``generator`` attribute is the
    policy it trains (what the evaluations measure)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the RL runs (the base is shared)."""
    settings: tuple[str, ...] = SETTINGS
    """``fixed`` (stationary reward) and/or ``adversarial`` (D retrained between updates)."""
    rewards: tuple[str, ...] = (DEFAULT_REWARD,)
    """Discriminator rewards every algorithm runs on (:data:`REWARDS`): ``monte_carlo`` (the
    paper's), ``monte_carlo-reg`` (its D regularised, :data:`train.pretrain.REGULARISED_D`),
    ``dense`` (a prefix discriminator, no rollouts). The base pretrains the D of each."""
    baselines: tuple[str, ...] = BASELINES
    """Uninformative rewards (``constant``, ``random``: under each REINFORCE variant in
    ``algos``) and REINFORCE on the oracle's log-likelihood (``oracle``)."""
    hparams: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Per algorithm, hyperparameters overriding its defaults: :class:`ReinforceConfig` fields
    for the REINFORCE variants (and the controls run under them; not ``baseline``, which the
    variant fixes), keyword arguments of :func:`agents.sb3.make_ppo` / ``make_a2c`` for
    ``ppo`` / ``a2c``, of :func:`agents.rllib.ppo_config` for ``rllib-ppo``."""
    temperatures: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    """Sampling temperatures of the MLE-only curve."""
    base_preset: str = "cpu"
    """Training preset of the shared pretraining (MLE and D)."""
    base_mle_epochs: int | None = 30
    """MLE epochs of the base (``None``: the preset's)."""
    base_d_rounds: int | None = 5
    """D pretraining rounds of the base (``None``: the preset's); every D of ``rewards`` gets the same schedule."""
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

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareConfig:
        """From :meth:`to_dict`'s data; fields an older ``compare.json`` lacks take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})

    def reinforce_variants(self) -> tuple[str, ...]:
        """The REINFORCE variants among ``algos``: the updates the controls run under."""
        return tuple(a for a in self.algos if a in REINFORCE_VARIANTS)

    def jobs(self) -> list[tuple[str, str, int]]:
        """``(setting, name, seed)`` of every run: settings x rewards x algos x seeds, then the
        baselines (once: their reward ignores D), each control under each REINFORCE variant."""
        out = [(s, job_name(a, r), seed) for s in self.settings for r in self.rewards for a in self.algos
               for seed in self.seeds]
        for baseline in self.baselines:
            names = [f"{baseline}/{v}" for v in self.reinforce_variants()] if baseline in CONTROLS else [baseline]
            out += [("baseline", name, seed) for name in names for seed in self.seeds]
        return out


PLATEAU_TOKEN_BUDGET = 64 * 20 * 40
"""Generated tokens per run of the ``plateau`` comparison: 40 updates of 64 sequences, twice the
``cpu`` preset's 20, what fits its 70 runs into about 45 minutes on 2 cores (README)."""

COMPARE_PRESETS: dict[str, CompareConfig] = {
    # The paper's models and oracle on 2 CPU cores: 20 updates of 64 sequences per run.
    "cpu": CompareConfig(),
    # The paper's oracle at a budget where the curves flatten: every variance reduction,
    # every reward, 5 evaluation seeds, the fixed D (a stationary reward: a plain RL benchmark).
    # REINFORCE without and with a baseline and PPO: A2C and the learned-value baseline, tuned
    # with the same budget, did no better than these at the tuning budget (docs/tuning.md).
    "plateau": CompareConfig(algos=("reinforce", "reinforce-mean", "ppo"), seeds=(0, 1, 2, 3, 4),
                             settings=("fixed",), rewards=REWARDS, token_budget=PLATEAU_TOKEN_BUDGET,
                             evaluations=5),
    # Seconds per run, for tests and trying the command out: every axis, at the smallest size.
    "tiny": CompareConfig(algos=("reinforce", "reinforce-mean", "a2c"), seeds=(0, 1), rewards=REWARDS,
                          temperatures=(1.0, 0.7), base_preset="tiny", base_mle_epochs=None,
                          base_d_rounds=None, token_budget=32 * 8 * 4, batch_size=32, num_rollouts=4,
                          d_negatives=200, evaluations=2, eval_samples=500),
}


def get_compare_config(name: str) -> CompareConfig:
    """A copy of the named comparison preset."""
    try:
        return dataclasses.replace(COMPARE_PRESETS[name], hparams=copy.deepcopy(COMPARE_PRESETS[name].hparams))
    except KeyError:
        raise ValueError(f"unknown comparison preset {name!r}; choose one of {sorted(COMPARE_PRESETS)}") from None


def _unknown(kind: str, given: tuple[str, ...] | list[str], known: tuple[str, ...] | list[str]) -> None:
    bad = [g for g in given if g not in known]
    if bad:
        raise ValueError(f"unknown {kind}{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                         f"choose from {list(known)}")


def _check(config: CompareConfig) -> None:
    """Every name and combination of ``config`` checked, so that a mistake is reported before any training."""
    _unknown("setting", config.settings, SETTINGS)
    _unknown("baseline", config.baselines, BASELINES)
    _unknown("reward", config.rewards, REWARDS)
    for algo in config.algos:
        if algo not in BUILTIN_AGENTS and ":" not in algo:
            raise ValueError(f"unknown agent {algo!r}: one of {list(BUILTIN_AGENTS)} or 'module:function'")
    if not config.seeds:
        raise ValueError("a comparison needs at least one seed")
    for option in ("algos", "rewards", "settings", "baselines", "seeds"):
        values = list(getattr(config, option))
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{option} names {', '.join(map(repr, repeated))} more than once")
    if config.settings and config.algos and not config.rewards:
        raise ValueError(f"a comparison needs at least one reward; choose from {list(REWARDS)}")
    controls = [b for b in config.baselines if b in CONTROLS]
    if controls and not config.reinforce_variants():
        raise ValueError(f"the control{'s' if len(controls) > 1 else ''} {', '.join(map(repr, controls))} run under "
                         f"the REINFORCE variants in algos, and algos {list(config.algos)} has none: add one of "
                         f"{list(REINFORCE_VARIANTS)}, or leave the controls out of the baselines")
    check_hparams(config.hparams)


def _check_job(job: tuple[str, str, int], config: CompareConfig) -> None:
    """The names of one run and the hyperparameters it reads, checked (a caller of :func:`run_one`,
    such as a tuning trial, may run jobs that its config's ``jobs()`` does not list)."""
    setting, name, _ = job
    if setting == "baseline":
        kind = name.partition("/")[0]
        _unknown("baseline", [kind], BASELINES)
        if kind in CONTROLS:
            _unknown("REINFORCE variant of a control", [control_update(name)], tuple(REINFORCE_VARIANTS))
    else:
        _unknown("setting", [setting], SETTINGS)
        algo, reward = split_job_name(name)
        _unknown("reward", [reward], REWARDS)
        if algo not in BUILTIN_AGENTS and ":" not in algo:
            raise ValueError(f"unknown agent {algo!r}: one of {list(BUILTIN_AGENTS)} or 'module:function'")
    check_hparams(config.hparams)


def check_hparams(hparams: dict[str, dict[str, Any]]) -> None:
    """ValueError naming any unknown algorithm or hyperparameter name (or bad value) in ``hparams``."""
    if not isinstance(hparams, dict):
        raise ValueError(f"hparams must map algorithm names to hyperparameters, got {type(hparams).__name__}")
    tunable = (*REINFORCE_VARIANTS, *SB3_AGENTS, "rllib-ppo")
    _unknown("algorithm in hparams", list(hparams), tunable)
    for algo, values in hparams.items():
        if not isinstance(values, dict):
            raise ValueError(f"hparams[{algo!r}] must map hyperparameter names to values, got {values!r}")
        known, fixed = _hparam_names(algo)
        set_here = [name for name in values if name in fixed]
        if set_here:
            raise ValueError(f"hparams[{algo!r}] sets {', '.join(map(repr, set_here))}, which the comparison sets "
                             f"itself ({'; '.join(f'{n}: {fixed[n]}' for n in set_here)})")
        bad = [name for name in values if name not in known]
        if bad:
            raise ValueError(f"unknown hyperparameter{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))} "
                             f"in hparams[{algo!r}]; {algo} takes {sorted(known)}")
        if algo in REINFORCE_VARIANTS:
            _reinforce_config(algo, hparams)  # its own checks of the values (baseline, rollout_beta, ...)


def _hparam_names(algo: str) -> tuple[set[str], dict[str, str]]:
    """The hyperparameter names ``algo`` takes, and those the comparison sets itself (with why)."""
    if algo in REINFORCE_VARIANTS:
        fields = {f.name for f in dataclasses.fields(ReinforceConfig)}
        return fields - {"baseline"}, {"baseline": f"{algo} is the variant with baseline "
                                                   f"{REINFORCE_VARIANTS[algo]!r}"}
    if algo in SB3_AGENTS:
        from stable_baselines3 import A2C, PPO

        return _keyword_names((PPO if algo == "ppo" else A2C).__init__) - set(_SB3_SET_HERE), _SB3_SET_HERE
    # rllib-ppo: arguments of PPOConfig.training (its own and, through **kwargs, AlgorithmConfig's),
    # as agents.rllib.ppo_config passes them on.
    try:
        from ray.rllib.algorithms.algorithm_config import AlgorithmConfig
        from ray.rllib.algorithms.ppo import PPOConfig
    except ImportError:
        raise ValueError("hparams for rllib-ppo need RLlib: pip install 'seqgan-env[ray]'") from None
    fixed = {"train_batch_size_per_learner": "one episode per env per update: the batch is `batch_size` sequences"}
    return (_keyword_names(PPOConfig.training) | _keyword_names(AlgorithmConfig.training)) - set(fixed), fixed


def _keyword_names(function: Callable[..., Any]) -> set[str]:
    """The named parameters of ``function`` (not ``self``, ``*args`` or ``**kwargs``)."""
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name for name, p in inspect.signature(function).parameters.items() if p.kind in named} - {"self"}


def _reinforce_config(variant: str, hparams: dict[str, dict[str, Any]]) -> ReinforceConfig:
    """The update of REINFORCE variant ``variant`` with its ``hparams``."""
    values = hparams.get(variant, {})
    try:
        return ReinforceConfig(**{**values, "baseline": REINFORCE_VARIANTS[variant]})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"hparams[{variant!r}]: {exc}") from None


def load_hparams(name_or_path: str | Path) -> dict[str, dict[str, Any]]:
    """Per-algorithm hyperparameters from a JSON file, or from a shipped preset ``train/hparams/<name>.json``.

    The JSON is an object mapping algorithm names to objects of hyperparameters
    (``{"reinforce-mean": {"lr": 0.005}, "ppo": {"learning_rate": 3e-4}}``), or an object
    holding that mapping under ``"hparams"`` beside other keys (how it was tuned, ...), which
    are ignored. Names are checked (:func:`check_hparams`). JSON only: nothing in it can run code.
    """
    path = Path(name_or_path)
    if not path.is_file():
        shipped = sorted(p.stem for p in HPARAMS_DIR.glob("*.json")) if HPARAMS_DIR.is_dir() else []
        if str(name_or_path) not in shipped:
            raise ValueError(f"hparams {str(name_or_path)!r} is neither a JSON file nor a shipped preset "
                             f"(shipped: {shipped or 'none'})")
        path = HPARAMS_DIR / f"{name_or_path}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"hparams file {path} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("hparams"), dict):
        data = data["hparams"]
    if not isinstance(data, dict):
        raise ValueError(f"hparams file {path} must hold a JSON object mapping algorithm names to hyperparameters")
    for algo, values in data.items():
        for name, value in (values.items() if isinstance(values, dict) else ()):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"hparams file {path}: {algo} {name} = {value} is not a finite number")
    check_hparams(data)
    return data


# -- the shared base ---------------------------------------------------------------------
def prepare_base(folder: Path, config: CompareConfig, oracle: Oracle, progress: bool = True,
                 device: str = "cpu") -> Path:
    """MLE generator and the pretrained Ds of ``config.rewards``, shared by every run (``folder/base``),
    trained once, resumable.

    The pipeline (:class:`train.pipeline.Run`) trains the MLE generator and the paper's D
    (``discriminator.pt``; only when ``monte_carlo`` is among the rewards, else it takes no
    rounds). The other Ds are pretrained after it against the same MLE generator, on the same
    real data with the same schedule: ``discriminator-reg.pt`` with
    :data:`train.pretrain.REGULARISED_D`, ``prefix-discriminator.pt`` for ``dense``.
    """
    from train.pipeline import Run

    base = folder / "base"
    train_config = get_train_config(config.base_preset)
    if config.base_mle_epochs is not None:
        train_config.mle.epochs = config.base_mle_epochs
    if config.base_d_rounds is not None:
        train_config.d_pretrain.rounds = config.base_d_rounds
    schedule = dataclasses.replace(train_config.d_pretrain)
    if DEFAULT_REWARD not in _needed_rewards(config):
        train_config.d_pretrain.rounds = 0  # the paper's D serves no run
    if not (base / "summary.json").exists():
        train_config.adversarial.steps = 0
        train_config.adversarial.eval_samples = config.eval_samples
        train_config.seed = config.seed
        train_config.device = device
        resume = (base / "checkpoint.pt").exists()
        Run(base, train_config, oracle, resume=resume, progress=progress).run()
    for index, reward in enumerate(_needed_rewards(config)):
        file_name, _ = _D_FILES[reward]
        if reward == DEFAULT_REWARD or (base / file_name).exists():
            continue
        _pretrain_extra_d(base, reward, schedule, torch.Generator().manual_seed(config.seed * 1000 + 17 * index + 1),
                          progress, device)
    return base


def _needed_rewards(config: CompareConfig) -> tuple[str, ...]:
    """The rewards some run of ``config`` reads a pretrained D for."""
    return config.rewards if config.settings and config.algos else ()


def _pretrain_extra_d(base: Path, reward: str, schedule: DiscriminatorSchedule, rng: torch.Generator,
                      progress: bool, device: str) -> None:
    """Pretrain the D of ``reward`` (other than the pipeline's) and save it in ``base``, atomically."""
    from seqgan_env.checkpoint import save_model

    generator, real, _, preset = _base_models(base, device)
    if reward == "dense":
        from seqgan_env.models import PrefixDiscriminator

        discriminator = PrefixDiscriminator.from_preset(preset).to(device)
    else:
        from seqgan_env.models import Discriminator

        discriminator = Discriminator.from_preset(preset).to(device)
        schedule = _regularised(schedule)
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=rng)))  # D's initial weights
    train_discriminator(discriminator, generator, real, schedule, rng, progress=progress,
                        desc=f"D pretraining ({reward})")
    save_model(discriminator.eval(), base / _D_FILES[reward][0])


def _regularised(schedule: DiscriminatorSchedule) -> DiscriminatorSchedule:
    """``schedule`` with the regularisation of ``monte_carlo-reg`` (:data:`train.pretrain.REGULARISED_D`)."""
    from train.pretrain import REGULARISED_D

    return dataclasses.replace(schedule, **REGULARISED_D)


def _base_models(base: Path, device: str) -> tuple[Generator, torch.Tensor, torch.Tensor, Preset]:
    """The base's MLE generator, real and test sequences, and the model preset with the base's sizes."""
    generator = load_model(base / "generator.pt", "generator", device=device)
    payload = load_checkpoint(base / "checkpoint.pt", "training-run")
    preset = get_preset(payload["config"]["model_preset"]).replace(
        vocab_size=generator.vocab_size, seq_len=generator.seq_len, start_token=generator.start_token)
    return generator, payload["real"], payload["test"], preset


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
    """Train one (setting, name, seed) from the base and write its result file.

    ``name`` is a run name of :meth:`CompareConfig.jobs`: ``algo`` or ``"algo @ reward"``
    (:func:`job_name`) in the fixed and adversarial settings, ``constant/<variant>``,
    ``random/<variant>`` or ``oracle`` in the ``baseline`` setting. The algorithm takes its
    ``hparams`` from ``config_data``. ``report(point)`` receives each evaluation (tokens,
    NLL-oracle, NLL-test, the rewards' mean and within-batch spread, D's accuracy where D is
    retrained) as it is made; a Tune trial passes Tune's ``report`` (see :func:`compare_trial`).
    """
    from seqgan_env.factory import resolve_oracle

    torch.set_num_threads(threads)
    config = CompareConfig.from_dict(config_data)
    setting, name, seed = job
    _check_job(job, config)
    root = Path(folder)
    base = root / "base"
    generator, real, test, preset = _base_models(base, device)
    oracle = resolve_oracle(oracle_spec, preset)
    torch.manual_seed(seed)
    rng = torch.Generator().manual_seed(1000 + seed)

    if setting == "baseline":
        # Baselines are named after their reward kind, controls also after the update they run under.
        algo, reward, env_reward = (name, name, name) if name == "oracle" else \
            (control_update(name), name.partition("/")[0], name.partition("/")[0])
    else:
        algo, reward = split_job_name(name)
        env_reward = _ENV_REWARD[reward]
    discriminator = None
    if "discriminator" in REWARD_ARGUMENTS[env_reward]:
        file_name, kind = _D_FILES[reward]
        discriminator = load_model(base / file_name, kind, device=device).eval()
    models = dict(discriminator=discriminator, rollout_policy=generator, oracle=oracle, num_rollouts=config.num_rollouts)
    env_kwargs = dict(preset=preset, reward=env_reward, device=device,
                      **{key: value for key, value in models.items() if key in REWARD_ARGUMENTS[env_reward]})
    d_optimizer = adam(discriminator.parameters(), 1e-4) if discriminator is not None else None
    d_config = DiscriminatorSchedule(rounds=1, epochs=config.d_epochs, num_negatives=config.d_negatives)
    if reward == "monte_carlo-reg":
        d_config = _regularised(d_config)
    last_d: dict[str, float] = {}

    def retrain_d(policy: Generator) -> dict[str, float]:
        """The adversarial setting's D-step, the same for every algorithm."""
        assert discriminator is not None
        discriminator.train()
        stats = train_discriminator(discriminator, policy, real, d_config, rng, d_optimizer)
        discriminator.eval()
        last_d.update(stats)
        return stats

    adversarial = setting == "adversarial"
    step, generator, close, retrains_d = _generator_step(
        algo, setting, generator, env_kwargs, config, seed, retrain_d if adversarial else None)

    started = time.time()

    def evaluation(tokens: int, **extra: float) -> dict[str, Any]:
        point = {"tokens": tokens, **_evaluate(generator, oracle, test, config.eval_samples, seed), **extra,
                 "wall_time": time.time() - started}
        if report is not None:
            report(point)
        return point

    curve = [evaluation(0)]
    eval_every = config.token_budget / config.evaluations
    tokens, next_eval, rewards, spreads = 0, eval_every, [], []
    try:
        while tokens < config.token_budget:
            stats = step(int(torch.randint(2**31 - 1, (1,), generator=rng)))
            tokens += int(stats["tokens"])
            rewards.append(stats["mean_reward"])
            if "reward_std" in stats:
                spreads.append(stats["reward_std"])
            if adversarial and not retrains_d:
                retrain_d(generator)
                # The agent's env holds D itself; a model swap makes it see the retrained weights.
                close.set_discriminator(discriminator)
            if tokens >= next_eval or tokens >= config.token_budget:
                next_eval += eval_every
                extra = {"mean_reward": stats["mean_reward"]}
                if spreads:  # mean since the last evaluation of each update's within-batch spread
                    extra["reward_std"] = sum(spreads) / len(spreads)
                if adversarial and "d_accuracy" in last_d:
                    extra["d_accuracy"] = last_d["d_accuracy"]
                spreads = []
                curve.append(evaluation(tokens, **extra))
    finally:
        close()
    result = {"setting": setting, "name": name, "seed": seed, "algo": algo, "reward": reward, "tokens": tokens,
              "updates": len(rewards), "curve": curve, "final": {**curve[-1], "mean_reward": rewards[-1]},
              "wall_time": time.time() - started}
    _write_json(_result_path(root, job), result)
    return result


def reward_spread(rewards: Any, mask: Any = None) -> float:
    """Spread of the rewards within a batch: at each step, the standard deviation over the batch's
    episodes (those still running), averaged over the steps. ``rewards``: ``(batch, steps)``.

    A reward that saturates (every sequence scored alike) has spread 0 whatever its mean: its
    gradient then carries no information about which sequences are better.
    """
    values = torch.as_tensor(rewards, dtype=torch.float64)
    weights = torch.ones_like(values) if mask is None else torch.as_tensor(mask, dtype=torch.float64)
    count = weights.sum(0)
    steps = count > 0
    mean = (values * weights).sum(0) / count.clamp(min=1)
    variance = (((values - mean) ** 2) * weights).sum(0) / count.clamp(min=1)
    return float(variance[steps].sqrt().mean()) if bool(steps.any()) else 0.0


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


def _generator_step(algo: str, setting: str, generator: Generator, env_kwargs: dict[str, Any], config: CompareConfig,
                    seed: int, retrain_d: Callable[[Generator], dict[str, float]] | None,
                    ) -> tuple[Callable[[int], dict], Generator, _Closer, bool]:
    """One generator update of agent ``algo`` with its ``config.hparams`` (its stats, with the
    tokens it generated and the rewards' within-batch spread), the generator that
    evaluations measure, what to close afterwards, and whether the agent retrains D itself
    (RLlib's PPO does, in its callback, with ``retrain_d``). ``algo`` ``oracle``: the oracle
    baseline's REINFORCE."""
    hparams = dict(config.hparams.get(algo, {}))
    if algo == "rllib-ppo":
        from agents.rllib import env_steps, make_ppo, mean_step_reward

        algorithm = make_ppo(env_kwargs, generator, num_envs=config.batch_size, seed=seed,
                             discriminator=env_kwargs["discriminator"] if retrain_d else None, retrain=retrain_d,
                             **hparams)

        def iteration(episode_seed: int) -> dict[str, float]:
            result = algorithm.train()  # RLlib reports no per-step rewards: no reward_std
            return {"tokens": env_steps(result), "mean_reward": mean_step_reward(result)}

        return iteration, generator, _Closer(algorithm=algorithm), True
    envs = gym.make_vec("SeqGAN-v0", num_envs=config.batch_size, **env_kwargs)
    if algo in SB3_AGENTS:
        from agents.sb3 import make_a2c, make_ppo

        model = (make_ppo if algo == "ppo" else make_a2c)(envs, generator=generator, seed=seed,
                                                          device=generator.device, **hparams)
        update, rollout = sb3_step(model, generator), model.n_envs * model.n_steps

        def sb3_update(episode_seed: int) -> dict[str, float]:
            stats = update(episode_seed)
            # SB3's buffer holds the rollout's rewards as (steps, envs).
            return {**stats, "tokens": rollout, "reward_std": reward_spread(model.rollout_buffer.rewards.T)}

        return sb3_update, generator, _Closer(envs), False
    if algo == "oracle":
        agent: Agent = ReinforceAgent(generator, ReinforceConfig(reward_to_go=True, baseline="mean"), seed=seed)
    elif algo in REINFORCE_VARIANTS:
        agent = ReinforceAgent(generator, _reinforce_config(algo, config.hparams), seed=seed)
    else:
        agent = load_agent_factory(algo)(generator, envs, seed)
        if not isinstance(agent, Agent):
            raise TypeError(f"agent {algo!r} built a {type(agent).__name__}, not an agents.Agent")
        if not isinstance(getattr(agent, "generator", None), TokenLSTM):
            raise TypeError(f"agent {algo!r} has no `generator` (a TokenLSTM policy): a comparison measures "
                            "NLL-oracle and NLL-test of the generator each agent trains")
    if agent.rollout_policy is not None and isinstance(seqgan_env.reward_wrapper(envs).reward_model, MonteCarloReward):
        seqgan_env.set_rollout_policy(envs, agent.rollout_policy)

    def episodes(episode_seed: int) -> dict[str, float]:
        batch = collect_episodes(envs, agent, seed=episode_seed)
        stats = agent.learn(batch)
        stats.setdefault("mean_reward", float((batch.rewards * batch.mask).sum() / batch.mask.sum()))
        return {**stats, "tokens": int(batch.lengths.sum()), "reward_std": reward_spread(batch.rewards, batch.mask)}

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


def _slug(name: str) -> str:
    """A run name as one folder name: ``reinforce-mean @ dense`` -> ``reinforce-mean@dense``, ``a:b`` -> ``a_b``."""
    return name.replace(" @ ", "@").replace(":", "_").replace("/", "_")


def _result_path(root: Path, job: tuple[str, str, int]) -> Path:
    setting, name, seed = job
    if setting == "baseline" and name.partition("/")[2] == "reinforce":
        name = name.partition("/")[0]  # the paper's update is what plain `constant` ran: the same folder
    return root / "runs" / setting / _slug(name) / f"seed{seed}.json"


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
    return f"{setting}_{_slug(name)}_seed{seed}"


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
        # An older compare.json lacks the fields added since: they take their defaults.
        if CompareConfig.from_dict(previous).to_dict() != config.to_dict():
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
