"""What a comparison runs (:class:`CompareConfig`), its presets and the checks of its names and hyperparameters.

Algorithms and rewards are names of the registries (:data:`train.algorithms.ALGORITHMS`,
:data:`train.experiments.rewards.COMPARISON_REWARDS`); the checks read them, so that a
mistake is reported before any training.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqgan_env.rewards.forms import REWARD_FORMS
from seqgan_env.rewards.registry import get_reward_kind
from train import algorithms
from train.experiments import rewards as comparison_rewards
from train.experiments.rewards import DEFAULT_REWARD
from train.experiments.runs import SETTINGS, Job, RunSpec

DEFAULT_AGENTS = ("reinforce", "ppo", "a2c")
HPARAMS_DIR = Path(__file__).resolve().parent.parent / "hparams"
"""Shipped hyperparameter presets: ``train/hparams/<name>.json``."""


@dataclass
class CompareConfig:
    """What a comparison runs; saved in ``compare.json`` so a restarted comparison matches."""

    algos: tuple[str, ...] = DEFAULT_AGENTS
    """Algorithms of :data:`train.algorithms.ALGORITHMS` offered to comparisons: ``reinforce`` (the
    paper's update, no baseline), ``reinforce-mean`` (batch-mean baseline), ``reinforce-value``
    (learned value baseline), ``ppo``, ``a2c`` (SB3), ``rllib-ppo`` (RLlib), or ``module:attr``
    naming an :class:`train.algorithms.Algorithm` or a function ``function(generator, envs, seed)
    -> agents.Agent`` that builds any agent of the interface whose ``generator`` attribute is the
    policy it trains (what the evaluations measure)."""
    seeds: tuple[int, ...] = (0, 1, 2)
    """Seeds of the RL runs (the base is shared)."""
    settings: tuple[str, ...] = SETTINGS
    """``fixed`` (stationary reward) and/or ``adversarial`` (D retrained between updates)."""
    rewards: tuple[str, ...] = (DEFAULT_REWARD,)
    """Rewards every algorithm runs on (the ``axis`` rewards of :data:`COMPARISON_REWARDS`):
    ``monte_carlo`` (the paper's), ``monte_carlo-reg`` (its D regularised,
    :data:`train.pretrain.REGULARISED_D`), ``dense`` (a prefix discriminator, no rollouts). The
    base pretrains the D of each that reads one."""
    reward_forms: tuple[str, ...] = ()
    """Forms of the rewards' scores to cross with ``rewards`` (:mod:`seqgan_env.rewards.forms`):
    ``probability`` (the paper's), ``logit``, ``log``; each run's reward is then named
    ``<reward>+<form>``. Empty: every reward in its kind's default form (P(real) for a D's)."""
    baselines: tuple[str, ...] = ("constant", "random", "oracle")
    """Controls (``constant``, ``random``: under each algorithm in ``algos`` that runs controls)
    and reference baselines (``oracle``: REINFORCE on the oracle's log-likelihood)."""
    hparams: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    """Per algorithm, hyperparameters overriding its defaults (its entry's ``hparams``):
    :class:`ReinforceConfig` fields for the REINFORCE variants (and the controls run under
    them; not ``baseline``, which the variant fixes), keyword arguments of
    :func:`agents.sb3.make_ppo` / ``make_a2c`` for ``ppo`` / ``a2c``, of
    :func:`agents.rllib.ppo_config` for ``rllib-ppo``."""
    temperatures: tuple[float, ...] = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5)
    """Sampling temperatures of the MLE-only curve."""
    base_preset: str = "cpu"
    """Training preset of the shared pretraining (MLE and D)."""
    base_mle_epochs: int | None = 30
    """MLE epochs of the base (``None``: the preset's)."""
    base_real_samples: int | None = None
    """Oracle sequences of the base's real set, the data MLE and every D learn from (``None``: the
    training preset's ``real_samples``: 10,000, the paper's count, in ``cpu``; 2,000 in ``tiny``)."""
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
    best_of_n: tuple[int, ...] = tuple(2**k for k in range(11))
    """Best-of-n reference points on the base generator (:mod:`train.experiments.reference_points`): each n."""
    best_of_n_samples: int = 16_384
    """Samples of the base generator per seed behind every best-of-n point."""
    kl_temperatures: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.15, 1.3)
    """Temperatures of the tempered-MLE curve drawn against KL (each with its KL to temperature 1)."""
    kl_budgets: tuple[float, ...] = (1.0, 4.0, 16.0, 64.0)
    """KL budgets (nats per sequence) of the table of :mod:`train.experiments.overoptimisation`."""
    fixed_data: bool = False
    """The fixed-data setting (``--fixed-data``): MLE, every learned D and RL see the same real
    sequences, the base's (``real_samples`` of its training preset: 10,000 in ``cpu``, the paper's
    count). Every learned D takes its positives from them alone, in pretraining and in adversarial
    retraining: a schedule's ``fresh_real`` (the ``density-ratio`` D's fresh oracle sequences) is
    turned off and D's training is handed no oracle, so nothing can draw from it. The oracle still
    measures (evaluations, D's held-out metrics); a reward that reads the oracle's density
    (``optimal``, ``exact-regret``) is refused, the ``oracle`` reference baseline stays a ceiling.
    ``False``: each D's schedule as registered."""
    prompt_length: int = 0
    """``k``: every run trains on prompted episodes (the oracle's first ``k`` tokens, then the
    agent's; ``group_size`` of RLOO and GRPO = their own), evaluated on NLL-oracle given the
    prompts besides the usual metrics (:mod:`train.experiments.prompted`). 0: no prompts."""

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CompareConfig:
        """From :meth:`to_dict`'s data; fields an older ``compare.json`` lacks take their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in names})

    def control_updates(self) -> tuple[str, ...]:
        """The algorithms among ``algos`` that the controls run under."""
        return tuple(a for a in self.algos if _runs_controls(a))

    reinforce_variants = control_updates  # the name of older callers

    def runs(self) -> list[RunSpec]:
        """Every run: settings x rewards x algos x seeds, then the baselines (once: their reward
        ignores D), each control under each algorithm that runs controls."""
        out = [RunSpec(s, a, r, seed) for s in self.settings for r in self.reward_names() for a in self.algos
               for seed in self.seeds]
        for baseline in self.baselines:
            entry = comparison_rewards.get_comparison_reward(baseline)
            updates = self.control_updates() if entry.role == "control" else (entry.update,)
            out += [RunSpec("baseline", update, baseline, seed) for update in updates for seed in self.seeds]
        return out

    def reward_names(self) -> tuple[str, ...]:
        """``rewards`` crossed with ``reward_forms`` (``<reward>+<form>``), or ``rewards`` without forms."""
        if not self.reward_forms:
            return tuple(self.rewards)
        return tuple(comparison_rewards.with_form(r, f) for r in self.rewards for f in self.reward_forms)

    def jobs(self) -> list[Job]:
        """``(setting, name, seed)`` of every run of :meth:`runs`."""
        return [run.job for run in self.runs()]


def _runs_controls(name: str) -> bool:
    return name in algorithms.ALGORITHMS and algorithms.ALGORITHMS[name].runs_controls or (
        ":" in name and algorithms.get_algorithm(name).runs_controls)


PLATEAU_TOKEN_BUDGET = 64 * 20 * 40
"""Generated tokens per run of the ``plateau`` comparison: 40 updates of 64 sequences, twice the
``short`` preset's 20, what fits its 70 runs into about 45 minutes on 2 cores (README)."""

REGRET_AGENTS = ("reinforce", "reinforce-mean", "reinforce-value", "rloo", "grpo", "ppo", "a2c", "rllib-ppo")
"""Every algorithm the exact-regret matrix ranks."""
REGRET_TOKEN_BUDGET = 10_000 * 20
"""Generated tokens per run of the ``regret`` presets: 10,000 sequences of 20 tokens."""
REGRET_MATRIX = dict(algos=REGRET_AGENTS, seeds=(0, 1, 2, 3, 4), settings=("fixed",), rewards=("exact-regret",),
                     baselines=(), token_budget=REGRET_TOKEN_BUDGET, evaluations=4, eval_samples=3_000,
                     temperatures=(1.1, 1.0, 0.95, 0.9), kl_temperatures=(0.8, 1.0, 1.2), kl_budgets=(1.0, 4.0),
                     best_of_n=(1, 4, 16, 64), best_of_n_samples=2_048)
"""What the two ``regret`` presets share. The reports they do not lead with (NLL-oracle's
temperature curve, the equal-KL tables) are kept small: on 2 cores they cost more than the runs."""

COMPARE_PRESETS: dict[str, CompareConfig] = {
    # The paper's models and oracle on 2 CPU cores: 20 updates of 64 sequences per run (its base
    # is pretrained by the training preset ``cpu``, shortened: see ``base_mle_epochs``).
    "short": CompareConfig(),
    # The paper's oracle at a budget where the curves flatten: every variance reduction,
    # every reward, 5 evaluation seeds, the fixed D (a stationary reward: a plain RL benchmark).
    # REINFORCE without and with a baseline and PPO: A2C and the learned-value baseline, tuned
    # with the same budget, did no better than these at the tuning budget (docs/tuning.md).
    "plateau": CompareConfig(algos=("reinforce", "reinforce-mean", "ppo"), seeds=(0, 1, 2, 3, 4),
                             settings=("fixed",), rewards=("monte_carlo", "monte_carlo-reg", "dense"),
                             token_budget=PLATEAU_TOKEN_BUDGET, evaluations=5),
    # The exact-regret task (docs/regret.md): every algorithm at 10,000 sampled sequences, 5 seeds,
    # ranked by its regret, the reverse KL to the oracle. ``regret``: SeqGAN-v0 itself (the shipped
    # generator, the built-in oracle); ``regret-paper``: the paper's oracle (``--oracle paper``)
    # with the ``short`` preset's base, an MLE generator of the ``cpu`` training preset.
    "regret": CompareConfig(base_preset="default", base_mle_epochs=None, base_d_rounds=None, **REGRET_MATRIX),
    "regret-paper": CompareConfig(base_d_rounds=0, **REGRET_MATRIX),
    # Seconds per run, for tests and trying the command out: every axis, at the smallest size.
    "tiny": CompareConfig(algos=("reinforce", "reinforce-mean", "a2c"), seeds=(0, 1),
                          rewards=("monte_carlo", "monte_carlo-reg", "dense"), temperatures=(1.0, 0.7),
                          base_preset="tiny", base_mle_epochs=None, base_d_rounds=None, token_budget=32 * 8 * 4,
                          batch_size=32, num_rollouts=4, d_negatives=200, evaluations=2, eval_samples=500,
                          best_of_n=(1, 2, 4, 8, 16, 32, 64), best_of_n_samples=512, kl_temperatures=(0.5, 0.7, 1.0, 1.3)),
}


RENAMED_COMPARE_PRESETS = {"cpu": "short"}
"""Old comparison preset names still accepted, with a warning, and the preset each now is. The
comparison preset ``cpu`` became ``short`` so that ``cpu`` names one thing: the training preset."""


def compare_preset_name(name: str) -> str:
    """The current name of comparison preset ``name`` (an old name warns and gives its new one)."""
    if name in RENAMED_COMPARE_PRESETS:
        new = RENAMED_COMPARE_PRESETS[name]
        warnings.warn(f"the comparison preset {name!r} is now called {new!r} (the training preset {name!r} of "
                      f"seqgan train is a different thing); use --preset {new}: the old name will be removed",
                      FutureWarning, stacklevel=2)
        return new
    return name


def get_compare_config(name: str) -> CompareConfig:
    """A copy of the named comparison preset (an old name of :data:`RENAMED_COMPARE_PRESETS` warns)."""
    name = compare_preset_name(name)
    try:
        return dataclasses.replace(COMPARE_PRESETS[name], hparams=copy.deepcopy(COMPARE_PRESETS[name].hparams))
    except KeyError:
        raise ValueError(f"unknown comparison preset {name!r}; choose one of {sorted(COMPARE_PRESETS)}") from None


def unknown(kind: str, given: tuple[str, ...] | list[str], known: tuple[str, ...] | list[str]) -> None:
    """ValueError naming every name of ``given`` not in ``known`` (``module:attr`` names are loaded elsewhere)."""
    bad = [g for g in given if g not in known and ":" not in str(g)]
    if bad:
        raise ValueError(f"unknown {kind}{'s' if len(bad) > 1 else ''} {', '.join(map(repr, bad))}; "
                         f"choose from {list(known)}")


def check_config(config: CompareConfig) -> None:
    """Every name and combination of ``config`` checked, so that a mistake is reported before any training."""
    unknown("setting", config.settings, SETTINGS)
    unknown("baseline", config.baselines, comparison_rewards.names("control", "reference"))
    unknown("reward", config.rewards, comparison_rewards.names("axis"))
    unknown("reward form", config.reward_forms, REWARD_FORMS)
    for name in (*config.reward_names(), *config.baselines):
        comparison_rewards.get_comparison_reward(name)  # a module:attr or reward+form name loads, or fails here
    for name in config.reward_names():
        kind = get_reward_kind(comparison_rewards.get_comparison_reward(name).env_reward)
        if kind.kl_beta is not None and set(config.settings) - {"fixed"}:
            raise ValueError(f"reward {name!r} is a task with a fixed reference (kl_beta = {kind.kl_beta:g} to the "
                             f"base generator): run it in the fixed setting only (--settings fixed)")
    for algo in config.algos:
        if not algorithms.get_algorithm(algo).compare:
            raise ValueError(f"unknown agent {algo!r}: one of {list(algorithms.names(compare=True))} or "
                             "'module:function'")
    if not config.seeds:
        raise ValueError("a comparison needs at least one seed")
    for option in ("algos", "rewards", "reward_forms", "settings", "baselines", "seeds"):
        values = list(getattr(config, option))
        repeated = sorted({str(v) for v in values if values.count(v) > 1})
        if repeated:
            raise ValueError(f"{option} names {', '.join(map(repr, repeated))} more than once")
    if config.settings and config.algos and not config.rewards:
        raise ValueError(f"a comparison needs at least one reward; choose from {list(comparison_rewards.names('axis'))}")
    controls = [b for b in config.baselines if comparison_rewards.get_comparison_reward(b).role == "control"]
    if controls and not config.control_updates():
        raise ValueError(f"the control{'s' if len(controls) > 1 else ''} {', '.join(map(repr, controls))} run under "
                         f"the REINFORCE variants in algos, and algos {list(config.algos)} has none: add one of "
                         f"{list(algorithms.names(runs_controls=True))}, or leave the controls out of the baselines")
    if config.fixed_data:
        reads_oracle = [name for name in config.reward_names()
                        if "oracle" in get_reward_kind(comparison_rewards.get_comparison_reward(name).env_reward).arguments]
        if reads_oracle:
            raise ValueError(f"the fixed-data setting gives every learner the base's real sequences only, and "
                             f"{', '.join(map(repr, reads_oracle))} read{'s' if len(reads_oracle) == 1 else ''} the "
                             "oracle's density: leave it out of the rewards or drop --fixed-data")
        if config.prompt_length:
            raise ValueError("the fixed-data setting gives every learner the base's real sequences only, and prompted "
                             "episodes (--prompt-length) start from fresh oracle sequences: use one or the other")
    _check_reference_points(config)
    if not isinstance(config.prompt_length, int) or config.prompt_length < 0:
        raise ValueError(f"prompt_length must be a non-negative integer, got {config.prompt_length!r}")
    check_hparams(config.hparams)


def _check_reference_points(config: CompareConfig) -> None:
    """The best-of-n, tempered-MLE and KL-budget settings (:mod:`train.experiments.kl_report`)."""
    if any(not isinstance(n, int) or n < 1 for n in config.best_of_n):
        raise ValueError(f"best_of_n must be whole numbers of at least 1, got {list(config.best_of_n)}")
    if config.best_of_n and config.best_of_n_samples < max(config.best_of_n):
        raise ValueError(f"best_of_n_samples ({config.best_of_n_samples}) must be at least the largest n "
                         f"({max(config.best_of_n)})")
    if any(not t > 0 for t in config.kl_temperatures):
        raise ValueError(f"kl_temperatures must be positive, got {list(config.kl_temperatures)}")
    if any(not b > 0 for b in config.kl_budgets):
        raise ValueError(f"kl_budgets must be positive (nats per sequence), got {list(config.kl_budgets)}")


def check_hparams(hparams: dict[str, dict[str, Any]]) -> None:
    """ValueError naming any unknown algorithm or hyperparameter name (or bad value) in ``hparams``."""
    if not isinstance(hparams, dict):
        raise ValueError(f"hparams must map algorithm names to hyperparameters, got {type(hparams).__name__}")
    unknown("algorithm in hparams", list(hparams), algorithms.names(compare=True))
    for algo, values in hparams.items():
        algorithms.get_algorithm(algo).check_hparams(values)


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
